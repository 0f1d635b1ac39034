"""The docker compose deployment, run for real: compose.yaml with its
services started by a Docker engine and driven the way README.md tells a
user (`up -d`, `run --rm producer`, `run --rm tail`, `run --rm status`,
`up -d --scale consumer=8`, `down`, `up -d`, `down -v`).

No image registry is needed (none is reachable where the tests run):
tests/compose/docker.sh installs docker.io + debootstrap from Debian if
missing, starts dockerd if none runs (and stops it afterwards), installs
Compose v2 (Debian 13's static docker-compose 2.26.1, pinned by SHA-256) as
a CLI plugin, and makes debian:bookworm-slim with debootstrap; then
tests/compose/images.sh builds stand-ins for apache/kafka:3.9.1 and
postgres from Debian, which tests/compose/override.yaml swaps in for those
two images only. The project's own image is built from the Dockerfile by
`docker compose build`, as a user would. Everything heavy stays cached in
the engine and in ${BACKFILL_CACHE:-~/.cache/backfill}.

The consumers reach the GitHub simulator on the host through the docker
bridge's gateway address.

What it proves about compose.yaml and the Dockerfile:
  1. a 0600 token file (root's, on the host) works: the consumers read it,
     run as uid 10001 with no capabilities, never restart, and the token
     appears in no log;
  2. POSTGRES_PASSWORD='p@ss/w%rd' works for Postgres, the sink, the web and
     status;
  3. `run --rm producer|tail|status` does not run kafka-init again, and
     starts at once;
  4. the Kafka health check is cheap (no JVM: every probe well under a
     second);
  5. BACKFILL_CONTROL_TOPIC reaches every backfill service and kafka-init
     creates that topic;
  6. the sink and every consumer become healthy by their own /healthz, and
     the `prometheus` profile scrapes all 8 consumer replicas, the sink and
     the web.

Skipped only when no Docker engine can run on this machine (the reason is
printed)."""
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

import psycopg
import pytest

from harness import (ROOT, SECRET_TOKEN, SIM, TEN_REPOS, Simulator, check_rows, free_port,
                     wait_for)

HERE = os.path.join(ROOT, "tests", "compose")
COMPOSE = os.path.join(ROOT, "compose.yaml")
OVERRIDE = os.path.join(HERE, "override.yaml")
PASSWORD = "p@ss/w%rd"  # a URI would need every one of these escaped
# Variables compose interpolates must come from our env file, not the test run.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not (k.startswith(("BACKFILL_", "GITHUB_", "KAFKA_", "COMPOSE_", "PG"))
                     or k in ("DATABASE_URL", "POSTGRES_PASSWORD", "WEB_HOST_PORT"))}
BUSY_STATES = ("queued", "active", "paused", "pending", "running")


class Phases:
    """Wall time of each phase, printed as the test goes and at the end."""

    def __init__(self):
        self.done = []

    def run(self, name, fn, *args, **kw):
        t = time.monotonic()
        try:
            return fn(*args, **kw)
        finally:
            self.done.append((name, time.monotonic() - t))
            print(f"[compose] {name}: {self.done[-1][1]:.1f}s", flush=True)

    def report(self):
        return "\n".join(f"  {n:<58} {s:7.1f}s" for n, s in self.done)


class HostSimulator(Simulator):
    """The GitHub simulator, listening on HOST (the docker bridge gateway)
    so the containers reach it; the test reaches it there too."""

    def __init__(self, workdir, host, *extra):
        port_file = os.path.join(workdir, "sim.port")
        self.log = open(os.path.join(workdir, "sim.log"), "wb")
        self.p = subprocess.Popen(
            ["python3", SIM, "--host", host, "--port", "0", "--port-file", port_file,
             "--token", SECRET_TOKEN, *extra], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 15,
                 "the GitHub simulator")
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = f"http://{host}:{self.port}"


