"""Shared helpers for the integration tests: real Kafka, real Postgres,
the GitHub simulator and the real binaries, started as a user would.

Every test gets its own topics, consumer groups and database on the shared
broker and server, so tests never see each other's data."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
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


# --- the Kafka broker (tests/env/kafka.sh) ------------------------------------
# kafka.sh runs Apache Kafka with the config it ships (num.partitions=1, topics
# auto-created, group.initial.rebalance.delay.ms 3000, ...). KAFKA_VERSION picks
# the version (unset: the default, 4.4.0; 3.9.1 for the smoke run), as it does
# for every script in tests/env; tests/env/kafka-libs.sh alone knows the jars.

def kafka_libs(version=None):
    """The jar directory of a Kafka version (default: KAFKA_VERSION, else
    the default broker), as tests/env/kafka-libs.sh names it for every
    script. Raises RuntimeError for a version there is no pom for."""
    out = subprocess.run(["bash", os.path.join(ENV_DIR, "kafka-libs.sh"),
                          *([version] if version else [])],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def kafka_version():
    """The Kafka version the tests run (KAFKA_VERSION, else the default):
    read from the name kafka-libs.sh gives its directory, kafka-VERSION-HASH."""
    return os.path.basename(kafka_libs())[len("kafka-"):].rsplit("-", 1)[0]


def kafka_sh(cmd, workdir, extra_props=()):
    """Runs tests/env/kafka.sh CMD WORKDIR (start, stop, kill, start-again,
    ...) and returns its last line of output (the bootstrap address, for
    start). extra_props: "key=value" broker settings that are not stock,
    applied when start formats a new WORKDIR; the caller says in a comment
    why it needs each one."""
    env = dict(os.environ)
    if extra_props:  # after any the caller's environment has: later keys win
        env["KAFKA_EXTRA_PROPS"] = "\n".join(
            [p for p in [os.environ.get("KAFKA_EXTRA_PROPS")] if p] + list(extra_props))
    out = subprocess.run(["bash", os.path.join(ENV_DIR, "kafka.sh"), cmd, workdir], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kafka.sh {cmd} {workdir} failed:\n{out.stderr}"
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


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


def http_json(method, url, body=None, headers=None, raw=None, timeout=60):
    """One HTTP request; returns (status, parsed JSON body or None, headers).
    body is sent as JSON (Content-Type set unless headers say otherwise);
    raw sends bytes as they are."""
    h = {"Content-Type": "application/json"} if body is not None or raw is not None else {}
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        payload, status, hdrs = e.read(), e.code, e.headers
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, parsed, hdrs


class SseReader:
    """Reads a Server-Sent Events stream on a thread of its own: .events
    collects (id, event, data-as-JSON, receive time) in order."""

    def __init__(self, url, last_event_id=None):
        import http.client
        import threading
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.events = []
        self.comments = 0
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self.thread.start()

    def _read(self):
        ev = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "data" in ev:
                        self.events.append((ev.get("id"), ev.get("event", "message"),
                                            json.loads(ev["data"]), time.time()))
                    ev = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    k, _, v = line.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
        except (OSError, ValueError, AttributeError):  # closed under the reader's feet
            pass
        self.closed = True

    def last_id(self):
        ids = [e[0] for e in self.events if e[0]]
        return ids[-1] if ids else None

    def close(self):
        try:
            self.resp.close()
            self.conn.sock and self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


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
                self.dump_stacks()
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def wait(self, timeout):
        """Waits for the process to exit; when it hangs instead, appends
        every thread's stack to its log (so a failure says where) and
        raises subprocess.TimeoutExpired."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks()
            raise

    def terminate(self, timeout=30):
        """Sends SIGTERM and waits for the exit (Proc.wait): (exit status,
        seconds it took)."""
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        rc = self.wait(timeout)
        return rc, time.time() - t0

    def dump_stacks(self):
        """Appends gdb's backtrace of every thread of the live process to
        its log (nothing when gdb is missing)."""
        if self.p.poll() is not None or not shutil.which("gdb"):
            return
        out = subprocess.run(["gdb", "-p", str(self.p.pid), "-batch", "-nx",
                              "-ex", "thread apply all bt"],
                             capture_output=True, text=True, timeout=60)
        self.log.write(("\n== hung: stacks of every thread (gdb) ==\n" + out.stdout
                        + out.stderr[-2000:]).encode())
        self.log.flush()

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
        self.control_topic = f"control-{tag}"
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
            "BACKFILL_CONTROL_TOPIC": self.control_topic,
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

    def start_web(self, *args, env=None):
        """Starts backfill-web on a free loopback port; waits until /healthz
        answers (any status). Returns the Proc with .url set."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.counter += 1
        log = os.path.join(self.workdir, f"backfill-web-{self.counter}.log")
        p = Proc([binary("backfill-web"), "--listen", f"127.0.0.1:{port}", *args],
                 {**self.env, **(env or {})}, log)
        self.procs.append(p)
        p.url = f"http://127.0.0.1:{port}"

        def answers():
            assert p.p.poll() is None, f"backfill-web exited {p.p.returncode}:\n{p.output()[-2000:]}"
            try:
                urllib.request.urlopen(p.url + "/healthz", timeout=2).close()
                return True
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
        wait_for(answers, 30, "backfill-web to answer")
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

    def wait_terminal(self, repos, timeout=180, interval=0.2):
        def done():
            st = self.states()
            return all(st.get(r.lower(), {}).get("status") in ("completed", "failed") for r in repos) and st
        return wait_for(done, timeout, f"{len(repos)} backfills to finish", interval=interval)

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
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer"):
                if marker in out:
                    problems.append(f"{p.args[0]}: {marker} report in {p.log_path}")
        try:
            with psycopg.connect(self.pg_admin_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        except psycopg.Error:
            pass
        assert not problems, "\n".join(problems)


# --- raw Kafka access and table dumps (poison input, sink faults) -----------

def create_topic(kafka, topic, partitions, **configs):
    """Creates a topic with per-topic configs (underscores in the keyword
    names stand for dots: max_message_bytes=...) before any binary does."""
    args = [os.path.join(ENV_DIR, "kafka-run-class.sh"), "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server", kafka, "--create", "--topic", topic,
            "--partitions", str(partitions), "--replication-factor", "1"]
    for k, v in configs.items():
        args += ["--config", f"{k.replace('_', '.')}={v}"]
    out = subprocess.run(["bash", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def end_offsets(kafka, topic, partitions):
    """{partition: high watermark} of partitions 0..partitions-1."""
    args = ["kcat", "-b", kafka, "-Q"]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ends = {}
    for line in out.stdout.splitlines():  # "<topic> [<p>] offset <n>"
        parts = line.split()
        if len(parts) == 4 and parts[2] == "offset":
            ends[int(parts[1].strip("[]"))] = int(parts[3])
    assert len(ends) == partitions, out.stdout
    return ends


def produce_raw(kafka, topic, messages, *props, partition=None):
    """Produces messages exactly as given, in order: dicts with `value`
    (bytes), optional `key` (bytes) and `headers` ([(name, value)]).
    kcat sends one file per message; runs of messages with the same key and
    headers go in one kcat call. props: extra `-X key=value` strings."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="produce-") as d:
        i = 0
        while i < len(messages):
            key, hdrs = messages[i].get("key"), messages[i].get("headers", [])
            files = []
            while (i < len(messages) and messages[i].get("key") == key
                   and messages[i].get("headers", []) == hdrs):
                assert messages[i]["value"], "kcat cannot send an empty message"
                path = os.path.join(d, f"m{i}")
                with open(path, "wb") as f:
                    f.write(messages[i]["value"])
                files.append(path)
                i += 1
            args = ["kcat", "-b", kafka, "-P", "-t", topic, "-X", "enable.idempotence=true"]
            for p in props:
                args += ["-X", p]
            if partition is not None:
                args += ["-p", str(partition)]
            if key is not None:
                args += ["-k", key.decode() if isinstance(key, bytes) else key]
            for name, value in hdrs:
                args += ["-H", f"{name}={value}"]
            out = subprocess.run(args + files, capture_output=True, timeout=120)
            assert out.returncode == 0 and b"failed" not in out.stderr, out.stderr


