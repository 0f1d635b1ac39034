#!/usr/bin/env bash
# The main job on one machine, from nothing: installs what is missing,
# builds, starts a local Kafka broker (KRaft, from the official jars) and a
# local Postgres in .cache/demo, then runs the sink, 5 consumers, the web
# page (backfill-web) and the producer on a set of repositories, shows live
# progress and prints the final summary. Without GITHUB_TOKEN it runs against the GitHub
# simulator in tests/sim; with GITHUB_TOKEN it calls api.github.com (or
# GITHUB_GRAPHQL_URL). Everything it started is stopped on exit.
#
# usage: scripts/demo.sh [OWNER/NAME...]     (default: the ten repositories
#                                             of the original load test)
# env:   CONSUMERS (default 5), SIM_LATENCY_MS (default 300), GITHUB_TOKEN,
#        GITHUB_GRAPHQL_URL, DEMO_WEB_LISTEN (the page's address, default
#        127.0.0.1:8080), DEMO_KEEP=1 (keep everything running after the
#        summary, to go on adding repositories on the page, until Ctrl-C)
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
bash scripts/build.sh build >/dev/null

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

web_listen=${DEMO_WEB_LISTEN:-127.0.0.1:8080}
build/bin/backfill-web --listen "$web_listen" >"$demo/logs/web.log" 2>&1 &
web_pid=$!
pids+=("$web_pid")
for _ in $(seq 100); do grep -q "serving the bulk-add page" "$demo/logs/web.log" && break; sleep 0.1; done
if kill -0 "$web_pid" 2>/dev/null; then
    say "the bulk-add page: http://$web_listen/ (live progress there too)"
else
    echo "backfill-web did not start (see $demo/logs/web.log; DEMO_WEB_LISTEN picks another address)" >&2
fi

say "queueing ${#repos[@]} repositories"
t0=$(date +%s.%N)
queued=$(build/bin/backfill-producer "${repos[@]}" | tee /dev/stderr | awk '$1 == "queued" { print $2 }')
n=$(grep -c . <<<"$queued" || true)
((n > 0)) || { echo "nothing was queued" >&2; exit 1; }
since() { awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }'; }

# Live progress straight from the progress topic (no consumer group): the
# table on a terminal, JSON lines otherwise; it exits once every queued
# repository completed or failed (status 1 if any failed).
follow=()
while read -r r; do follow+=(--repo "$r"); done <<<"$queued"
tail_rc=0
build/bin/backfill-tail --from-beginning --exit-when-done "${follow[@]}" || tail_rc=$?
((tail_rc <= 1)) || echo "backfill-tail exited $tail_rc" >&2
elapsed=$(since)

# The sink writes a moment after the topic: wait for Postgres to agree.
for _ in $(seq 100); do
    done_n=$(psql "$DATABASE_URL" -X -q -At -c "SELECT count(*) FROM backfill_progress_summary
        WHERE status IN ('completed', 'failed')" 2>/dev/null || echo 0)
    ((done_n >= n)) && break
    sleep 0.2
done

say "summary (from Postgres: backfill-status)"
build/bin/backfill-status
psql "$DATABASE_URL" -X -q -P pager=off -c "
SELECT count(*) AS pull_requests, count(DISTINCT repository_id) AS repositories,
       count(*) FILTER (WHERE state = 'merged') AS merged,
       count(*) FILTER (WHERE author_id IS NULL) AS without_author
  FROM pull_requests;"
printf 'wall time: %ss for %d repositories with %d consumers; logs in %s\n' "$elapsed" "$n" \
    "$consumers" "$demo/logs"
if [[ ${DEMO_KEEP:-0} == 1 ]] && kill -0 "$web_pid" 2>/dev/null; then
    say "still running: add more on http://$web_listen/ ; Ctrl-C stops everything"
    wait "$web_pid" || true
fi
