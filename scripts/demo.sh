#!/usr/bin/env bash
# The main job on one machine, from nothing: installs what is missing,
# builds, starts a local Kafka broker (KRaft, from the official jars) and a
# local Postgres in .cache/demo, then runs the sink, 5 consumers and the
# producer on a set of repositories, shows live progress from Postgres and
# prints the final summary. Without GITHUB_TOKEN it runs against the GitHub
# simulator in tests/sim; with GITHUB_TOKEN it calls api.github.com (or
# GITHUB_GRAPHQL_URL). Everything it started is stopped on exit.
#
# usage: scripts/demo.sh [OWNER/NAME...]     (default: the ten repositories
#                                             of the original load test)
# env:   CONSUMERS (default 5), SIM_LATENCY_MS (default 300), GITHUB_TOKEN,
#        GITHUB_GRAPHQL_URL
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
repos=("$@")
((${#repos[@]})) || repos=(sveltejs/svelte preactjs/preact alpinejs/alpine solidjs/solid lit/lit
    polymer/polymer aurelia/framework emberjs/ember.js stimulus-use/stimulus-use hotwired/turbo)
consumers=${CONSUMERS:-5}
demo=$root/.cache/demo
say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "installing dependencies"
bash scripts/install-deps.sh
say "building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

rm -rf "$demo"
mkdir -p "$demo/logs"
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    bash tests/env/kafka.sh stop "$demo/kafka" >/dev/null 2>&1
    bash tests/env/postgres.sh stop "$demo/pg" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting Kafka and Postgres"
KAFKA_BOOTSTRAP_SERVERS=$(bash tests/env/kafka.sh start "$demo/kafka")
DATABASE_URL=$(bash tests/env/postgres.sh start "$demo/pg")
export KAFKA_BOOTSTRAP_SERVERS DATABASE_URL

if [[ -z ${GITHUB_TOKEN:-} ]]; then
    say "starting the GitHub simulator (set GITHUB_TOKEN to use GitHub itself)"
    python3 tests/sim/github_sim.py --port 0 --port-file "$demo/sim.port" \
        --latency-ms "${SIM_LATENCY_MS:-300}" >"$demo/logs/sim.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do [[ -s $demo/sim.port ]] && break; sleep 0.1; done
    export GITHUB_GRAPHQL_URL=http://127.0.0.1:$(cat "$demo/sim.port")/graphql
    export GITHUB_TOKEN=demo-token-for-the-simulator
fi

say "starting the sink and $consumers consumers"
build/bin/backfill-sink >"$demo/logs/sink.log" 2>&1 &
pids+=($!)
for i in $(seq "$consumers"); do
    build/bin/backfill-consumer >"$demo/logs/consumer-$i.log" 2>&1 &
    pids+=($!)
done

say "queueing ${#repos[@]} repositories"
t0=$(date +%s.%N)
n=$(build/bin/backfill-producer "${repos[@]}" | tee /dev/stderr | grep -c '^queued' || true)

psql_q() { psql "$DATABASE_URL" -X -q -At -F $'\t' -c "$1" 2>/dev/null || true; }
progress_sql="SELECT r.owner || '/' || r.name, s.status, s.processed_prs, s.total_prs
  FROM progressive_backfill_state s JOIN repositories r ON r.id = s.repository_id ORDER BY 1"
since() { awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }'; }
while :; do
    rows=$(psql_q "$progress_sql")
    done_n=$(grep -cE $'\t(completed|failed)\t' <<<"$rows" || true)
    clear 2>/dev/null || printf '\n'
    printf 'backfill — %d/%d repositories done, %ss\n\n' "$done_n" "$n" "$(since)"
    while IFS=$'\t' read -r repo status got total; do
        [[ -n $repo ]] || continue
        width=30 filled=$((total > 0 ? got * 30 / total : 0))
        bar=$(printf '%*s' "$filled" '' | tr ' ' '#')$(printf '%*s' $((width - filled)) '' | tr ' ' '.')
        printf '  %-32s [%s] %4s/%-4s %s\n' "$repo" "$bar" "$got" "$total" "$status"
    done <<<"$rows"
    ((done_n >= n)) && break
    sleep 1
done
elapsed=$(since)

say "summary (from Postgres)"
psql "$DATABASE_URL" -X -q -P pager=off -c "
SELECT r.owner || '/' || r.name AS repository, s.status, s.processed_prs AS prs,
       (SELECT count(*) FROM backfill_chunks c WHERE c.backfill_id = s.backfill_id) AS chunks,
       coalesce(s.error, '') AS error
  FROM progressive_backfill_state s JOIN repositories r ON r.id = s.repository_id ORDER BY 1;"
psql "$DATABASE_URL" -X -q -P pager=off -c "
SELECT count(*) AS pull_requests, count(DISTINCT repository_id) AS repositories,
       count(*) FILTER (WHERE state = 'merged') AS merged,
       count(*) FILTER (WHERE author_id IS NULL) AS without_author
  FROM pull_requests;"
printf 'wall time: %ss for %d repositories with %d consumers; logs in %s\n' "$elapsed" "$n" \
    "$consumers" "$demo/logs"
