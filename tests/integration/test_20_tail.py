"""Issue 5: backfill-tail follows the progress topic without a consumer
group. JSON mode is checked event by event against the topic itself; the
live table is driven in a real terminal (tmux) and its screen checked."""
import json
import os
import shlex
import subprocess
import time
import uuid

from harness import ENV_DIR, Simulator, binary, wait_for

REPOS = ["sveltejs/svelte", "preactjs/preact", "lit/lit"]
UNKNOWN = "ghost-org/does-not-exist"


def start_tail(pipeline, *args):
    """backfill-tail with stdout (JSON lines) and stderr (logs) in files."""
    tag = uuid.uuid4().hex[:6]
    out = open(os.path.join(pipeline.workdir, f"tail-{tag}.out"), "wb")
    err = open(os.path.join(pipeline.workdir, f"tail-{tag}.err"), "wb")
    p = subprocess.Popen([binary("backfill-tail"), *args], env=pipeline.env, stdout=out,
                         stderr=err, stdin=subprocess.DEVNULL)
    return p, out.name, err.name


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def run_tail(pipeline, *args, timeout=60):
    return subprocess.run([binary("backfill-tail"), *args], env=pipeline.env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def lines(text):
    """JSON lines: split on newlines only (titles may hold U+2028, which
    str.splitlines would split on)."""
    return [line for line in text.split("\n") if line]


def by_repo(events):
    """{repository: [event id, ...]} in the order given."""
    out = {}
    for e in events:
        out.setdefault(e["data"]["repository"], []).append(e["id"])
    return out


def list_groups(kafka):
    out = subprocess.run(["bash", os.path.join(ENV_DIR, "kafka-run-class.sh"),
                          "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                          "--bootstrap-server", kafka, "--list"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def start_workers(pipeline, consumers=3):
    pipeline.start("backfill-sink")
    for _ in range(consumers):
        pipeline.start("backfill-consumer")


def test_tail_json_every_event_in_order(pipeline, kafka):
    repos = REPOS + [UNKNOWN]
    groups_before = list_groups(kafka)
    # Live, from the end, following exactly the repositories about to be queued.
    live, live_out, live_err = start_tail(pipeline, "--exit-when-done",
                                          *[a for r in repos for a in ("--repo", r)])
    wait_for(lambda: "following" in read(live_err), 30, "the tail to assign its partitions")
    start_workers(pipeline)
    out = pipeline.produce(*repos)
    assert out.returncode == 0, out.stderr
    # It exits by itself once all four are terminal: 1, because one failed.
    assert live.wait(180) == 1, read(live_err)
    pipeline.wait_terminal(repos)

    # The topic itself, read with kcat, is the reference.
    topic = [json.loads(m["payload"]) for m in pipeline.consume(pipeline.progress_topic)]
    progress = [e for e in topic if e["name"] == "backfill/progress.update"]
    assert {e["data"]["repository"] for e in progress} == {r.lower() for r in repos}

    live_events = [json.loads(line) for line in lines(read(live_out))]
    assert all(e["name"] == "backfill/progress.update" for e in live_events)
    assert by_repo(live_events) == by_repo(progress)

    # From the beginning, to the end of the topic: the same, and --all adds
    # the pull-request payloads, still in order per repository.
    again = run_tail(pipeline, "--from-beginning", "--exit-at-end", "--json")
    assert again.returncode == 0, again.stderr
    assert by_repo(json.loads(line) for line in lines(again.stdout)) == by_repo(progress)
    every = run_tail(pipeline, "--from-beginning", "--exit-at-end", "--all")
    assert every.returncode == 0, every.stderr
    every_events = [json.loads(line) for line in lines(every.stdout)]
    assert by_repo(every_events) == by_repo(topic)
    assert any(e["name"] == "backfill/pull_requests" for e in every_events)

    # The last event per repository is terminal, as in Postgres (once the
    # sink has committed its last batch).
    states = pipeline.wait_terminal(repos, timeout=60)
    for repo in repos:
        last = [e for e in progress if e["data"]["repository"] == repo.lower()][-1]["data"]
        assert last["status"] == states[repo.lower()]["status"]
        assert last["progress"] == states[repo.lower()]["processed"]

    # --repo filters; --exit-when-done judges after reading what the topic holds.
    one = run_tail(pipeline, "--from-beginning", "--exit-when-done", "--repo", REPOS[0].upper())
    assert one.returncode == 0, one.stderr
    assert {json.loads(line)["data"]["repository"] for line in lines(one.stdout)} == {REPOS[0]}
    # Never seen and the end reached: 4 (not finished); bad usage: 2.
    never = run_tail(pipeline, "--from-beginning", "--exit-at-end", "--exit-when-done", "--repo",
                     "nobody/nothing")
    assert never.returncode == 4 and never.stdout == ""
    assert run_tail(pipeline, "--repo", "not a repo").returncode == 2
    assert run_tail(pipeline, "stray-argument").returncode == 2

    # No consumer group was created by any of these tails.
    assert list_groups(kafka) - groups_before <= {pipeline.env["BACKFILL_GROUP"],
                                                   pipeline.env["BACKFILL_SINK_GROUP"]}


class Tmux:
    """One tmux server of our own (-L), so the session gets our environment."""

    def __init__(self, workdir, env, width=150, height=40):
        self.sock = f"backfill-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.workdir = workdir
        self.size = (width, height)

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], env=self.env, capture_output=True,
                              text=True, timeout=30)

    def start(self, command):
        script = os.path.join(self.workdir, "tmux-cmd.sh")
        with open(script, "w") as f:
            f.write(f"{command}\necho TAIL-EXIT=$?\nsleep 600\n")
        r = self.run("new-session", "-d", "-s", "t", "-x", str(self.size[0]), "-y",
                     str(self.size[1]), f"bash {shlex.quote(script)}")
        assert r.returncode == 0, r.stderr

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "t").stdout

    def close(self):
        self.run("kill-server")


