"""Issue 14: backfill-consumer's Prometheus metrics (--metrics ADDR:PORT).

One consumer runs the ten load-test repositories; what its /metrics says
afterwards must agree with what the simulator counted (GraphQL requests,
points) and what Postgres stored (pull requests), its lag gauges for the
jobs topic must come from the group consumer and read 0 at the end, the
exposition must pass `promtool check metrics`, and no token or URL may
appear in it. /healthz answers 200 while the worker is in its group, also
when the group has no partition left for it (an idle worker is healthy). A
bad --metrics value is a usage error (exit 2) naming ADDR:PORT; a port in
use is a runtime failure (exit 1)."""
import os
import shutil
import socket

from harness import (SECRET_TOKEN, TEN_REPOS, create_topic, free_port, metrics_get,
                     metrics_samples, metrics_series, promtool_check, start_with_env, wait_for)


def total(samples, name, **want):
    return sum(metrics_series(samples, name, **want).values())


def test_consumer_metrics_after_ten_repositories(pipeline):
    sim = pipeline.sim
    port = free_port()
    pipeline.start("backfill-sink")
    consumer = pipeline.start("backfill-consumer", "--metrics", f"127.0.0.1:{port}")

    wait_for(lambda: metrics_get(port, "/healthz")[0] == 200, 60,
             "the consumer's /healthz to say ready")
    out = pipeline.produce(*TEN_REPOS)
    assert out.returncode == 0, out.stderr
    status, ctype, body = metrics_get(port, "/healthz")
    assert status == 200 and body.strip() == "ok", (status, body)
    states = pipeline.wait_terminal(TEN_REPOS)
    assert all(states[r]["status"] == "completed" for r in TEN_REPOS), states
    assert metrics_get(port, "/healthz")[0] == 200

    jobs = pipeline.jobs_topic
    seen = {}

    def settled():
        # the final commit follows the final event; the lag gauges follow
        # librdkafka's statistics (every 2 s)
        status, ctype, text = metrics_get(port, "/metrics")
        s = metrics_samples(text)
        lags = metrics_series(s, "backfill_kafka_consumer_lag", topic=jobs)
        seen.update(text=text, ctype=ctype, samples=s)
        return (status == 200 and total(s, "backfill_jobs_completed_total") == 10
                and len(lags) == 12 and all(v == 0 for v in lags.values())
                and total(s, "backfill_kafka_committed_offset", topic=jobs) == 10)
    wait_for(settled, 30, "jobs completed = 10 and the jobs topic's lag at 0 in /metrics")
    text, s = seen["text"], seen["samples"]
    with open(os.path.join(pipeline.workdir, "consumer-metrics.txt"), "w") as f:
        f.write(text)  # for a post-mortem (BACKFILL_KEEP_TEST_DIRS=1)
    assert seen["ctype"].startswith("text/plain") and "version=0.0.4" in seen["ctype"]

    # jobs
    assert total(s, "backfill_jobs_started_total") == 10
    assert total(s, "backfill_jobs_completed_total") == 10
    assert metrics_series(s, "backfill_jobs_failed_total"), "no backfill_jobs_failed_total series"
    assert total(s, "backfill_jobs_failed_total") == 0
    assert total(s, "backfill_jobs_in_progress") == 0
    assert total(s, "backfill_poison_messages_total") == 0

    # GitHub: what the simulator counted, what Postgres stored
    stats = sim.get("/_sim/stats")
    assert total(s, "backfill_github_requests_total", **{"class": "ok"}) == stats["requests"]
    assert total(s, "backfill_github_requests_total") == stats["requests"]
    assert total(s, "backfill_github_points_total") == stats["points"] > 0
    assert total(s, "backfill_github_pages_total") == stats["requests"]
    assert total(s, "backfill_github_request_duration_seconds_count") == stats["requests"]
    assert metrics_series(s, "backfill_github_request_duration_seconds_bucket", le="+Inf")
    rows = pipeline.query("SELECT count(*) FROM pull_requests")[0][0]
    assert total(s, "backfill_pull_requests_fetched_total") == rows > 0
    # every answer was ok, so the only waits can be the shared pace's:
    # waited time, as the jobs' timelines saw it (test_10's rate-limit test
    # checks a long wait for a reset)
    paced = total(s, "backfill_rate_limit_wait_seconds_total")
    waited = total(s, "backfill_job_seconds_total", span="wait")
    assert abs(paced - waited) <= 0.05, (paced, waited)

    # the budget, per account: named by login (or position), never by token
    remaining = metrics_series(s, "backfill_github_budget_remaining")
    assert remaining, "no backfill_github_budget_remaining series"
    logins = {a["login"] for a in stats["accounts"].values()}
    for labels in remaining:
        account = dict(labels)["account"]
        assert account in logins or account.startswith("credential "), account
    assert all(v >= 0 for v in remaining.values())
    assert metrics_series(s, "backfill_github_budget_reset_timestamp_seconds")

    # Kafka: the group consumer's partitions of the jobs topic only (not
    # the control-topic reader's, not the producer's)
    assert total(s, "backfill_kafka_log_end_offset", topic=jobs) == 10
    lag_topics = {dict(l)["topic"] for l in metrics_series(s, "backfill_kafka_consumer_lag")}
    assert lag_topics == {jobs}, lag_topics
    assert total(s, "backfill_kafka_brokers_up") >= 1

    # build info
    info = metrics_series(s, "backfill_build_info", program="backfill-consumer")
    assert len(info) == 1 and list(info.values()) == [1.0], info
    assert dict(next(iter(info)))["librdkafka"]

    # nothing secret, no URL
    assert SECRET_TOKEN not in text
    assert "://" not in text
    if shutil.which("promtool"):
        rc, out = promtool_check(text)
        assert rc == 0, out
    assert metrics_get(port, "/nothing-here")[0] == 404
    assert consumer.p.poll() is None
    print(f"\n[metrics] consumer scrape after 10 repositories: {len(text)} bytes, "
          f"{len(s)} samples, {stats['requests']} requests, {rows} pull requests, "
          f"{paced:.2f}s paced")


