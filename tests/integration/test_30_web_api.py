"""Issue 11: backfill-web's HTTP API on real Kafka and Postgres — the
original load test's call, the unticked box, every kind of bad input,
the access token, cancel and retry, and the event stream's resume."""
import json
import os
import socket
import subprocess
import time

from harness import (SECRET_TOKEN, TEN_REPOS, SseReader, binary, check_rows, http_json,
                     wait_for)

UNKNOWN = "ghost-org/does-not-exist"


def jobs_on_topic(pipeline):
    return [m for m in pipeline.consume(pipeline.jobs_topic)]


def raw_post_headers_only(base, path, length, extra_headers):
    """POSTs only the headers of a body of `length` bytes and returns the
    status the server answers without waiting for the body."""
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
                   f"{extra_headers}\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else head


def start(pipeline, consumers=5, web_args=(), web_env=None):
    pipeline.start("backfill-sink")
    for _ in range(consumers):
        pipeline.start("backfill-consumer")
    web = pipeline.start_web(*web_args, env=web_env)
    # the sink creates the tables; the API answers 503 until then
    wait_for(lambda: http_json("GET", web.url + "/healthz")[0] == 200, 60, "a healthy web")
    return web


def test_bulk_add_of_the_load_test_ends_with_exact_rows(pipeline):
    """The original load test's one call queues ten repositories; every
    pull request of the simulator ends up stored, and the API reports it."""
    web = start(pipeline)
    entries = [f"https://github.com/{r}.git" if i % 3 == 0 else r for i, r in enumerate(TEN_REPOS)]
    t0 = time.monotonic()
    status, body, _ = http_json("POST", web.url + "/api/bulk-add",
                                {"repositories": entries, "includeBackfill": True})
    assert status == 200, body
    assert body["queued"] == 10 and body["invalid"] == 0 and body["failed"] == 0
    assert [r["repository"] for r in body["results"]] == TEN_REPOS
    assert all(r["status"] == "queued" and r["backfillId"] for r in body["results"])
    states = pipeline.wait_terminal(TEN_REPOS)
    wall = time.monotonic() - t0

    status, listing, _ = http_json("GET", web.url + "/api/backfills")
    assert status == 200
    rows = {r["repository"]: r for r in listing["backfills"]}
    for r in TEN_REPOS:
        exp = check_rows(pipeline, r)
        assert states[r]["status"] == "completed"
        assert rows[r]["status"] == "completed", rows[r]
        assert rows[r]["processed"] == len(exp["expected"])
        assert rows[r]["backfillId"] == next(x["backfillId"] for x in body["results"]
                                             if x["repository"] == r)
    # every job on the topic says where it came from
    jobs = jobs_on_topic(pipeline)
    assert len(jobs) == 10
    assert all(json.loads(j["payload"])["data"]["triggeredFrom"] == "bulk_add_ui" for j in jobs)

    # one repository with its chunk history; filters; the estimate
    st, one, _ = http_json("GET", web.url + "/api/backfills/SvelteJS/Svelte")
    assert st == 200 and one["repository"] == "sveltejs/svelte"
    assert sum(c["prCount"] for c in one["history"]) == one["processed"]
    st, done, _ = http_json("GET", web.url + "/api/backfills?status=completed&repository=lit/lit")
    assert st == 200 and [r["repository"] for r in done["backfills"]] == ["lit/lit"]
    assert http_json("GET", web.url + "/api/backfills?status=bogus")[0] == 400
    assert http_json("GET", web.url + "/api/backfills/nobody/nothing")[0] == 404
    st, est, _ = http_json("GET", web.url + "/api/estimate")
    assert st == 200 and est["samples"] == 10 and est["medianSeconds"] > 0 and est["parallel"] >= 1
    # one log line per request, never the token
    log = web.output()
    assert "POST /api/bulk-add 200" in log and SECRET_TOKEN not in pipeline.logs()
    print(f"\n[web] 10 repositories through POST /api/bulk-add: {wall:.1f}s to all completed; "
          f"estimate {est}")


def test_unticked_box_records_repositories_and_queues_nothing(pipeline):
    web = start(pipeline, consumers=1)
    st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                            {"repositories": ["lit/lit", "https://github.com/hotwired/turbo",
                                              "LIT/lit"], "includeBackfill": False})
    assert st == 200, body
    assert [r["status"] for r in body["results"]] == ["added", "added", "duplicate"]
    assert body["queued"] == 0 and body["added"] == 2 and body["duplicates"] == 1
    assert sorted(pipeline.query("SELECT lower(owner || '/' || name) FROM repositories")) == \
        [("hotwired/turbo",), ("lit/lit",)]
    assert jobs_on_topic(pipeline) == []
    st, listing, _ = http_json("GET", web.url + "/api/backfills?status=added")
    assert [r["repository"] for r in listing["backfills"]] == ["hotwired/turbo", "lit/lit"]
    assert pipeline.query("SELECT count(*) FROM progressive_backfill_state")[0][0] == 0


