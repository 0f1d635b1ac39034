"""Issue 3, items 13-15: the sink under faults.

13. kill -9 mid-batch, several times, and restart: every event takes effect
    exactly once (each offset is in exactly one committed batch), the rows
    equal those of an undisturbed sink, kafka_offsets equal the end offsets.
14. Postgres stopped mid-run (a dedicated server, not the session one): the
    sink pauses, retries with backoff, resumes from the stored offsets and
    loses nothing.
15. Replayed, duplicated and stale events (same backfillId and seq, older
    seq, older data) change nothing, not even a timestamp; progress never
    goes backwards. An event Postgres refuses inside a big batch is skipped
    and the rest of the batch lands."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import psycopg

from harness import (ENV_DIR, TEN_REPOS, Pipeline, Proc, Simulator, binary, check_rows, consume_raw,
                     create_topic, describe_group, end_offsets, produce_raw, table_dump, wait_for)

PARTITIONS = 12
COMMITTED = re.compile(r"committed a batch of (\d+) events: offsets((?: \[\d+\] \d+\.\.\d+)*)")
RESUMED = re.compile(r"\[(\d+)\]: resuming at offset (\d+) stored in Postgres")


# --- helpers ---------------------------------------------------------------

def stored_offsets(db_url, group):
    try:
        rows = table_dump(db_url, "SELECT partition, next_offset FROM kafka_offsets"
                                  f" WHERE consumer_group = '{group}'")
    except psycopg.Error:
        return {}
    return dict(rows)


def caught_up(pipeline, db_url=None, group=None):
    """True once the sink stored, for every partition with messages, the
    topic's end offset (and nothing for empty ones)."""
    ends = {p: e for p, e in end_offsets(pipeline.kafka, pipeline.progress_topic,
                                         PARTITIONS).items() if e > 0}
    got = stored_offsets(db_url or pipeline.db_url, group or pipeline.env["BACKFILL_SINK_GROUP"])
    return ends if got == ends else None


def snapshot(db_url):
    """Everything the sink wrote, without our own clocks and surrogate ids,
    so two databases fed the same topic can be compared."""
    q = {
        "repositories": "SELECT owner, name, github_id FROM repositories ORDER BY 1, 2",
        "contributors": "SELECT github_id, username, avatar_url, is_bot FROM contributors"
                        " ORDER BY 1",
        "pull_requests": """
            SELECT r.owner, r.name, p.number, p.github_id, p.title, p.body, p.state,
                   c.github_id, p.created_at, p.updated_at, p.closed_at, p.merged_at, p.merged,
                   p.draft, p.additions, p.deletions, p.changed_files, p.base_branch,
                   p.head_branch, p.html_url, p.backfill_id
              FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
              LEFT JOIN contributors c ON c.id = p.author_id ORDER BY 1, 2, 3""",
        "state": """
            SELECT r.owner, r.name, s.backfill_id, s.status, s.event_status, s.total_prs,
                   s.processed_prs, s.last_processed_cursor, s.error, s.metadata::text,
                   s.last_seq, s.started_at, s.finished_at IS NOT NULL,
                   s.last_processed_at IS NOT NULL
              FROM progressive_backfill_state s JOIN repositories r ON r.id = s.repository_id
             ORDER BY 1, 2""",
        "chunks": """
            SELECT r.owner, r.name, b.backfill_id, b.chunk_number, b.pr_count, b.processed_prs,
                   b.cursor, b.api_requests, b.api_points
              FROM backfill_chunks b JOIN repositories r ON r.id = b.repository_id
             ORDER BY 1, 2, 3, 4""",
    }
    return {k: table_dump(db_url, sql) for k, sql in q.items()}


def full_dump(db_url):
    """Every row and column (timestamps included) of every table the events
    write; kafka_offsets aside."""
    return {t: table_dump(db_url, f"SELECT * FROM {t} ORDER BY id")
            for t in ("repositories", "contributors", "pull_requests",
                      "progressive_backfill_state", "backfill_chunks")}


