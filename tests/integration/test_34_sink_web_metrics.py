"""Issue 14: the metrics of backfill-sink and backfill-web, each on its own
--metrics listener, against what really happened in a run of the ten
load-test repositories queued through the web's bulk-add API: the sink's
event counts per type equal the events on the progress topic, the rows it
says it wrote match Postgres, the progress topic's lag ends at 0, the web
counted its one bulk add; `promtool check metrics` accepts both endpoints
and no secret shows. Then the readiness answers: 503 with the reason while
Postgres cannot be reached (sink) or has no tables yet (web), and a bad
--metrics address is a usage error (exit 2). `backfill-web --healthcheck`
gives the same answer through --metrics or, without it, through --listen."""
import json
import os
import socket
import subprocess

from harness import (SECRET_TOKEN, TEN_REPOS, SseReader, binary, check_rows, free_port, http_json,
                     metrics_get, metrics_samples, metrics_value, produce_raw, promtool_check,
                     start_with_env, wait_for)

CONSUMERS = 3
EVENT_TYPES = ("backfill/pull_requests", "backfill/progress.update")


def scrape(port):
    st, ctype, text = metrics_get(port, "/metrics")
    assert st == 200 and ctype.startswith("text/plain; version=0.0.4"), (st, ctype)
    return text


