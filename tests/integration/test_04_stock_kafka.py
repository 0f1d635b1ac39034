"""Issue 9: a Kafka broker with its shipped defaults (topics auto-created
with num.partitions=1), as a new user runs it. Our clients never let the
broker auto-create a topic: missing ones are created with CreateTopics and
the configured 12 partitions, so the work spreads over the consumers. A
topic someone else made with fewer partitions is reported (worker log at
start and on every assignment, producer, backfill-status), never altered.
An unreachable broker is named once, with the actual reason."""
import re
import subprocess
import time

import pytest

from harness import (Pipeline, Simulator, binary, check_exact, create_topic, log_lines,
                     wait_for)

SHORTFALL = "at most 1 of the consumers in this group can work"


def partitions(kafka, topic):
    """The partition count of a topic per the broker, 0 when it does not
    exist. kcat asks for that topic alone with allow.auto.create.topics=false,
    so asking creates nothing."""
    out = subprocess.run(["kcat", "-b", kafka, "-L", "-t", topic, "-X",
                          "allow.auto.create.topics=false"],
                         capture_output=True, text=True, timeout=30)
    m = re.search(r'topic "%s" with (\d+) partitions' % re.escape(topic), out.stdout)
    return int(m.group(1)) if m else 0


@pytest.fixture
def slow_pipeline(kafka, postgres, workdir):
    """A pipeline whose simulator takes 100 ms per request, so that jobs
    overlap and the spread over consumers shows."""
    sim = Simulator(workdir, "--latency-ms", "100")
    p = Pipeline(kafka, postgres, workdir, sim)
    yield p
    p.close()
    sim.stop()


def test_work_spreads_over_consumers_on_a_stock_broker(slow_pipeline):
    p = slow_pipeline
    repos = [f"sim-250-0/spread-{i:02d}" for i in range(20)]
    # As the README says: the sink, 5 consumers, then the producer; nothing
    # pre-created, and the broker would auto-create topics with 1 partition.
    p.start("backfill-sink")
    consumers = [p.start("backfill-consumer") for _ in range(5)]
    out = p.produce(*repos)
    assert out.returncode == 0, out.stderr
    p.wait_terminal(repos, timeout=240)
    assert check_exact(p, repos) == 20 * 200

    for topic in (p.jobs_topic, p.progress_topic):
        assert partitions(p.kafka, topic) == 12, topic
    assert partitions(p.kafka, p.dlq_topic) == 1
    assert partitions(p.kafka, p.control_topic) == 1
    worked = [len(log_lines(c, "INFO consumer starting ")) for c in consumers]
    print(f"\n[stock broker] jobs per consumer: {worked}; topics of 12 partitions")
    assert sum(worked) >= 20, worked
    assert sum(1 for w in worked if w) >= 4, f"jobs per consumer: {worked}"
    assert SHORTFALL not in p.logs()


def test_a_topic_with_too_few_partitions_is_reported_and_left_alone(pipeline):
    p = pipeline
    # Someone else made the jobs topic (e.g. the broker, auto-creating it for
    # another client) with the broker's default of 1 partition.
    create_topic(p.kafka, p.jobs_topic, 1)
    c = p.start("backfill-consumer")
    wait_for(lambda: len(log_lines(c, SHORTFALL)) >= 2, 60,
             "the shortfall warning at start and at the assignment")
    line = log_lines(c, SHORTFALL)[0]
    assert "WARN" in line and f"topic {p.jobs_topic} has 1 partition" in line
    assert f"--alter --topic {p.jobs_topic} --partitions 12" in line
    assert log_lines(c, "assigned 1 partitions [0]")

    out = p.produce("sveltejs/svelte")
    assert out.returncode == 0, out.stderr
    assert f"topic {p.jobs_topic} has 1 partition, fewer than the 12 configured" in out.stderr

    st = subprocess.run([binary("backfill-status"), "--json"], env=p.env, capture_output=True,
                        text=True, timeout=60)
    assert f"topic {p.jobs_topic} has 1 partition" in st.stderr, st.stderr
    assert "at most 1 consumers (workers) can work" in st.stderr
    # Never altered, by any of them.
    assert partitions(p.kafka, p.jobs_topic) == 1


def test_status_creates_nothing(pipeline):
    """backfill-status only looks: asking about topics that do not exist
    must not make a stock broker (auto.create.topics.enable=true) create
    them."""
    p = pipeline
    st = subprocess.run([binary("backfill-status")], env=p.env, capture_output=True, text=True,
                        timeout=60)
    assert st.returncode == 1  # no sink ran: the view does not exist yet
    time.sleep(1)
    for topic in (p.jobs_topic, p.progress_topic):
        assert partitions(p.kafka, topic) == 0, f"{topic} was created"


def closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_unreachable_broker_producer_says_why_once_and_exits_1(pipeline):
    port = closed_port()
    env = dict(pipeline.env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    t0 = time.monotonic()
    out = subprocess.run([binary("backfill-producer"), "sveltejs/svelte"], env=env,
                         capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert out.returncode == 1
    assert took < 30, f"took {took:.1f}s"
    want = f"cannot reach Kafka at 127.0.0.1:{port}: connection refused"
    lines = out.stderr.splitlines()
    assert sum(1 for line in lines if want in line and "WARN" in line) == 1, out.stderr
    assert lines[-1].endswith(want) and "giving up, nothing queued" in lines[-1], out.stderr
    assert len(lines) <= 4, out.stderr  # no per-attempt librdkafka noise
    assert out.stdout == ""


def test_unreachable_broker_long_running_binaries_wait_quietly(pipeline):
    port = closed_port()
    env = dict(pipeline.env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    from harness import start_with_env
    procs = [start_with_env(pipeline, name, env) for name in ("backfill-consumer",
                                                              "backfill-sink")]
    want = f"cannot reach Kafka at 127.0.0.1:{port}: connection refused; retrying"
    for proc in procs:
        wait_for(lambda: log_lines(proc, want), 20, f"{proc.args[0]} to say why")
    time.sleep(5)  # more attempts, no more lines
    for proc in procs:
        assert proc.p.poll() is None, f"{proc.args[0]} exited"
        out = proc.output()
        assert out.count("cannot reach Kafka") == 1, out
        assert len(out.splitlines()) <= 4, out
        assert proc.stop() == 0, out