def test_consumer_metrics_bad_address_and_port_in_use(pipeline):
    bad = pipeline.start("backfill-consumer", "--metrics", "nonsense")
    bad.expect_clean_exit = False
    assert bad.wait(20) == 2
    assert "ADDR:PORT" in bad.output(), bad.output()

    env_bad = start_with_env(pipeline, "backfill-consumer", {"BACKFILL_METRICS_LISTEN": "127.0.0.1:99999"})
    env_bad.expect_clean_exit = False
    assert env_bad.wait(20) == 2
    assert "BACKFILL_METRICS_LISTEN" in env_bad.output(), env_bad.output()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = pipeline.start("backfill-consumer", "--metrics", f"127.0.0.1:{port}")
        busy.expect_clean_exit = False
        assert busy.wait(20) == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in busy.output(), busy.output()
    assert SECRET_TOKEN not in pipeline.logs()


def test_idle_consumer_is_ready(pipeline):
    """Two consumers on a one-partition jobs topic: one owns it, the other
    joined the group with nothing assigned. Both say ready; only the owner
    reports lag for the partition."""
    create_topic(pipeline.kafka, pipeline.jobs_topic, 1)
    ports = [free_port(), free_port()]
    procs = [pipeline.start("backfill-consumer", "--metrics", f"127.0.0.1:{p}") for p in ports]
    for p in ports:
        wait_for(lambda: metrics_get(p, "/healthz")[0] == 200, 60, f"/healthz on {p} to say ready")

    def one_owner():
        owners = [p for p in ports
                  if metrics_series(metrics_samples(metrics_get(p, "/metrics")[2]),
                                    "backfill_kafka_consumer_lag", topic=pipeline.jobs_topic)]
        return len(owners) == 1
    wait_for(one_owner, 30, "exactly one consumer to report the partition's lag")
    assert all(metrics_get(p, "/healthz")[0] == 200 for p in ports)
    assert all(p.p.poll() is None for p in procs)
