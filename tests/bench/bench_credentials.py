"""Benchmark (issue 13): how the run time scales with the number of GitHub
accounts when the primary budget binds. 1,000 repositories of mixed sizes
(a third with at most 20 pull requests in the window, half with 21-150,
the rest 151-320; maxPRs 200, so 1 or 2 pages of 100 each), the simulator
at 300 ms a request, every account's budget scaled down to 600 points per
60 s window; 5 consumers at the default --jobs on 24 partitions (so that
the budget binds: on 12, the busiest partition's pages alone take ~41 s,
more than the budget floor of 4 accounts), personal
tokens from a token file, one token per account; a fresh simulator and
pipeline per account count. Measured from the producer's start until
every state row is terminal in Postgres.

usage: tests/bench/bench_credentials.py [--repos N] [--latency-ms N] [--budget N]
                                        [--window-s S] [--accounts 1,2,4]
                                        [--consumers N] [--partitions N] [--seed N]

Floors. The budget floor is points / (accounts x budget / window): the run
spending the budget at a steady rate. But a window's whole budget is there
at once (the budget windows restart just before the producer starts), so
a run can beat it: the window floor is (ceil(points / (accounts x budget))
- 1) windows of waiting, plus the time to spend the rest at full speed
(rest / in flight x latency, where at most min(consumers x jobs,
partitions) requests are in flight: one job per partition). The latency
floor is the budget-free bound: a partition's jobs run one after another,
so the partition with the most pages takes pages x latency. "points" is
what a correct worker needs (the simulator's own page rule, /_sim/expected,
asked for every repository).
Both ignore the reserve each worker keeps untouched for the requests in
flight elsewhere (about the group's requests in flight less one, per
account and window) and the pace (1,800 points a minute per account).
"""
import argparse
import math
import os
import sys
import time
import uuid
import zlib

from benchlib import (Pipeline, Simulator, mixed_repos, pages_needed, produce_and_wait, services,
                      start_workers)

JOBS = 4  # the consumer's default --jobs
MAX_PRS = 200


