"""Issue 14: a real Prometheus server (Debian's `prometheus`, installed by
scripts/install-deps.sh) scrapes every binary of a run of the ten load-test
repositories and one that does not exist, and what its HTTP API sums up
agrees with what the simulator and Postgres say happened: GraphQL requests,
points, pull requests stored, jobs completed and failed. `promtool check
metrics` passes on every endpoint's output."""
import json
import os
import shutil
import urllib.parse
import urllib.request

import pytest

from harness import (SECRET_TOKEN, TEN_REPOS, Proc, check_rows, free_port, http_json,
                     metrics_get, promtool_check, wait_for)

UNKNOWN = "ghost-org/does-not-exist"
CONSUMERS = 3

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"),
                                reason="no prometheus: run scripts/install-deps.sh")


class Prometheus:
    """A real Prometheus server scraping the given targets every second,
    with its data in the test's directory."""

    def __init__(self, workdir, jobs):
        self.port = free_port()
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
            for job, ports in jobs.items():
                targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
                f.write(f"  - job_name: {job}\n    static_configs:\n      - targets: [{targets}]\n")
        self.proc = Proc(["prometheus", f"--config.file={cfg}",
                          f"--storage.tsdb.path={os.path.join(workdir, 'prometheus-data')}",
                          f"--web.listen-address=127.0.0.1:{self.port}"],
                         dict(os.environ), os.path.join(workdir, "prometheus.log"))
        wait_for(self.ready, 60, "Prometheus to start")

    def ready(self):
        assert self.proc.p.poll() is None, self.proc.output()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """The instant vector of expr as {labels-json: value}, or a number
        for a scalar-like single series without labels."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return {json.dumps(s["metric"], sort_keys=True): float(s["value"][1])
                for s in body["data"]["result"]}

    def value(self, expr):
        """The single value of expr (a sum), or None when it has no series."""
        res = self.query(expr)
        assert len(res) <= 1, res
        return next(iter(res.values())) if res else None

    def stop(self):
        self.proc.stop()


def test_prometheus_sums_agree_with_the_simulator_and_postgres(pipeline, workdir):
    sim = pipeline.sim
    sim.post("/_sim/config", {"latencyMs": 100})
    ports = {"consumer": [free_port() for _ in range(CONSUMERS)], "sink": [free_port()],
             "web": [free_port()]}
    sink = pipeline.start("backfill-sink", "--metrics", f"127.0.0.1:{ports['sink'][0]}")
    consumers = [pipeline.start("backfill-consumer", "--metrics", f"127.0.0.1:{p}")
                 for p in ports["consumer"]]
    web = pipeline.start_web("--metrics", f"127.0.0.1:{ports['web'][0]}")
    prom = Prometheus(workdir, ports)
    try:
        wait_for(lambda: http_json("GET", web.url + "/healthz")[0] == 200, 60, "a healthy web")
        # every endpoint answers, before any job, and promtool accepts what it says
        for job, plist in ports.items():
            for p in plist:
                st, ctype, text = metrics_get(p, "/metrics")
                assert st == 200 and ctype.startswith("text/plain; version=0.0.4"), (job, ctype)
                rc, out = promtool_check(text)
                assert rc == 0, f"{job} :{p}: promtool check metrics:\n{out}\n{text[:3000]}"
                assert "backfill_build_info{" in text, f"{job}: no build info"
        st, body, _ = http_json("POST", web.url + "/api/bulk-add",
                                {"repositories": TEN_REPOS + [UNKNOWN]})
        assert st == 200, body
        states = pipeline.wait_terminal(TEN_REPOS + [UNKNOWN], timeout=240)
        for r in TEN_REPOS:
            check_rows(pipeline, r)
        assert states[UNKNOWN]["status"] == "failed"
        completed = sum(1 for s in states.values() if s["status"] == "completed")
        failed = sum(1 for s in states.values() if s["status"] == "failed")
        stored = pipeline.query("SELECT count(*) FROM pull_requests")[0][0]
        stats = sim.get("/_sim/stats")

        # Prometheus has scraped every target since the run ended
        def caught_up():
            return (prom.value("sum(backfill_jobs_completed_total)") == completed
                    and prom.value("sum(backfill_github_requests_total)") == stats["requests"]
                    and prom.value("sum(backfill_kafka_consumer_lag)") == 0)
        wait_for(caught_up, 60, "Prometheus to see the end of the run", interval=1)
        up = prom.query("up")
        assert len(up) == CONSUMERS + 2 and all(v == 1 for v in up.values()), up
        assert prom.value("sum(backfill_jobs_completed_total)") == completed == 10
        assert prom.value("sum(backfill_jobs_failed_total)") == failed == 1
        assert prom.value("sum(backfill_jobs_started_total)") == 11
        assert prom.value("sum(backfill_jobs_in_progress)") == 0
        assert prom.value("sum(backfill_github_requests_total)") == stats["requests"]
        # every request but the unknown repository's (GitHub answers it with a
        # NOT_FOUND error) is an ok one
        unknown = [r for r in sim.get("/_sim/requests") if r["repo"].lower() == UNKNOWN]
        assert len(unknown) == 1, unknown
        assert prom.value('sum(backfill_github_requests_total{class="ok"})') == \
            stats["requests"] - 1
        assert prom.value('sum(backfill_jobs_failed_total{reason="not_found"})') == 1
        assert prom.value("sum(backfill_github_points_total)") == stats["points"]
        assert prom.value("sum(backfill_pull_requests_fetched_total)") == stored
        assert prom.value('sum(backfill_sink_rows_written_total{table="pull_requests"})') >= stored
        assert prom.value("sum(backfill_github_request_duration_seconds_count)") == \
            stats["requests"]
        # the web counted the one bulk add
        assert prom.value('sum(backfill_web_requests_total{route="/api/bulk-add",code="200"})') == 1
        # one build_info per process, each with its program
        programs = sorted(json.loads(k)["program"] for k in prom.query("backfill_build_info"))
        assert programs == sorted(["backfill-consumer"] * CONSUMERS
                                  + ["backfill-sink", "backfill-web"])
        # the end state, once more through promtool, and no secret anywhere
        for job, plist in ports.items():
            for p in plist:
                st, _, text = metrics_get(p, "/metrics")
                assert st == 200, (job, st)
                with open(os.path.join(workdir, f"scrape-{job}-{p}.txt"), "w") as f:
                    f.write(text)  # kept with BACKFILL_KEEP_TEST_DIRS=1
                assert SECRET_TOKEN not in text and "ghp_" not in text
                rc, out = promtool_check(text)
                assert rc == 0, f"{job}: {out}"
                st, _, health = metrics_get(p, "/healthz")
                assert st == 200 and health.strip() == "ok", (job, health)
    finally:
        prom.stop()
    assert sink.p.poll() is None and all(c.p.poll() is None for c in consumers)
