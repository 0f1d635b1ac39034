"""backfill-status --lag and GET /api/lag: the worker and sink groups' lag
per partition, as kafka-consumer-groups --describe shows it.

The sink is killed (SIGKILL) while the workers go on publishing: the
progress topic's lag for the sink group grows and backfill-status --lag
shows it; once the workers are done the numbers (committed offset, log end
offset, lag, per partition, for both groups) equal those of Kafka's own
kafka-consumer-groups tool. A restarted sink catches up and the lag returns
to 0, in backfill-status --lag, in a running backfill-web's /api/lag and
in its metrics (backfill_consumer_group_lag: the killed sink reports
nothing of itself, the web asks Kafka).
A group that does not exist and an unreachable broker get clear messages."""
import json
import subprocess
import time
import uuid

from harness import (TEN_REPOS, binary, describe_group, end_offsets, free_port, http_json,
                     metrics_get, metrics_value, progress_events, wait_for)

PARTITIONS = 12


def status(pipeline, *args):
    return subprocess.run([binary("backfill-status"), "--lag", *args], env=pipeline.env,
                          capture_output=True, text=True, timeout=60)


def lag_json(pipeline, *args):
    """{group id: the group's JSON object} from backfill-status --lag --json."""
    out = status(pipeline, "--json", *args)
    objs = [json.loads(line) for line in out.stdout.splitlines()]
    return out.returncode, {o["group"]: o for o in objs}


def sink_lag(pipeline):
    rc, groups = lag_json(pipeline)
    g = groups.get(pipeline.env["BACKFILL_SINK_GROUP"], {})
    return g.get("totalLag") if rc == 0 else None


def table_rows(text, group):
    """{partition: the row's fields} of one group's table in --lag's text."""
    rows = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 9 and f[0] == group and f[2].isdigit():
            rows[int(f[2])] = f
    return rows


def check_same_as_kafka(pipeline, group, topic, ours):
    """Our JSON for group equals kafka-consumer-groups --describe's table on
    every partition that table lists."""
    theirs = describe_group(pipeline.kafka, group)
    assert theirs is not None, f"kafka-consumer-groups: {group} does not exist"
    listed = {p for t, p in theirs if t == topic}
    assert listed, theirs
    for p in ours["partitions"]:
        if p["partition"] not in listed:
            # Kafka's tool leaves out a partition nobody owns or committed
            assert p["currentOffset"] is None and p["consumerId"] is None, p
            continue
        k = theirs[(topic, p["partition"])]
        assert (p["currentOffset"], p["logEndOffset"], p["lag"]) == \
            (k["current"], k["end"], k["lag"]), f"{group} [{p['partition']}]: {p} vs {k}"
        assert (p["consumerId"], p["host"], p["clientId"]) == \
            (k["consumer_id"], k["host"], k["client_id"]), f"{group} [{p['partition']}]"
    return theirs


