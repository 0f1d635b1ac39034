"""Issue 5: backfill status in Postgres — the backfill_progress_summary view
(migration 002), the monitoring queries the README documents, and the
backfill-status binary that prints the view."""
import json
import os
import subprocess
from datetime import timezone

import psycopg

from harness import ROOT, binary

REPOS = ["preactjs/preact", "Lit/lit"]
UNKNOWN = "ghost-org/does-not-exist"

# The README's monitoring queries, verbatim.
ACTIVE_SQL = """SELECT repository, status, processed_prs, total_prs, percentage, chunks_done, last_update
  FROM backfill_progress_summary
 WHERE status IN ('active', 'paused')
 ORDER BY last_update DESC"""
FAILED_SQL = """SELECT repository, error, last_update
  FROM backfill_progress_summary
 WHERE status = 'failed'
 ORDER BY last_update DESC"""
STALLED_SQL = """SELECT repository, status, last_update
  FROM backfill_progress_summary
 WHERE status = 'active' AND last_update < now() - interval '10 minutes'"""
COST_SQL = """SELECT count(*) AS repositories, sum(processed_prs) AS pull_requests,
       sum(api_requests) AS api_requests, sum(api_points) AS api_points
  FROM backfill_progress_summary"""


def status(pipeline, *args, env=None):
    return subprocess.run([binary("backfill-status"), *args], env=env or pipeline.env,
                          capture_output=True, text=True, timeout=60)


def test_status_view_and_backfill_status(pipeline):
    # Before the sink ran, the view does not exist: a clear error, exit 1.
    early = status(pipeline)
    assert early.returncode == 1 and "backfill-sink" in early.stderr, early.stderr

    pipeline.start("backfill-sink")
    for _ in range(2):
        pipeline.start("backfill-consumer")
    assert pipeline.produce(*REPOS, UNKNOWN).returncode == 0
    states = pipeline.wait_terminal(REPOS + [UNKNOWN])
    sim_stats = pipeline.sim.get("/_sim/stats")

    cols = ["repository", "status", "processed_prs", "total_prs", "percentage", "started_at",
            "last_update", "finished_at", "error", "chunks_done", "api_requests", "api_points"]
    rows = {r[0]: dict(zip(cols, r)) for r in pipeline.query(
        f"SELECT {', '.join(cols)} FROM backfill_progress_summary ORDER BY repository")}
    assert set(rows) == set(REPOS + [UNKNOWN])  # owner/name as the user spelled them
    for repo in REPOS + [UNKNOWN]:
        row, st = rows[repo], states[repo.lower()]
        assert (row["status"], row["processed_prs"], row["total_prs"], row["error"]) == \
            (st["status"], st["processed"], st["total"], st["error"])
        assert row["started_at"] and row["last_update"] and row["finished_at"]
        chunks = pipeline.query(
            "SELECT count(*) FROM backfill_chunks c JOIN progressive_backfill_state s"
            " ON s.backfill_id = c.backfill_id JOIN repositories r ON r.id = s.repository_id"
            " WHERE lower(r.owner || '/' || r.name) = lower(%s)", repo)[0][0]
        assert row["chunks_done"] == chunks
        assert row["api_requests"] == sim_stats["by_repo"].get(repo.lower(),
                                                              sim_stats["by_repo"].get(repo, 0))
        assert row["api_points"] >= row["api_requests"] - 1
    for repo in REPOS:
        assert rows[repo]["status"] == "completed" and float(rows[repo]["percentage"]) == 100.0
        assert rows[repo]["chunks_done"] >= 1 and rows[repo]["processed_prs"] > 0
    assert rows[UNKNOWN]["status"] == "failed" and "not found" in rows[UNKNOWN]["error"].lower()

    # The documented monitoring queries run and agree.
    assert pipeline.query(ACTIVE_SQL) == []
    assert [r[0] for r in pipeline.query(FAILED_SQL)] == [UNKNOWN]
    assert pipeline.query(STALLED_SQL) == []
    n, prs, req, pts = pipeline.query(COST_SQL)[0]
    assert n == 3 and prs == sum(r["processed_prs"] for r in rows.values())
    assert req == sum(r["api_requests"] for r in rows.values())

    # Re-applying the migration by hand is harmless (CREATE OR REPLACE).
    with open(os.path.join(ROOT, "schemas", "migrations", "002_status_view.sql")) as f:
        sql = f.read()
    with psycopg.connect(pipeline.db_url, autocommit=True) as c:
        c.execute(sql)
        c.execute(sql)

    # backfill-status: a table with a totals line ...
    out = status(pipeline)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["REPOSITORY", "STATUS", "PRS"] and set(lines[1]) == {"-"}
    for repo in REPOS + [UNKNOWN]:
        line = next(l for l in lines if l.startswith(repo + " "))
        assert rows[repo]["status"] in line
        assert f"{rows[repo]['processed_prs']}/{rows[repo]['total_prs']}" in line
    assert lines[-1].startswith(f"3 repositories, {prs} pull requests, {req} API requests")
    # ... JSON lines with the view's columns ...
    js = status(pipeline, "--json")
    assert js.returncode == 0, js.stderr
    objs = [json.loads(l) for l in js.stdout.splitlines()]
    assert [o["repository"] for o in objs] == sorted(rows)
    for o in objs:
        r = rows[o["repository"]]
        assert (o["status"], o["processed_prs"], o["total_prs"], o["chunks_done"],
                o["api_requests"], o["error"]) == \
            (r["status"], r["processed_prs"], r["total_prs"], r["chunks_done"],
             r["api_requests"], r["error"])
        assert o["percentage"] == float(r["percentage"])
        assert {"started_at", "last_update", "finished_at", "duration_seconds",
                "backfill_id"} <= set(o)
        assert o["started_at"] == \
            r["started_at"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # ... filtered by status.
    failed = status(pipeline, "--json", "--status", "failed")
    assert [json.loads(l)["repository"] for l in failed.stdout.splitlines()] == [UNKNOWN]
    assert status(pipeline, "--bogus").returncode == 2

    # The connection string's password never reaches the output.
    env = dict(pipeline.env, DATABASE_URL="postgresql://bob:Sup3rSecretPw@127.0.0.1:1/nope")
    bad = status(pipeline, env=env)
    assert bad.returncode == 1 and "Sup3rSecretPw" not in bad.stdout + bad.stderr
    assert "cannot connect" in bad.stderr
