#!/usr/bin/env bash
# The librdkafka every backfill binary links: a pinned release built from
# Debian's own source package (the .orig tarball in Debian's archive,
# checked by SHA-256), not the distribution's librdkafka-dev (Debian 12
# ships 2.0.2, January 2023, whose consumer-group bugs we do not want to
# work around).
#
# The build is cached outside the repository, keyed by what identifies it
# (version, tarball SHA-256, configure flags), so a fresh clone on the same
# machine reuses it and a new pin or flag rebuilds it:
#   ${BACKFILL_CACHE:-$HOME/.cache/backfill}/librdkafka-<version>-<hash12>
#
# usage: scripts/librdkafka.sh prefix            print that directory
#        scripts/librdkafka.sh install [PREFIX]  build and install into PREFIX
#                                               (default: that directory)
#                                               unless it is already there
# The build needs: a C compiler, make, pkg-config, and the -dev packages of
# OpenSSL, Cyrus SASL, zlib, zstd, lz4 and libcurl (scripts/install-deps.sh
# installs them; the Dockerfile's build stage too).
set -euo pipefail

version=2.14.2
sha256=4d53568c13717b167d12c7b2a0fe12aeb5d6bfe02de53df5b68f86d870a81b33
tarball=librdkafka_${version}.orig.tar.gz
urls=(
    "http://deb.debian.org/debian/pool/main/libr/librdkafka/$tarball"
    "https://snapshot.debian.org/archive/debian/20260101T000000Z/pool/main/libr/librdkafka/$tarball"
)
# Every feature a user may configure with -X (TLS, SASL incl. GSSAPI and
# OAUTHBEARER/OIDC, all compression codecs); "--enable" makes each one a
# hard requirement, so a missing -dev package fails here, not at runtime.
# POSIX threads rather than C11 threads: glibc's thrd_create bypasses
# ThreadSanitizer's interceptors, and the worker's TSan build then crashes
# in librdkafka's first thread.
configure_flags=(--no-download --enable-ssl --enable-gssapi --enable-zlib --enable-zstd
    --enable-lz4-ext --enable-curl --disable-c11threads)

cache=${BACKFILL_CACHE:-$HOME/.cache/backfill}

say() { echo "librdkafka: $*" >&2; }
die() { echo "librdkafka: error: $*" >&2; exit 1; }
usage() { sed -n '12,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# What identifies a build: the tarball and how it was configured.
stamp() { echo "$version $sha256 ${configure_flags[*]}"; }
stamp_hash=$(stamp | sha256sum)
default_prefix=$cache/librdkafka-$version-${stamp_hash:0:12}

installed() { [[ $(cat "$1/.stamp" 2>/dev/null) == "$(stamp)" && -f $1/lib/pkgconfig/rdkafka.pc ]]; }

download() {
    local out=$1 url
    if [[ -f $out ]] && echo "$sha256  $out" | sha256sum -c --status; then
        return 0
    fi
    for url in "${urls[@]}"; do
        say "downloading $url"
        if curl -fsSL --retry 2 --connect-timeout 20 -o "$out.part" "$url"; then
            if echo "$sha256  $out.part" | sha256sum -c --status; then
                mv "$out.part" "$out"
                return 0
            fi
            say "SHA-256 mismatch for $url (expected $sha256); not using it"
        fi
    done
    rm -f "$out.part"
    die "could not download $tarball with SHA-256 $sha256"
}

work=
cmd_install() {
    local prefix=${1:-$default_prefix} t0=$SECONDS
    [[ $prefix == /* ]] || die "PREFIX must be an absolute path: $prefix"
    mkdir -p "$cache"
    # One build at a time per machine (two clones' test runs may race here).
    exec 9>"$cache/librdkafka.lock"
    flock 9
    if installed "$prefix"; then
        say "$version: present in $prefix"
        return 0
    fi
    download "$cache/$tarball"
    work=$(mktemp -d "$cache/librdkafka-build.XXXXXX")
    trap 'rm -rf "$work"' EXIT # global: the trap runs after this function returns
    tar -xzf "$cache/$tarball" -C "$work" --strip-components=1
    say "building $version into $prefix (about a minute on 2 cores)"
    (
        cd "$work"
        # (not "configure.log": mklove loads every ./configure.* as a module)
        ./configure --prefix="$prefix" "${configure_flags[@]}" >mkl-configure.out 2>&1 ||
            { tail -n 30 mkl-configure.out >&2; exit 1; }
        make -C src -j"${JOBS:-$(nproc)}" lib >make.log 2>&1 || { tail -n 30 make.log >&2; exit 1; }
        # Staged, then moved into place: an interrupted build leaves nothing
        # that looks installed (the .pc files name $prefix, so stage under it).
        make -C src lib-install DESTDIR="$work/stage" >install.log 2>&1 ||
            { tail -n 30 install.log >&2; exit 1; }
    ) || die "build failed (logs above)"
    stamp >"$work/stage$prefix/.stamp"
    rm -rf "$prefix"
    mkdir -p "$(dirname "$prefix")"
    mv "$work/stage$prefix" "$prefix"
    say "$version built in $((SECONDS - t0))s"
}

case ${1:-} in
prefix) (($# == 1)) || usage; echo "$default_prefix" ;;
install) (($# <= 2)) || usage; cmd_install "${2:-}" ;;
*) usage ;;
esac
