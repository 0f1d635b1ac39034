#!/usr/bin/env bash
# Runs one benchmark (or all) on real Kafka and Postgres started in
# temporary directories, after installing dependencies and building.
# Benchmarks print figures and ratios measured side by side in one run; they
# assert nothing about time.
#
# usage: scripts/bench.sh e2e|sink|producer|rebalance|web|credentials|metrics|overhead|all [options, see --help of each]
#   e2e       20 repos x 250 PRs, 300 ms/request, 5 consumers, vs the original plan's settings;
#             also peak RSS and CPU per 1000 PRs (footprint)
#   sink      100,000 PRs already on the topic into Postgres, vs raw COPY
#   producer  10,000 jobs, vs kcat producing the same messages
#   rebalance how long partitions take to move (kill -9, SIGTERM, a consumer added)
#             under the classic and the consumer (KIP-848) group protocols
#   web       the load test's 10 repos via POST /api/bulk-add vs backfill-producer;
#             delay of progress events through 100 open event streams
#   credentials 1,000 repos of mixed sizes under a binding budget (600 points/60 s per account)
#             with 1, 2 and 4 accounts: time vs the budget's floors, points per repository
#   metrics   the e2e run with Prometheus metrics off and on (scraped every second), side by side
#   overhead  600 repos of mixed sizes (+2 unknown), 100 ms/request, 5 consumers, 12 partitions,
#             --jobs 1 and the default: time vs the busiest consumer's floor, each job's
#             timeline summed, the median and p99 of the per-job time outside GitHub
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
which=${1:-}
[[ -n $which ]] || { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh build >/dev/null
export BACKFILL_BIN=$root/build/bin
run() { echo "== bench $1"; "$root/.cache/venv/bin/python" "tests/bench/bench_$1.py" "${@:2}"; }
case $which in
e2e | sink | producer | rebalance | web | credentials | metrics | overhead) run "$which" "$@" ;;
all) run producer "$@" && run sink "$@" && run e2e "$@" && run rebalance "$@" && run web "$@" && run credentials "$@" && run metrics "$@" && run overhead "$@" ;;
*) echo "unknown benchmark '$which'" >&2; exit 2 ;;
esac