class Stack:
    """One compose project of compose.yaml + tests/compose/override.yaml."""

    def __init__(self, workdir, env_file, cli_env):
        self.project = "bftest" + uuid.uuid4().hex[:8]
        self.workdir = workdir
        self.cli_env = cli_env
        self.base = ["docker", "compose", "-p", self.project, "--project-directory", ROOT,
                     "--env-file", env_file, "-f", COMPOSE, "-f", OVERRIDE]
        self.sim = None
        self.pg = None  # psycopg connection arguments (the published port)

    def compose(self, *args, timeout=600, check=True, input=None):
        out = subprocess.run([*self.base, *args], cwd=ROOT, env=self.cli_env, input=input,
                             stdin=None if input is not None else subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, \
                f"docker compose {' '.join(args)} exited {out.returncode}:\n" \
                f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out

    def docker(self, *args, timeout=120):
        out = subprocess.run(["docker", *args], env=self.cli_env, capture_output=True,
                             text=True, timeout=timeout)
        assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr}"
        return out.stdout

    def containers(self, service=None):
        """docker inspect of the project's containers (running or not)."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = self.docker("ps", "-a", "-q", *filters).split()
        if not ids:
            return []
        return json.loads(self.docker("inspect", *ids))

    @staticmethod
    def service(c):
        return c["Config"]["Labels"].get("com.docker.compose.service")

    def ready(self, consumers):
        """True once kafka, postgres, the web, the sink and `consumers`
        consumers are healthy (theirs is /healthz: Kafka reached, group
        joined, Postgres or a credential usable) and kafka-init has exited 0."""
        by = {}
        for c in self.containers():
            by.setdefault(self.service(c), []).append(c["State"])
        health = lambda s: by.get(s) and by[s][0].get("Health", {}).get("Status") == "healthy"
        init = by.get("kafka-init")
        return (health("kafka") and health("postgres") and health("web")
                and init and init[0]["Status"] == "exited" and init[0]["ExitCode"] == 0
                and health("sink")
                and len([s for s in by.get("consumer", [])
                         if s["Running"] and s.get("Health", {}).get("Status") == "healthy"])
                == consumers)

    def tool(self, name, *args):
        """docker compose run --rm NAME ARGS (a tools-profile service) must
        not start the one-shot kafka-init again (defect 3), nor leave its
        container behind."""
        before = self.containers("kafka-init")[0]["State"]
        out = self.compose("run", "--rm", "-T", name, *args)
        after = self.containers("kafka-init")[0]["State"]
        assert after["StartedAt"] == before["StartedAt"] and after["Status"] == "exited", \
            f"`docker compose run --rm {name}` ran kafka-init again"
        assert not self.containers(name), f"`run --rm {name}` left a container"
        return out

    def up(self, *args, consumers=5):
        self.compose("up", "-d", *args)
        wait_for(lambda: self.ready(consumers), 300, "the stack to be healthy", interval=1)

    def query(self, sql, *params):
        with psycopg.connect(**self.pg) as c:
            return c.execute(sql, params).fetchall()

    def states(self):
        try:
            rows = self.query(
                "SELECT lower(r.owner || '/' || r.name), s.status, s.processed_prs, s.total_prs"
                " FROM progressive_backfill_state s JOIN repositories r ON r.id = s.repository_id")
        except psycopg.errors.UndefinedTable:
            return {}
        return {r[0]: {"status": r[1], "processed": r[2], "total": r[3]} for r in rows}

    def all_rows(self):
        return self.query("SELECT r.owner, r.name, p.number, p.github_id, p.state"
                          " FROM pull_requests p JOIN repositories r ON r.id = p.repository_id"
                          " ORDER BY 1, 2, 3")


def ensure_docker():
    """tests/compose/docker.sh ensure: {DOCKER_CONFIG, STARTED}; skips when
    no Docker engine can run here."""
    out = subprocess.run(["bash", os.path.join(HERE, "docker.sh"), "ensure"],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode == 3:
        reason = out.stderr.strip().splitlines()[-1]
        print(f"[compose] skipped: {reason}")
        pytest.skip(f"no Docker engine can run on this machine: {reason}")
    assert out.returncode == 0, f"tests/compose/docker.sh ensure failed:\n{out.stderr[-3000:]}"
    return dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)


def gateway_address(cli_env):
    """The host's address on the default docker bridge (docker0): every
    container can reach the host there."""
    out = subprocess.run(["docker", "network", "inspect", "bridge", "-f",
                          "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
                         env=cli_env, capture_output=True, text=True, timeout=60)
    for gw in out.stdout.split():
        return gw
    ip = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True,
                        text=True, timeout=30).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", ip)
    assert m, f"no address on docker0: {out.stderr}{ip}"
    return m.group(1)


def test_compose_stack_as_the_readme_runs_it(workdir):
    phases = Phases()
    engine = phases.run("engine: docker.io, dockerd, Compose v2, debian:bookworm-slim",
                        ensure_docker)
    cli_env = dict(CLEAN_ENV, DOCKER_CONFIG=engine["DOCKER_CONFIG"],
                   # the classic builder: BuildKit fetches the `# syntax=` frontend
                   # image of the Dockerfile from Docker Hub, unreachable here
                   DOCKER_BUILDKIT="0")
    stack = None
    sim = None
    left = vols = []
    try:
        images = phases.run("stand-in images (Kafka 3.9.1, PostgreSQL 15, Prometheus)",
                            lambda: dict(
            line.split("=", 1) for line in subprocess.run(
                ["bash", os.path.join(HERE, "images.sh")], env=cli_env, capture_output=True,
                text=True, timeout=1800, check=True).stdout.split()))

        sim = HostSimulator(workdir, gateway_address(cli_env))
        token_file = os.path.join(workdir, "github_token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, SECRET_TOKEN.encode())
        os.close(fd)
        assert os.stat(token_file).st_mode & 0o777 == 0o600  # defect 1: a 0600 secret

        pg_port = free_port()
        prom_port = free_port()
        control_topic = "backfill.control.t" + uuid.uuid4().hex[:6]
        env_file = os.path.join(workdir, "compose.env")
        with open(env_file, "w") as f:  # a .env as a user writes it
            f.write(f"POSTGRES_PASSWORD='{PASSWORD}'\n"
                    f"KAFKA_HOST_PORT={free_port()}\n"
                    f"WEB_HOST_PORT={free_port()}\n"
                    f"BACKFILL_CONTROL_TOPIC={control_topic}\n"
                    f"GITHUB_GRAPHQL_URL={sim.url}/graphql\n"
                    f"GITHUB_TOKEN_SECRET_FILE={token_file}\n"
                    f"BACKFILL_TEST_KAFKA_IMAGE={images['KAFKA_IMAGE']}\n"
                    f"BACKFILL_TEST_POSTGRES_IMAGE={images['POSTGRES_IMAGE']}\n"
                    f"BACKFILL_TEST_PROMETHEUS_IMAGE={images['PROMETHEUS_IMAGE']}\n"
                    f"PROMETHEUS_HOST_PORT={prom_port}\n"
                    f"BACKFILL_TEST_POSTGRES_PORT={pg_port}\n")
        stack = Stack(workdir, env_file, cli_env)
        stack.sim = sim
        stack.pg = dict(host="127.0.0.1", port=pg_port, user="backfill", dbname="backfill",
                        password=PASSWORD, connect_timeout=10)
        print(f"[compose] project {stack.project}, simulator {sim.url}", flush=True)

        phases.run("docker compose build (the project's image)",
                   stack.compose, "--profile", "tools", "build", timeout=1800)

        phases.run("up -d until every service is healthy", stack.up)
        check_services(stack, control_topic)

        # slow pages (10 s each) until the scale-up below has happened mid-run
        sim.post("/_sim/config", {"latencyMs": 10000})
        out = phases.run("run --rm producer (ten repositories)",
                         stack.tool, "producer", *TEN_REPOS)
        assert len(out.stdout.splitlines()) == len(TEN_REPOS), out.stdout + out.stderr

        # grow to 8 consumers while the ten backfills run
        init_before = stack.containers("kafka-init")[0]["State"]["StartedAt"]
        phases.run("up -d --scale consumer=8 (mid-run)",
                   stack.up, "--scale", "consumer=8", consumers=8)
        if stack.containers("kafka-init")[0]["State"]["StartedAt"] != init_before:
            print("[compose] note: `up -d --scale consumer=8` ran kafka-init again")
        st = stack.states()
        busy = [r for r in TEN_REPOS if st.get(r.lower(), {}).get("status") in BUSY_STATES
                or r.lower() not in st]
        assert busy, f"every backfill had ended before the scale-up: not mid-run ({st})"
        print(f"[compose] {len(busy)} of 10 backfills still running once 8 consumers ran")
        sim.post("/_sim/config", {"latencyMs": 200})

        tail = phases.run("run --rm tail --exit-when-done --from-beginning",
                          stack.tool, "tail", "--exit-when-done", "--from-beginning")
        events = [json.loads(x) for x in tail.stdout.splitlines() if x.startswith("{")]
        assert events, tail.stdout[-2000:] + tail.stderr[-2000:]

        def exact():
            # tail reads the progress topic; the sink writes it to Postgres a
            # moment later: wait for Postgres to have seen every completion
            want = {r: len(sim.expected(r)["expected"]) for r in TEN_REPOS}

            def stored():
                st, counts = stack.states(), dict(stack.query(
                    "SELECT lower(r.owner || '/' || r.name), count(*) FROM pull_requests p"
                    " JOIN repositories r ON r.id = p.repository_id GROUP BY 1"))
                return all(st.get(r.lower(), {}).get("status") == "completed"
                           and counts.get(r.lower(), 0) >= n for r, n in want.items())
            try:
                wait_for(stored, 60, "the sink to store the ten backfills", interval=0.5)
            except AssertionError:
                pass  # check_rows below says what differs
            states = stack.states()
            n = 0
            counts = dict(stack.query(
                "SELECT lower(r.owner || '/' || r.name), count(*) FROM pull_requests p"
                " JOIN repositories r ON r.id = p.repository_id GROUP BY 1"))
            print("[compose] stored / expected pull requests: " + ", ".join(
                f"{r} {counts.get(r.lower(), 0)}/{n}" for r, n in want.items()))
            for repo in TEN_REPOS:
                exp = check_rows(stack, repo)
                s = states[repo.lower()]
                assert s["status"] == "completed", f"{repo}: {s}"
                assert s["processed"] == len(exp["expected"]) and s["total"] == 200, f"{repo}: {s}"
                n += len(exp["expected"])
            dup = stack.query("SELECT repository_id, number, count(*) FROM pull_requests"
                              " GROUP BY 1, 2 HAVING count(*) > 1")
            assert not dup, f"duplicate pull-request rows: {dup[:5]}"
            return n
        n = phases.run("rows in Postgres against the simulator", exact)
        print(f"[compose] {n} pull requests of 10 repositories exact, no duplicates "
              f"({sim.get('/_sim/stats')['requests']} API requests)")

        phases.run("--profile prometheus up -d: every replica scraped",
                   check_prometheus, stack, prom_port, 8)

        status = phases.run("run --rm status", stack.tool, "status")
        for repo in TEN_REPOS:
            assert repo.lower() in status.stdout.lower(), status.stdout + status.stderr
        assert "completed" in status.stdout
        check_consumers(stack, 8)

        rows = stack.all_rows()
        phases.run("down (volumes kept)", stack.compose, "down", timeout=300)
        assert not stack.containers()
        phases.run("up -d again until healthy", stack.up)
        assert stack.all_rows() == rows, "the stored rows changed across down / up"
        tail = phases.run("run --rm tail --exit-when-done --from-beginning (after up)",
                          stack.tool, "tail", "--exit-when-done", "--from-beginning")
        assert tail.stdout.count("\n") >= len(events), "the progress topic lost events"
        check_no_token_in_logs(stack)
    finally:
        if stack is not None:
            logs = subprocess.run([*stack.base, "logs", "--no-color", "--timestamps"],
                                  env=cli_env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=300)
            with open(os.path.join(workdir, "compose.log"), "w") as f:
                f.write(logs.stdout + logs.stderr)
            phases.run("down -v", subprocess.run,
                       # with the profile: a profile's volumes go only when it is named
                       [*stack.base, "--profile", "prometheus", "down", "-v", "--remove-orphans",
                        "--timeout", "30"],
                       env=cli_env, cwd=ROOT, capture_output=True, timeout=600)
            left = subprocess.run(["docker", "ps", "-a", "-q", "--filter",
                                   f"label=com.docker.compose.project={stack.project}"],
                                  env=cli_env, capture_output=True, text=True).stdout.split()
            vols = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                                   f"label=com.docker.compose.project={stack.project}"],
                                  env=cli_env, capture_output=True, text=True).stdout.split()
            if left or vols:  # belt and braces: never leave a project behind
                subprocess.run(["docker", "rm", "-f", "-v", *left], env=cli_env,
                               capture_output=True)
                subprocess.run(["docker", "volume", "rm", "-f", *vols], env=cli_env,
                               capture_output=True)
        if sim is not None:
            sim.stop()
        if engine.get("STARTED") == "1":
            phases.run("stop the dockerd this test started", subprocess.run,
                       ["bash", os.path.join(HERE, "docker.sh"), "stop"], timeout=120)
        print("\n[compose] cost of each phase:\n" + phases.report())
    assert not left and not vols, f"project {stack.project} left {left} {vols}"


def check_prometheus(stack, port, consumers):
    """The prometheus profile: its scrape configuration finds every consumer
    replica (by DNS), the sink and the web, and what it scraped adds up."""
    stack.compose("--profile", "prometheus", "up", "-d", "prometheus")

    def query(expr):
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())["data"]["result"]
        except OSError:
            return None

    def scraped():
        up = query("up") or []
        jobs = [(u["metric"]["job"], u["value"][1]) for u in up]
        return (sorted(jobs) == sorted([("consumer", "1")] * consumers
                                       + [("sink", "1"), ("web", "1")]) and jobs)
    jobs = wait_for(scraped, 120, f"Prometheus to scrape {consumers} consumers, sink and web",
                    interval=2)
    done = query("sum(backfill_jobs_completed_total)")
    assert done and float(done[0]["value"][1]) >= len(TEN_REPOS), done
    print(f"[compose] Prometheus scrapes {len(jobs)} targets; "
          f"jobs completed: {done[0]['value'][1]}")
    # a plain `down` leaves a profile's services alone (the README says to
    # name the profile): take it away as a user would
    stack.compose("--profile", "prometheus", "rm", "--stop", "--force", "prometheus")


def check_services(stack, control_topic):
    """Right after `up -d`: the Kafka health check, the control topic, the
    Postgres password, the consumers' user."""
    kafka = stack.containers("kafka")[0]
    # defect 4: a cheap health check, no JVM; every probe quick
    test = " ".join(kafka["Config"]["Healthcheck"]["Test"])
    assert "kafka-" not in test and "java" not in test, f"Kafka health check: {test}"
    probes = kafka["State"]["Health"]["Log"]
    took = [iso(p["End"]) - iso(p["Start"]) for p in probes]
    assert probes and max(took) < 1.0, f"Kafka health probes took {took}"
    print(f"[compose] Kafka health probe: {test!r}, at most {max(took) * 1000:.0f} ms")

    # defect 5: BACKFILL_CONTROL_TOPIC reaches the services; kafka-init made it
    for c in stack.containers():
        svc = stack.service(c)
        if svc in ("sink", "consumer", "web"):
            env = dict(e.split("=", 1) for e in c["Config"]["Env"])
            assert env.get("BACKFILL_CONTROL_TOPIC") == control_topic, f"{svc}: {env}"
            assert "DATABASE_URL" not in env, f"{svc} still gets a DATABASE_URL"
            assert svc == "consumer" or env.get("PGPASSWORD") == PASSWORD, svc
    init_log = stack.compose("logs", "--no-color", "kafka-init").stdout
    assert f"Created topic {control_topic}." in init_log, init_log[-2000:]
    topics = stack.compose("exec", "-T", "kafka", "/opt/kafka/bin/kafka-topics.sh",
                           "--bootstrap-server", "kafka:9092", "--describe",
                           "--topic", control_topic).stdout
    assert re.search(rf"Topic: {re.escape(control_topic)}\s.*PartitionCount: 1\b", topics), topics

    # defect 2: the password with '@', '/' and '%' is Postgres's, over TCP
    # (scram-sha-256), and the sink and the web reached Postgres with it
    assert stack.query("SELECT current_user")[0][0] == "backfill"
    wait_for(lambda: stack.query("SELECT to_regclass('pull_requests') IS NOT NULL")[0][0], 60,
             "the sink's migrations")

    check_consumers(stack, 5)


