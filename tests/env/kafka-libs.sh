#!/usr/bin/env bash
# Where the jars of one Apache Kafka version live. The one place that knows:
# kafka.sh, kafka-run-class.sh, scripts/install-deps.sh and the Python tests
# all ask here.
#
# usage: tests/env/kafka-libs.sh [VERSION]        print the jar directory
#        tests/env/kafka-libs.sh --pom [VERSION]  print the pom.xml that fills it
#        tests/env/kafka-libs.sh --all            print every VERSION there is a
#                                                 pom for, the default first
#
# VERSION defaults to $KAFKA_VERSION, else 4.4.0. Each version has a
# tests/env/kafka-MAJOR.MINOR/pom.xml whose <kafka.version> is exactly VERSION
# (so 4.4.1 is refused until that pom says 4.4.1). The directory is
#
#   ${BACKFILL_CACHE:-$HOME/.cache/backfill}/kafka-VERSION-HASH
#
# HASH being the first 12 hex digits of the pom's SHA-256: outside the clone,
# so every clone on the machine shares it, and a changed pom gets a new one.
# It is complete once it holds .stamp (install-deps.sh writes that last).
# Printing the name checks nothing else; KAFKA_LIBS is not read here (the
# scripts that honour it look at it before asking).
set -euo pipefail

default_version=4.4.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "kafka-libs.sh: $*" >&2; exit 1; }

pom_version() {  # the <kafka.version> a pom pins
    sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$1" | head -n 1
}

pom_of() {
    local v=$1 pom
    [[ $v =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "not a Kafka version: '$v' (want e.g. $default_version)"
    pom=$here/kafka-${BASH_REMATCH[1]}.${BASH_REMATCH[2]}/pom.xml
    [[ -f $pom ]] || die "no pom for Kafka $v ($pom); known: $(list | tr '\n' ' ')"
    [[ $(pom_version "$pom") == "$v" ]] ||
        die "$pom pins Kafka $(pom_version "$pom"), not $v"
    echo "$pom"
}

list() {  # the default first, then the others in version order
    local pom v
    echo "$default_version"
    for pom in "$here"/kafka-*/pom.xml; do
        v=$(pom_version "$pom")
        [[ -n $v && $v != "$default_version" ]] && echo "$v"
    done | sort -V
}

libs_of() {
    local v=$1 pom base hash
    pom=$(pom_of "$v")
    if [[ -n ${BACKFILL_CACHE:-} ]]; then
        base=$BACKFILL_CACHE
    else
        [[ -n ${HOME:-} ]] || die "neither BACKFILL_CACHE nor HOME is set"
        base=$HOME/.cache/backfill
    fi
    hash=$(sha256sum "$pom" | cut -c1-12)
    echo "$base/kafka-$v-$hash"
}

case ${1:-} in
--pom) [[ $# -le 2 ]] || die "usage: kafka-libs.sh --pom [VERSION]"
    pom_of "${2:-${KAFKA_VERSION:-$default_version}}" ;;
--all) [[ $# -eq 1 ]] || die "usage: kafka-libs.sh --all"
    list ;;
-*) sed -n '6,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
*) [[ $# -le 1 ]] || die "usage: kafka-libs.sh [VERSION]"
    libs_of "${1:-${KAFKA_VERSION:-$default_version}}" ;;
esac
