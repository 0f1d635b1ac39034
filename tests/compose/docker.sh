#!/usr/bin/env bash
# A Docker engine and Compose v2 for the compose test (tests/integration/
# test_24_compose_stack.py), with no image registry reachable: only Debian's
# archive is needed.
#
# usage: tests/compose/docker.sh ensure     install docker.io + debootstrap if
#                                           missing (apt, as root), start dockerd
#                                           if it is not running, install Compose
#                                           v2 as a CLI plugin, build the
#                                           debian:bookworm-slim base image;
#                                           prints KEY=VALUE lines (DOCKER_CONFIG,
#                                           STARTED=0|1) on stdout
#                                           (exit 3: no engine can run here)
#        tests/compose/docker.sh stop       stop the dockerd this script started
#                                           (nothing when it found one running)
#        tests/compose/docker.sh base-image build debian:bookworm-slim only
#        tests/compose/docker.sh status     exit 0 when `docker info` answers
#
# Pinned, and cached outside the clone in ${BACKFILL_CACHE:-$HOME/.cache/backfill}:
#   compose-2.26.1-4-<sha12>/   Debian 13's docker-compose 2.26.1-4 (one static
#                               Go binary), its .deb checked against SHA256 below,
#                               unpacked with dpkg-deb -x; DOCKER_CONFIG points at
#                               its docker-config/ (cli-plugins/docker-compose)
#   dockerd/                    dockerd.log and dockerd.pid of a dockerd we started
# dockerd runs with its default data root (/var/lib/docker), so images built
# once (debian:bookworm-slim, the Kafka and Postgres stand-ins, the project's
# image) stay on this machine for the next run.
set -euo pipefail

compose_deb_url=http://deb.debian.org/debian/pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb
compose_deb_sha256=47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea
base_image=debian:bookworm-slim
base_suite=bookworm
base_mirror=http://deb.debian.org/debian

cache=${BACKFILL_CACHE:-${HOME:?}/.cache/backfill}
compose_dir=$cache/compose-2.26.1-4-${compose_deb_sha256:0:12}
state=$cache/dockerd

say() { echo "docker.sh: $*" >&2; }
die() { echo "docker.sh: error: $*" >&2; exit 1; }
# exit 3: no Docker engine can run on this machine (the compose test skips)
unavailable() { echo "docker.sh: unavailable: $*" >&2; exit 3; }

apt_install() {  # PACKAGE...: the ones not installed yet
    local p missing=()
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || unavailable "need root to install: ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || unavailable "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        unavailable "apt-get install ${missing[*]} failed"
}

engine_up() { timeout 20 docker info >/dev/null 2>&1; }

start_dockerd() {
    engine_up && { echo STARTED=0; return 0; }
    [[ $EUID -eq 0 ]] || unavailable "no Docker engine answers and starting dockerd needs root"
    command -v dockerd >/dev/null || unavailable "dockerd not found (docker.io)"
    mkdir -p "$state"
    say "starting dockerd (log $state/dockerd.log)"
    # setsid: the engine outlives this script; `stop` ends it by its pid file.
    setsid dockerd --pidfile "$state/dockerd.pid" >>"$state/dockerd.log" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 120; i++)); do
        engine_up && { echo "$!" >"$state/started-by-us"; echo STARTED=1; return 0; }
        kill -0 "$!" 2>/dev/null || { tail -n 30 "$state/dockerd.log" >&2; unavailable "dockerd exited"; }
        sleep 0.5
    done
    tail -n 30 "$state/dockerd.log" >&2
    unavailable "dockerd did not answer within 60 s"
}

stop_dockerd() {
    [[ -f $state/started-by-us ]] || { say "dockerd was not started by this script: left running"; return 0; }
    local pid
    pid=$(<"$state/started-by-us")
    rm -f "$state/started-by-us"
    # only the dockerd we started, by its pid, and only if it still is dockerd
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
        say "stopping dockerd $pid"
        kill -TERM "$pid"
        local i
        for ((i = 0; i < 60; i++)); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.5
        done
        die "dockerd $pid still running 30 s after SIGTERM"
    fi
}

install_compose() {
    local plugin=$compose_dir/docker-config/cli-plugins/docker-compose
    if [[ ! -x $plugin ]]; then
        command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
        mkdir -p "$cache"
        local tmp
        tmp=$(mktemp -d "$compose_dir.tmp.XXXXXX")
        say "fetching $compose_deb_url"
        curl -fsSL --retry 3 -o "$tmp/compose.deb" "$compose_deb_url" || { rm -rf "$tmp"; die "download failed"; }
        echo "$compose_deb_sha256  $tmp/compose.deb" | sha256sum -c --quiet - ||
            { rm -rf "$tmp"; die "SHA256 mismatch for $compose_deb_url"; }
        dpkg-deb -x "$tmp/compose.deb" "$tmp/root"
        local bin
        bin=$(find "$tmp/root" -type f -name docker-compose -perm -u+x | head -n 1)
        [[ -n $bin ]] || { rm -rf "$tmp"; die "no docker-compose binary in the .deb"; }
        mkdir -p "$tmp/docker-config/cli-plugins"
        mv "$bin" "$tmp/docker-config/cli-plugins/docker-compose"
        rm -rf "$tmp/root" "$tmp/compose.deb"
        rm -rf "$compose_dir"
        mv -T "$tmp" "$compose_dir"  # whole, so no reader sees half a directory
    fi
    DOCKER_CONFIG=$compose_dir/docker-config docker compose version >/dev/null ||
        die "docker compose version fails with DOCKER_CONFIG=$compose_dir/docker-config"
    echo "DOCKER_CONFIG=$compose_dir/docker-config"
}

base_image() {
    if docker image inspect "$base_image" >/dev/null 2>&1; then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    command -v debootstrap >/dev/null || die "debootstrap not found"
    local dir t=$SECONDS
    dir=$(mktemp -d "${TMPDIR:-/tmp}/debootstrap.XXXXXX")
    say "debootstrap --variant=minbase $base_suite (for $base_image)"
    if ! debootstrap --variant=minbase "$base_suite" "$dir" "$base_mirror" >"$dir.log" 2>&1; then
        tail -n 30 "$dir.log" >&2
        rm -rf "$dir"
        die "debootstrap failed (log $dir.log)"
    fi
    # slim, as Docker's debian:*-slim: no apt lists, no caches
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    tar -C "$dir" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' - "$base_image" >/dev/null
    rm -rf "$dir" "$dir.log"
    say "$base_image built in $((SECONDS - t))s"
}

case ${1:-} in
ensure)
    apt_install docker.io debootstrap curl ca-certificates
    start_dockerd
    install_compose
    base_image
    ;;
stop) stop_dockerd ;;
base-image) base_image ;;
status) engine_up ;;
*) sed -n '6,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
