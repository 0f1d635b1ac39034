"""Issue 5: cancel and re-run. `backfill-producer --cancel` stops a running
backfill at its next chunk boundary and a queued one before it starts
(both end `failed` with error `cancelled`); queuing the repository again
afterwards runs a fresh backfill that stores nothing twice."""
from harness import wait_for

BIG = "sim-1000-0/big"
QUEUED = "sim-50-0/queued"


def prs_of(pipeline, repo):
    return pipeline.query(
        "SELECT count(*), count(DISTINCT p.github_id) FROM pull_requests p"
        " JOIN repositories r ON r.id = p.repository_id"
        " WHERE lower(r.owner || '/' || r.name) = %s", repo)[0]


def test_cancel_running_and_queued_then_rerun(pipeline):
    sim = pipeline.sim
    sim.post("/_sim/config", {"latencyMs": 200})
    pipeline.start("backfill-sink")
    pipeline.start("backfill-consumer", "--page-size", "10", "--jobs", "1")  # one job at a time
    out = pipeline.produce("--max-prs", "1000", BIG)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: pipeline.states().get(BIG, {}).get("processed", 0) >= 30, 60,
             "the big backfill to be under way")
    out = pipeline.produce(QUEUED)  # waits behind the running job (all partitions paused)
    assert out.returncode == 0, out.stderr

    out = pipeline.produce("--cancel", BIG, QUEUED)
    assert out.returncode == 0, out.stderr
    assert "cancel requested sim-1000-0/big" in out.stdout
    states = pipeline.wait_terminal([BIG, QUEUED], timeout=60)

    big = states[BIG]
    assert big["status"] == "failed" and big["error"] == "cancelled"
    assert 30 <= big["processed"] < 1000
    count, distinct = prs_of(pipeline, BIG)
    assert count == distinct == big["processed"], "state and rows must agree after a cancel"
    assert states[QUEUED]["status"] == "failed" and states[QUEUED]["error"] == "cancelled"
    assert sim.get("/_sim/stats")["by_repo"].get(QUEUED, 0) == 0, "a cancelled job never starts"

    # re-run after the cancel: a fresh backfill, newest first, nothing stored twice
    stored_before = big["processed"]
    out = pipeline.produce("--max-prs", "20", BIG)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: pipeline.states()[BIG]["status"] == "completed", 60, "the re-run")
    state = pipeline.states()[BIG]
    assert state["processed"] == 20 and state["error"] is None
    count, distinct = prs_of(pipeline, BIG)
    assert count == distinct == stored_before  # the 20 newest were already there
    expected = {int(p["githubId"]) for p in sim.expected(BIG, max_prs=20)["expected"]}
    rows = {r[0] for r in pipeline.query(
        "SELECT p.github_id FROM pull_requests p JOIN repositories r ON r.id = p.repository_id"
        " WHERE lower(r.owner || '/' || r.name) = %s", BIG)}
    assert expected <= rows
