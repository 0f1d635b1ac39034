"""Issue 15: what a job does around its GitHub requests, and how little of
it is left on the critical path.

Every job's last log line carries its timeline (consumer/job_timeline.h):
the spans add up to its total, the time at GitHub is at least the
simulator's latency per request, and backfill_job_seconds_total /
backfill_job_overhead_seconds say the same as the log lines.

What the shortcuts must not change: a repository queued twice lands on one
partition, and its second job starts only after the first one ended (the
second message is held, its partition paused, while a slot stands free);
final commits are sent without waiting, yet after a SIGTERM every job
message's offset is committed (the worker flushes them before it leaves);
and a worker taking over a partition after another one finished jobs on
it reads their final commits, not an older checkpoint (no job runs twice).
"""
import re
import time

from harness import (TEN_REPOS, Pipeline, Simulator, describe_group, end_offsets, free_port,
                     log_lines, metrics_get, metrics_samples, metrics_series, progress_events,
                     start_workers, wait_for)

LATENCY_MS = 60
SPANS = ["load", "started", "send", "collect", "publish", "acks", "commit", "wait"]
UNKNOWN = "ghost-org/never-there"


def timeline(line):
    return {k: float(v) for k, v in re.findall(r" (\w+)_ms=([0-9.]+)", line)}


def test_timelines_order_and_flushed_commits(kafka, postgres, workdir):
    sim = Simulator(workdir, "--latency-ms", str(LATENCY_MS))
    p = Pipeline(kafka, postgres, workdir, sim)
    try:
        port = free_port()
        p.start("backfill-sink")
        consumer = p.start("backfill-consumer", "--jobs", "2", "--metrics", f"127.0.0.1:{port}")
        wait_for(lambda: metrics_get(port, "/healthz")[0] == 200, 60, "the consumer to join")
        repeat = TEN_REPOS[0]
        # the same repository twice in a row, then the rest
        for batch in ([repeat], [repeat], TEN_REPOS[1:] + [UNKNOWN]):
            out = p.produce(*batch)
            assert out.returncode == 0, out.stderr
        states = p.wait_terminal(TEN_REPOS + [UNKNOWN])
        assert all(states[r.lower()]["status"] == "completed" for r in TEN_REPOS), states
        assert states[UNKNOWN]["status"] == "failed"

        # one timeline per job: 11 completed, 1 failed
        failed = log_lines(consumer, " ended ")
        wait_for(lambda: len(log_lines(consumer, " completed ")) == 11, 10, "11 completed lines")
        done = log_lines(consumer, " completed ")
        assert len(done) == 11 and len(failed) == 1, (done, failed)
        assert UNKNOWN in failed[0] and " failed after 0 PRs" in failed[0], failed[0]
        tls = [timeline(l) for l in done + failed]
        for line, t in zip(done + failed, tls):
            parts = sum(t[s] for s in SPANS) + t["github"]
            assert abs(parts - t["total"]) <= 0.1 * (len(SPANS) + 1), line
            assert abs(t["total"] - t["github"] - t["wait"] - t["outside"]) <= 0.25, line
            requests = int(re.search(r" (\d+) requests", line).group(1))
            assert t["github"] >= LATENCY_MS * requests * 0.95, line
            assert t["outside"] < t["total"], line

        # the metrics agree with the log lines
        def scraped():
            s = metrics_samples(metrics_get(port, "/metrics")[2])
            return s if sum(metrics_series(s, "backfill_job_overhead_seconds_count").values()) \
                == 12 else None
        wait_for(scraped, 10, "12 jobs in backfill_job_overhead_seconds")
        s = scraped()
        spans = metrics_series(s, "backfill_job_seconds_total")
        by_span = {dict(k)["span"]: v for k, v in spans.items()}
        assert set(by_span) == set(SPANS + ["github", "handover"]), by_span
        logged_total = sum(t["total"] for t in tls) / 1000
        metric_total = sum(v for k, v in by_span.items() if k != "handover")
        assert abs(metric_total - logged_total) < 0.01 + 0.001 * len(tls), (metric_total,
                                                                           logged_total)
        overhead = sum(metrics_series(s, "backfill_job_overhead_seconds_sum").values())
        assert abs(overhead - sum(t["outside"] for t in tls) / 1000) < 0.01
        assert abs(by_span["github"] - sum(t["github"] for t in tls) / 1000) < 0.01

        # the repeated repository: the second job started after the first
        # one's completed event, and the two never overlapped in the log
        events = [e for e in progress_events(p) if e["repository"].lower() == repeat.lower()]
        ids = list(dict.fromkeys(e["backfillId"] for e in events))
        assert len(ids) == 2, ids
        first = [i for i, e in enumerate(events) if e["backfillId"] == ids[0]]
        second = [i for i, e in enumerate(events) if e["backfillId"] == ids[1]]
        assert max(first) < min(second), [(e["backfillId"][:8], e["status"]) for e in events]
        assert events[max(first)]["status"] == "completed"
        starts = [i for i, l in enumerate(consumer.output().splitlines())
                  if f"starting {repeat} " in l or f"completed {repeat} " in l]
        kinds = [consumer.output().splitlines()[i].split(" consumer ")[1].split()[0]
                 for i in starts]
        assert kinds == ["starting", "completed", "starting", "completed"], kinds

        # SIGTERM: the final commits (sent without waiting) are all in
        assert consumer.stop() == 0
        ends = end_offsets(kafka, p.jobs_topic, 12)
        rows = describe_group(kafka, p.env["BACKFILL_GROUP"])
        committed = {part: r["current"] for (topic, part), r in (rows or {}).items()
                     if topic == p.jobs_topic}
        assert {k: v for k, v in ends.items() if v} == \
            {k: committed.get(k) for k, v in ends.items() if v}, (ends, committed)
        # nothing fetched twice: every page once per job, one answer for the unknown
        pages = sum(sim.expected(r)["min_pages"] for r in TEN_REPOS + [repeat])
        assert sim.get("/_sim/stats")["requests"] == pages + 1
    finally:
        p.close()
        sim.stop()


def test_a_new_owner_reads_final_commits(pipeline):
    """Two workers one after the other on the same partitions: the second
    reads what the first committed (its final commits included, which it
    did not wait for) and runs only the new jobs."""
    first = pipeline.start("backfill-consumer")
    pipeline.start("backfill-sink")
    out = pipeline.produce(*TEN_REPOS)
    assert out.returncode == 0, out.stderr
    states = pipeline.wait_terminal(TEN_REPOS)
    assert all(states[r.lower()]["status"] == "completed" for r in TEN_REPOS)
    assert first.stop() == 0
    requests = pipeline.sim.get("/_sim/stats")["requests"]

    second = start_workers(pipeline, 1)[0]
    extra = "sim-5-0/extra"
    out = pipeline.produce(extra)
    assert out.returncode == 0, out.stderr
    states = pipeline.wait_terminal([extra])
    assert states[extra]["status"] == "completed"
    time.sleep(1)
    started = log_lines(second, " starting ") + log_lines(second, " resuming ")
    assert len(started) == 1 and extra in started[0], started
    assert pipeline.sim.get("/_sim/stats")["requests"] == requests + 1
