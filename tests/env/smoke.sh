#!/usr/bin/env bash
# Smoke test of the test environment: start a throwaway Kafka and Postgres,
# create a topic, produce and consume a message with kcat, run a query, stop
# both, and check nothing is left running. Prints timings.
#
# usage: tests/env/smoke.sh     (after scripts/install-deps.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/backfill-smoke.XXXXXX)
kdir=$work/kafka pdir=$work/pg
cleanup() {
    "$here/kafka.sh" stop "$kdir" >/dev/null 2>&1 || true
    "$here/postgres.sh" stop "$pdir" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
el() { python3 -c "import sys;print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}s')" "$1" "$(now)"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

t=$(now); bootstrap=$("$here/kafka.sh" start "$kdir" 2>/dev/null); echo "kafka start: $(el "$t") ($bootstrap)"
t=$(now); url=$("$here/postgres.sh" start "$pdir" 2>/dev/null); echo "postgres start: $(el "$t") ($url)"

kcat -b "$bootstrap" -L | grep -q 'broker 1 at' || fail "kcat -L"
t=$(now)
"$here/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
    --create --topic smoke --partitions 3 >/dev/null || fail "TopicCommand --create"
echo "topic create: $(el "$t")"
echo '{"hello":"world"}' | kcat -b "$bootstrap" -P -t smoke -k owner/name -H event=smoke || fail "kcat produce"
got=$(kcat -b "$bootstrap" -C -t smoke -e -q -f '%k %h %s\n')
[[ $got == 'owner/name event=smoke {"hello":"world"}' ]] || fail "kcat consume got: $got"
echo "kcat produce/consume: ok"

[[ $(psql -X -At "$url" -c 'select 1') == 1 ]] || fail "psql select 1"
echo "psql select 1: ok"

t=$(now); "$here/kafka.sh" stop "$kdir" 2>/dev/null; echo "kafka stop: $(el "$t")"
t=$(now); "$here/postgres.sh" stop "$pdir" 2>/dev/null; echo "postgres stop: $(el "$t")"
left=$(pgrep -f -- "$work" || true)
[[ -z $left ]] || fail "processes left: $left"
rm -rf "$work" && [[ ! -e $work ]] || fail "could not remove $work"
echo "smoke: 1 passed, 0 failed"
