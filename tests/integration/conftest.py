"""Fixtures: one real Kafka broker and one real Postgres server for the
session (started by tests/env/*.sh in temporary directories, or taken from
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), a GitHub simulator and an
isolated pipeline per test."""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import ENV_DIR, Pipeline, Simulator


def _start(script, workdir):
    out = subprocess.run(["bash", os.path.join(ENV_DIR, script), "start", workdir],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{script} start failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def _stop(script, workdir):
    subprocess.run(["bash", os.path.join(ENV_DIR, script), "stop", workdir],
                   capture_output=True, timeout=120)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka():
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    d = tempfile.mkdtemp(prefix="backfill-kafka-", dir="/tmp")
    try:
        yield _start("kafka.sh", d)
    finally:
        _stop("kafka.sh", d)


@pytest.fixture(scope="session")
def postgres():
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    d = tempfile.mkdtemp(prefix="backfill-pg-", dir="/tmp")
    try:
        yield _start("postgres.sh", d)
    finally:
        _stop("postgres.sh", d)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="backfill-test-", dir="/tmp")
    yield d
    if os.environ.get("BACKFILL_KEEP_TEST_DIRS"):  # keep the logs for a post-mortem
        print(f"\n[kept {d}]")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sim(workdir):
    s = Simulator(workdir)
    yield s
    s.stop()


@pytest.fixture
def pipeline(kafka, postgres, workdir, sim):
    p = Pipeline(kafka, postgres, workdir, sim)
    yield p
    p.close()
