"""Shared pieces of the benchmarks: services (a real Kafka broker and a
real Postgres, started in temporary directories unless
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set), the integration tests'
harness, and process resource figures from /proc."""
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import ENV_DIR, Pipeline, Simulator, owned_partitions, start_workers  # noqa: E402,F401


def _start(script, workdir):
    out = subprocess.run(["bash", os.path.join(ENV_DIR, script), "start", workdir],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{script} start failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def services():
    """Yields (kafka_bootstrap, postgres_admin_url, workdir)."""
    work = tempfile.mkdtemp(prefix="backfill-bench-", dir="/tmp")
    started = []
    try:
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not kafka:
            kafka = _start("kafka.sh", os.path.join(work, "kafka"))
            started.append(("kafka.sh", os.path.join(work, "kafka")))
        pg = os.environ.get("DATABASE_URL")
        if not pg:
            pg = _start("postgres.sh", os.path.join(work, "pg"))
            started.append(("postgres.sh", os.path.join(work, "pg")))
        yield kafka, pg, work
    finally:
        for script, d in reversed(started):
            subprocess.run(["bash", os.path.join(ENV_DIR, script), "stop", d], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def fresh_pipeline(work, label, kafka, pg, latency_ms, partitions=None, sim_args=()):
    """(simulator, pipeline): a simulator answering after latency_ms and a
    pipeline of its own (fresh topics of `partitions` partitions, database
    and groups) in a new directory under work."""
    d = os.path.join(work, f"{label}-{time.monotonic_ns()}")
    os.makedirs(d)
    sim = Simulator(d, "--latency-ms", str(latency_ms), *sim_args)
    p = Pipeline(kafka, pg, d, sim)
    if partitions:
        p.env["BACKFILL_PARTITIONS"] = str(partitions)
    return sim, p


def proc_private_kib(pid):
    """Memory only this process holds now (KiB): its private pages, i.e.
    RSS without the shared library pages every consumer on a host shares."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def proc_usage(pid):
    """(peak RSS in KiB, CPU seconds) of a live process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return rss, cpu


def produce_and_wait(p, repos, label, timeout=900, interval=0.05):
    """Queues repos with backfill-producer and waits until every state row
    is terminal; (seconds from the producer's start, states). Raises when
    the producer fails or a repository did not complete."""
    t0 = time.monotonic()
    out = p.produce(*repos)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    states = p.wait_terminal(repos, timeout=timeout, interval=interval)
    wall = time.monotonic() - t0
    bad = [r for r in repos if states[r.lower()]["status"] != "completed"]
    if bad:
        raise RuntimeError(f"{label}: not completed: {bad[:5]} ({states[bad[0].lower()]})")
    return wall, states


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def mixed_repos(n, seed):
    """[(name, in_window, older)]: a third <= 20 PRs in the window, half
    21-150, the rest 151-320 (sim-K-M/r<i>: K in the window, M older)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rng.random()
        k = rng.randint(1, 20) if r < 1 / 3 else rng.randint(21, 150) if r < 5 / 6 else \
            rng.randint(151, 320)
        m = rng.randint(0, 40)
        out.append((f"sim-{k}-{m}/r{i}", k, m))
    return out


def pages_needed(work, names, max_prs=200):
    """{name: pages (points) a correct worker needs}, as the simulator's own
    /_sim/expected counts them (one throwaway simulator asked once)."""
    d = os.path.join(work, f"pages-{time.monotonic_ns()}")
    os.makedirs(d, exist_ok=True)
    sim = Simulator(d)
    try:
        return {r: sim.expected(r, max_prs)["min_pages"] for r in names}
    finally:
        sim.stop()