def test_tail_live_table_in_tmux(pipeline, workdir):
    # A slow simulator with a small point budget, so the screen shows work
    # in progress and a rate-limit wait before everything completes.
    os.makedirs(os.path.join(workdir, "slow"))
    slow = Simulator(os.path.join(workdir, "slow"), "--latency-ms", "250", "--budget", "4",
                     "--reset-seconds", "3")
    pipeline.env["GITHUB_GRAPHQL_URL"] = f"{slow.url}/graphql"
    repos = REPOS + ["alpinejs/alpine", "solidjs/solid", UNKNOWN]
    env = dict(pipeline.env, TERM="xterm-256color", NO_COLOR="1")
    tmux = Tmux(workdir, env)
    tail = binary("backfill-tail")
    args = " ".join(f"--repo {r}" for r in repos)
    try:
        tmux.start(f"{shlex.quote(tail)} --from-beginning --exit-when-done {args}")
        wait_for(lambda: "REPOSITORY" in tmux.screen(), 30, "the table header")
        first = tmux.screen()
        assert sum(1 for l in first.splitlines() if l.split()[:1] and l.split()[0] in repos
                   and "waiting" in l) == len(repos), first
        assert f"{len(repos)} waiting" in first

        start_workers(pipeline, consumers=2)
        assert pipeline.produce(*repos).returncode == 0
        screens = []

        def finished():
            s = tmux.screen()
            screens.append(s)
            return "TAIL-EXIT=" in s and s
        final = wait_for(finished, 240, "the tail to exit", interval=0.1)
    finally:
        tmux.close()
        slow.stop()

    # Work in progress was drawn: a partial state and a rate-limit wait.
    assert any("processing" in s or "started" in s for s in screens)
    assert any("rate limited" in s for s in screens), "no screen showed a rate-limit wait"

    rows = final.splitlines()
    assert "TAIL-EXIT=1" in final  # the unknown repository failed
    # Redrawn in place: one header, one footer, one line per repository.
    assert sum(1 for l in rows if l.startswith("REPOSITORY")) == 1, final
    footer = [l for l in rows if "repositories:" in l]
    assert len(footer) == 1, final
    assert (f"{len(repos)} repositories: {len(repos) - 1} completed, 1 failed, 0 running, "
            "0 rate limited, 0 waiting") in footer[0]
    # the tail reads Kafka; the sink may still be committing the last batch
    states = pipeline.wait_terminal(repos, timeout=60)
    total_prs = 0
    for repo in repos:
        row = [l for l in rows if l.startswith(repo + " ")]
        assert len(row) == 1, f"{repo}:\n{final}"
        st = states[repo.lower()]
        assert f"{st['processed']}/{st['total']}" in row[0]
        total_prs += st["processed"]
        if repo == UNKNOWN:
            assert "failed" in row[0] and "not found" in row[0].lower()
        else:
            assert "completed" in row[0] and "[" + "#" * 30 + "]" in row[0] and "100%" in row[0]
    assert f"PRs {total_prs}/{200 * len(repos)}" in footer[0]
