"""Issue 3, items 11 and 12: poison input.

11. Garbage on the jobs topic goes to the DLQ with its original bytes and
    reason/source headers, one log line each, and the valid jobs around it
    (same key, so the same partition) complete.
12. Text Postgres cannot store (\\u0000) and text jansson refuses (a lone
    surrogate escape, bad UTF-8) is cleaned, never fatal: in GitHub's
    answers (simulator -> consumer -> sink) and in events on the progress
    topic (sink alone)."""
import base64
import json
import os
import re
import subprocess
import time
import urllib.request
import uuid

from harness import (ENV_DIR, SECRET_TOKEN, binary, check_rows, consume_raw, create_topic, produce_raw,
                     wait_for)

BIG = 8 * 1024 * 1024  # max.message.bytes of the topics that take the 3 MB message
KEY = "poison/key"     # every message of a test on one partition, in order


def job(owner, name, **extra):
    data = {"owner": owner, "name": name, "maxPRs": 200, "sinceDays": 30,
            "triggeredFrom": "test_12"}
    data.update(extra)
    return {"name": "repository/backfill.initial", "id": str(uuid.uuid4()),
            "ts": int(time.time() * 1000), "v": 1, "data": data}


def raw(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def megabytes_of_noise(n):
    """n bytes of base64 of random bytes: lz4 cannot shrink it."""
    return base64.b64encode(os.urandom(n * 3 // 4 + 3))[:n].decode()


def poison_cases():
    """(what, bytes, substring the dlq.reason header must contain)."""
    ok = job("lit", "lit")
    env = raw(ok)
    big = job("lit", "lit", triggeredFrom=megabytes_of_noise(3 * 1024 * 1024))
    return [
        ("not JSON", b"this is not JSON {", "not valid JSON"),
        ("truncated JSON", env[: len(env) // 2], "not valid JSON"),
        ("whitespace only", b"   ", "not valid JSON"),
        ("not UTF-8", env.replace(b'"lit","name"', b'"l\xffit","name"'), "not valid JSON"),
        ("Latin-1 text", env.replace(b'"test_12"', b'"caf\xe9"'), "not valid JSON"),
        ("JSON array", b"[1,2,3]", "not a repository/backfill.initial envelope"),
        ("other event", raw({**ok, "name": "backfill/progress.update"}),
         "not a repository/backfill.initial envelope"),
        ("duplicate key", env[:-1] + b',"v":1}', "duplicate"),
        ("no data", raw({k: v for k, v in ok.items() if k != "data"}), "data must be an object"),
        ("version 2", raw({**ok, "v": 2}), "v must be 1"),
        ("maxPRs a string", raw(job("lit", "lit", maxPRs="200")), "data.maxPRs must be an integer"),
        ("owner a number", raw(job(42, "lit")), "must be strings"),
        ("maxPRs out of range", raw(job("lit", "lit", maxPRs=5000)), "data.maxPRs out of range"),
        ("sinceDays zero", raw(job("lit", "lit", sinceDays=0)), "data.sinceDays out of range"),
        ("invalid owner", raw(job("-bad-", "lit")), "not a valid GitHub owner"),
        ("invalid name", raw(job("lit", "..")), "not a valid GitHub repository name"),
        ("NUL in owner", raw(job("lit\u0000evil", "lit")), "data.owner contains a NUL"),
        ("NUL in triggeredFrom", raw(job("lit", "lit", triggeredFrom="a\u0000b")),
         "data.triggeredFrom contains a NUL"),
        ("control character in id", raw({**ok, "id": "ab\u0001cd"}), "id must be a string"),
        ("lone surrogate", env.replace(b'"test_12"', b'"\\ud800"'), "not valid JSON"),
        ("3 MB", raw(big), "exceeds the 65536-byte job limit"),
    ]


def headers_of(m):
    return dict(m["headers"])


def committed_offsets(kafka, group):
    """{(topic, partition): committed offset} of a consumer group."""
    out = subprocess.run(
        ["bash", os.path.join(ENV_DIR, "kafka-run-class.sh"),
         "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
         "--bootstrap-server", kafka, "--describe", "--group", group],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == group and f[3].isdigit():
            got[(f[1], int(f[2]))] = int(f[3])
    return got


def count_rows(pipeline, repo):
    """check_rows, returning how many pull requests were checked."""
    return len(check_rows(pipeline, repo)["expected"])


def test_poison_jobs_go_to_dlq_and_valid_jobs_around_them_complete(pipeline):
    kafka = pipeline.kafka
    create_topic(kafka, pipeline.jobs_topic, 12, max_message_bytes=BIG)
    create_topic(kafka, pipeline.dlq_topic, 1, max_message_bytes=BIG)
    valid_repos = ["lit/lit", "aurelia/framework", "preactjs/preact", "solidjs/solid"]
    cases = poison_cases()
    # valid, 5 poison, valid, 5 poison, ... valid: all with one key
    msgs, poison_at, per = [], [], -(-len(cases) // (len(valid_repos) - 1))
    for i, repo in enumerate(valid_repos):
        msgs.append({"key": KEY, "value": raw(job(*repo.split("/"))),
                     "headers": [("event", "repository/backfill.initial")]})
        for what, value, reason in cases[i * per:(i + 1) * per]:
            poison_at.append(len(msgs))
            msgs.append({"key": KEY, "value": value, "headers": [("x-origin", "test-12")],
                         "what": what, "reason": reason})

    pipeline.start("backfill-sink")
    consumer = pipeline.start("backfill-consumer")
    started = time.monotonic()
    produce_raw(kafka, pipeline.jobs_topic, msgs, f"message.max.bytes={BIG + 65536}")

    states = pipeline.wait_terminal(valid_repos, timeout=120)
    rows = 0
    for repo in valid_repos:
        assert states[repo]["status"] == "completed", f"{repo}: {states[repo]}"
        rows += count_rows(pipeline, repo)
    dlq = wait_for(lambda: (lambda d: d if len(d) >= len(cases) else None)(
        consume_raw(kafka, pipeline.dlq_topic)), 60, "every poison message in the DLQ")
    wall = time.monotonic() - started

    jobs = consume_raw(kafka, pipeline.jobs_topic)
    assert len(jobs) == len(msgs) and len({m["partition"] for m in jobs}) == 1
    assert [m["value"] for m in jobs] == [m["value"] for m in msgs]
    part = jobs[0]["partition"]
    assert len(dlq) == len(cases), [headers_of(d).get("dlq.reason") for d in dlq]
    for d, i in zip(dlq, poison_at):
        src, h = msgs[i], headers_of(d)
        what = src["what"]
        assert d["value"] == src["value"], f"{what}: DLQ bytes differ from the original"
        assert d["key"] == KEY.encode(), what
        assert src["reason"] in h.get("dlq.reason", ""), f"{what}: reason {h.get('dlq.reason')!r}"
        assert h.get("x-origin") == "test-12", f"{what}: original headers not kept"
        assert h.get("dlq.source.topic") == pipeline.jobs_topic, what
        assert h.get("dlq.source.partition") == str(part), what
        assert h.get("dlq.source.offset") == str(jobs[i]["offset"]), what
        assert "dlq.truncated" not in h, what
        assert all(0x20 <= ord(c) < 0x7f for c in h["dlq.reason"]), f"{what}: reason not ASCII"

    # one log line per poison message, naming its offset; nothing worse
    log = consumer.output()
    lines = [ln for ln in log.splitlines() if "poison message at" in ln]
    assert len(lines) == len(cases), "\n".join(lines)
    for i in poison_at:
        tag = f"{pipeline.jobs_topic}[{part}]@{jobs[i]['offset']}:"
        assert sum(tag in ln for ln in lines) == 1, tag
    others = [ln for ln in log.splitlines()  # librdkafka's own (broker start-up) aside
              if (" WARN " in ln or " ERROR " in ln) and "poison message at" not in ln
              and " librdkafka " not in ln]
    assert not others, "\n".join(others)

    # every message, poison or not, is committed: the partition is done
    consumer.stop()
    committed = committed_offsets(kafka, pipeline.env["BACKFILL_GROUP"])
    assert committed.get((pipeline.jobs_topic, part)) == len(msgs), committed
    print(f"\n[poison] {len(cases)} poison messages (largest {len(cases[-1][1])} bytes) between "
          f"{len(valid_repos)} valid jobs on partition {part}: all dead-lettered byte for byte, "
          f"{rows} pull requests stored, {wall:.1f}s; e.g.\n  {lines[0]}\n  {lines[-1]}")


def test_poison_too_large_for_the_dlq_topic_is_cut_not_lost(pipeline):
    """The DLQ topic is created by the consumer with the broker's default
    max.message.bytes (1 MB); the jobs topic takes 8 MB. A 3 MB message
    goes to the DLQ as its first 512 KiB, marked, and the partition goes on."""
    kafka = pipeline.kafka
    create_topic(kafka, pipeline.jobs_topic, 12, max_message_bytes=BIG)
    big = raw(job("lit", "lit", triggeredFrom=megabytes_of_noise(3 * 1024 * 1024)))
    msgs = [{"key": KEY, "value": big, "headers": [("x-origin", "test-12")]},
            {"key": KEY, "value": raw(job("aurelia", "framework"))}]
    pipeline.start("backfill-sink")
    consumer = pipeline.start("backfill-consumer")
    produce_raw(kafka, pipeline.jobs_topic, msgs, f"message.max.bytes={BIG + 65536}")

    states = pipeline.wait_terminal(["aurelia/framework"], timeout=90)
    assert states["aurelia/framework"]["status"] == "completed"
    rows = count_rows(pipeline, "aurelia/framework")
    dlq = wait_for(lambda: consume_raw(kafka, pipeline.dlq_topic), 30, "the dead letter")
    assert len(dlq) == 1
    h = headers_of(dlq[0])
    assert h.get("dlq.truncated") == "true"
    assert h.get("dlq.original.bytes") == str(len(big))
    assert "exceeds the 65536-byte job limit" in h.get("dlq.reason", "")
    assert h.get("dlq.source.offset") == "0" and h.get("x-origin") == "test-12"
    assert dlq[0]["value"] == big[: 512 * 1024]
    log = consumer.output()
    assert sum("poison message at" in ln for ln in log.splitlines()) == 1
    assert sum("dead letter of" in ln for ln in log.splitlines()) == 1
    print(f"\n[poison] {len(big)}-byte message refused by the DLQ topic: sent as its first "
          f"{len(dlq[0]['value'])} bytes with dlq.truncated; next job stored {rows} PRs")


# --- item 12 ---------------------------------------------------------------

LONE = re.compile("[\ud800-\udfff]")


def clean_text(s):
    """What the pipeline must store for GitHub text s (as Python decoded
    it): NULs dropped, lone surrogates replaced by U+FFFD."""
    return None if s is None else LONE.sub("\ufffd", s.replace("\x00", ""))


def github_pull_requests(sim, repo, query):
    """Every pull request of repo as the simulator serves it (title, body)."""
    owner, name = repo.split("/")
    out, after = {}, None
    while True:
        body = json.dumps({"query": query, "variables": {
            "owner": owner, "name": name, "first": 100, "after": after}}).encode()
        req = urllib.request.Request(sim.url + "/graphql", data=body, headers={
            "Authorization": f"bearer {SECRET_TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            conn = json.loads(r.read())["data"]["repository"]["pullRequests"]
        for n in conn["nodes"]:
            out[n["number"]] = (n["title"], n["body"])
        if not conn["pageInfo"]["hasNextPage"]:
            return out
        after = conn["pageInfo"]["endCursor"]


def test_nul_and_lone_surrogates_from_github_are_cleaned_end_to_end(pipeline):
    sim = pipeline.sim
    sim.post("/_sim/config", {"nulText": True, "surrogateText": True})
    repos = ["sveltejs/svelte", "emberjs/ember.js", "hotwired/turbo", "solidjs/solid",
             "lit/lit", "preactjs/preact"]
    pipeline.start("backfill-sink")
    for _ in range(2):
        pipeline.start("backfill-consumer")
    out = pipeline.produce(*repos)
    assert out.returncode == 0, out.stderr
    states = pipeline.wait_terminal(repos, timeout=120)

    # not one retry or failure: a page the consumer could not parse would be
    # fetched again (transient error), so each page fetched once proves it
    requests = sim.get("/_sim/requests")
    assert all(r["status"] == 200 for r in requests)
    for repo in repos:
        assert states[repo]["status"] == "completed", f"{repo}: {states[repo]}"
        assert sim.get("/_sim/stats")["by_repo"][repo] == sim.expected(repo)["min_pages"]

    query = subprocess.run([binary("backfill-consumer"), "--print-query"], capture_output=True,
                           text=True, check=True).stdout
    checked = nul = lone = 0
    for repo in repos:
        gh = github_pull_requests(sim, repo, query)
        rows = pipeline.query(
            "SELECT p.number, p.title, p.body FROM pull_requests p"
            " JOIN repositories r ON r.id = p.repository_id"
            " WHERE lower(r.owner) = lower(%s) AND lower(r.name) = lower(%s)", *repo.split("/"))
        assert len(rows) == len(sim.expected(repo)["expected"]) == states[repo]["processed"]
        for number, title, body in rows:
            t, b = gh[number]
            nul += "\x00" in t
            lone += bool(LONE.search(t))
            assert title == clean_text(t), f"{repo}#{number}: title {title!r}"
            assert body == clean_text(b), f"{repo}#{number}: body differs"
            checked += 1
    assert nul > 10 and lone > 10, (nul, lone)
    print(f"\n[poison] {checked} pull requests checked: {nul} titles with NUL, {lone} with a lone "
          f"surrogate, all stored cleaned; {len(requests)} API requests, none repeated")


def pr_event(repo, backfill_id, seq, prs):
    owner, name = repo.split("/")
    return {"name": "backfill/pull_requests", "id": str(uuid.uuid4()), "ts": 1, "v": 1,
            "data": {"repository": repo, "owner": owner, "name": name,
                     "backfillId": backfill_id, "seq": seq, "chunk": 1,
                     "startedAt": int(time.time() * 1000), "pullRequests": prs}}


def pr_record(number, title, body, login="octocat"):
    return {"githubId": str(900000 + number), "number": number, "title": title, "body": body,
            "state": "open", "draft": False, "merged": False,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-02T00:00:00Z",
            "closedAt": None, "mergedAt": None, "additions": 1, "deletions": 0,
            "changedFiles": 1, "baseBranch": "main", "headBranch": "fix",
            "url": f"https://github.com/o/r/pull/{number}",
            "author": {"login": login, "githubId": 42, "avatarUrl": None, "isBot": False}}


def test_sink_cleans_text_postgres_cannot_store(pipeline):
    """Events written by anything (not only our consumer) may carry \\u0000,
    a lone surrogate escape or raw bytes that are not UTF-8: the sink
    stores the rest of the text and never skips or dies on them."""
    repo = "clean-org/clean-repo"
    bid = str(uuid.uuid4())
    prs = [pr_record(1, "NUL\u0000title", "body with \u0000 NUL"),
           pr_record(2, "lone \ud800 high", "lone low \udc00 in body"),
           pr_record(3, "BAD_UTF8_TITLE", "BAD_UTF8_BODY"),
           pr_record(4, "pair \U0001F680 ok", "fine")]
    text = json.dumps(pr_event(repo, bid, 1, prs), separators=(",", ":"))  # ASCII, \u escapes
    value = (text.encode().replace(b"BAD_UTF8_TITLE", b"caf\xe9 \xff title")
             .replace(b"BAD_UTF8_BODY", b"\xed\xa0\x80 encoded surrogate"))
    garbage = b'{"name":"backfill/pull_requests","data":{"repository":7}}'
    sink = pipeline.start("backfill-sink")
    wait_for(lambda: "assigned" in sink.output(), 30, "the sink to join")
    produce_raw(pipeline.kafka, pipeline.progress_topic,
                [{"key": repo, "value": value}, {"key": repo, "value": garbage},
                 {"key": repo, "value": raw(pr_event(repo, bid, 2, [pr_record(5, "after", "x")]))}])
    rows = wait_for(lambda: (lambda r: r if len(r) == 5 else None)(pipeline.query(
        "SELECT number, title, body FROM pull_requests ORDER BY number")), 30, "5 rows")
    r = "\ufffd"
    assert rows == [(1, "NULtitle", "body with  NUL"),
                    (2, f"lone {r} high", f"lone low {r} in body"),
                    (3, f"caf{r} {r} title", f"{r}{r}{r} encoded surrogate"),
                    (4, "pair \U0001F680 ok", "fine"),
                    (5, "after", "x")], rows
    log = sink.output()
    assert "replaced by U+FFFD" in log and "skipping bad event" in log
    assert " ERROR " not in log
