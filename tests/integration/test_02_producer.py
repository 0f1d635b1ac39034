"""The producer's command line: validation, de-duplication, files, JSON
output and exit codes — checked against what lands on the jobs topic."""
import json


def test_queues_valid_rejects_invalid_and_deduplicates(pipeline):
    out = pipeline.produce("--", "sveltejs/svelte", "SvelteJS/Svelte", "emberjs/ember.js", "../x",
                           "a//b", "-a/b")
    assert out.returncode == 1
    assert len(out.stdout.splitlines()) == 2
    for bad in ("../x", "a//b", "-a/b"):
        assert f"'{bad}'" in out.stderr
    msgs = pipeline.consume(pipeline.jobs_topic)
    assert sorted(m["key"] for m in msgs) == ["emberjs/ember.js", "sveltejs/svelte"]
    data = {m["key"]: json.loads(m["payload"])["data"] for m in msgs}
    assert data["sveltejs/svelte"]["owner"] == "sveltejs"
    assert data["sveltejs/svelte"]["maxPRs"] == 200 and data["sveltejs/svelte"]["sinceDays"] == 30


def test_file_stdin_json_and_options(pipeline):
    listing = "# repos\n\nlit/lit\n  hotwired/turbo  # trailing comment\nlit/LIT\n"
    out = pipeline.produce("--file", "-", "--json", "--max-prs", "50", "--since-days", "7",
                           input=listing)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    assert [l["repository"] for l in lines] == ["lit/lit", "hotwired/turbo"]
    assert all(l["status"] == "queued" and l["maxPRs"] == 50 for l in lines)
    msgs = pipeline.consume(pipeline.jobs_topic)
    assert len(msgs) == 2
    assert all(json.loads(m["payload"])["data"]["sinceDays"] == 7 for m in msgs)


def test_usage_errors_exit_2(pipeline):
    assert pipeline.produce().returncode == 2
    assert pipeline.produce("--max-prs", "0", "a/b").returncode == 2
    assert pipeline.produce("--since-days", "366", "a/b").returncode == 2
    assert pipeline.produce("--bogus").returncode == 2
    h = pipeline.produce("--help")
    assert h.returncode == 0 and "--max-prs" in h.stdout and "KAFKA_BOOTSTRAP_SERVERS" in h.stdout
