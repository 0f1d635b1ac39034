"""Benchmark (issue 15): the time a job spends outside GitHub. 600
repositories of mixed sizes (a third with at most 20 pull requests in the
window, half with 21-150, the rest 151-320; maxPRs 200, so 1 to 3 pages of
100) plus two unknown ones, the simulator at 100 ms a request, 5 consumers
on a 12-partition jobs topic; measured from the producer's start until
every state row is terminal in Postgres, once with --jobs 1 and once with
the default --jobs, side by side. Rows are checked exactly (count per
repository) and no page may be fetched twice.

usage: tests/bench/bench_overhead.py [--repos N] [--latency-ms N] [--jobs 1,4]
                                     [--consumers N] [--partitions N] [--runs N]
                                     [--seed N] [--slowest N] [--warmup N]
                                     [--xconsumer ARG ...]

The floor is the busiest consumer's: with J jobs at once, a consumer
needs at least max(its busiest partition's pages, its pages / J) x latency
(a partition's jobs run one after another). With --jobs 1 that is the
consumer's pages x latency.

Per job, every consumer logs its timeline on its last line
(job_timeline.h): the time at GitHub, the waits GitHub's limits impose
(none here), and the rest, the worker's overhead, by span: load (reading
the committed checkpoint), started (the `started` event until
acknowledged), send, collect (the answer waiting to be taken), publish,
acks, commit; handover is the slot standing free before the job's
message came. Printed: each span summed over the run and per job, and the
median and p99 of the per-job overhead (outside GitHub, and outside GitHub
plus the handover before it).

The shared pace is off (--pace-points-per-minute 0): 842 pages in 20 s
is 2,500 points a minute, above GitHub's 2,000, and the pace would be
the floor instead of the latency.
"""
import argparse
import collections
import math
import re
import sys
import time
import zlib

from benchlib import (fresh_pipeline, median, mixed_repos, owned_partitions, pages_needed,
                      services, start_workers)

MAX_PRS = 200
DEFAULT_JOBS = 4  # the consumer's default --jobs
UNKNOWN = ["ghost-org/gone-1", "ghost-org/gone-2"]
SPANS = ["load", "started", "send", "collect", "publish", "acks", "commit"]
TIMELINE = re.compile(r" (\w+)_ms=([0-9.]+)")


def percentile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] if s else float("nan")


def timelines(consumers):
    """Every finished job's timeline, from the consumers' last lines."""
    out = []
    for c in consumers:
        for line in c.output().splitlines():
            if (" completed " in line or " ended " in line) and "total_ms=" in line:
                t = {k: float(v) for k, v in TIMELINE.findall(line)}
                t["line"] = line
                out.append(t)
    return out


def one_run(kafka, pg, work, jobs, repos, pages, a):
    sim, p = fresh_pipeline(work, f"jobs-{jobs}", kafka, pg, a.latency_ms, a.partitions)
    try:
        p.start("backfill-sink")
        consumers = start_workers(p, a.consumers, "--jobs", str(jobs),
                                  "--pace-points-per-minute", "0", *a.xconsumer, partitions=a.partitions)
        time.sleep(1)
        names = [r for r, _, _ in repos] + UNKNOWN
        t0 = time.monotonic()
        out = p.produce(*names)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        states = p.wait_terminal(names, timeout=900, interval=0.05)
        wall = time.monotonic() - t0
        bad = [r for r, _, _ in repos if states[r.lower()]["status"] != "completed"]
        bad += [r for r in UNKNOWN if states[r.lower()]["status"] != "failed"]
        if bad:
            raise RuntimeError(f"--jobs {jobs}: wrong end state for {bad[:5]}")
        rows = dict(p.query("SELECT lower(r.owner || '/' || r.name), count(p.id) FROM repositories r"
                            " LEFT JOIN pull_requests p ON p.repository_id = r.id GROUP BY 1"))
        wrong = [r for r, k, _ in repos if rows.get(r.lower(), 0) != min(k, MAX_PRS)]
        if wrong:
            raise RuntimeError(f"--jobs {jobs}: wrong row counts for {wrong[:5]}")
        stats = sim.get("/_sim/stats")
        # the floor of each consumer, from the partitions it owned
        load = collections.Counter()
        for r, _, _ in repos:
            load[zlib.crc32(r.lower().encode()) % a.partitions] += pages[r]
        floors = []
        for c in consumers:
            mine = [load[q] for q in owned_partitions(c)]
            floors.append(max(max(mine, default=0), math.ceil(sum(mine) / jobs)))
        tls = timelines(consumers)
        if tls and len(tls) != len(names):
            raise RuntimeError(f"--jobs {jobs}: {len(tls)} job timelines logged, want {len(names)}")
        return {"jobs": jobs, "wall": wall, "floor": max(floors) * a.latency_ms / 1000,
                "requests": stats["requests"], "needed": sum(pages.values()) + len(UNKNOWN),
                "prs": sum(rows.get(r.lower(), 0) for r, _, _ in repos), "timelines": tls}
    finally:
        p.close()
        sim.stop()


