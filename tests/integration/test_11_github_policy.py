"""Issue 3, GitHub (items 6-10) and the token (item 18): the workers apply
GitHub's documented client policy against the simulator — a shared
primary budget smaller than the run, both rate-limit error types,
secondary limits, server errors, exhausted retries to the DLQ, hung
servers — and the token never leaves the Authorization header. Each run
ends with Postgres checked row by row against the simulator."""
import json
import re
import socket
import time

from harness import (SECRET_TOKEN, TEN_REPOS, answered, check_exact, consume_raw, log_lines,
                     owned_partitions, pages_fetched_twice, progress_events, start_with_env,
                     start_workers, wait_for)


def requests_of(sim, repo):
    return [r for r in sim.get("/_sim/requests") if r["repo"] == repo]


def one_worker(pipeline, *args):
    """A sink and one consumer that owns every partition."""
    pipeline.start("backfill-sink")
    w = pipeline.start("backfill-consumer", *args)
    wait_for(lambda: len(owned_partitions(w)) == 12, 30, "the consumer to own all partitions")
    return w


def max_in_flight(reqs, latency_s):
    """Most requests the simulator was serving at once (each request is
    held for the configured latency after it arrives)."""
    events = sorted([(r["t"], 1) for r in reqs] + [(r["t"] + latency_s, -1) for r in reqs])
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def test_shared_budget_is_never_exceeded(pipeline):
    """Item 6: five workers (at the default --jobs 4) share a token whose
    budget (30 points per 6 s) is smaller than the run needs; they keep a
    reserve for the group's requests in flight, wait for the reset (status
    paused) and are never refused."""
    sim = pipeline.sim
    pipeline.start("backfill-sink")
    start_workers(pipeline, 5, "--page-size", "20")
    sim.post("/_sim/config", {"budget": 30, "resetSeconds": 6, "latencyMs": 100})
    t0 = time.time()
    assert pipeline.produce(*TEN_REPOS).returncode == 0
    pipeline.wait_terminal(TEN_REPOS, timeout=150)
    wall = time.time() - t0
    rows = check_exact(pipeline, TEN_REPOS)
    reqs = sim.get("/_sim/requests")
    refused = [r for r in reqs if r.get("error") in ("RATE_LIMITED", "RATE_LIMIT")]
    assert not refused, f"{len(refused)} requests refused by the primary limit"
    assert len(reqs) > 30, "the run needs more than one budget window"
    waits = [e for e in progress_events(pipeline) if e["status"] == "rate_limited"]
    assert waits, "the workers waited for the reset"
    assert all(e["retryAt"] for e in waits)
    in_flight = max_in_flight(reqs, 0.1)
    assert in_flight <= 5 * 4, "at most --jobs (4) requests in flight per worker"
    for r in TEN_REPOS:
        assert pages_fetched_twice(reqs, r) == 0
    print(f"\n[item 6] budget 30/6s, 5 workers at --jobs 4, reserve from the group's concurrency: {len(reqs)} requests in {wall:.1f}s "
          f"({len(reqs) / 30:.1f} windows' worth), 0 refused, {len(waits)} rate_limited events, "
          f"at most {in_flight} requests in flight; {rows} rows checked")


def test_rate_limited_and_rate_limit_error_types(pipeline):
    """Item 6: both primary-limit error types (RATE_LIMITED when the budget
    is spent, RATE_LIMIT as some GitHub answers say it) make the worker wait
    for the reset and carry on."""
    sim = pipeline.sim
    w = one_worker(pipeline)
    sim.post("/_sim/config", {"budget": 1000, "resetSeconds": 5})
    sim.post("/_sim/config", {"remaining": 0})  # the token's budget is spent already
    sim.post("/_sim/faults", {"repo": "solidjs/solid", "kind": "rate_limit_type", "count": 1})
    repos = ["preactjs/preact", "solidjs/solid"]
    assert pipeline.produce(*repos).returncode == 0
    pipeline.wait_terminal(repos, timeout=60)
    rows = check_exact(pipeline, repos)
    reqs = sim.get("/_sim/requests")
    assert [r for r in reqs if r.get("error") == "RATE_LIMITED"], "a RATE_LIMITED answer"
    assert [r for r in reqs if r.get("fault") == "rate_limit_type"], "a RATE_LIMIT answer"
    waits = log_lines(w, "primary rate limit: API rate limit exceeded")
    assert len(waits) >= 2, waits
    states = [e["status"] for e in progress_events(pipeline)]
    assert states.count("rate_limited") >= 2
    print(f"\n[item 6] RATE_LIMITED and RATE_LIMIT answers: {len(waits)} waits for the reset, "
          f"both jobs completed; {rows} rows checked")


