"""Benchmark 1 (and 2, 5): end to end, 20 repositories x 250 pull requests
in the window, the simulator at 300 ms per request, 5 consumers; measured
from the producer's start until every state row is terminal in Postgres.
In the same run, the same pipeline configured like the original plan
(pages of 25, a 2 s pause after each chunk) as the baseline. Prints both
times, the ratio, the latency floor, API points, each process's peak RSS
and CPU, and the largest consumer's private memory (RSS less the shared
library pages that all consumers on a host share).

usage: tests/bench/bench_e2e.py [--runs N] [--repos N] [--latency-ms N] [--jobs 1,2,4]
                                [--partitions N] [--wide-partitions N]
Also shows how the time scales with jobs per worker (--jobs), and with
--jobs 4 on a jobs topic of --wide-partitions partitions.

Three floors are printed. The issue's latency floor assumes 5 jobs at a
time (one per consumer). A worker running J jobs at once lowers it to
pages x latency x ceil(repos / 5J). Neither can be reached when keys
hash unevenly: a partition's jobs run one after another (the checkpoint
is the partition's committed offset), and a worker's partitions share its
J slots. The assignment floor is that bound for the partitions and
consumers this run actually got.
"""
import argparse
import collections
import json
import math
import re
import subprocess
import sys
import time

from benchlib import (fresh_pipeline, median, proc_private_kib, proc_usage, produce_and_wait,
                      services, start_workers)

PAGES = math.ceil(200 / 100)


def job_partitions(kafka, topic):
    """repository key -> partition of its job message."""
    out = subprocess.run(["kcat", "-b", kafka, "-C", "-t", topic, "-e", "-J", "-q"],
                         capture_output=True, text=True, timeout=60)
    return {json.loads(line)["key"]: json.loads(line)["partition"]
            for line in out.stdout.splitlines() if line.strip()}


def assignment_floor(consumers, parts, jobs, latency_ms):
    """Lower bound of the run given which consumer started which job."""
    worst = 0
    for c in consumers:
        repos = re.findall(r"INFO consumer starting (\S+) ", c.output())
        load = collections.Counter(parts.get(r.lower(), -1) for r in repos)
        rounds = max([max(load.values(), default=0), math.ceil(sum(load.values()) / jobs)])
        worst = max(worst, rounds)
    return worst * PAGES * latency_ms / 1000


def one_run(kafka, pg, work, label, repos, a, consumer_args, jobs, partitions):
    sim, p = fresh_pipeline(work, label, kafka, pg, a.latency_ms, partitions)
    try:
        sink = p.start("backfill-sink")
        # let the group settle (every partition owned once, cooperative
        # rebalances done) so the clock measures the backfill, not the join
        consumers = start_workers(p, 5, *consumer_args, partitions=partitions)
        time.sleep(1)
        wall, _ = produce_and_wait(p, repos, label)
        stats = sim.get("/_sim/stats")
        usage = [proc_usage(c.p.pid) for c in consumers]
        private = max(proc_private_kib(c.p.pid) for c in consumers)
        sink_usage = proc_usage(sink.p.pid)
        prs = p.query("SELECT count(*) FROM pull_requests")[0][0]
        floor = assignment_floor(consumers, job_partitions(kafka, p.jobs_topic), jobs,
                                 a.latency_ms)
        return {"wall": wall, "requests": stats["requests"], "points": stats["points"],
                "prs": prs, "consumer_rss_kib": max(u[0] for u in usage), "private_kib": private,
                "consumer_cpu": sum(u[1] for u in usage), "sink_rss_kib": sink_usage[0],
                "sink_cpu": sink_usage[1], "assigned_floor": floor}
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
    ap.add_argument("--partitions", type=int, default=12, help="jobs topic partitions (default 12)")
    ap.add_argument("--wide-partitions", type=int, default=60,
                    help="partitions for an extra --jobs 4 run (default 60; 0: skip it)")
    a = ap.parse_args()
    repos = [f"sim-250-0/bench-{i:02d}" for i in range(a.repos)]
    configs = [(f"ours --jobs {j}", ["--jobs", j], int(j), a.partitions) for j in a.jobs.split(",")]
    if a.wide_partitions:
        configs.append((f"ours 4, {a.wide_partitions}p", ["--jobs", "4"], 4, a.wide_partitions))
    configs.append(("plan", ["--page-size", "25", "--chunk-pause-ms", "2000"], 1, a.partitions))
    floor = PAGES * a.latency_ms / 1000 * math.ceil(a.repos / 5)
    results = {label: [] for label, *_ in configs}
    with services() as (kafka, pg, work):
        for i in range(a.runs):
            for label, args, jobs, partitions in configs:
                r = one_run(kafka, pg, work, re.sub(r"\W", "_", label), repos, a, args, jobs,
                            partitions)
                results[label].append(r)
                print(f"run {i + 1} {label:16s}: {r['wall']:6.2f}s  {r['requests']} requests "
                      f"{r['points']} points  {r['prs']} PRs"
                      + ("" if label == "plan" else f"  assignment floor {r['assigned_floor']:.2f}s"),
                      flush=True)
    plan = median([r["wall"] for r in results["plan"]])
    print(f"\n{a.repos} repositories x 250 PRs in the window, maxPRs 200, {a.latency_ms} ms/request,"
          f" 5 consumers, {a.partitions} partitions unless noted, median of {a.runs}")
    print(f"  latency floor: {floor:.2f} s ({PAGES} pages x {a.latency_ms} ms x ceil({a.repos}/5))")
    print(f"  {'configuration':16s} {'time':>7s} {'vs plan':>8s} {'/ floor':>8s} {'/ floor(5J)':>11s}"
          f" {'/ assigned':>10s} {'points/repo':>11s} {'consumer RSS':>13s} {'private':>8s}"
          f" {'sink RSS':>9s}"
          f" {'CPU s/1000 PRs':>14s}")
    for label, _, jobs, _ in configs:
        rs = results[label]
        t = median([r["wall"] for r in rs])
        floor_j = PAGES * a.latency_ms / 1000 * math.ceil(a.repos / (5 * jobs))
        # the assignment floor assumes pages of 100 and no pauses: not the plan's
        assigned = "-" if label == "plan" else \
            f"{median([r['wall'] / r['assigned_floor'] for r in rs]):.2f}x"
        o = rs[-1]
        print(f"  {label:16s} {t:6.2f}s {plan / t:7.1f}x {t / floor:7.2f}x {t / floor_j:10.2f}x"
              f" {assigned:>10s} {o['points'] / a.repos:11.2f}"
              f" {max(r['consumer_rss_kib'] for r in rs) / 1024:9.1f} MiB"
              f" {max(r['private_kib'] for r in rs) / 1024:4.1f} MiB"
              f" {max(r['sink_rss_kib'] for r in rs) / 1024:5.1f} MiB"
              f" {(o['consumer_cpu'] + o['sink_cpu']) / o['prs'] * 1000:14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
