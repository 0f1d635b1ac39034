"""Web benchmark: backfill-web's bulk add against backfill-producer, and the
delay of progress events through 100 open event streams.

usage: tests/bench/bench_web.py [--runs N] [--latency-ms N] [--streams N] [--partitions N]

a) The original load test's call through the API: the simulator at
   --latency-ms per request (default 300), backfill-sink, 5 consumers and
   backfill-web; one POST /api/bulk-add of the ten repositories of
   harness.TEN_REPOS with {"includeBackfill": true}; measured from the
   POST until GET /api/backfills (polled every 100 ms) shows every one
   `completed`. Then the same run, on fresh topics, database and groups,
   with the ten repositories queued by backfill-producer instead (the same
   processes running, backfill-web included, and the same polling). Each
   --runs times (default 2), taking turns; prints both medians and the
   ratio.
b) Event delay: a fresh deployment, --streams (default 100) streams open
   on GET /api/events (one reader thread each), one bulk add of the ten
   repositories. Each progress event a stream receives is matched by
   (backfillId, seq) to its message on the progress topic (read with kcat
   afterwards); delay = receive time - the message's Kafka timestamp (the
   consumer's publish time). The web server's own "queued" events (seq 0)
   have no message and are skipped. Prints the median, p99 and maximum
   delay over every event x stream.

Figures only: nothing is asserted about time. Every process (Kafka,
Postgres, the simulator, the binaries and this script's readers) shares
one machine, so the figures are rough.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

from benchlib import fresh_pipeline, median, services, start_workers
from harness import TEN_REPOS, SseReader, http_json, wait_for

POLL = 0.1  # s between GET /api/backfills


def deploy(kafka, pg, work, label, a):
    """Simulator, sink, 5 settled consumers and a healthy backfill-web on
    fresh topics, database and groups. Returns (sim, pipeline, web)."""
    sim, p = fresh_pipeline(work, label, kafka, pg, a.latency_ms, a.partitions)
    try:
        p.start("backfill-sink")
        # let the group settle so the clock measures the backfill, not the join
        start_workers(p, 5, partitions=a.partitions)
        web = p.start_web()
        # the sink creates the tables; the API answers 503 until then
        wait_for(lambda: http_json("GET", web.url + "/healthz")[0] == 200, 60, "a healthy web")
        time.sleep(1)
    except BaseException:
        p.close()
        sim.stop()
        raise
    return sim, p, web


def wait_completed(web, repos, timeout=600):
    """Polls GET /api/backfills every POLL s until every repository is
    completed; returns the monotonic time of the answer that showed it."""
    want = {r.lower() for r in repos}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st, body, _ = http_json("GET", web.url + "/api/backfills", timeout=10)
        now = time.monotonic()
        if st == 200:
            rows = {r["repository"].lower(): r for r in body["backfills"]}
            bad = [r for r in want if rows.get(r, {}).get("status") in ("failed", "cancelled")]
            if bad:
                raise RuntimeError(f"not completed: {[rows[r] for r in bad]}")
            if all(rows.get(r, {}).get("status") == "completed" for r in want):
                return now
        time.sleep(POLL)
    raise RuntimeError(f"timed out after {timeout}s waiting for {len(want)} backfills")


def timed_run(kafka, pg, work, mode, a):
    """One bulk add of TEN_REPOS, through the API (mode "web") or
    backfill-producer ("producer"). Returns (seconds to all completed,
    seconds until the call that queued them returned)."""
    sim, p, web = deploy(kafka, pg, work, mode, a)
    try:
        t0 = time.monotonic()
        if mode == "web":
            st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                                    {"repositories": TEN_REPOS, "includeBackfill": True})
            if st != 200 or body["queued"] != len(TEN_REPOS):
                raise RuntimeError(f"bulk add answered {st}: {body}")
        else:
            out = p.produce(*TEN_REPOS)
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
        queued = time.monotonic() - t0
        done = wait_completed(web, TEN_REPOS) - t0
        prs = p.query("SELECT count(*) FROM pull_requests")[0][0]
        return done, queued, prs
    finally:
        p.close()
        sim.stop()


def percentile(xs, q):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[min(len(s), max(1, math.ceil(q / 100 * len(s)))) - 1]


def event_delay(kafka, pg, work, a):
    sim, p, web = deploy(kafka, pg, work, "events", a)
    streams = []
    try:
        for _ in range(a.streams):
            s = SseReader(web.url + "/api/events")
            if s.status != 200:
                raise RuntimeError(f"stream {len(streams) + 1} refused: HTTP {s.status}")
            streams.append(s)
        time.sleep(0.5)
        st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                                {"repositories": TEN_REPOS, "includeBackfill": True})
        if st != 200 or body["queued"] != len(TEN_REPOS):
            raise RuntimeError(f"bulk add answered {st}: {body}")
        wait_completed(web, TEN_REPOS)
        # every progress message on the topic, with its Kafka timestamp (ms)
        published = {}
        for m in p.consume(p.progress_topic, timeout=60):
            v = json.loads(m["payload"])
            if v.get("name") == "backfill/progress.update":
                published[(v["data"]["backfillId"], v["data"]["seq"])] = m["ts"]
        want = set(published)

        def all_delivered():
            return all(want <= {(d.get("backfillId"), d.get("seq")) for _, ev, d, _ in
                                list(s.events) if ev == "progress"} for s in streams)
        try:
            wait_for(all_delivered, 30, "every progress event on every stream", interval=0.2)
        except AssertionError:
            pass  # reported below as missing
    finally:
        for s in streams:
            s.close()
        p.close()
        sim.stop()
    delays, missing, unmatched, per_stream = [], 0, 0, []
    for s in streams:
        got, mine = set(), []
        for _, ev, d, received in s.events:
            if ev != "progress":
                continue
            key = (d.get("backfillId"), d.get("seq"))
            if d.get("status") == "queued" and d.get("seq") == 0:
                continue  # made by the web server itself: no Kafka message
            if key not in published:
                unmatched += 1
                continue
            got.add(key)
            mine.append(received * 1000 - published[key])
        missing += len(want - got)
        delays += mine
        if mine:
            per_stream.append(median(mine))
    return {"delays": delays, "events": len(want), "streams": len(streams), "missing": missing,
            "unmatched": unmatched, "per_stream": per_stream}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--streams", type=int, default=100,
                    help="open event streams for the delay figure (default 100; 0: skip it)")
    ap.add_argument("--partitions", type=int, default=12, help="jobs topic partitions (default 12)")
    a = ap.parse_args()
    times = {"web": [], "producer": []}
    with services() as (kafka, pg, work):
        for i in range(a.runs):
            # take turns going first, so a warming broker favours neither
            order = ("web", "producer") if i % 2 == 0 else ("producer", "web")
            for mode in order:
                done, queued, prs = timed_run(kafka, pg, work, mode, a)
                times[mode].append((done, queued))
                print(f"run {i + 1} {mode:8s}: {done:6.2f}s to all completed "
                      f"(queued in {queued * 1000:.0f} ms)  {prs} PRs", flush=True)
        ev = event_delay(kafka, pg, work, a) if a.streams else None

    web = median([t[0] for t in times["web"]])
    prod = median([t[0] for t in times["producer"]])
    print(f"\na) {len(TEN_REPOS)} repositories (harness.TEN_REPOS), {a.latency_ms} ms/request, "
          f"sink + 5 consumers + backfill-web, {a.partitions} partitions, median of {a.runs}")
    print(f"  {'queued by':28s} {'to all completed':>16s} {'queue call':>11s}")
    print(f"  {'POST /api/bulk-add':28s} {web:15.2f}s {median([t[1] for t in times['web']]) * 1000:8.0f} ms")
    print(f"  {'backfill-producer (process)':28s} {prod:15.2f}s "
          f"{median([t[1] for t in times['producer']]) * 1000:8.0f} ms")
    print(f"  ratio API / producer: {web / prod:.3f}x   (completion polled every "
          f"{POLL * 1000:.0f} ms through GET /api/backfills in both)")
    if ev:
        d = ev["delays"]
        print(f"\nb) event delay, {ev['streams']} open streams on GET /api/events, one bulk add of "
              f"{len(TEN_REPOS)} repositories: receive time - Kafka timestamp of the progress message")
        if d:
            print(f"  measured: {ev['events']} progress events x {ev['streams']} streams = "
                  f"{len(d)} deliveries (missing {ev['missing']}, unmatched {ev['unmatched']})")
            print(f"  median {median(d):.1f} ms   p99 {percentile(d, 99):.1f} ms   "
                  f"max {max(d):.1f} ms   min {min(d):.1f} ms")
            ps = ev["per_stream"]
            print(f"  per-stream medians: fastest {min(ps):.1f} ms, slowest {max(ps):.1f} ms")
        else:
            print(f"  no deliveries measured (missing {ev['missing']})")
    print(f"\nAll processes (Kafka, Postgres, the simulator, sink, consumers, backfill-web and this "
          f"script's {a.streams} reader threads) share one machine of {os.cpu_count()} cores "
          f"({platform.machine()}); the figures are rough.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