def test_secondary_limit_waits_then_backs_off(pipeline):
    """Item 7: 403/429 with retry-after: wait as told, then exponentially
    longer with jitter; the "secondary rate limit" message without
    retry-after: the default wait (--secondary-wait-ms, GitHub says 60 s)."""
    sim = pipeline.sim
    a, b, c = "preactjs/preact", "aurelia/framework", "lit/lit"
    sim.post("/_sim/faults", [{"repo": a, "kind": "secondary", "retryAfter": 1, "count": 3},
                              {"repo": b, "kind": "429", "retryAfter": 1, "count": 1},
                              {"repo": c, "kind": "secondary", "count": 1}])
    one_worker(pipeline, "--secondary-wait-ms", "1500")
    assert pipeline.produce(a, b, c).returncode == 0
    pipeline.wait_terminal([a, b, c], timeout=90)
    rows = check_exact(pipeline, [a, b, c])
    base = 0.2  # BACKFILL_RETRY_BASE_MS in the harness
    ra = requests_of(sim, a)
    assert [r["status"] for r in ra[:4]] == [403, 403, 403, 200]
    gaps = [ra[i + 1]["t"] - ra[i]["t"] for i in range(3)]
    want = [1.0, 1.0 + base, 1.0 + 2 * base]  # told, then told + base * 2^(n-1) + jitter
    assert all(g >= w for g, w in zip(gaps, want)), f"gaps {gaps}, at least {want}"
    rb = requests_of(sim, b)
    assert [r["status"] for r in rb[:2]] == [429, 200] and rb[1]["t"] - rb[0]["t"] >= 1.0
    rc = requests_of(sim, c)
    assert [r["status"] for r in rc[:2]] == [403, 200] and rc[1]["t"] - rc[0]["t"] >= 1.5
    print(f"\n[item 7] secondary limit: gaps after 403 retry-after:1 x3: "
          f"{', '.join(f'{g:.2f}s' for g in gaps)} (minimum {want}); 429 retry-after:1: "
          f"{rb[1]['t'] - rb[0]['t']:.2f}s; message only: {rc[1]['t'] - rc[0]['t']:.2f}s "
          f"(default 1.5 s here); {rows} rows checked")


def test_server_errors_shrink_the_page_and_bad_bodies_are_retried(pipeline):
    """Item 8: 502/504/"Something went wrong" are retried with a smaller
    page; a truncated (non-JSON) body is a transient error, retried as is."""
    sim = pipeline.sim
    a, b, c = "sveltejs/svelte", "hotwired/turbo", "solidjs/solid"
    sim.post("/_sim/faults", [{"repo": a, "kind": "502", "count": 2},
                              {"repo": b, "kind": "something_went_wrong", "count": 1},
                              {"repo": b, "kind": "504", "count": 1},
                              {"repo": c, "kind": "malformed", "count": 2}])
    one_worker(pipeline)
    assert pipeline.produce(a, b, c).returncode == 0
    pipeline.wait_terminal([a, b, c], timeout=90)
    rows = check_exact(pipeline, [a, b, c])
    seq = {r: [(q["first"], q["status"], q.get("fault")) for q in requests_of(sim, r)]
           for r in (a, b, c)}
    assert seq[a][:3] == [(100, 502, "502"), (50, 502, "502"), (25, 200, None)], seq[a]
    assert [f for f, _, _ in seq[a][3:5]] == [50, 100], "the page grows back after success"
    assert seq[b][:3] == [(100, 200, "something_went_wrong"), (50, 504, "504"),
                          (25, 200, None)], seq[b]
    assert seq[c][:3] == [(100, 200, "malformed"), (100, 200, "malformed"),
                          (100, 200, None)], seq[c]
    print(f"\n[item 8] page sizes: 502,502 -> {[f for f, _, _ in seq[a]]}; "
          f"something-went-wrong,504 -> {[f for f, _, _ in seq[b]]}; truncated x2 -> "
          f"{[f for f, _, _ in seq[c]]}; {rows} rows checked")


def headers_of(m):
    return {k: v for k, v in m["headers"]}