def test_bad_input_gets_a_4xx_and_queues_nothing(pipeline):
    web = start(pipeline, consumers=0)
    url = web.url + "/api/bulk-add"
    cases = [
        ("body over 1 MiB", dict(raw=b'{"repositories": ["' + b"a" * (1024 * 1024) + b'"]}'), 413),
        ("1,001 repositories", dict(body={"repositories": [f"o/r{i}" for i in range(1001)]}), 422),
        ("invalid JSON", dict(raw=b'{"repositories": ["a/b",'), 400),
        ("not an object", dict(body=["a/b"]), 400),
        ("wrong content type", dict(raw=b'{"repositories": ["a/b"]}',
                                    headers={"Content-Type": "text/plain"}), 415),
        ("form post", dict(raw=b"repositories=a/b",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        ("unknown field", dict(body={"repositories": ["a/b"], "repos": 1}), 422),
        ("repositories not an array", dict(body={"repositories": "a/b"}), 422),
        ("an entry not a string", dict(body={"repositories": ["a/b", 7]}), 422),
        ("no repositories", dict(body={"repositories": []}), 422),
        ("maxPRs a string", dict(body={"repositories": ["a/b"], "maxPRs": "200"}), 422),
        ("maxPRs out of range", dict(body={"repositories": ["a/b"], "maxPRs": 1001}), 422),
        ("sinceDays 0", dict(body={"repositories": ["a/b"], "sinceDays": 0}), 422),
        ("includeBackfill a string", dict(body={"repositories": ["a/b"],
                                                "includeBackfill": "yes"}), 422),
        ("duplicate key", dict(raw=b'{"repositories": ["a/b"], "repositories": ["c/d"]}'), 400),
        ("cross-site origin", dict(body={"repositories": ["a/b"]},
                                   headers={"Origin": "http://evil.example"}), 403),
        ("cross-site fetch", dict(body={"repositories": ["a/b"]},
                                  headers={"Sec-Fetch-Site": "cross-site"}), 403),
    ]
    for what, kw, want in cases:
        st, body, hdrs = http_json("POST", url, **kw)
        assert st == want, f"{what}: {st} {body}"
        assert isinstance(body, dict) and body.get("error"), f"{what}: no JSON error: {body}"
        assert hdrs["Content-Type"] == "application/json"
    # a client that waits (Expect: 100-continue) gets the 413 before sending
    # anything, and so does one declaring more than the server will read
    for extra in ("Expect: 100-continue\r\n", ""):
        status = raw_post_headers_only(web.url, "/api/bulk-add", 64 * 1024 * 1024, extra)
        assert status == 413, f"{extra!r}: {status}"
    st, body, hdrs = http_json("GET", url)
    assert st == 405 and "POST" in hdrs["Allow"]
    assert http_json("GET", web.url + "/nothing/here")[0] == 404
    # the same origin is fine; everything above queued and recorded nothing
    assert jobs_on_topic(pipeline) == []
    assert pipeline.query("SELECT count(*) FROM repositories")[0][0] == 0
    st, body, _ = http_json("POST", url, {"repositories": ["a/b"], "includeBackfill": False},
                            headers={"Origin": web.url})
    assert st == 200, body
    # invalid entries beside valid ones: 207, the valid ones recorded
    st, body, _ = http_json("POST", url, {"repositories": ["c/d", "<b>x</b>/y", "e/f/g"],
                                          "includeBackfill": False})
    assert st == 207 and [r["status"] for r in body["results"]] == ["added", "invalid", "invalid"]
    assert "owner" in body["results"][1]["error"] and body["invalid"] == 2
    # the server is still there, and every answer carries the strict policy
    st, _, hdrs = http_json("GET", web.url + "/")
    assert st == 200 and "script-src 'self'" in hdrs["Content-Security-Policy"]
    assert hdrs["X-Content-Type-Options"] == "nosniff"
    assert web.p.poll() is None


def test_access_token_guards_changes_and_wide_listen_needs_one(pipeline, workdir):
    token = "web-secret-token-1234"
    web = start(pipeline, consumers=0, web_env={"BACKFILL_WEB_TOKEN": token})
    url = web.url + "/api/bulk-add"
    body = {"repositories": ["a/b"], "includeBackfill": False}
    assert http_json("POST", url, body)[0] == 401
    assert http_json("POST", url, body, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert http_json("POST", url, body, headers={"Authorization": f"Bearer {token}"})[0] == 200
    assert http_json("GET", web.url + "/api/backfills")[0] == 200  # reading needs none
    assert token not in web.output()
    # beyond loopback without a token: refused, unless --insecure
    env = dict(pipeline.env)
    env.pop("BACKFILL_WEB_TOKEN", None)
    out = subprocess.run([binary("backfill-web"), "--listen", "0.0.0.0:0"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "BACKFILL_WEB_TOKEN" in out.stderr, out.stderr
    out = subprocess.run([binary("backfill-web"), "--listen", "nonsense"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "ADDR:PORT" in out.stderr
    out = subprocess.run([binary("backfill-web"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "/api/bulk-add" in out.stdout


def test_cancel_and_retry(pipeline):
    sim = pipeline.sim
    sim.post("/_sim/config", {"latencyMs": 300})
    web = start(pipeline, consumers=1)
    # 1000 PRs in the window: 10 pages of 300 ms, time enough to cancel it mid-run
    big, other = "sim-1000-0/big", "lit/lit"
    st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                            {"repositories": [big, other], "maxPRs": 1000})
    assert st == 200, body
    wait_for(lambda: http_json("GET", web.url + f"/api/backfills/{big}")[1]["status"] == "running",
             60, f"{big} to run")
    st, c, _ = http_json("POST", web.url + f"/api/backfills/{big}/cancel", {})
    assert st == 202 and c["status"] == "cancel_requested", c
    pipeline.wait_terminal([big, other])
    st, row, _ = http_json("GET", web.url + f"/api/backfills/{big}")
    assert row["status"] == "cancelled", row
    # cancel again: nothing to cancel; retry a completed one: refused
    assert http_json("POST", web.url + f"/api/backfills/{big}/cancel", {})[0] == 409
    assert http_json("POST", web.url + f"/api/backfills/{other}/retry", {})[0] == 409
    assert http_json("POST", web.url + "/api/backfills/nobody/nothing/retry", {})[0] == 404
    assert http_json("POST", web.url + f"/api/backfills/{big}/retry", raw=b"")[0] == 200
    sim.post("/_sim/config", {"latencyMs": 0})
    old = row["backfillId"]
    done = wait_for(lambda: (lambda r: r if r["backfillId"] != old and r["status"] == "completed"
                             else None)(http_json("GET", web.url + f"/api/backfills/{big}")[1]),
                    120, f"{big} retried")
    want = len(sim.expected(big, max_prs=1000)["expected"])
    stored = pipeline.query("SELECT count(*) FROM pull_requests p JOIN repositories r"
                            " ON r.id = p.repository_id WHERE r.name = 'big'")[0][0]
    assert done["processed"] == want == stored and done["total"] == 1000


def test_event_stream_resumes_after_a_reconnect_without_losing_an_event(pipeline):
    sim = pipeline.sim
    sim.post("/_sim/config", {"latencyMs": 150})
    web = start(pipeline, consumers=3, web_args=("--max-streams", "3"))
    first = SseReader(web.url + "/api/events")
    only_lit = SseReader(web.url + "/api/events?repository=LIT/lit")
    st, body, _ = http_json("POST", web.url + "/api/bulk-add", {"repositories": TEN_REPOS})
    assert st == 200
    wait_for(lambda: len(first.events) >= 8, 60, "some events")
    first.close()
    last = first.last_id()
    # a stream beyond --max-streams (3) is refused. The server frees the
    # closed one when a write to it fails, which may happen at any moment
    # of these three requests; until then it holds a slot. `only_lit` and
    # `extra` make at most three live streams with it, so `extra` is always
    # taken, and of the next two at most one fits whenever the slot frees.
    extra = SseReader(web.url + "/api/events")
    spare = SseReader(web.url + "/api/events")
    refused = SseReader(web.url + "/api/events")
    later = sorted((spare.status, refused.status))
    assert extra.status == 200 and later in ([200, 503], [503, 503]), \
        f"statuses {extra.status} {spare.status} {refused.status} with --max-streams 3"
    for s in (extra, spare, refused):
        s.close()
    time.sleep(1)  # events keep coming while no one listens

    def reconnect():
        r = SseReader(web.url + "/api/events", last_event_id=last)
        if r.status == 200:
            return r
        r.close()  # the closed streams' slots are not freed yet
        return None
    resumed = wait_for(reconnect, 20, "a free stream slot to resume on")
    pipeline.wait_terminal(TEN_REPOS)
    progress = [json.loads(m["payload"])["data"] for m in pipeline.consume(pipeline.progress_topic)
                if json.loads(m["payload"])["name"] == "backfill/progress.update"]
    want = {(d["backfillId"], d["seq"]) for d in progress} | \
        {(r["backfillId"], 0) for r in body["results"]}
    wait_for(lambda: {(d["backfillId"], d["seq"]) for _, ev, d, _ in first.events + resumed.events
                      if ev == "progress"} >= want, 30, "every event through the two streams")
    got = [(d["backfillId"], d["seq"]) for _, _, d, _ in first.events + resumed.events]
    assert len(got) == len(set(got)), "an event was sent twice across the reconnect"
    assert all(d["repository"].lower() == "lit/lit" for _, _, d, _ in only_lit.events)
    assert any(d["status"] == "completed" for _, _, d, _ in only_lit.events)
    # an id from another run: a reset, then live events
    stale = SseReader(web.url + "/api/events", last_event_id="1-5")
    wait_for(lambda: stale.events, 20, "a reset event")
    assert stale.events[0][1] == "reset"
    for s in (resumed, only_lit, stale):
        s.close()
    print(f"\n[web] event stream: {len(first.events)} events, reconnect after {last}, "
          f"{len(resumed.events)} more; {len(want)} progress updates, none lost or doubled")
