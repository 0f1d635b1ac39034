"""Fixtures: one real Kafka broker and one real Postgres server for the
session (started by tests/env/*.sh in temporary directories, or taken from
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), a GitHub simulator and an
isolated pipeline per test.

The broker is Apache Kafka as it ships (tests/env/kafka.sh), version
KAFKA_VERSION: unset for the default (4.4.0), KAFKA_VERSION=3.9.1 for the
smoke run against the last 3.x release (both fetched by
scripts/install-deps.sh). The same variable reaches every kafka.sh and
kafka-run-class.sh the tests start."""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import ENV_DIR, Pipeline, Simulator, kafka_libs, kafka_sh, kafka_version


def _start(script, workdir):
    out = subprocess.run(["bash", os.path.join(ENV_DIR, script), "start", workdir],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{script} start failed:\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def _stop(script, workdir):
    subprocess.run(["bash", os.path.join(ENV_DIR, script), "stop", workdir],
                   capture_output=True, timeout=120)
    shutil.rmtree(workdir, ignore_errors=True)


def pytest_report_header(config):
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return f"kafka: {os.environ['KAFKA_BOOTSTRAP_SERVERS']} (KAFKA_BOOTSTRAP_SERVERS)"
    if os.environ.get("KAFKA_LIBS"):
        return f"kafka: stock config, jars in {os.environ['KAFKA_LIBS']} (KAFKA_LIBS)"
    try:
        return f"kafka: Apache Kafka {kafka_version()}, stock config, jars in {kafka_libs()}"
    except RuntimeError as e:  # an unknown KAFKA_VERSION: the kafka fixture says so
        return f"kafka: {e}"


@pytest.fixture(scope="session")
def kafka():
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if not os.environ.get("KAFKA_LIBS"):
        try:
            kafka_libs()  # KAFKA_VERSION names a version there is a pom for
        except RuntimeError as e:
            pytest.fail(f"KAFKA_VERSION={os.environ.get('KAFKA_VERSION', '')}: {e}")
    d = tempfile.mkdtemp(prefix="backfill-kafka-", dir="/tmp")
    try:
        yield kafka_sh("start", d)
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