def test_exhausted_retries_fail_the_job_to_the_dlq(pipeline):
    """Item 9: after 3 failed retries of one request the job ends failed,
    its last checkpoint and the reason go to the DLQ, and the worker moves
    on to the next job."""
    sim, doomed, after = pipeline.sim, "sim-80-0/doomed", "sveltejs/svelte"
    sim.post("/_sim/config", {"latencyMs": 100})
    w = one_worker(pipeline, "--page-size", "10")
    assert pipeline.produce(doomed).returncode == 0
    wait_for(lambda: sum(1 for r in requests_of(sim, doomed) if answered(r)) >= 2, 30,
             "two pages of the doomed job")
    sim.post("/_sim/faults", {"repo": doomed, "kind": "502", "count": 4})
    assert pipeline.produce(after).returncode == 0
    states = pipeline.wait_terminal([doomed, after], timeout=60)
    rows = check_exact(pipeline, [after])

    st = states[doomed]
    assert st["status"] == "failed", st
    assert "gave up after 3 retries" in st["error"] and "502" in st["error"], st
    fetched = st["processed"]
    assert fetched >= 20 and fetched % 10 == 0, st
    exp = sim.expected(doomed)["expected"]
    stored = pipeline.query(
        "SELECT p.number FROM pull_requests p JOIN repositories r ON r.id = p.repository_id"
        " WHERE r.name = 'doomed' ORDER BY p.number DESC")
    assert [n for (n,) in stored] == [p["number"] for p in exp[:fetched]], \
        "exactly the pull requests of the checkpointed pages"
    faulted = [r for r in requests_of(sim, doomed) if r.get("fault")]
    assert [(r["first"], r["status"]) for r in faulted] == [(10, 502), (5, 502), (5, 502),
                                                            (5, 502)]

    dlq = consume_raw(pipeline.kafka, pipeline.dlq_topic)
    assert len(dlq) == 1, dlq
    m, h = dlq[0], headers_of(dlq[0])
    jobs = consume_raw(pipeline.kafka, pipeline.jobs_topic)
    orig = [j for j in jobs if j["key"] == doomed.encode()]
    assert len(orig) == 1 and m["value"] == orig[0]["value"] and m["key"] == doomed.encode()
    assert "gave up after 3 retries" in h["dlq.reason"]
    assert h["dlq.source.topic"] == pipeline.jobs_topic
    assert (int(h["dlq.source.partition"]), int(h["dlq.source.offset"])) == \
        (orig[0]["partition"], orig[0]["offset"])
    cp = json.loads(h["dlq.checkpoint"])
    backfill_id = json.loads(orig[0]["value"])["id"]
    assert cp["id"] == backfill_id and cp["fetched"] == fetched and cp["cursor"]
    ev = [e for e in progress_events(pipeline) if e["backfillId"] == backfill_id]
    assert {e["cutoffDate"] for e in ev} == {cp["cutoff"]}
    assert w.p.poll() is None, "the worker is still running"
    print(f"\n[item 9] 4 x 502 after {fetched} PRs: job failed, DLQ message with the original "
          f"bytes, reason '{h['dlq.reason'][:60]}...', checkpoint fetched={cp['fetched']}; "
          f"{fetched} PRs kept; next job completed; {rows + len(stored)} rows checked")


def test_hung_github_never_hangs_a_worker(pipeline):
    """Item 10: a server that answers too slowly hits the total timeout, one
    that never accepts the connection hits the connect timeout; both are
    transient errors, retried, and the worker goes on."""
    sim, slow = pipeline.sim, "preactjs/preact"
    sim.post("/_sim/faults", {"repo": slow, "kind": "slow", "retryAfter": 5, "count": 2})
    w = one_worker(pipeline, "--http-timeout-ms", "1000")
    t0 = time.time()
    assert pipeline.produce(slow).returncode == 0
    pipeline.wait_terminal([slow], timeout=60)
    took = time.time() - t0
    rows = check_exact(pipeline, [slow])
    timeouts = log_lines(w, "Timeout was reached")
    assert len(timeouts) == 2, timeouts

    # A port whose accept queue is full: SYNs are dropped, connect hangs.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(hole.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    try:
        dead = start_with_env(pipeline, "backfill-consumer",
                              {"GITHUB_GRAPHQL_URL": f"http://127.0.0.1:{hole.getsockname()[1]}/graphql",
                               "BACKFILL_GROUP": "dead-" + pipeline.jobs_topic,
                               "BACKFILL_PROGRESS_TOPIC": pipeline.progress_topic + "-dead",
                               "BACKFILL_DLQ_TOPIC": pipeline.dlq_topic + "-dead"},
                              "--connect-timeout-ms", "500", "--http-timeout-ms", "60000",
                              "--retries", "1")
        t1 = time.time()
        fail = wait_for(lambda: log_lines(dead, "failed: gave up"), 30, "the job to fail")
        failed_after = time.time() - t1
        assert "failed: gave up after 1 retries" in fail[0] and "Timeout was reached" in fail[0]
        assert dead.p.poll() is None
    finally:
        for s in fillers + [hole]:
            s.close()
    print(f"\n[item 10] 2 answers slower (5 s) than --http-timeout-ms 1000: job completed in "
          f"{took:.1f}s; unreachable GitHub with --connect-timeout-ms 500: job failed after "
          f"{failed_after:.1f}s (incl. joining), worker alive; {rows} rows checked")