def check_against_simulator(pipeline, repos):
    """Each repository's pull requests and state row are exactly what a
    correct run stores. Returns the number of pull-request rows checked."""
    total = 0
    states = pipeline.states()
    for repo in repos:
        n = len(check_rows(pipeline, repo)["expected"])
        st = states[repo.lower()]
        assert st["status"] == "completed" and st["processed"] == n, f"{repo}: {st}"
        total += n
    assert pipeline.query("SELECT count(*) FROM pull_requests")[0][0] == total
    assert pipeline.query("SELECT coalesce(sum(pr_count), 0) FROM backfill_chunks")[0][0] == total
    return total


def check_state_seqs(pipeline):
    """Each state row holds its backfill's newest seq from the topic."""
    newest = {}
    for m in consume_raw(pipeline.kafka, pipeline.progress_topic):
        v = json.loads(m["value"])
        if v["name"] == "backfill/progress.update":
            d = v["data"]
            newest[d["backfillId"]] = max(newest.get(d["backfillId"], 0), d["seq"])
    rows = pipeline.query("SELECT backfill_id, last_seq, event_status FROM progressive_backfill_state")
    assert rows and all(seq == newest[bid] and st == "completed" for bid, seq, st in rows), rows
    return newest


def reference_snapshot(pipeline, admin_url):
    """Runs an undisturbed sink over the same progress topic into a fresh
    database on admin_url's server; returns its snapshot."""
    tag = uuid.uuid4().hex[:8]
    dbname = f"ref_{tag}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + dbname
    env = dict(pipeline.env, DATABASE_URL=url, BACKFILL_SINK_GROUP=f"ref-{tag}")
    ref = Proc([binary("backfill-sink")], env, os.path.join(pipeline.workdir, f"ref-{tag}.log"))
    try:
        wait_for(lambda: caught_up(pipeline, url, f"ref-{tag}"), 60, "the reference sink")
        return snapshot(url)
    finally:
        assert ref.stop() == 0
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def committed_ranges(logs):
    """{partition: [(first, last), ...]} of every batch the sink logged as
    committed (needs -v)."""
    ranges = {}
    for m in COMMITTED.finditer(logs):
        for p, a, b in re.findall(r"\[(\d+)\] (\d+)\.\.(\d+)", m.group(2)):
            ranges.setdefault(int(p), []).append((int(a), int(b)))
    return ranges


def resumed_at(logs):
    """{(partition, offset)} where a sink (re)started from offsets stored in
    Postgres (needs -v)."""
    return {(int(p), int(o)) for p, o in RESUMED.findall(logs)}


def check_exactly_once(ranges, ends, resumes):
    """Every offset of every partition is in exactly one committed batch.
    A sink killed after Postgres committed its batch but before it logged
    that leaves a gap in the log; the gap counts as committed once only if
    the next sink resumed exactly at its end from the offsets stored in
    Postgres (which commit atomically with the rows)."""
    for p, end in ends.items():
        covered = sorted(ranges.get(p, []))
        pos = 0
        for a, b in covered:
            assert a <= pos or (p, a) in resumes, \
                f"partition {p}: batch {a}..{b} after {pos - 1}: offsets never committed"
            assert a >= pos, f"partition {p}: batch {a}..{b} after {pos - 1}: applied twice"
            pos = b + 1
        assert pos == end or (p, end) in resumes, \
            f"partition {p}: committed up to {pos}, end offset {end}"
    assert set(ranges) <= set(ends)


def sink_backend(pipeline):
    """(pid, state, wait_event_type, in transaction) of the sink's Postgres
    session, or None."""
    rows = table_dump(pipeline.pg_admin_url,
                      "SELECT pid, state, wait_event_type, xact_start IS NOT NULL"
                      " FROM pg_stat_activity WHERE application_name = 'backfill-sink'"
                      f" AND datname = '{pipeline.dbname}' AND backend_type = 'client backend'")
    return rows[0] if len(rows) == 1 else None


