"""Issue 3, workers (items 1-5): a consumer killed or stopped mid-job, a
consumer added mid-run, a wait longer than max.poll.interval.ms, a Kafka
broker restart. Each run ends with Postgres checked row by row against the
simulator, and the simulator's request log tells how many pages were
fetched twice."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter

import pytest

from harness import (ENV_DIR, TEN_REPOS, Pipeline, answered, binary, check_exact, free_port,
                     kafka_sh, log_lines, log_time, metrics_get, metrics_value, owned_partitions, pages_fetched_twice, progress_events, start_workers,
                     wait_for)

BIG = [f"sim-1000-0/big{i}" for i in range(4)]   # 20 pages of 50 each
SMALL = ["preactjs/preact", "aurelia/framework", "lit/lit", "solidjs/solid"]


def answered_count(sim, repo):
    return sum(1 for r in sim.get("/_sim/requests") if r["repo"] == repo and answered(r))


def running_big_job(workers, sim, repos, min_pages=3):
    """(repo, worker) of a job that has had at least min_pages pages and is
    still running, or None."""
    for w in workers:
        for repo in repos:
            if (log_lines(w, f"starting {repo} ") and not log_lines(w, f"completed {repo} ")
                    and answered_count(sim, repo) >= min_pages):
                return repo, w
    return None


def first_line_time(procs, needle, after=0.0):
    times = [log_time(line) for p in procs for line in log_lines(p, needle)]
    times = [t for t in times if t > after]
    return min(times) if times else None


def start_run(pipeline, latency_ms=400):
    pipeline.sim.post("/_sim/config", {"latencyMs": latency_ms})
    pipeline.start("backfill-sink")
    workers = start_workers(pipeline, 5, "--page-size", "50")
    assert pipeline.produce("--max-prs", "1000", *BIG).returncode == 0
    assert pipeline.produce(*SMALL).returncode == 0
    return workers


def check_one_job(pipeline, repo):
    """The job kept its identity and its cutoff across the move."""
    ev = [e for e in progress_events(pipeline) if e["repository"] == repo]
    assert len({e["backfillId"] for e in ev}) == 1, "one backfill per repository"
    assert len({e["cutoffDate"] for e in ev}) == 1, "the cutoff never changes"
    assert sum(e["status"] == "started" for e in ev) == 1, "never restarted from scratch"


def test_kill9_mid_job_resumes_from_checkpoint(pipeline):
    """Item 1: kill -9 a consumer mid-job; another member resumes the job
    from its committed checkpoint; at most one page is fetched twice."""
    sim = pipeline.sim
    workers = start_run(pipeline)
    repo, victim = wait_for(lambda: running_big_job(workers, sim, BIG), 60, "a big job mid-way")
    victim.p.kill()  # SIGKILL: no chance to commit anything more
    victim.p.wait()
    t_kill = time.time()
    victim.expect_clean_exit = False
    pages_before = answered_count(sim, repo)
    survivors = [w for w in workers if w is not victim]

    resumer = wait_for(lambda: next((w for w in survivors if log_lines(w, f"resuming {repo} ")),
                                    None), 90, f"{repo} to be resumed")
    t_moved = first_line_time(survivors, " assigned ", after=t_kill)
    t_resumed = log_time(log_lines(resumer, f"resuming {repo} ")[0])
    pipeline.wait_terminal(BIG + SMALL, timeout=150)

    rows = check_exact(pipeline, BIG, max_prs=1000) + check_exact(pipeline, SMALL)
    reqs = sim.get("/_sim/requests")
    refetched = pages_fetched_twice(reqs, repo)
    assert refetched <= 1, f"{repo}: {refetched} pages fetched twice"
    for other in BIG + SMALL:
        if other != repo:
            assert pages_fetched_twice(reqs, other) == 0, other
    check_one_job(pipeline, repo)
    print(f"\n[item 1] kill -9 after {pages_before} pages of {repo}: partitions moved after "
          f"{t_moved - t_kill:.1f}s, job resumed after {t_resumed - t_kill:.1f}s "
          f"({log_lines(resumer, f'resuming {repo} ')[0].split('resuming ')[1]}); "
          f"pages fetched twice: {refetched}; {rows} rows checked")


def test_sigterm_mid_job_stops_at_chunk_boundary(pipeline):
    """Item 2: SIGTERM a consumer mid-job: it finishes the chunk in hand,
    commits, leaves the group, exits 0; the job continues elsewhere with
    no page fetched twice."""
    sim = pipeline.sim
    workers = start_run(pipeline)
    repo, victim = wait_for(lambda: running_big_job(workers, sim, BIG), 60, "a big job mid-way")
    t_term = time.time()
    rc, exit_s = victim.terminate(30)
    assert rc == 0, victim.output()[-2000:]
    assert exit_s < 10, f"took {exit_s:.1f}s to exit"
    out = victim.output()
    assert f"{repo}: stopped at a chunk boundary (shutting down" in out, out[-3000:]
    assert "leaving group" in out
    survivors = [w for w in workers if w is not victim]
    resumer = wait_for(lambda: next((w for w in survivors if log_lines(w, f"resuming {repo} ")),
                                    None), 90, f"{repo} to be resumed")
    t_resumed = log_time(log_lines(resumer, f"resuming {repo} ")[0])
    t_moved = first_line_time(survivors, " assigned ", after=t_term)
    pipeline.wait_terminal(BIG + SMALL, timeout=150)

    rows = check_exact(pipeline, BIG, max_prs=1000) + check_exact(pipeline, SMALL)
    reqs = sim.get("/_sim/requests")
    for r in BIG + SMALL:
        assert pages_fetched_twice(reqs, r) == 0, f"{r}: a page was fetched twice"
    check_one_job(pipeline, repo)
    print(f"\n[item 2] SIGTERM mid-job ({repo}, 400 ms per request): exited 0 after "
          f"{exit_s:.2f}s, partitions moved after {t_moved - t_term:.1f}s, job resumed after "
          f"{t_resumed - t_term:.1f}s (once its new owner finished its own job); pages fetched "
          f"twice: 0; {rows} rows checked")


def test_second_signal_cancels_a_hung_request(pipeline):
    """Item 2: the first SIGTERM waits for the request in flight (bounded
    by --http-timeout-ms); a second one cancels it at once."""
    sim, repo = pipeline.sim, "sim-40-0/hung"
    w = pipeline.start("backfill-consumer", "--http-timeout-ms", "60000")
    wait_for(lambda: owned_partitions(w), 30, "the consumer to join")
    sim.post("/_sim/faults", {"repo": repo, "kind": "slow", "retryAfter": 30, "count": 1})
    assert pipeline.produce(repo).returncode == 0
    wait_for(lambda: log_lines(w, f"starting {repo} "), 30, "the job to start")
    time.sleep(1.5)  # the first request is in flight: the simulator holds it for 30 s
    t0 = time.time()
    w.p.send_signal(signal.SIGTERM)
    time.sleep(1.5)
    assert w.p.poll() is None, "the first signal lets the request in flight finish"
    w.p.send_signal(signal.SIGTERM)
    rc = w.wait(15)
    dt = time.time() - t0
    assert rc == 0
    assert "request cancelled" in w.output()
    assert dt < 10
    print(f"\n[item 2] hung request: second SIGTERM -> exit 0 after {dt:.2f}s "
          f"(1.5 s after the first)")


def test_sixth_consumer_moves_only_some_partitions(pipeline):
    """Item 3: a sixth consumer joins mid-run: with cooperative-sticky only
    the partitions it takes are revoked; no job restarts from scratch."""
    sim = pipeline.sim
    sim.post("/_sim/config", {"latencyMs": 300})
    repos = [f"sim-500-0/r{i:02d}" for i in range(12)]
    pipeline.start("backfill-sink")
    workers = start_workers(pipeline, 5, "--page-size", "50")
    before = {id(w): owned_partitions(w) for w in workers}
    assert pipeline.produce("--max-prs", "1000", *repos).returncode == 0
    wait_for(lambda: sum(1 for r in repos if answered_count(sim, r) >= 2) >= 5, 60,
             "five jobs under way")
    marks = [len(w.output()) for w in workers]
    sixth = pipeline.start("backfill-consumer", "--page-size", "50")
    t_join = time.time()
    got = wait_for(lambda: owned_partitions(sixth), 60, "the sixth consumer's partitions")
    pipeline.wait_terminal(repos, timeout=150)

    revoked = Counter()
    for w, mark in zip(workers, marks):
        for line in log_lines(w, " revoked ", since=mark):
            m = re.search(r"revoked \d+ partitions \[([0-9,]*)\]", line)
            revoked.update(int(x) for x in m.group(1).split(",") if x)
    got = owned_partitions(sixth)
    assert set(revoked) == got and all(n == 1 for n in revoked.values()), \
        f"revoked {dict(revoked)}, the sixth got {sorted(got)}"
    assert 0 < len(got) < 12
    for w in workers:  # everyone else kept what it had, minus what moved
        assert owned_partitions(w) == before[id(w)] - got

    rows = check_exact(pipeline, repos, max_prs=1000)
    reqs = sim.get("/_sim/requests")
    ev = progress_events(pipeline)
    started = Counter(e["backfillId"] for e in ev if e["status"] == "started")
    assert len(started) == 12 and set(started.values()) == {1}, started
    for r in repos:
        firsts = [q for q in reqs if q["repo"] == r and q["after"] is None and answered(q)]
        assert len(firsts) == 1, f"{r}: {len(firsts)} requests from the first page"
        assert pages_fetched_twice(reqs, r) == 0, r
    moved = sum(len(log_lines(p, "(partition revoked")) for p in workers)
    resumed = sum(len(log_lines(p, "resuming ")) for p in workers + [sixth])
    print(f"\n[item 3] sixth consumer joined {time.time() - t_join:.0f}s before the end: took "
          f"partitions {sorted(got)}, exactly those revoked (one each from their owners); "
          f"{moved} running jobs stopped by the revoke, {resumed} resumed from checkpoints, "
          f"0 restarted, 0 pages fetched twice; {rows} rows checked")


def test_rate_limit_wait_longer_than_max_poll_interval(pipeline):
    """Item 4: a rate-limit wait (~15 s) longer than max.poll.interval.ms
    (8 s) keeps the membership (partitions paused, poll still called),
    shows status paused meanwhile, and completes after the reset."""
    sim, repo = pipeline.sim, "sim-60-0/patient"
    pipeline.start("backfill-sink")
    port = free_port()
    w = pipeline.start("backfill-consumer", "-X", "session.timeout.ms=6000",
                       "-X", "max.poll.interval.ms=8000", "--rate-limit-reserve", "0",
                       "--page-size", "10", "--metrics", f"127.0.0.1:{port}")
    wait_for(lambda: owned_partitions(w), 30, "the consumer to join")
    sim.post("/_sim/config", {"budget": 4, "resetSeconds": 20})  # 6 pages needed, 4 per 20 s
    assert pipeline.produce(repo).returncode == 0
    wait_for(lambda: pipeline.states().get(repo, {}).get("status") == "paused", 40,
             "state paused during the wait")
    t_paused = time.time()
    pipeline.wait_terminal([repo], timeout=60)
    rows = check_exact(pipeline, [repo])

    waits = log_lines(w, "waiting until")
    assert len(waits) == 1, waits
    until = re.search(r"waiting until (\S+Z)", waits[0]).group(1)
    wait_s = log_time(until.replace("Z", ".000Z")) - log_time(waits[0])
    assert wait_s > 8, f"the wait ({wait_s:.1f}s) must outlast max.poll.interval.ms"
    out = w.output()
    assert len(log_lines(w, " assigned ")) == 1 and " revoked " not in out, out[-3000:]
    assert "maximum poll interval" not in out
    reqs = sim.get("/_sim/requests")
    assert not [r for r in reqs if r.get("error") == "RATE_LIMITED"], "never refused"
    # the metric counts the wait as waited: from the log line until the reset
    text = metrics_get(port, "/metrics")[2]
    counted = metrics_value(text, "backfill_rate_limit_wait_seconds_total")
    assert wait_s - 1 <= counted <= wait_s + 3, (counted, wait_s)
    print(f"\n[item 4] waited {wait_s:.1f}s for the reset with max.poll.interval.ms=8000: "
          f"state paused seen, 1 assignment, 0 revokes, completed "
          f"{time.time() - t_paused:.1f}s after paused was seen; {rows} rows checked; "
          f"backfill_rate_limit_wait_seconds_total {counted:.1f}")


@pytest.fixture
def own_kafka():
    """A broker of this test's own, to restart. Stock settings: the test
    stops it cleanly (SIGTERM, controlled shutdown), after which the broker
    registers again at once. Only a crash (kafka.sh kill) would leave its
    old registration to expire first (broker.session.timeout.ms, 9 s stock:
    a 14-16 s restart), and then a shorter lease would be worth asking for."""
    d = tempfile.mkdtemp(prefix="backfill-kafka-own-", dir="/tmp")
    try:
        yield d, kafka_sh("start", d)
    finally:
        subprocess.run(["bash", os.path.join(ENV_DIR, "kafka.sh"), "stop", d],
                       capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


def test_broker_restart_mid_run(own_kafka, postgres, workdir, sim):
    """Item 5: the broker stops mid-run and comes back; a producer started
    while it is down, the consumers and the sink reconnect, and the run
    completes exactly."""
    d, addr = own_kafka
    pipeline = Pipeline(addr, postgres, workdir, sim)
    try:
        first, second = TEN_REPOS[:6], TEN_REPOS[6:]
        sim.post("/_sim/config", {"latencyMs": 250})
        pipeline.start("backfill-sink")
        start_workers(pipeline, 5, "--page-size", "25")
        assert pipeline.produce(*first).returncode == 0
        wait_for(lambda: sum(1 for r in sim.get("/_sim/requests") if answered(r)) >= 8, 60,
                 "the run to be under way")
        t_down = time.time()
        kafka_sh("stop", d)
        # Given the time a restart takes (by default it gives up after 10 s).
        producer = subprocess.Popen([binary("backfill-producer"), "--kafka-wait-ms", "60000",
                                     *second], env=pipeline.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        t_start = time.time()
        kafka_sh("start-again", d)
        t_up = time.time()
        pout, perr = producer.communicate(timeout=120)
        assert producer.returncode == 0, perr
        pipeline.wait_terminal(first + second, timeout=180)
        t_done = time.time()
        rows = check_exact(pipeline, first + second)
        reqs = sim.get("/_sim/requests")
        refetched = sum(pages_fetched_twice(reqs, r) for r in first + second)
        print(f"\n[item 5] broker down {t_up - t_down:.1f}s (restart took {t_up - t_start:.1f}s); "
              f"producer started while down exited 0; run complete {t_done - t_up:.1f}s after the "
              f"broker was back; {refetched} pages fetched twice; {rows} rows checked")
    finally:
        pipeline.close()


def test_web_stops_promptly_while_kafka_is_down(own_kafka, postgres, workdir, sim):
    """With --metrics the web asks Kafka about both groups' lag every 2 s;
    with the broker gone each question waits out its timeout (7 s). A stop
    signal still ends the web within its health check's metadata timeout
    (3 s) and a slice of the wait, not after both questions (14 s)."""
    d, addr = own_kafka
    pipeline = Pipeline(addr, postgres, workdir, sim)
    try:
        p_web = free_port()
        web = pipeline.start_web("--metrics", f"127.0.0.1:{p_web}")
        wait_for(lambda: metrics_get(p_web, "/healthz")[0] is not None, 60,
                 "the web's metrics listener")
        wait_for(lambda: "backfill_consumer_group_up" in (metrics_get(p_web, "/metrics")[2] or ""),
                 60, "a first lag round")
        kafka_sh("stop", d)
        t_down = time.time()

        def unready():
            st, _, body = metrics_get(p_web, "/healthz")
            return st == 503 and "kafka" in (body or "")
        wait_for(unready, 60, "the web's /healthz to name Kafka")
        time.sleep(3)  # well inside a round of lag questions to a dead broker
        t_stop = time.time()
        rc, took = web.terminate(30)
        assert rc == 0, web.output()[-2000:]
        assert took < 6, f"the web took {took:.1f}s to stop with Kafka down"
        print(f"\n[web] Kafka down {t_stop - t_down:.1f}s: the web stopped {took:.2f}s after "
              f"SIGTERM, exit 0")
    finally:
        pipeline.close()