def one_run(kafka, pg, work, n_accounts, repos, a):
    d = os.path.join(work, f"accounts-{n_accounts}-{time.monotonic_ns()}")
    os.makedirs(d)
    sim = Simulator(d, "--latency-ms", str(a.latency_ms), "--budget", str(a.budget),
                    "--reset-seconds", str(a.window_s))
    p = Pipeline(kafka, pg, d, sim)
    try:
        logins = [f"bench-{j + 1}" for j in range(n_accounts)]
        tokens = [f"tok-{login}-{uuid.uuid4().hex[:12]}" for login in logins]
        sim.post("/_sim/accounts", {"accounts": [{"login": l, "tokens": [t]}
                                                 for l, t in zip(logins, tokens)]})
        token_file = os.path.join(d, "tokens")
        with open(token_file, "w") as f:
            f.write("".join(t + "\n" for t in tokens))
        p.env.pop("GITHUB_TOKEN", None)
        p.env["GITHUB_TOKEN_FILE"] = token_file
        p.env["BACKFILL_PARTITIONS"] = str(a.partitions)
        p.start("backfill-sink")
        consumers = start_workers(p, a.consumers, partitions=a.partitions)
        deadline = time.monotonic() + 60
        while any(c.output().count(" GitHub credential ") < n_accounts for c in consumers):
            if time.monotonic() > deadline:
                raise RuntimeError("the consumers did not identify their tokens")
            time.sleep(0.2)
        # every window starts now: the first window's budget is all there
        sim.post("/_sim/config", {"budget": a.budget, "resetSeconds": a.window_s})
        sim.post("/_sim/reset-stats", {})
        names = [r for r, _, _ in repos]
        wall, _ = produce_and_wait(p, names, f"{n_accounts} accounts", timeout=3600,
                                   interval=0.5)
        prs = p.query("SELECT count(*) FROM pull_requests")[0][0]
        want = sum(min(k, MAX_PRS) for _, k, _ in repos)
        if prs != want:
            raise RuntimeError(f"{n_accounts} accounts: {prs} pull requests stored, want {want}")
        stats = sim.get("/_sim/stats")
        per_repo = {}
        for r in sim.get("/_sim/requests"):
            per_repo[r["repo"]] = per_repo.get(r["repo"], 0) + r["cost"]
        big = [per_repo.get(r.lower(), 0) for r, k, _ in repos if k >= MAX_PRS]
        accs = [stats["accounts"][l] for l in logins]
        return {"wall": wall, "points": stats["points"], "requests": stats["requests"],
                "per_repo": stats["points"] / len(repos),
                "big_mean": sum(big) / len(big) if big else 0, "big_max": max(big, default=0),
                "secondary": stats["secondary"], "rate_limited": sum(x["rateLimited"] for x in accs),
                "spread": [x["points"] for x in accs], "prs": prs}
    finally:
        p.close()
        sim.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--budget", type=int, default=600, help="points per window per account")
    ap.add_argument("--window-s", type=float, default=60, help="the budget's window (seconds)")
    ap.add_argument("--accounts", default="1,2,4", help="account counts, comma-separated")
    ap.add_argument("--consumers", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    repos = mixed_repos(a.repos, a.seed)
    n_big = sum(1 for _, k, _ in repos if k >= MAX_PRS)
    in_flight = min(a.consumers * JOBS, a.partitions)
    results = []
    with services() as (kafka, pg, work):
        pages = pages_needed(work, [r for r, _, _ in repos], MAX_PRS)
        needed = sum(pages.values())
        # librdkafka's default partitioner: CRC-32 of the key (lower-cased owner/name)
        load = [0] * a.partitions
        for r, _, _ in repos:
            load[zlib.crc32(r.lower().encode()) % a.partitions] += pages[r]
        lat_floor = max(load) * a.latency_ms / 1000
        print(f"{a.repos} repositories ({sum(1 for _, k, _ in repos if k <= 20)} with <= 20 PRs, "
              f"{sum(1 for _, k, _ in repos if 20 < k <= 150)} with 21-150, "
              f"{sum(1 for _, k, _ in repos if k > 150)} with 151-320, {n_big} of them capped at "
              f"{MAX_PRS}); {needed} points needed; {a.latency_ms} ms/request; budget {a.budget} "
              f"points / {a.window_s:g} s per account; {a.consumers} consumers x --jobs {JOBS} "
              f"(default) on {a.partitions} partitions; latency floor {lat_floor:.1f}s (the "
              f"busiest partition: {max(load)} pages)", flush=True)
        for n in [int(x) for x in a.accounts.split(",")]:
            r = one_run(kafka, pg, work, n, repos, a)
            per_window = n * a.budget
            windows = math.ceil(needed / per_window)
            rest = needed - (windows - 1) * per_window
            r["floor"] = needed / (per_window / a.window_s)
            r["wfloor"] = (windows - 1) * a.window_s + rest / in_flight * a.latency_ms / 1000
            r["accounts"] = n
            results.append(r)
            print(f"  {n} account(s): {r['wall']:.1f}s, {r['points']} points "
                  f"({'/'.join(str(x) for x in r['spread'])} per account), {r['prs']} PRs",
                  flush=True)
    print(f"\n  {'accounts':>8s} {'time':>8s} {'budget floor':>12s} {'/ floor':>8s}"
          f" {'window floor':>12s} {'/ wfloor':>8s} {'/ max(wfloor, latency floor)':>28s}"
          f" {'points':>7s} {'pts/repo':>8s}"
          f" {'pts/200-PR repo':>15s} {'secondary':>9s} {'rate-limited':>12s}")
    for r in results:
        print(f"  {r['accounts']:8d} {r['wall']:7.1f}s {r['floor']:11.1f}s"
              f" {r['wall'] / r['floor']:7.2f}x {r['wfloor']:11.1f}s {r['wall'] / r['wfloor']:7.2f}x"
              f" {r['wall'] / max(r['wfloor'], lat_floor):27.2f}x"
              f" {r['points']:7d} {r['per_repo']:8.2f}"
              f" {r['big_mean']:8.2f} (<={r['big_max']})"
              f" {r['secondary']:9d} {r['rate_limited']:12d}")
    if any(r["big_max"] > 2 for r in results):
        print("  WARNING: a 200-PR repository cost more than 2 points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