def start_run(pipeline, repos, consumers=3, *consumer_args):
    for _ in range(consumers):
        pipeline.start("backfill-consumer", *consumer_args)
    out = pipeline.produce(*repos)
    assert out.returncode == 0, out.stderr


# --- 13 --------------------------------------------------------------------

def test_sink_killed_mid_batch_applies_every_event_exactly_once(pipeline, postgres):
    repos = TEN_REPOS
    pipeline.sim.post("/_sim/config", {"latencyMs": 100})
    # static membership: a restarted sink gets its partitions back at once
    sink_args = ["-v", "--batch-size", "50", "--batch-ms", "1000", "--batch-idle-ms", "0",
                 "-X", f"group.instance.id=sink-{uuid.uuid4().hex[:8]}"]
    sink = pipeline.start("backfill-sink", *sink_args)
    t0 = time.monotonic()
    start_run(pipeline, repos, 3, "--page-size", "4", "--chunk-pause-ms", "100")
    group = pipeline.env["BACKFILL_SINK_GROUP"]

    def stored():
        return sum(stored_offsets(pipeline.db_url, group).values())

    kills, recover = [], []
    # 1-2: the sink provably inside a batch: blocked by a lock the test holds
    #      on pull_requests (mid-stream) or kafka_offsets (all events applied,
    #      offsets not yet written); 3-4: wherever it happens to be.
    for how in ("pull_requests", "kafka_offsets", "anywhere", "anywhere"):
        base = stored()
        wait_for(lambda: stored() >= base + 30, 60, "the sink to store 30 more events")
        if how != "anywhere":
            blocker = psycopg.connect(pipeline.db_url)
            blocker.execute(f"LOCK TABLE {how} IN SHARE MODE")
            backend = wait_for(lambda: (lambda b: b if b and b[2] == "Lock" else None)(
                sink_backend(pipeline)), 30, f"the sink to block on {how}")
        else:
            backend = wait_for(lambda: (lambda b: b if b and b[3] else None)(
                sink_backend(pipeline)), 30, "the sink inside a transaction")
        at = stored()
        sink.p.kill()  # SIGKILL
        sink.p.wait()
        sink.expect_clean_exit = False
        if how != "anywhere":
            blocker.rollback()
            blocker.close()
        kills.append((how, at, backend[1]))
        restarted = time.monotonic()
        sink = pipeline.start("backfill-sink", *sink_args)
        wait_for(lambda: COMMITTED.search(sink.output()), 60, "the restarted sink's first batch")
        recover.append(time.monotonic() - restarted)

    pipeline.wait_terminal(repos, timeout=120)
    ends = wait_for(lambda: caught_up(pipeline), 60, "the sink to reach the end offsets")
    wall = time.monotonic() - t0
    assert sink.stop() == 0

    events = sum(ends.values())
    check_exactly_once(committed_ranges(pipeline.logs()), ends, resumed_at(pipeline.logs()))
    rows = check_against_simulator(pipeline, repos)
    check_state_seqs(pipeline)
    assert snapshot(pipeline.db_url) == reference_snapshot(pipeline, postgres), \
        "rows differ from those of an undisturbed sink"
    print(f"\n[sink kill -9] {events} events, {len(kills)} kills "
          f"({', '.join(f'{h} at {a} stored, backend {s}' for h, a, s in kills)}); "
          f"first batch after restart within {max(recover):.1f}s; every offset in exactly one "
          f"committed batch; {rows} pull requests equal the undisturbed sink's; {wall:.1f}s")


