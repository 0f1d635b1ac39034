"""Benchmark 1 (and 5): end to end, 20 repositories x 250 pull requests in
the window, the simulator at 300 ms per request, 5 consumers; measured from
the producer's start until every state row is terminal in Postgres. In the
same run, the same pipeline configured like the original plan (pages of 25,
a 2 s pause after each chunk) as the baseline. Prints both times, the
ratio, the latency floor, API points, and each process's peak RSS and CPU.

usage: tests/bench/bench_e2e.py [--runs N] [--repos N] [--latency-ms N] [--jobs 1,2,4]
Also shows how the time scales with jobs per worker (--jobs).
"""
import argparse
import math
import os
import sys
import time

from benchlib import Pipeline, Simulator, median, proc_usage, services


def one_run(kafka, pg, work, label, repos, latency_ms, consumer_args):
    d = os.path.join(work, f"{label}-{time.monotonic_ns()}")
    os.makedirs(d)
    sim = Simulator(d, "--latency-ms", str(latency_ms))
    p = Pipeline(kafka, pg, d, sim)
    try:
        sink = p.start("backfill-sink")
        consumers = [p.start("backfill-consumer", *consumer_args) for _ in range(5)]
        # let the group settle so the clock measures the backfill, not the join
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(
                "assigned" in c.output() for c in consumers) < 5:
            time.sleep(0.1)
        t0 = time.monotonic()
        out = p.produce(*repos)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        states = p.wait_terminal(repos, timeout=900)
        wall = time.monotonic() - t0
        bad = [r for r in repos if states[r.lower()]["status"] != "completed"]
        if bad:
            raise RuntimeError(f"{label}: not completed: {bad}")
        stats = sim.get("/_sim/stats")
        usage = [proc_usage(c.p.pid) for c in consumers]
        sink_usage = proc_usage(sink.p.pid)
        prs = p.query("SELECT count(*) FROM pull_requests")[0][0]
        return {"wall": wall, "requests": stats["requests"], "points": stats["points"],
                "prs": prs, "consumer_rss_kib": max(u[0] for u in usage),
                "consumer_cpu": sum(u[1] for u in usage), "sink_rss_kib": sink_usage[0],
                "sink_cpu": sink_usage[1]}
    finally:
        p.close()
        sim.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--jobs", default="1,2,4",
                    help="jobs per worker to measure, comma-separated (default 1,2,4)")
    a = ap.parse_args()
    repos = [f"sim-250-0/bench-{i:02d}" for i in range(a.repos)]
    configs = [(f"ours --jobs {j}", ["--jobs", j]) for j in a.jobs.split(",")]
    configs.append(("plan", ["--page-size", "25", "--chunk-pause-ms", "2000"]))
    pages = math.ceil(200 / 100)
    floor = pages * a.latency_ms / 1000 * math.ceil(a.repos / 5)
    results = {label: [] for label, _ in configs}
    with services() as (kafka, pg, work):
        for i in range(a.runs):
            for label, args in configs:
                r = one_run(kafka, pg, work, label.replace(" ", "_"), repos, a.latency_ms, args)
                results[label].append(r)
                print(f"run {i + 1} {label:14s}: {r['wall']:6.2f}s  {r['requests']} requests "
                      f"{r['points']} points  {r['prs']} PRs", flush=True)
    plan = median([r["wall"] for r in results["plan"]])
    print(f"\n{a.repos} repositories x 250 PRs in the window, maxPRs 200, {a.latency_ms} ms/request,"
          f" 5 consumers, median of {a.runs}")
    print(f"  latency floor: {floor:.2f} s ({pages} pages x {a.latency_ms} ms x ceil({a.repos}/5))")
    print(f"  {'configuration':16s} {'time':>8s} {'vs plan':>8s} {'/ floor':>8s} {'points/repo':>12s}"
          f" {'consumer RSS':>13s} {'sink RSS':>9s} {'CPU s/1000 PRs':>15s}")
    for label, _ in configs:
        rs = results[label]
        t = median([r["wall"] for r in rs])
        o = rs[-1]
        print(f"  {label:16s} {t:7.2f}s {plan / t:7.1f}x {t / floor:7.2f}x"
              f" {o['points'] / a.repos:12.2f} {o['consumer_rss_kib'] / 1024:10.1f} MiB"
              f" {o['sink_rss_kib'] / 1024:6.1f} MiB"
              f" {(o['consumer_cpu'] + o['sink_cpu']) / o['prs'] * 1000:15.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
