"""Benchmark 3: sink throughput. 100,000 pull requests (1,000
backfill/pull_requests events of 100) already on the progress topic, into
an empty database; rows per second next to a raw COPY of the same rows into
the same tables on the same server, in the same run (median of --runs).

usage: tests/bench/bench_sink.py [--runs N] [--prs N]
"""
import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid

import psycopg

from benchlib import Pipeline, Simulator, median, services
from harness import wait_for


def make_events(path, n_prs, per_event=100):
    """kcat -K '\\t' -l input: key TAB envelope, one event per line."""
    rows = []
    started = int(time.time() * 1000)
    with open(path, "w") as f:
        seq = 0
        for e in range(n_prs // per_event):
            repo = f"bench/repo-{e % 50}"
            prs = []
            for i in range(per_event):
                num = e * per_event + i + 1
                pr = {"githubId": str(3_000_000_000_000_000_000 + num), "number": num,
                      "title": f"Pull request {num} \u2728", "body": "x" * 300,
                      "state": ("open", "closed", "merged")[num % 3], "draft": num % 7 == 0,
                      "merged": num % 3 == 2, "createdAt": "2026-11-20T10:00:00Z",
                      "updatedAt": "2026-11-21T10:00:00Z",
                      "closedAt": None if num % 3 == 0 else "2026-11-21T10:00:00Z",
                      "mergedAt": "2026-11-21T10:00:00Z" if num % 3 == 2 else None,
                      "additions": num % 100, "deletions": num % 50, "changedFiles": num % 9,
                      "baseBranch": "main", "headBranch": f"feature-{num}",
                      "url": f"https://github.com/{repo}/pull/{num}",
                      "author": {"login": f"user{num % 500}", "githubId": 1000 + num % 500,
                                 "avatarUrl": f"https://avatars/u/{num % 500}", "isBot": False}}
                prs.append(pr)
                rows.append(pr)
            seq += 1
            env = {"name": "backfill/pull_requests", "id": str(uuid.uuid4()), "ts": started, "v": 1,
                   "data": {"repository": repo, "owner": "bench", "name": f"repo-{e % 50}",
                            "repositoryId": None, "backfillId": f"bf-{e % 50}", "seq": seq,
                            "chunk": e + 1, "startedAt": started, "pullRequests": prs}}
            f.write(repo + "\t" + json.dumps(env, separators=(",", ":")) + "\n")
    return rows


def copy_rows(db_url, rows):
    """COPY of the same rows: contributors and pull_requests, plain inserts."""
    with psycopg.connect(db_url) as c:
        # same tables, emptied: the sink's rows are gone, COPY starts from what the sink had
        c.execute("TRUNCATE pull_requests, contributors, backfill_chunks, progressive_backfill_state,"
                  " repositories RESTART IDENTITY CASCADE")
        c.commit()
        repo_id = c.execute("INSERT INTO repositories (owner, name) VALUES ('copy', 'bench')"
                            " RETURNING id").fetchone()[0]
        t0 = time.monotonic()
        with c.cursor() as cur:
            with cur.copy("COPY contributors (github_id, username, avatar_url, is_bot) FROM STDIN") as cp:
                seen = set()
                for r in rows:
                    a = r["author"]
                    if a["githubId"] not in seen:
                        seen.add(a["githubId"])
                        cp.write_row((a["githubId"], a["login"], a["avatarUrl"], a["isBot"]))
            with cur.copy("COPY pull_requests (github_id, repository_id, number, title, body, state,"
                          " created_at, updated_at, closed_at, merged_at, merged, draft, additions,"
                          " deletions, changed_files, base_branch, head_branch, html_url)"
                          " FROM STDIN") as cp:
                for r in rows:
                    cp.write_row((int(r["githubId"]) + 1, repo_id, r["number"], r["title"], r["body"],
                                  r["state"], r["createdAt"], r["updatedAt"], r["closedAt"],
                                  r["mergedAt"], r["merged"], r["draft"], r["additions"],
                                  r["deletions"], r["changedFiles"], r["baseBranch"],
                                  r["headBranch"], r["url"]))
        c.commit()
        return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prs", type=int, default=100000)
    a = ap.parse_args()
    sink_t, copy_t = [], []
    with services() as (kafka, pg, work):
        events = os.path.join(work, "events.kcat")
        rows = make_events(events, a.prs)
        n_events = a.prs // 100
        for run in range(a.runs):
            d = os.path.join(work, f"run-{run}")
            os.makedirs(d)
            sim = Simulator(d)
            p = Pipeline(kafka, pg, d, sim)
            try:
                # create the topic and the schema (the sink migrates), then stop it
                first = p.start("backfill-sink")
                wait_for(lambda: "writing" in first.output(), 60, "the sink to start")
                first.stop()
                subprocess.run(["kcat", "-b", kafka, "-P", "-t", p.progress_topic, "-K", "\t",
                                "-l", "-X", "message.max.bytes=2000000", events], check=True)
                t0 = time.monotonic()
                p.start("backfill-sink")
                wait_for(lambda: p.query("SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets"
                                         )[0][0] >= n_events, 600, "the sink to drain the topic",
                         interval=0.05)
                sink_t.append(time.monotonic() - t0)
                stored = p.query("SELECT count(*) FROM pull_requests")[0][0]
                assert stored == a.prs, f"sink stored {stored} of {a.prs}"
                copy_t.append(copy_rows(p.db_url, rows))
            finally:
                p.close()
                sim.stop()
        s, c = median(sink_t), median(copy_t)
        print(f"{a.prs} pull requests in {n_events} events, median of {a.runs}")
        print(f"  backfill-sink (from sink start, incl. connect+assign): {s:6.2f} s "
              f"{a.prs / s:9.0f} rows/s")
        print(f"  raw COPY (contributors + pull_requests)            : {c:6.2f} s "
              f"{a.prs / c:9.0f} rows/s")
        print(f"  sink / COPY throughput: {c / s * 100:.0f}%  (goal >= 50%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