def web_healthcheck(pipeline, *args):
    """(exit status, stderr) of `backfill-web ARGS --healthcheck`."""
    r = subprocess.run([binary("backfill-web"), *args, "--healthcheck"], env=pipeline.env,
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


def test_sink_and_web_metrics_agree_with_the_topic_and_postgres(pipeline):
    p_sink, p_web = free_port(), free_port()
    sink = pipeline.start("backfill-sink", "--metrics", f"127.0.0.1:{p_sink}")
    for _ in range(CONSUMERS):
        pipeline.start("backfill-consumer")
    web = pipeline.start_web("--metrics", f"127.0.0.1:{p_web}")
    wait_for(lambda: http_json("GET", web.url + "/healthz")[0] == 200, 60, "a healthy web")
    wait_for(lambda: metrics_get(p_sink, "/healthz")[0] == 200, 60, "a ready sink")
    wait_for(lambda: metrics_get(p_web, "/healthz")[0] == 200, 30, "the web's metrics /healthz")
    listen = web.url.removeprefix("http://")
    assert web_healthcheck(pipeline, "--metrics", f"127.0.0.1:{p_web}") == (0, "")
    assert web_healthcheck(pipeline, "--listen", listen) == (0, "")

    # an event stream: the gauge counts it while open. The server notices a
    # closed one when it next writes to it: the run's progress events do.
    sse = SseReader(web.url + "/api/events")
    assert sse.status == 200
    wait_for(lambda: metrics_value(scrape(p_web), "backfill_web_event_streams") == 1, 10,
             "the open stream in backfill_web_event_streams")
    sse.close()

    st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                            {"repositories": TEN_REPOS, "includeBackfill": True})
    assert st == 200 and body["queued"] == 10, body
    pipeline.wait_terminal(TEN_REPOS, timeout=240)
    for r in TEN_REPOS:
        check_rows(pipeline, r)

    # the progress topic, event by event: what the sink must have counted
    on_topic = {t: 0 for t in EVENT_TYPES}
    for m in pipeline.consume(pipeline.progress_topic):
        on_topic[json.loads(m["payload"])["name"]] += 1
    total = sum(on_topic.values())
    assert on_topic["backfill/pull_requests"] > 0 and on_topic["backfill/progress.update"] > 0

    # every batch committed (the state rows are there, but the last batch's
    # counters move after its COMMIT), and the committed offsets reached
    # librdkafka's statistics (every 2 s)
    def caught_up():
        text = scrape(p_sink)
        lag = [v for n, ls, v in metrics_samples(text) if n == "backfill_kafka_consumer_lag"
               and ls.get("topic") == pipeline.progress_topic]
        return (metrics_value(text, "backfill_sink_events_total") == total and lag
                and all(v == 0 for v in lag) and text)
    text = wait_for(caught_up, 60, "the sink's metrics to reach the end of the topic",
                    interval=0.5)

    for t in EVENT_TYPES:
        assert metrics_value(text, "backfill_sink_events_total", type=t, outcome="applied") == \
            on_topic[t], t
    for outcome in ("invalid", "refused", "ignored"):
        assert metrics_value(text, "backfill_sink_events_total", outcome=outcome) == 0, outcome
    # every type of the fixed set is shown, and nothing else
    types = {ls["type"] for n, ls, _ in metrics_samples(text) if n == "backfill_sink_events_total"}
    assert types == {"backfill/pull_requests", "backfill/progress.update",
                     "repository/backfill.initial", "unknown"}, types

    # rows: the writer counts rows an upsert inserted or changed (the
    # command tag), and a replayed or refetched chunk changes nothing, so
    # in this undisturbed run each stored pull request was counted once;
    # in general (a pull request updated on GitHub between two runs) the
    # counter can only be ahead of the table.
    stored = pipeline.query("SELECT count(*) FROM pull_requests")[0][0]
    contributors = pipeline.query("SELECT count(*) FROM contributors")[0][0]
    written = metrics_value(text, "backfill_sink_rows_written_total", table="pull_requests")
    assert written >= stored and written == stored, (written, stored)
    assert metrics_value(text, "backfill_sink_rows_written_total",
                         table="contributors") >= contributors
    assert metrics_value(text, "backfill_sink_rows_written_total", table="repositories") >= 1

    # batches: their sizes add up to the events; each had a commit time
    assert metrics_value(text, "backfill_sink_batch_size_sum") == total
    batches = metrics_value(text, "backfill_sink_batch_size_count")
    assert batches >= 1
    assert metrics_value(text, "backfill_sink_commit_duration_seconds_count") == batches
    assert metrics_value(text, "backfill_sink_commit_duration_seconds_bucket", le="+Inf") == batches
    assert metrics_value(text, "backfill_sink_postgres_reconnects_total") == 0
    assert metrics_value(text, "backfill_sink_postgres_up") == 1
    info = [ls for n, ls, _ in metrics_samples(text) if n == "backfill_build_info"]
    assert len(info) == 1 and info[0]["program"] == "backfill-sink" and info[0]["librdkafka"]

    st, _, health = metrics_get(p_sink, "/healthz")
    assert st == 200 and health.strip() == "ok", health

    # garbage, a name the sink does not know and an invalid pull-request
    # event: counted once each, under a bounded type label
    produce_raw(pipeline.kafka, pipeline.progress_topic, [
        {"key": b"x/y", "value": b"not json at all"},
        {"key": b"x/y", "value": json.dumps({"name": "made/up." + "z" * 50, "id": "e1", "ts": 1,
                                             "v": 1, "data": {}}).encode()},
        {"key": b"x/y", "value": json.dumps({"name": "backfill/pull_requests", "id": "e2",
                                             "ts": 1, "v": 1, "data": {"x": 1}}).encode()}])

    def counted():
        t = scrape(p_sink)
        return metrics_value(t, "backfill_sink_events_total") == total + 3 and t
    text = wait_for(counted, 30, "the sink to count the three odd events")
    assert metrics_value(text, "backfill_sink_events_total", type="unknown", outcome="invalid") == 1
    assert metrics_value(text, "backfill_sink_events_total", type="unknown", outcome="ignored") == 1
    assert metrics_value(text, "backfill_sink_events_total", type="backfill/pull_requests",
                 outcome="invalid") == 1
    assert "made/up" not in text

    # the web: one bulk add, ten repositories queued, routes from the fixed set
    wtext = wait_for(lambda: (lambda t: metrics_value(t, "backfill_web_event_streams") == 0 and t)(
        scrape(p_web)), 40, "the closed stream to leave the gauge")
    assert metrics_value(wtext, "backfill_web_requests_total", route="/api/bulk-add",
                         code="200") == 1
    assert metrics_value(wtext, "backfill_web_requests_total", route="/api/events", code="200") == 1
    assert metrics_value(wtext, "backfill_web_request_duration_seconds_count",
                         route="/api/bulk-add") == 1
    assert metrics_value(wtext, "backfill_web_repositories_queued_total") == 10
    # a path nobody routes, and a repository's page: labelled by route, not path
    assert http_json("GET", web.url + "/no/such/" + "x" * 40)[0] == 404
    assert http_json("GET", web.url + "/api/backfills/lit/lit")[0] == 200
    wtext = scrape(p_web)
    assert metrics_value(wtext, "backfill_web_requests_total", route="other", code="404") == 1
    assert metrics_value(wtext, "backfill_web_requests_total", route="/api/backfills/{repo}",
                 code="200") == 1
    routes = {ls["route"] for n, ls, _ in metrics_samples(wtext)
              if n == "backfill_web_requests_total"}
    assert not any("lit" in r or "x" * 40 in r for r in routes), routes
    info = [ls for n, ls, _ in metrics_samples(wtext) if n == "backfill_build_info"]
    assert len(info) == 1 and info[0]["program"] == "backfill-web"
    st, _, health = metrics_get(p_web, "/healthz")
    assert st == 200 and health.strip() == "ok", health

    # both endpoints pass promtool, and carry neither the token nor the
    # database address
    for who, t in (("sink", scrape(p_sink)), ("web", scrape(p_web))):
        with open(os.path.join(pipeline.workdir, f"metrics-{who}.txt"), "w") as f:
            f.write(t)  # for a post-mortem (BACKFILL_KEEP_TEST_DIRS)
        rc, out = promtool_check(t)
        assert rc == 0, f"{who}: promtool check metrics:\n{out}\n{t[:3000]}"
        assert SECRET_TOKEN not in t and "ghp_" not in t, who
        assert pipeline.db_url not in t and "postgresql://" not in t, who
    assert SECRET_TOKEN not in pipeline.logs()
    print(f"\n[metrics] {total} events ({on_topic}), {int(batches)} batches, "
          f"{stored} pull requests = {int(written)} rows written")
    assert sink.p.poll() is None


