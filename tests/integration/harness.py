"""Shared helpers for the integration tests: real Kafka, real Postgres,
the GitHub simulator and the real binaries, started as a user would.

Every test gets its own topics, consumer groups and database on the shared
broker and server, so tests never see each other's data."""
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

import psycopg

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENV_DIR = os.path.join(ROOT, "tests", "env")
BIN_DIR = os.environ.get("BACKFILL_BIN", os.path.join(ROOT, "build", "bin"))
SIM = os.path.join(ROOT, "tests", "sim", "github_sim.py")
SECRET_TOKEN = "ghp_TEST" + uuid.uuid4().hex  # greppable: must never reach a log
TEN_REPOS = [
    "sveltejs/svelte", "preactjs/preact", "alpinejs/alpine", "solidjs/solid", "lit/lit",
    "polymer/polymer", "aurelia/framework", "emberjs/ember.js", "stimulus-use/stimulus-use",
    "hotwired/turbo",
]


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not built (set BACKFILL_BIN or build into build/bin)")
    return path


def wait_for(predicate, timeout, what, interval=0.2):
    """Polls predicate until it returns a truthy value; fails with `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    """A real binary started with its own log file."""

    def __init__(self, args, env, log_path):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.expect_clean_exit = True  # tests that kill a process on purpose clear this

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Simulator:
    def __init__(self, workdir, *extra):
        port_file = os.path.join(workdir, "sim.port")
        self.log = open(os.path.join(workdir, "sim.log"), "wb")
        self.p = subprocess.Popen(
            ["python3", SIM, "--port", "0", "--port-file", port_file, "--token", SECRET_TOKEN,
             *extra], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(port_file), 15, "the GitHub simulator")
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def expected(self, repo, max_prs=200, since_days=30):
        return self.get(f"/_sim/expected?repo={repo}&max={max_prs}&since_days={since_days}")

    def stop(self):
        self.p.terminate()
        self.p.wait(10)
        self.log.close()


class Pipeline:
    """One isolated backfill deployment: its own topics, groups, database."""

    def __init__(self, kafka, pg_admin_url, workdir, sim):
        tag = uuid.uuid4().hex[:10]
        self.workdir = workdir
        self.kafka = kafka
        self.sim = sim
        self.jobs_topic = f"jobs-{tag}"
        self.progress_topic = f"progress-{tag}"
        self.dlq_topic = f"dlq-{tag}"
        self.dbname = f"t_{tag}"
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.dbname}"')
        self.pg_admin_url = pg_admin_url
        self.db_url = pg_admin_url.rsplit("/", 1)[0] + "/" + self.dbname
        self.env = dict(os.environ)
        self.env.update({
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "BACKFILL_JOBS_TOPIC": self.jobs_topic,
            "BACKFILL_PROGRESS_TOPIC": self.progress_topic,
            "BACKFILL_DLQ_TOPIC": self.dlq_topic,
            "BACKFILL_GROUP": f"workers-{tag}",
            "BACKFILL_SINK_GROUP": f"sink-{tag}",
            "DATABASE_URL": self.db_url,
            "GITHUB_TOKEN": SECRET_TOKEN,
            "GITHUB_GRAPHQL_URL": f"{sim.url}/graphql",
            "BACKFILL_RETRY_BASE_MS": "200",
        })
        self.procs = []
        self.counter = 0

    def start(self, name, *args):
        self.counter += 1
        log = os.path.join(self.workdir, f"{name}-{self.counter}.log")
        p = Proc([binary(name), *args], self.env, log)
        self.procs.append(p)
        return p

    def produce(self, *args, input=None):
        return subprocess.run([binary("backfill-producer"), *args], env=self.env, input=input,
                              capture_output=True, text=True, timeout=120)

    def query(self, sql, *params):
        with psycopg.connect(self.db_url) as c:
            return c.execute(sql, params).fetchall()

    def states(self):
        try:
            rows = self.query(
                "SELECT lower(r.owner || '/' || r.name), s.status, s.processed_prs, s.total_prs, s.error"
                " FROM progressive_backfill_state s JOIN repositories r ON r.id = s.repository_id")
        except psycopg.errors.UndefinedTable:
            return {}
        return {r[0]: {"status": r[1], "processed": r[2], "total": r[3], "error": r[4]} for r in rows}

    def wait_terminal(self, repos, timeout=180):
        def done():
            st = self.states()
            return all(st.get(r.lower(), {}).get("status") in ("completed", "failed") for r in repos) and st
        return wait_for(done, timeout, f"{len(repos)} backfills to finish")

    def consume(self, topic, timeout=30):
        """Every message on a topic (kcat -J envelopes), in order per partition."""
        out = subprocess.run(["kcat", "-b", self.kafka, "-C", "-t", topic, "-e", "-J", "-q"],
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.split("\n") if line.strip()]

    def logs(self):
        return "".join(p.output() for p in self.procs)

    def close(self):
        """Stops every process with SIGTERM; each must exit 0 and print no
        sanitizer report (checked after cleanup)."""
        problems = []
        for p in self.procs:
            rc = p.stop()
            if p.expect_clean_exit and rc not in (0,):
                problems.append(f"{p.args[0]} exited {rc} after SIGTERM (log {p.log_path})")
            out = p.output()
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if marker in out:
                    problems.append(f"{p.args[0]}: {marker} report in {p.log_path}")
        try:
            with psycopg.connect(self.pg_admin_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except psycopg.Error:
            pass
        assert not problems, "\n".join(problems)
