"""Issue 9: a fatal error of the worker's idempotent producer (librdkafka
raises one when the broker reports a sequence gap it cannot recover
from; injected here with rd_kafka_test_fatal_error through the worker's
test setting) ends the worker with a clear log line and exit 1, without
committing anything it did not deliver: the next worker resumes from the
last delivered chunk and the stored rows come out exact. Before, every
send failed from then on and the job re-fetched the same page forever."""
import subprocess

from harness import answered, check_exact, pages_fetched_twice, start_with_env

REPOS = ["sim-250-0/fatal-0", "sim-250-0/fatal-1"]  # two chunks of 100 each


def test_fatal_producer_error_stops_the_worker_without_committing(pipeline):
    p = pipeline
    p.start("backfill-sink")
    # Sends: `started` (1), chunk 1's pull requests (2) and progress (3),
    # chunk 2's pull requests (4): fatal right after that one is queued.
    w = start_with_env(p, "backfill-consumer", {"BACKFILL_TEST_FATAL_AFTER_SENDS": "4"})
    w.expect_clean_exit = False
    assert p.produce(*REPOS).returncode == 0
    try:
        w.wait(60)  # on a hang, every thread's stack goes to its log
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker did not exit within 60 s of the fatal error:\n"
                             + w.output()[-6000:])
    assert w.p.returncode == 1
    out = w.output()
    assert "fatal Kafka error in backfill-consumer" in out, out
    assert "OUT_OF_ORDER_SEQUENCE_NUMBER" in out, out
    assert out.count("stopping after a fatal Kafka error") == 1, out
    first_run = [r for r in p.sim.get("/_sim/requests") if answered(r)]
    assert len(first_run) <= 3, "the worker kept fetching after the fatal error"

    # A new worker takes over from what was committed, which must not be
    # more than was delivered: a skipped chunk would leave rows missing.
    p.start("backfill-consumer")
    p.wait_terminal(REPOS, timeout=120)
    assert check_exact(p, REPOS) == 400
    reqs = p.sim.get("/_sim/requests")  # at most the page in hand of each job
    assert all(pages_fetched_twice(reqs, r) <= 1 for r in REPOS)