def check_consumers(stack, n):
    """defect 1: every consumer runs (never restarted) as uid 10001 with no
    capabilities, though the token file is root's at 0600."""
    cs = [c for c in stack.containers("consumer") if c["State"]["Running"]]
    assert len(cs) == n, [c["Name"] for c in cs]
    for c in cs:
        assert c["RestartCount"] == 0, f"{c['Name']} restarted {c['RestartCount']} times"
        status = stack.docker("exec", c["Id"], "cat", "/proc/1/status")
        uid = re.search(r"(?m)^Uid:\s+(.*)$", status).group(1).split()
        cap = re.search(r"(?m)^CapEff:\s+(\S+)", status).group(1)
        comm = re.search(r"(?m)^Name:\s+(\S+)", status).group(1)
        assert set(uid) == {"10001"} and int(cap, 16) == 0, f"{c['Name']}: {uid} {cap}"
        assert comm.startswith("backfill-consum"), comm


def check_no_token_in_logs(stack):
    logs = stack.compose("logs", "--no-color").stdout
    assert SECRET_TOKEN not in logs, "the GitHub token reached a container log"


def iso(ts):
    """Epoch seconds of Docker's RFC 3339 time with nanoseconds."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", ts)
    base = datetime.datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return base.timestamp() + float("0." + (m.group(2) or "0"))
