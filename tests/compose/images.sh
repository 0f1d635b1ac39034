#!/usr/bin/env bash
# Builds the two stand-in images tests/compose/override.yaml swaps in for
# compose.yaml's registry images, from debian:bookworm-slim (tests/compose/
# docker.sh base-image) and Debian's archive, with no image registry:
#
#   backfill-test/kafka:3.9.1-<hash>     for apache/kafka:3.9.1 (kafka, kafka-init)
#   backfill-test/postgres:15-<hash>     for postgres:* (postgres)
#   backfill-test/prometheus:<hash>      for prom/prometheus:* (prometheus)
#
# usage: tests/compose/images.sh      prints KAFKA_IMAGE=..., POSTGRES_IMAGE=...
#                                     and PROMETHEUS_IMAGE=...
#
# <hash> covers the image's directory here, the jars it copies and the base
# image's id, so an image is built once per machine and content (a fresh
# clone reuses it). The Kafka jars are the 3.9.1 ones scripts/install-deps.sh
# fetched from Maven Central (tests/env/kafka-libs.sh 3.9.1); they go into a
# build context assembled under ${BACKFILL_CACHE:-$HOME/.cache/backfill}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${BACKFILL_CACHE:-${HOME:?}/.cache/backfill}
kafka_version=3.9.1

say() { echo "images.sh: $*" >&2; }
die() { echo "images.sh: error: $*" >&2; exit 1; }

base_id=$(docker image inspect -f '{{.Id}}' debian:bookworm-slim 2>/dev/null) ||
    die "no debian:bookworm-slim image: run tests/compose/docker.sh ensure"

tree_hash() {  # DIR...: the names, modes and contents of every file under them
    local d
    for d in "$@"; do
        (cd "$d" && find . -type f -printf '%p %m\n' | LC_ALL=C sort &&
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat)
    done | sha256sum | cut -c1-12
}

build() {  # TAG CONTEXT
    local t=$SECONDS
    say "building $1"
    # the classic builder: BuildKit would look up registries for things the
    # classic one never needs (see test_24_compose_stack.py)
    if ! DOCKER_BUILDKIT=0 docker build -q -t "$1" "$2" >"$cache/image-build.log" 2>&1; then
        tail -n 40 "$cache/image-build.log" >&2
        die "docker build of $1 failed"
    fi
    say "$1 built in $((SECONDS - t))s"
}

# --- Kafka --------------------------------------------------------------------
libs=$(bash "$root/tests/env/kafka-libs.sh" "$kafka_version")
[[ -f $libs/.stamp && -f $libs/kafka_2.13-$kafka_version.jar ]] ||
    die "Kafka $kafka_version jars missing in $libs: run scripts/install-deps.sh"
khash=$( { tree_hash "$here/kafka"; echo "$libs"; cat "$libs/.stamp"; echo "$base_id"; } |
    sha256sum | cut -c1-12)
kafka_image=backfill-test/kafka:$kafka_version-$khash
if ! docker image inspect "$kafka_image" >/dev/null 2>&1; then
    ctx=$cache/compose-kafka-context-$khash
    if [[ ! -f $ctx/.complete ]]; then
        rm -rf "$ctx"
        tmp=$(mktemp -d "$ctx.tmp.XXXXXX")
        cp -a "$here/kafka/." "$tmp/"
        mkdir "$tmp/libs"
        cp -l "$libs"/*.jar "$tmp/libs/" 2>/dev/null || cp "$libs"/*.jar "$tmp/libs/"
        touch "$tmp/.complete"
        mv -T "$tmp" "$ctx"
    fi
    build "$kafka_image" "$ctx"
fi

# --- Postgres -----------------------------------------------------------------
phash=$( { tree_hash "$here/postgres"; echo "$base_id"; } | sha256sum | cut -c1-12)
postgres_image=backfill-test/postgres:15-$phash
if ! docker image inspect "$postgres_image" >/dev/null 2>&1; then
    build "$postgres_image" "$here/postgres"
fi

# --- Prometheus ---------------------------------------------------------------
prhash=$( { tree_hash "$here/prometheus"; echo "$base_id"; } | sha256sum | cut -c1-12)
prometheus_image=backfill-test/prometheus:$prhash
if ! docker image inspect "$prometheus_image" >/dev/null 2>&1; then
    build "$prometheus_image" "$here/prometheus"
fi

echo "KAFKA_IMAGE=$kafka_image"
echo "POSTGRES_IMAGE=$postgres_image"
echo "PROMETHEUS_IMAGE=$prometheus_image"