def test_healthz_names_what_is_missing_and_bad_addresses_are_usage_errors(pipeline):
    # a sink whose Postgres does not answer: 503 with the reason
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nobody listens once the socket is closed
    p_sink = free_port()
    sink = start_with_env(pipeline, "backfill-sink",
                          {"DATABASE_URL": f"postgresql://nobody:s3cr3t-pw@127.0.0.1:{dead}/none"},
                          "--metrics", f"127.0.0.1:{p_sink}")

    def unready():
        assert sink.p.poll() is None, sink.output()
        st, _, body = metrics_get(p_sink, "/healthz")  # None while nothing answers
        return st == 503 and "Postgres unreachable" in body and body
    body = wait_for(unready, 30, "the sink's /healthz to say Postgres is unreachable")
    assert "s3cr3t-pw" not in body, body
    text = scrape(p_sink)
    assert metrics_value(text, "backfill_sink_postgres_up") == 0
    assert "s3cr3t-pw" not in text
    rc, out = promtool_check(text)
    assert rc == 0, out

    # a web before any sink made the tables: its own /healthz is 503, and
    # the metrics listener's /healthz says the same
    p_web = free_port()
    web = pipeline.start_web("--metrics", f"127.0.0.1:{p_web}")
    st, own, _ = http_json("GET", web.url + "/healthz")
    assert st == 503, own

    def web_unready():
        st, _, body = metrics_get(p_web, "/healthz")
        return st == 503 and "no backfill tables" in body and body
    wait_for(web_unready, 30, "the web's metrics /healthz to name the missing tables")
    for args in (("--metrics", f"127.0.0.1:{p_web}"), ("--listen", web.url.removeprefix("http://"))):
        rc, err = web_healthcheck(pipeline, *args)
        assert rc == 1 and "no backfill tables" in err, (args, rc, err)
    rc, err = web_healthcheck(pipeline, "--listen", f"127.0.0.1:{dead}")
    assert rc == 1 and f"127.0.0.1:{dead}" in err, (rc, err)
    rc, out = promtool_check(scrape(p_web))
    assert rc == 0, out

    # a bad --metrics address: a usage error, before anything starts
    for name in ("backfill-sink", "backfill-web"):
        for bad in ("nonsense", "127.0.0.1:99999"):
            p = start_with_env(pipeline, name, {}, "--metrics", bad)
            p.expect_clean_exit = False  # exits 2 on its own
            rc = p.wait(30)
            out = p.output()
            assert rc == 2 and "--metrics" in out, (name, bad, rc, out)
    # and through the environment
    p = start_with_env(pipeline, "backfill-sink", {"BACKFILL_METRICS_LISTEN": "nonsense"})
    p.expect_clean_exit = False
    # (the message names where the value came from)
    assert p.wait(30) == 2 and "BACKFILL_METRICS_LISTEN nonsense" in p.output()
