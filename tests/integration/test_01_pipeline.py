"""Issue 2: the whole path — producer, 5 consumers, sink — on real Kafka
and Postgres against the GitHub simulator, checked row by row."""
import json
import os
import subprocess
import time

from harness import SECRET_TOKEN, TEN_REPOS, ROOT, binary, check_rows

UNKNOWN = "ghost-org/does-not-exist"


def run_ten(pipeline, extra_repos=(), consumer_args=(), consumers=5):
    repos = TEN_REPOS + list(extra_repos)
    sink = pipeline.start("backfill-sink")
    for _ in range(consumers):
        pipeline.start("backfill-consumer", *consumer_args)
    started = time.monotonic()
    out = pipeline.produce(*repos)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == len(repos)
    states = pipeline.wait_terminal(repos)
    return states, time.monotonic() - started, sink


def check_ten(pipeline, consumer_args, consumers=5):
    sim = pipeline.sim
    states, wall, _ = run_ten(pipeline, [UNKNOWN], consumer_args, consumers)

    stats = sim.get("/_sim/stats")
    min_pages_total = 0
    for repo in TEN_REPOS:
        exp = check_rows(pipeline, repo)
        st = states[repo]
        assert st["status"] == "completed", f"{repo}: {st}"
        assert st["processed"] == len(exp["expected"])
        assert st["total"] == 200
        assert stats["by_repo"].get(repo, 0) == exp["min_pages"], \
            f"{repo}: {stats['by_repo'].get(repo)} requests, minimum is {exp['min_pages']}"
        min_pages_total += exp["min_pages"]

    # 4. an unknown repository ends failed with a readable error
    assert states[UNKNOWN]["status"] == "failed"
    assert "not found" in states[UNKNOWN]["error"].lower()
    assert UNKNOWN in states[UNKNOWN]["error"]

    assert stats["requests"] == min_pages_total + 1  # + the one NOT_FOUND answer
    total_prs = pipeline.query("SELECT count(*) FROM pull_requests")[0][0]
    assert total_prs == sum(len(sim.expected(r)["expected"]) for r in TEN_REPOS)
    # chunks: one row per chunk with PRs, adding up to every stored PR
    chunk_sum = pipeline.query("SELECT coalesce(sum(pr_count), 0) FROM backfill_chunks")[0][0]
    assert chunk_sum == total_prs
    print(f"\n[integration] 10 repositories {' '.join(consumer_args)}: {wall:.1f}s wall, "
          f"{stats['requests']} API requests ({stats['points']} points), {total_prs} pull requests")

    # the token never reaches a log line
    assert SECRET_TOKEN not in pipeline.logs()


def test_ten_repositories_end_to_end(pipeline):
    check_ten(pipeline, ())


def test_ten_repositories_with_several_jobs_per_worker(pipeline):
    """--jobs 4 in a single worker: jobs of distinct partitions run at once,
    each with its own request in flight; the result is the same, exactly."""
    pipeline.sim.post("/_sim/config", {"latencyMs": 150})
    check_ten(pipeline, ("--jobs", "4"), consumers=1)
    # one worker, yet requests overlapped: one arrived while another was
    # still inside its 150 ms latency
    arrivals = sorted(r["t"] for r in pipeline.sim.get("/_sim/requests"))
    assert min(b - a for a, b in zip(arrivals, arrivals[1:])) < 0.1


def test_emitted_messages_validate_against_schemas(pipeline):
    import jsonschema
    from referencing import Registry, Resource

    run_ten(pipeline, [UNKNOWN])
    schemas = {}
    for f in ("backfill.initial", "progress.update", "pull_requests"):
        with open(os.path.join(ROOT, "schemas", f"{f}.schema.json")) as fh:
            schemas[f] = json.load(fh)
    with open(os.path.join(ROOT, "schemas", "envelope.schema.json")) as fh:
        envelope = json.load(fh)
    by_name = {"repository/backfill.initial": schemas["backfill.initial"],
               "backfill/progress.update": schemas["progress.update"],
               "backfill/pull_requests": schemas["pull_requests"]}
    seen = {}
    msgs = pipeline.consume(pipeline.jobs_topic) + pipeline.consume(pipeline.progress_topic)
    last_seq = {}
    for m in msgs:
        value = json.loads(m["payload"])
        jsonschema.Draft202012Validator(envelope, format_checker=jsonschema.FormatChecker()).validate(value)
        jsonschema.Draft202012Validator(by_name[value["name"]],
                                        format_checker=jsonschema.FormatChecker()).validate(value)
        headers = dict(zip(m["headers"][::2], m["headers"][1::2])) if m.get("headers") else {}
        assert headers.get("event") == value["name"]
        assert m["key"] == m["key"].lower()
        seen[value["name"]] = seen.get(value["name"], 0) + 1
        if value["name"] != "repository/backfill.initial":
            d = value["data"]
            assert m["key"] == d["repository"]
            prev = last_seq.get(d["backfillId"], 0)
            assert d["seq"] > prev, "seq must strictly increase per backfill"
            last_seq[d["backfillId"]] = d["seq"]
    assert seen["repository/backfill.initial"] == 11
    assert seen["backfill/pull_requests"] >= 8
    assert seen["backfill/progress.update"] >= 22


def test_graphql_document_is_valid_for_github_schema(workdir):
    q = subprocess.run([binary("backfill-consumer"), "--print-query"], capture_output=True,
                       text=True, check=True).stdout
    with open(os.path.join(ROOT, "schemas", "graphql", "backfill_query.graphql")) as f:
        assert q == f.read(), "the consumer sends the document in schemas/graphql"
    path = os.path.join(workdir, "query.graphql")
    with open(path, "w") as f:
        f.write(q)
    out = subprocess.run(["node", os.path.join(ROOT, "tests", "graphql", "validate.mjs"), path],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