def test_token_never_leaks(pipeline, tmp_path):
    """Item 18: the GitHub token appears in no log line (any process, debug
    level), no event, no DLQ header or payload, no error stored in
    Postgres — also not a wrong token, also not one read from a file."""
    sim = pipeline.sim
    sim.post("/_sim/faults", [{"repo": "preactjs/preact", "kind": "502", "count": 4},
                              {"repo": "lit/lit", "kind": "secondary", "retryAfter": 1},
                              {"repo": "solidjs/solid", "kind": "malformed"},
                              {"repo": "sveltejs/svelte", "kind": "rate_limit_type"}])
    sim.post("/_sim/config", {"resetSeconds": 3})
    pipeline.start("backfill-sink", "-v", "-v")
    token_file = tmp_path / "token"
    token_file.write_text(SECRET_TOKEN + "\n")
    start_with_env(pipeline, "backfill-consumer", {"GITHUB_TOKEN": None,
                                                   "GITHUB_TOKEN_FILE": str(token_file)}, "-v", "-v")
    for _ in range(2):
        pipeline.start("backfill-consumer", "-v", "-v")
    repos = TEN_REPOS + ["ghost-org/does-not-exist"]
    out = pipeline.produce(*repos)
    assert out.returncode == 0
    states = pipeline.wait_terminal(repos, timeout=120)
    assert states["preactjs/preact"]["status"] == "failed"
    # a consumer with a wrong token, on its own group and topics: GitHub
    # rejects it, it is taken out of the pool, no job is failed for it
    wrong = "ghp_WRONG" + SECRET_TOKEN[8:][::-1]
    bad = start_with_env(pipeline, "backfill-consumer",
                         {"GITHUB_TOKEN": wrong, "BACKFILL_GROUP": "wrong-" + pipeline.jobs_topic,
                          "BACKFILL_PROGRESS_TOPIC": pipeline.progress_topic + "-wrong",
                          "BACKFILL_DLQ_TOPIC": pipeline.dlq_topic + "-wrong"}, "-v", "-v")
    wait_for(lambda: log_lines(bad, "no valid GitHub credential left"), 60,
             "the wrong-token consumer to stop taking jobs")
    assert len(log_lines(bad, "GitHub rejected credential 1 of 1: Bad credentials")) == 1

    texts = {"logs": pipeline.logs() + out.stdout + out.stderr}
    for topic in (pipeline.jobs_topic, pipeline.progress_topic, pipeline.dlq_topic,
                  pipeline.progress_topic + "-wrong", pipeline.dlq_topic + "-wrong"):
        msgs = consume_raw(pipeline.kafka, topic)
        texts[topic] = "\n".join(repr(m) for m in msgs)
        assert msgs or topic.endswith("-wrong"), topic
    texts["postgres"] = "\n".join(repr(r) for t in ("pull_requests", "repositories",
                                                    "progressive_backfill_state",
                                                    "backfill_chunks", "contributors",
                                                    "kafka_offsets")
                                  for r in pipeline.query(f"SELECT row_to_json(x)::text FROM {t} x"))
    dlq = consume_raw(pipeline.kafka, pipeline.dlq_topic)
    assert any(k == "dlq.reason" for m in dlq for k, _ in m["headers"])
    for where, text in texts.items():
        for secret in (SECRET_TOKEN, wrong, SECRET_TOKEN[4:], wrong[4:]):
            assert secret not in text, f"a token in {where}"
    lines = texts["logs"].count("\n")
    print(f"\n[item 18] token searched in {lines} log lines (-vv, 5 processes, token from env, "
          f"file and a wrong one), {sum(t.count(chr(10)) for k, t in texts.items() if k != 'logs')} "
          f"messages/rows on 5 topics and Postgres: not found")
