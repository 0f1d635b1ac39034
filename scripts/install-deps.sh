#!/usr/bin/env bash
# Install everything backfill needs to build, test and demo on Debian 12,
# as root. Idempotent: each step is skipped when already done (a second run
# takes about a second).
#
#   1. Debian packages (compilers, C libraries, kcat, the Postgres server...)
#   2. Python venv at .cache/venv from tests/requirements.txt
#   3. `npm ci` in tests/graphql (when its package-lock.json exists)
#   4. Apache Kafka jars, one directory per tests/env/kafka-*/pom.xml, in
#      ~/.cache/backfill (shared by every clone; tests/env/kafka-libs.sh)
#   5. librdkafka, built from Debian's source tarball (scripts/librdkafka.sh)
#
# usage: scripts/install-deps.sh [--force]   (--force redoes steps 2-4)
#
# Java 17, Maven, Node.js and Python 3 are expected on the machine already.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache
force=0
[[ ${1:-} == --force ]] && force=1
[[ $# -le 1 && ( $# -eq 0 || $force -eq 1 ) ]] || {
    echo "usage: $0 [--force]" >&2
    exit 2
}

say() { echo "install-deps: $*" >&2; }
die() { echo "install-deps: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found on PATH ($2)"; }
sha() { sha256sum "$@" | sha256sum | cut -c1-64; }

t_start=$SECONDS
mkdir -p "$cache"

# --- 1. Debian packages -------------------------------------------------------
packages=(
    build-essential cmake pkg-config
    libjansson-dev libcurl4-openssl-dev libpq-dev
    libmicrohttpd-dev  # backfill-web's HTTP server
    # what scripts/librdkafka.sh builds librdkafka with (not Debian's 2.0.2)
    libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev
    kcat
    postgresql postgresql-client
    clang libclang-rt-14-dev  # libFuzzer + sanitizer runtimes: only a Recommends of clang-14
    tmux valgrind
    gdb  # the tests print the stacks of a process that hangs instead of exiting
    procps  # ps/pgrep for the test helpers
    docker-compose  # parses compose.yaml in the tests (`config`; no engine needed)
    chromium chromium-driver  # the browser tests of backfill-web (selenium drives them)
    prometheus  # scrapes a run in the metrics test; promtool checks every /metrics
)
missing=()
for p in "${packages[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "need root to install: ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    # Tests make their own throwaway clusters; do not let the postgresql
    # package create (and try to start) a system-wide "main" cluster.
    if [[ ! -e /etc/postgresql-common/createcluster.d/backfill.conf ]]; then
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/backfill.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
else
    say "Debian packages: present"
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    die "initdb not found under /usr/lib/postgresql/*/bin"

# --- 2. Python venv -----------------------------------------------------------
need python3 "Python 3.11 is expected"
venv=$cache/venv
req=$root/tests/requirements.txt
[[ -f $req ]] || die "missing $req"
stamp=$(sha "$req")
if ((force)) || [[ ! -x $venv/bin/python || $(cat "$venv/.stamp" 2>/dev/null) != "$stamp" ]]; then
    say "creating Python venv in $venv"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        # Debian's own python3 ships venv support separately.
        [[ $EUID -eq 0 ]] || die "python3 lacks venv/ensurepip; install python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || die "apt-get update failed"
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null ||
            die "could not install python3-venv"
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" ||
        die "pip install -r $req failed"
    echo "$stamp" >"$venv/.stamp"
else
    say "Python venv: up to date"
fi

# --- 3. npm project for the GraphQL schema checks -------------------------------
gql=$root/tests/graphql
if [[ -f $gql/package-lock.json && -f $gql/package.json ]]; then
    need npm "Node.js 20 is expected"
    stamp=$(sha "$gql/package-lock.json" "$gql/package.json")
    if ((force)) || [[ $(cat "$gql/node_modules/.backfill-stamp" 2>/dev/null) != "$stamp" ]]; then
        say "npm ci in tests/graphql"
        (cd "$gql" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
            die "npm ci in $gql failed"
        echo "$stamp" >"$gql/node_modules/.backfill-stamp"
    else
        say "tests/graphql node_modules: up to date"
    fi
fi

# --- 4. Kafka jars ----------------------------------------------------------------
# One jar directory per Kafka version that has a tests/env/kafka-*/pom.xml (the
# default broker and the 3.9 smoke one). tests/env/kafka-libs.sh names it: a
# directory outside the clone keyed by the pom's hash, so a fresh clone on this
# machine finds it filled; kafka.sh and the tests ask the same script.
need java "Java 17 is expected"
need mvn "Maven is expected"
kafka_libs=$root/tests/env/kafka-libs.sh
mapfile -t kafka_versions < <(bash "$kafka_libs" --all) && ((${#kafka_versions[@]})) ||
    die "tests/env/kafka-libs.sh --all listed no Kafka version"
rm -rf "$cache/kafka-libs" "$cache/kafka-libs.tmp" "$cache/mvn.log"  # the old in-clone place
for kv in "${kafka_versions[@]}"; do
    pom=$(bash "$kafka_libs" --pom "$kv") && libs=$(bash "$kafka_libs" "$kv") ||
        die "tests/env/kafka-libs.sh cannot place Kafka $kv"
    stamp=$(sha256sum <"$pom" | cut -c1-64)  # the content's, not the path's: clones share it
    if ((force)) || [[ $(cat "$libs/.stamp" 2>/dev/null) != "$stamp" ]] ||
        ! compgen -G "$libs/kafka_2.13-$kv.jar" >/dev/null; then
        say "fetching Kafka $kv jars into $libs (Maven)"
        mkdir -p "$(dirname "$libs")"
        # Filled under a private name and renamed whole, so a reader (or a
        # second install-deps from another clone) never sees half a directory.
        tmp=$(mktemp -d "$libs.tmp.XXXXXX")
        if ! mvn -q -B --no-transfer-progress -Dstyle.color=never -f "$pom" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" >"$cache/mvn-kafka-$kv.log" 2>&1; then
            rm -rf "$tmp"
            sed 's/\x1b\[[0-9;]*m//g' "$cache/mvn-kafka-$kv.log" | tail -n 40 >&2
            die "mvn dependency:copy-dependencies for Kafka $kv failed (is Maven Central reachable?)"
        fi
        compgen -G "$tmp/kafka_2.13-$kv.jar" >/dev/null || { rm -rf "$tmp"; die "no kafka_2.13-$kv jar was fetched"; }
        echo "$stamp" >"$tmp/.stamp"
        rm -rf "$libs.old.$$"
        if [[ -e $libs ]]; then mv -T "$libs" "$libs.old.$$"; fi
        mv -T "$tmp" "$libs" || die "could not move $tmp to $libs"
        rm -rf "$libs.old.$$"
    else
        say "Kafka $kv jars: up to date ($libs)"
    fi
done

# --- 5. librdkafka -------------------------------------------------------------------
# Built once per machine from Debian's source tarball (pinned by SHA-256) into
# a cache outside the repository; CMakeLists.txt finds it there.
bash "$root/scripts/librdkafka.sh" install || die "building librdkafka failed"

say "done in $((SECONDS - t_start))s"
