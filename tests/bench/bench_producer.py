"""Benchmark 4: backfill-producer queueing 10,000 jobs from a file, next to
kcat producing the same 10,000 messages (same keys, same JSON values) to
the same kind of topic, in the same run. Prints messages per second and
the ratio (median of --runs).

usage: tests/bench/bench_producer.py [--runs N] [--jobs N]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

from benchlib import median, services
from harness import binary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=10000)
    a = ap.parse_args()
    with services() as (kafka, _pg, work):
        repos = [f"bench-org-{i // 100}/repo-{i}" for i in range(a.jobs)]
        listing = os.path.join(work, "repos.txt")
        with open(listing, "w") as f:
            f.write("\n".join(repos) + "\n")
        lines = os.path.join(work, "jobs.kcat")
        now = int(time.time() * 1000)
        with open(lines, "w") as f:
            for r in repos:
                owner, name = r.split("/")
                v = {"name": "repository/backfill.initial", "id": str(uuid.uuid4()), "ts": now,
                     "v": 1, "data": {"owner": owner, "name": name, "maxPRs": 200,
                                      "sinceDays": 30, "triggeredFrom": "bulk_add_cli"}}
                f.write(r.lower() + "\t" + json.dumps(v, separators=(",", ":")) + "\n")
        ours, theirs = [], []
        for run in range(a.runs):
            # each tool gets its own fresh topic, created and warmed the same
            # way (untimed), and they take turns going first: a broker writes
            # its first batches to new partition logs more slowly
            envs = []
            for _ in range(2):
                topic = f"bench-jobs-{uuid.uuid4().hex[:8]}"
                env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka, BACKFILL_JOBS_TOPIC=topic,
                           BACKFILL_PROGRESS_TOPIC=topic + "-p", BACKFILL_DLQ_TOPIC=topic + "-d",
                           BACKFILL_CONTROL_TOPIC=topic + "-c")
                subprocess.run([binary("backfill-producer"), "-q", "warm/up"], env=env, check=True,
                               capture_output=True)
                envs.append((topic, env))

            def run_ours():
                t0 = time.monotonic()
                out = subprocess.run([binary("backfill-producer"), "-q", "--file", listing],
                                     env=envs[0][1], capture_output=True, text=True)
                ours.append(time.monotonic() - t0)
                assert out.returncode == 0, out.stderr[-2000:]
                assert out.stdout.count("\n") == a.jobs

            def run_kcat():
                # same partitions, same acks/idempotence, same header
                t0 = time.monotonic()
                out = subprocess.run(["kcat", "-b", kafka, "-P", "-t", envs[1][0], "-K", "\t", "-l",
                                      "-X", "enable.idempotence=true", "-X", "acks=all",
                                      "-H", "event=repository/backfill.initial", lines],
                                     capture_output=True, text=True)
                theirs.append(time.monotonic() - t0)
                assert out.returncode == 0, out.stderr[-2000:]

            for f in ((run_ours, run_kcat) if run % 2 == 0 else (run_kcat, run_ours)):
                f()
        o, k = median(ours), median(theirs)
        print(f"{a.jobs} jobs, median of {a.runs} (process start to last acknowledgement)")
        print(f"  backfill-producer: {o:6.2f} s  {a.jobs / o:9.0f} msg/s")
        print(f"  kcat             : {k:6.2f} s  {a.jobs / k:9.0f} msg/s")
        print(f"  ratio (kcat time / ours): {k / o:.2f}  (>= 1 means not slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