def test_status_lag_follows_a_killed_and_restarted_sink(pipeline):
    workers_group = pipeline.env["BACKFILL_GROUP"]
    sink_group = pipeline.env["BACKFILL_SINK_GROUP"]
    # slow enough that the run outlasts the kill by many chunks
    pipeline.sim.post("/_sim/config", {"latencyMs": 100})
    # static membership: the restarted sink gets its partitions back at once
    sink_args = ["-X", f"group.instance.id=sink-{uuid.uuid4().hex[:8]}"]
    sink = pipeline.start("backfill-sink", *sink_args)
    for _ in range(3):
        pipeline.start("backfill-consumer", "--page-size", "4", "--chunk-pause-ms", "100")
    assert pipeline.produce(*TEN_REPOS).returncode == 0
    web_metrics = free_port()
    web = pipeline.start_web("--metrics", f"127.0.0.1:{web_metrics}")

    def web_sink_lag():
        """The sink group's lag in backfill-web's metrics (asked of Kafka)."""
        st, _, text = metrics_get(web_metrics, "/metrics")
        return metrics_value(text, "backfill_consumer_group_lag", group=sink_group) \
            if st == 200 else None

    # the sink committed something to Kafka: it is a group with offsets
    def sink_committed():
        rc, groups = lag_json(pipeline)
        g = groups.get(sink_group, {})
        return rc == 0 and any(p["currentOffset"] for p in g.get("partitions", []))
    wait_for(sink_committed, 60, "the sink's first committed offsets", interval=0.5)
    sink.p.kill()  # SIGKILL: no goodbye to the group, no last commit
    sink.p.wait()
    sink.expect_clean_exit = False

    # the workers go on publishing: the sink group falls behind
    lag = wait_for(lambda: sink_lag(pipeline), 60, "the sink group's lag to grow")
    text = status(pipeline)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    assert set(table_rows(text.stdout, sink_group)) == set(range(PARTITIONS))
    assert set(table_rows(text.stdout, workers_group)) == set(range(PARTITIONS))
    total = next(l for l in lines if l.startswith(f"{sink_group}: state "))
    assert "total lag" in total and int(total.split("total lag ")[1].split()[0]) > 0, total
    # and in the metrics: the dead sink reports nothing, the web does
    wait_for(lambda: (web_sink_lag() or 0) > 0, 30, "the sink's lag in the web's metrics")

    # once the workers are done, nothing moves: the numbers equal Kafka's own tool's
    def all_published():
        done = {e["repository"].lower() for e in progress_events(pipeline)
                if e["status"] in ("completed", "failed")}
        return done >= {r.lower() for r in TEN_REPOS}
    wait_for(all_published, 180, "every backfill to publish its end", interval=1)
    # the workers commit the job offsets right after the last event: settle
    time.sleep(2)
    rc, groups = lag_json(pipeline)
    assert rc == 0, groups
    ends = end_offsets(pipeline.kafka, pipeline.progress_topic, PARTITIONS)
    sink_j = groups[sink_group]
    assert sink_j["topic"] == pipeline.progress_topic
    assert {p["partition"]: p["logEndOffset"] for p in sink_j["partitions"]} == ends
    assert sink_j["totalLag"] > 0 and sink_j["totalLag"] >= lag
    for p in sink_j["partitions"]:
        start = p["logStartOffset"]
        want = p["logEndOffset"] - (p["currentOffset"] if p["currentOffset"] is not None else start)
        assert p["lag"] in (None, want), p
    assert sink_j["totalLag"] == sum(p["logEndOffset"] - (p["currentOffset"]
                                     if p["currentOffset"] is not None else p["logStartOffset"])
                                     for p in sink_j["partitions"])
    check_same_as_kafka(pipeline, sink_group, pipeline.progress_topic, sink_j)
    work_j = groups[workers_group]
    assert work_j["state"] == "Stable" and work_j["members"] == 3, work_j
    assert work_j["totalLag"] == 0, work_j  # every job taken and committed
    owners = {p["consumerId"] for p in work_j["partitions"]}
    assert len(owners) == 3 and None not in owners
    assert {p["clientId"] for p in work_j["partitions"]} == {"backfill-consumer"}
    check_same_as_kafka(pipeline, workers_group, pipeline.jobs_topic, work_j)
    # the web says the same (it may be a second behind: its cache)
    st, body, _ = http_json("GET", web.url + "/api/lag")
    assert st == 200, body
    web_groups = {g["group"]: g for g in body["groups"]}
    assert [g["group"] for g in body["groups"]] == [workers_group, sink_group]
    assert web_groups[sink_group]["partitions"] == sink_j["partitions"]
    stuck = sink_j["totalLag"]
    wait_for(lambda: web_sink_lag() == stuck, 30, f"the web's metrics to show lag {stuck}")

    # a restarted sink catches up: lag 0 everywhere, owned by the new member
    sink = pipeline.start("backfill-sink", *sink_args)
    wait_for(lambda: sink_lag(pipeline) == 0, 90, "the sink group's lag back to 0", interval=0.5)
    rc, groups = lag_json(pipeline)
    sink_j = groups[sink_group]
    assert sink_j["state"] == "Stable"
    for p in sink_j["partitions"]:
        assert p["lag"] in (0, None) and p["clientId"] == "backfill-sink", p
        assert p["lag"] == 0 or p["logEndOffset"] == p["logStartOffset"], p
    text = status(pipeline)
    assert text.returncode == 0, text.stderr
    assert f"{sink_group}: state Stable, 1 member, total lag 0 on {PARTITIONS} partitions" \
        in text.stdout, text.stdout
    for f in table_rows(text.stdout, sink_group).values():
        assert f[5] in ("0", "-") and f[8] == "backfill-sink", f

    def web_caught_up():
        st, body, _ = http_json("GET", web.url + "/api/lag")
        g = {x["group"]: x for x in (body or {}).get("groups", [])}
        return st == 200 and g.get(sink_group, {}).get("totalLag") == 0 and body
    body = wait_for(web_caught_up, 30, "GET /api/lag to show the sink caught up")
    wait_for(lambda: web_sink_lag() == 0, 30, "the web's metrics to show the sink caught up")
    check_same_as_kafka(pipeline, sink_group, pipeline.progress_topic,
                        next(g for g in body["groups"] if g["group"] == sink_group))
    print(f"\n[status --lag] sink killed: lag {lag} while running, {stuck} when the workers "
          f"finished; kafka-consumer-groups agreed on every partition of both groups; "
          f"0 after the restart (status, /api/lag and the web's metrics)")


def test_status_lag_missing_group_and_unreachable_kafka(pipeline):
    pipeline.start("backfill-sink")
    pipeline.start("backfill-consumer")  # makes the jobs topic

    def topics_made():
        try:
            return all(len(end_offsets(pipeline.kafka, t, PARTITIONS)) == PARTITIONS
                       for t in (pipeline.jobs_topic, pipeline.progress_topic))
        except AssertionError:  # not yet
            return False
    wait_for(topics_made, 60, "the sink to create its topics", interval=0.5)
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    out = status(pipeline, "--worker-group", ghost, "--sink-group", ghost + "-sink")
    assert out.returncode == 3, (out.returncode, out.stderr)
    assert f"group {ghost} does not exist" in out.stderr, out.stderr
    assert f"group {ghost}-sink does not exist" in out.stderr, out.stderr
    assert describe_group(pipeline.kafka, ghost) is None  # Kafka agrees
    rc, groups = lag_json(pipeline, "--worker-group", ghost)
    assert rc == 3 and groups[ghost]["exists"] is False and "does not exist" in groups[ghost]["error"]

    # a topic that does not exist
    out = status(pipeline, "--jobs-topic", f"no-such-topic-{ghost}")
    assert out.returncode == 3 and f"topic no-such-topic-{ghost} does not exist" in out.stderr

    # Kafka unreachable: non-zero, and says where it tried
    env = dict(pipeline.env, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    t0 = time.monotonic()
    out = subprocess.run([binary("backfill-status"), "--lag"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and "cannot reach Kafka at 127.0.0.1:1" in out.stderr, out.stderr
    assert out.stdout == "" and time.monotonic() - t0 < 20
    assert "--lag" in subprocess.run([binary("backfill-status"), "--help"], capture_output=True,
                                     text=True).stdout