def test_restarted_sink_brings_the_groups_offsets_up_to_postgres(pipeline):
    """A sink killed after its Postgres COMMIT and before its Kafka commit
    leaves the group's committed offsets behind the ones stored with the
    rows; on a partition that gets no new event, the lag would show those
    events for ever. Made here by moving the stopped sink's group back to
    the start of the topic: the restarted sink resumes from Postgres,
    applies nothing again, and commits the stored offsets to Kafka."""
    repos = TEN_REPOS[:4]
    sink = pipeline.start("backfill-sink")
    start_run(pipeline, repos, 2)
    pipeline.wait_terminal(repos)
    ends = wait_for(lambda: caught_up(pipeline), 60, "the sink to store the end offsets")
    assert sink.stop() == 0
    group, topic = pipeline.env["BACKFILL_SINK_GROUP"], pipeline.progress_topic
    out = subprocess.run(["bash", os.path.join(ENV_DIR, "kafka-run-class.sh"),
                          "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                          "--bootstrap-server", pipeline.kafka, "--reset-offsets", "--to-earliest",
                          "--execute", "--group", group, "--topic", topic],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    behind = describe_group(pipeline.kafka, group)
    assert all(behind[(topic, p)]["current"] == 0 for p in ends), behind
    before = snapshot(pipeline.db_url)

    sink = pipeline.start("backfill-sink", "-v")

    def committed_up_to_postgres():
        now = describe_group(pipeline.kafka, group)
        return now if all(now[(topic, p)]["current"] == e for p, e in ends.items()) else None
    now = wait_for(committed_up_to_postgres, 60, "the group's offsets to reach Postgres's",
                   interval=1)
    resumed = {int(p): int(o) for p, o in RESUMED.findall(sink.output())}
    assert resumed == ends, (resumed, ends)
    assert not COMMITTED.search(sink.output()), "an event was read again"
    assert snapshot(pipeline.db_url) == before
    assert sink.stop() == 0
    print(f"\n[sink offsets] {len(ends)} partitions, {sum(ends.values())} events: the restarted "
          f"sink committed Postgres's offsets, lag {sum(r['lag'] or 0 for r in now.values())}")


# --- 14 --------------------------------------------------------------------

def test_postgres_outage_sink_pauses_retries_and_loses_nothing(kafka, postgres, workdir):
    pgdir = tempfile.mkdtemp(prefix="backfill-pg-outage-", dir="/tmp")
    pg = os.path.join(ENV_DIR, "postgres.sh")

    def pgctl(cmd):
        out = subprocess.run(["bash", pg, cmd, pgdir], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    url = pgctl("start")
    sim = Simulator(workdir)
    pipeline = Pipeline(kafka, url, workdir, sim)
    try:
        repos = TEN_REPOS
        sim.post("/_sim/config", {"latencyMs": 60})
        sink = pipeline.start("backfill-sink", "--batch-size", "20")
        t0 = time.monotonic()
        start_run(pipeline, repos, 3, "--page-size", "5", "--chunk-pause-ms", "100")
        group = pipeline.env["BACKFILL_SINK_GROUP"]
        wait_for(lambda: sum(stored_offsets(pipeline.db_url, group).values()) >= 40, 60,
                 "40 events stored")
        before = sum(end_offsets(kafka, pipeline.progress_topic, PARTITIONS).values())
        pgctl("stop")
        down_at = time.monotonic()
        wait_for(lambda: "Postgres unavailable" in sink.output(), 30, "the sink to notice")
        time.sleep(max(0.0, 12 - (time.monotonic() - down_at)))
        during = sum(end_offsets(kafka, pipeline.progress_topic, PARTITIONS).values())
        pgctl("start-again")
        up_at = time.monotonic()
        outage = up_at - down_at
        wait_for(lambda: "Postgres is back" in sink.output(), 30, "the sink to reconnect")
        back = time.monotonic() - up_at
        pipeline.wait_terminal(repos, timeout=120)
        ends = wait_for(lambda: caught_up(pipeline), 60, "the sink to reach the end offsets")
        caught = time.monotonic() - up_at
        wall = time.monotonic() - t0
        assert sink.stop() == 0

        log = sink.output().splitlines()
        assert sum("Postgres unavailable: paused consumption" in ln for ln in log) == 1
        assert sum("Postgres is back after" in ln for ln in log) == 1
        # it did not chew through messages while down: a handful of errors at most
        assert sum("database error at" in ln or "cannot start a transaction" in ln
                   for ln in log) <= 2, "\n".join(log)
        delays = [int(m) for m in re.findall(r"next attempt in (\d+) ms", sink.output())]
        assert delays and delays == sorted(delays) and delays[0] == 1000 and delays[-1] <= 5000
        assert during > before, "the consumers kept publishing while Postgres was down"
        rows = check_against_simulator(pipeline, repos)
        check_state_seqs(pipeline)
        assert snapshot(pipeline.db_url) == reference_snapshot(pipeline, postgres)
        print(f"\n[postgres outage] stopped {outage:.1f}s after {before} events "
              f"({during - before} published meanwhile); reconnect attempts {delays} ms; "
              f"back {back:.1f}s after restart, caught up {caught:.1f}s after; "
              f"{sum(ends.values())} events, {rows} pull requests exact; {wall:.1f}s\n  "
              + "\n  ".join(ln for ln in log if "Postgres" in ln))
    finally:
        pipeline.close()
        sim.stop()
        subprocess.run(["bash", pg, "stop", pgdir], capture_output=True, timeout=120)
        shutil.rmtree(pgdir, ignore_errors=True)


# --- 15 --------------------------------------------------------------------

def forged(m, **data):
    """A copy of message m with some data fields changed."""
    v = json.loads(m["value"])
    v["id"] = str(uuid.uuid4())
    v["data"].update(data)
    return dict(m, value=json.dumps(v, separators=(",", ":")).encode())


def test_replayed_and_stale_events_change_nothing(pipeline):
    repos = TEN_REPOS
    sink = pipeline.start("backfill-sink")
    start_run(pipeline, repos, 3)
    pipeline.wait_terminal(repos, timeout=120)
    wait_for(lambda: caught_up(pipeline), 60, "the sink to reach the end offsets")
    rows = check_against_simulator(pipeline, repos)
    before = full_dump(pipeline.db_url)

    original = consume_raw(pipeline.kafka, pipeline.progress_topic)
    progress = [m for m in original if json.loads(m["value"])["name"] == "backfill/progress.update"]
    prs = [m for m in original if json.loads(m["value"])["name"] == "backfill/pull_requests"]
    last = {}
    for m in progress:
        d = json.loads(m["value"])["data"]
        if d["seq"] > last.get(d["backfillId"], (0,))[0]:
            last[d["backfillId"]] = (d["seq"], m)
    stale = []
    for seq, m in last.values():
        d = json.loads(m["value"])["data"]
        # same backfillId and seq, different content
        stale.append(forged(m, status="failed", error="forged duplicate", progress=0))
        # an older seq
        stale.append(forged(m, seq=seq - 1, status="processing", progress=1))
        # an older backfill of the same repository
        stale.append(forged(m, backfillId=str(uuid.uuid4()), seq=seq + 100, status="failed",
                            error="older backfill", startedAt=d["startedAt"] - 86400000))
    for m in prs:
        v = json.loads(m["value"])
        for pr in v["data"]["pullRequests"]:  # older data for every pull request
            pr["title"] = "STALE " + pr["title"]
            pr["updatedAt"] = "2001-01-01T00:00:00Z"
        stale.append(dict(m, value=json.dumps(v, separators=(",", ":")).encode()))
    replay = ([{k: m[k] for k in ("key", "value", "headers")} for m in original]  # duplicates
              + [{k: m[k] for k in ("key", "value", "headers")} for m in reversed(progress)]
              + [{k: m[k] for k in ("key", "value", "headers")} for m in stale])
    produce_raw(pipeline.kafka, pipeline.progress_topic, replay)
    ends = wait_for(lambda: caught_up(pipeline), 60, "the sink to consume the replay")
    assert sum(ends.values()) == len(original) + len(replay)

    after = full_dump(pipeline.db_url)
    for table in before:
        assert after[table] == before[table], f"{table} changed by replayed events"
    check_state_seqs(pipeline)
    assert "skipping bad event" not in sink.output()
    cells = sum(len(r) for t in after.values() for r in t)
    print(f"\n[replay] {len(replay)} events re-produced ({len(original)} duplicates, "
          f"{len(progress)} progress events in reverse order, {len(stale)} stale or forged) "
          f"after {len(original)} originals: {sum(len(t) for t in after.values())} rows "
          f"({cells} values, timestamps included) unchanged, {len(before['progressive_backfill_state'])}"
          f" state rows keep "
          f"their newest seq; {rows} pull requests")


def pr_event(repo, seq, prs):
    owner, name = repo.split("/")
    data = {"repository": repo, "owner": owner, "name": name, "repositoryId": None,
            "backfillId": f"bf-{name}", "seq": seq, "chunk": seq, "startedAt": 1764360000000,
            "pullRequests": prs}
    env = {"name": "backfill/pull_requests", "id": str(uuid.uuid4()), "ts": 1764360000000, "v": 1,
           "data": data}
    return {"key": repo.encode(), "value": json.dumps(env, separators=(",", ":")).encode()}


def a_pr(repo, num, title, updated="2026-01-01T00:00:00Z", created="2025-12-01T00:00:00Z"):
    return {"githubId": str(7_000_000 + num), "number": num, "title": title, "body": None,
            "state": "open", "draft": False, "merged": False, "createdAt": created,
            "updatedAt": updated, "closedAt": None, "mergedAt": None, "additions": 1,
            "deletions": 0, "changedFiles": 1, "baseBranch": "main", "headBranch": f"h{num}",
            "url": f"https://github.com/{repo}/pull/{num}",
            "author": {"login": f"u{num % 7}", "githubId": 500 + num % 7, "avatarUrl": None,
                       "isBot": False}}


def test_event_postgres_refuses_is_skipped_inside_a_big_batch(pipeline):
    """One batch of 43 events, written with one statement per table: an
    event Postgres refuses (February 30) is skipped with a log line naming
    its offset, the 42 others land, and pull requests repeated across
    events end as if applied one by one (newest updatedAt wins)."""
    msgs = []
    for i in range(40):
        repo = f"big/r{i % 4}"
        msgs.append(pr_event(repo, i + 1, [a_pr(repo, i * 10 + j + 1, f"t{i}") for j in range(10)]))
    ghost = "big/ghost"
    msgs.insert(17, pr_event(ghost, 1, [a_pr(ghost, 9001, "x", created="2026-02-30T00:00:00Z")]))
    # event 3's pull requests again, newer; event 5's again, older
    msgs.append(pr_event("big/r3", 41, [a_pr("big/r3", 30 + j + 1, "newer",
                                             updated="2026-01-02T00:00:00Z") for j in range(10)]))
    msgs.append(pr_event("big/r1", 42, [a_pr("big/r1", 50 + j + 1, "older",
                                             updated="2025-12-31T00:00:00Z") for j in range(10)]))
    create_topic(pipeline.kafka, pipeline.progress_topic, PARTITIONS)
    produce_raw(pipeline.kafka, pipeline.progress_topic, msgs, partition=0)
    sink = pipeline.start("backfill-sink", "-v", "--batch-size", "500", "--batch-ms", "3000",
                          "--batch-idle-ms", "0")
    wait_for(lambda: caught_up(pipeline), 60, "the sink to reach the end offset")

    assert pipeline.query("SELECT count(*) FROM pull_requests")[0][0] == 400
    assert pipeline.query("SELECT count(*) FROM repositories WHERE name = 'ghost'")[0][0] == 0
    titles = dict(pipeline.query("SELECT number / 10, string_agg(DISTINCT title, ',')"
                                 " FROM pull_requests WHERE mod(number, 10) <> 0 GROUP BY 1"))
    assert titles[3] == "newer" and titles[5] == "t5" and titles[4] == "t4", titles
    out = sink.output()
    skipped = re.findall(r"skipping bad event at \S+\[0\]@(\d+): (.*)", out)
    assert [int(o) for o, _ in skipped] == [17] and "[22008]" in skipped[0][1], skipped
    assert len(COMMITTED.findall(out)) == 1, "not one batch"