def report(results, n_jobs, slowest):
    print(f"\n  {'--jobs':>6s} {'time':>7s} {'floor':>7s} {'/ floor':>7s} {'requests':>8s}"
          f" {'needed':>6s} {'PRs':>6s}  overhead per job (ms): {'median':>6s} {'p99':>6s}"
          f"   with handover: {'median':>6s} {'p99':>6s}")
    for r in results:
        out = [t["outside"] for t in r["timelines"]] or [float("nan")]
        withh = [t["outside"] + t.get("handover", 0) for t in r["timelines"]] or [float("nan")]
        print(f"  {r['jobs']:6d} {r['wall']:6.1f}s {r['floor']:6.1f}s {r['wall'] / r['floor']:6.2f}x"
              f" {r['requests']:8d} {r['needed']:6d} {r['prs']:6d}  {'':23s}{median(out):6.1f}"
              f" {percentile(out, 0.99):6.1f}   {'':15s}{median(withh):6.1f}"
              f" {percentile(withh, 0.99):6.1f}")
    if not all(r["timelines"] for r in results):
        print("\n  (no job timelines: consumers that do not log them)")
        return
    print(f"\n  timeline summed over the {n_jobs} jobs (s), and per job (ms), by --jobs:")
    print("  " + f"{'span':>10s}" + "".join(f" {'--jobs ' + str(r['jobs']):>18s}" for r in results))
    for span in ["total", "github"] + SPANS + ["handover", "wait", "outside"]:
        cells = []
        for r in results:
            s = sum(t.get(span, 0) for t in r["timelines"]) / 1000
            cells.append(f" {s:8.2f}s {s * 1000 / len(r['timelines']):7.1f}ms")
        print(f"  {span:>10s}" + "".join(cells))
    for r in results:
        worst = sorted(r["timelines"], key=lambda t: -t["outside"])[:slowest]
        if worst:
            print(f"\n  the {len(worst)} jobs with the most overhead, --jobs {r['jobs']}:")
        for t in worst:
            print("   ", t["line"][t["line"].index(" consumer ") + 10:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=600)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--jobs", default=f"1,{DEFAULT_JOBS}", help="--jobs values, comma-separated")
    ap.add_argument("--consumers", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--runs", type=int, default=1, help="runs of each, the median is printed")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=300,
                    help="repositories of an unmeasured first run (0: none)")
    ap.add_argument("--xconsumer", action="append", default=[], metavar="ARG",
                    help="one more consumer argument (repeat; --xconsumer=-X --xconsumer=k=v)")
    ap.add_argument("--slowest", type=int, default=0,
                    help="also print the log lines of the N jobs with the most overhead")
    a = ap.parse_args()
    repos = mixed_repos(a.repos, a.seed)
    with services() as (kafka, pg, work):
        pages = pages_needed(work, [r for r, _, _ in repos], MAX_PRS)
        print(f"{a.repos} repositories ({sum(1 for _, k, _ in repos if k <= 20)} with <= 20 PRs, "
              f"{sum(1 for _, k, _ in repos if 20 < k <= 150)} with 21-150, "
              f"{sum(1 for _, k, _ in repos if k > 150)} with 151-320) + {len(UNKNOWN)} unknown; "
              f"{sum(pages.values())} pages; {a.latency_ms} ms/request; {a.consumers} consumers "
              f"on {a.partitions} partitions", flush=True)
        # a first, unmeasured run: the broker's JIT compiler takes a core
        # for the first minute of a fresh broker, which is not the steady
        # state a worker runs in
        warm = mixed_repos(a.warmup, a.seed + 1)
        if warm:
            one_run(kafka, pg, work, DEFAULT_JOBS, warm,
                    pages_needed(work, [r for r, _, _ in warm], MAX_PRS), a)
        results = []
        for jobs in [int(x) for x in a.jobs.split(",")]:
            runs = []
            for _ in range(a.runs):
                r = one_run(kafka, pg, work, jobs, repos, pages, a)
                print(f"  --jobs {jobs}: {r['wall']:.1f}s (floor {r['floor']:.1f}s), "
                      f"{r['requests']} requests, {r['prs']} PRs", flush=True)
                runs.append(r)
            results.append(sorted(runs, key=lambda x: x["wall"])[len(runs) // 2])
    report(results, a.repos + len(UNKNOWN), a.slowest)
    if any(r["requests"] != r["needed"] for r in results):
        print("  WARNING: more requests than pages needed (a page fetched twice, or a retry)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