def consume_raw(kafka, topic, timeout=60):
    """Every message of a topic with its exact bytes: dicts with partition,
    offset, key (bytes or None), value (bytes or None) and headers
    ([(name, value)]), in partition, offset order."""
    fmt = "%p %o %S %K\n%k%s\n"
    out = subprocess.run(["kcat", "-b", kafka, "-C", "-t", topic, "-e", "-q", "-f", fmt],
                         capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    data, pos, msgs = out.stdout, 0, {}
    while pos < len(data):
        nl = data.index(b"\n", pos)
        p, o, vlen, klen = (int(x) for x in data[pos:nl].split())
        pos = nl + 1
        key = data[pos:pos + klen] if klen >= 0 else None
        pos += max(klen, 0)
        value = data[pos:pos + vlen] if vlen >= 0 else None
        pos += max(vlen, 0) + 1
        msgs[(p, o)] = {"partition": p, "offset": o, "key": key, "value": value, "headers": []}
    js = subprocess.run(["kcat", "-b", kafka, "-C", "-t", topic, "-e", "-q", "-J"],
                        capture_output=True, timeout=timeout)
    assert js.returncode == 0, js.stderr
    for line in js.stdout.splitlines():
        if line.strip():
            m = json.loads(line.decode("utf-8", "replace"))
            h = m.get("headers") or []
            msgs[(m["partition"], m["offset"])]["headers"] = list(zip(h[::2], h[1::2]))
    return [msgs[k] for k in sorted(msgs)]


def describe_group(kafka, group):
    """kafka-consumer-groups.sh --describe --group GROUP, from the Kafka jars
    (tests/env/kafka-run-class.sh): {(topic, partition): {"current", "end",
    "lag", "consumer_id", "host", "client_id"}}, "-" read as None and
    numbers as ints; None when Kafka says the group does not exist."""
    out = subprocess.run(["bash", os.path.join(ENV_DIR, "kafka-run-class.sh"),
                          "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                          "--bootstrap-server", kafka, "--describe", "--group", group],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    if "does not exist" in text or "GroupIdNotFoundException" in text:
        return None
    assert out.returncode == 0, text
    rows, cols = {}, None
    for line in out.stdout.splitlines():
        f = line.split()
        if f[:2] == ["GROUP", "TOPIC"]:
            cols = f
        elif cols and len(f) == len(cols) and f[0] == group:
            r = dict(zip(cols, f))
            val = lambda k, num=False: None if r[k] == "-" else (int(r[k]) if num else r[k])
            rows[(r["TOPIC"], int(r["PARTITION"]))] = {
                "current": val("CURRENT-OFFSET", True), "end": val("LOG-END-OFFSET", True),
                "lag": val("LAG", True), "consumer_id": val("CONSUMER-ID"),
                "host": val("HOST"), "client_id": val("CLIENT-ID")}
    return rows


def table_dump(db_url, sql):
    """All rows of a query as a list of tuples (for before/after comparisons)."""
    with psycopg.connect(db_url) as c:
        return c.execute(sql).fetchall()


# --- worker faults and GitHub policy (issue 3: workers, GitHub, token) ------

def start_with_env(pipeline, name, env, *args):
    """Starts one of the pipeline's binaries with extra or overridden
    environment variables (a value of None removes the variable)."""
    pipeline.counter += 1
    e = dict(pipeline.env)
    for k, v in env.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = Proc([binary(name), *args], e, os.path.join(pipeline.workdir, f"{name}-{pipeline.counter}.log"))
    pipeline.procs.append(p)
    return p


def log_time(line):
    """Epoch seconds of a log line of ours ("2026-11-28T21:39:11.123Z ...")."""
    import datetime
    ts = line.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def log_lines(proc, needle, since=0):
    """Lines of a process's log (from byte offset `since`) containing needle."""
    return [line for line in proc.output()[since:].splitlines() if needle in line]


def answered(entry):
    """A simulator request-log entry that delivered a page to the worker."""
    return entry["status"] == 200 and not entry.get("error") and not entry.get("fault")


def pages_fetched_twice(requests, repo):
    """How many pages of repo were answered more than once (grouped by the
    `after` cursor): the refetch count after a crash or a rebalance."""
    from collections import Counter
    c = Counter(r["after"] for r in requests if r["repo"] == repo.lower() and answered(r))
    return sum(n - 1 for n in c.values())


def progress_events(pipeline):
    """The data of every backfill/progress.update on the progress topic."""
    out = []
    for m in pipeline.consume(pipeline.progress_topic):
        v = json.loads(m["payload"])
        if v["name"] == "backfill/progress.update":
            out.append(v["data"])
    return out


def check_exact(pipeline, repos, max_prs=200, since_days=30):
    """Row by row: each repository's pull requests in Postgres are exactly
    the simulator's expected set (number, GitHub id, state), and its state
    row is completed with processed_prs = that count, total_prs = max_prs.
    Returns the number of pull-request rows checked."""
    sim, states, checked = pipeline.sim, pipeline.states(), 0
    for repo in repos:
        exp = sim.expected(repo, max_prs, since_days)
        want = sorted((p["number"], int(p["githubId"]), p["state"].lower()) for p in exp["expected"])
        rows = pipeline.query(
            "SELECT p.number, p.github_id, p.state FROM pull_requests p"
            " JOIN repositories r ON r.id = p.repository_id"
            " WHERE lower(r.owner) = lower(%s) AND lower(r.name) = lower(%s) ORDER BY p.number",
            *repo.split("/"))
        assert sorted(rows) == want, f"{repo}: {len(rows)} rows, want {len(want)}"
        st = states.get(repo.lower())
        assert st and st["status"] == "completed", f"{repo}: {st}"
        assert st["processed"] == len(want) and st["total"] == max_prs, f"{repo}: {st}"
        checked += len(rows)
    return checked


def owned_partitions(proc, since=0):
    """The jobs-topic partitions a consumer owns according to its log
    ("assigned N partitions [..]" / "revoked N partitions [..]")."""
    import re
    owned = set()
    for line in proc.output()[since:].splitlines():
        m = re.search(r" (assigned|revoked) \d+ partitions \[([0-9,]*)\]", line)
        if m:
            parts = {int(x) for x in m.group(2).split(",") if x}
            owned = owned | parts if m.group(1) == "assigned" else owned - parts
    return owned


def start_workers(pipeline, n, *args, partitions=12):
    """Starts n consumers and waits until the group has settled: every
    partition owned by exactly one of them."""
    procs = [pipeline.start("backfill-consumer", *args) for _ in range(n)]

    def settled():
        sets = [owned_partitions(p) for p in procs]
        return (all(sets) and sum(len(s) for s in sets) == partitions
                and len(set().union(*sets)) == partitions)
    wait_for(settled, 60, f"{n} consumers to share {partitions} partitions")
    return procs


def check_rows(pipeline, repo):
    """The repository's stored pull requests (number, id, state) are exactly
    the simulator's expected ones. Returns the expected answer (its
    "expected" list and "min_pages")."""
    exp = pipeline.sim.expected(repo)
    want = sorted((p["number"], int(p["githubId"]), p["state"].lower()) for p in exp["expected"])
    rows = pipeline.query(
        "SELECT p.number, p.github_id, p.state FROM pull_requests p"
        " JOIN repositories r ON r.id = p.repository_id"
        " WHERE lower(r.owner) = lower(%s) AND lower(r.name) = lower(%s) ORDER BY p.number",
        *repo.split("/"))
    assert sorted(rows) == want, f"{repo}: pull requests differ from the simulator's"
    return exp


# --- Prometheus metrics (issue 14) -------------------------------------------

METRIC_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_get(port, path):
    """(status, Content-Type, body text) of GET http://127.0.0.1:port/path,
    also for an HTTP error status; (None, None, "") when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()
    except OSError:
        return None, None, ""


def metrics_samples(text):
    """[(name, {label: value}, float)] of every sample in an exposition text."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(METRIC_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metrics_series(samples, name, **labels):
    """{frozenset(labels): value} of the samples of name whose labels
    include `labels`."""
    return {frozenset(ls.items()): v for n, ls, v in samples
            if n == name and all(ls.get(k) == w for k, w in labels.items())}


def metrics_value(text, name, **labels):
    """The sum of every sample of name whose labels include `labels`
    (None when there is none)."""
    hits = [v for n, ls, v in metrics_samples(text)
            if n == name and all(ls.get(k) == w for k, w in labels.items())]
    return sum(hits) if hits else None


def promtool_check(text):
    """(returncode, stdout + stderr) of `promtool check metrics` on text."""
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr
