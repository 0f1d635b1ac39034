"""What Prometheus metrics cost: the end-to-end benchmark's run (20
repositories x 250 pull requests in the window, the simulator at 300 ms per
request, 5 consumers at the default --jobs, a sink) with metrics off and
with every consumer and the sink serving --metrics while a scraper asks each
of them every --scrape-ms (1 s: fifteen times as often as compose's
Prometheus does). Runs alternate, off then on, and the medians are printed
side by side: wall time, CPU seconds per 1,000 pull requests, peak RSS, and
the size and answer time of one scrape.

usage: tests/bench/bench_metrics.py [--runs N] [--repos N] [--latency-ms N] [--scrape-ms N]
"""
import argparse
import sys
import threading
import time
import urllib.request

from benchlib import fresh_pipeline, median, proc_usage, produce_and_wait, services
from harness import free_port, owned_partitions, wait_for


class Scraper(threading.Thread):
    """Scrapes every port every interval until stopped; keeps sizes and times."""

    def __init__(self, ports, interval):
        super().__init__(daemon=True)
        self.ports, self.interval = ports, interval
        self.halt = threading.Event()
        self.sizes, self.times, self.errors = [], [], 0

    def run(self):
        while not self.halt.is_set():
            for p in self.ports:
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5) as r:
                        body = r.read()
                    self.times.append(time.monotonic() - t0)
                    self.sizes.append(len(body))
                except OSError:
                    self.errors += 1
            self.halt.wait(self.interval)


def one_run(kafka, pg, work, repos, a, metrics):
    sim, p = fresh_pipeline(work, "on" if metrics else "off", kafka, pg, a.latency_ms)
    ports = [free_port() for _ in range(6)] if metrics else []
    flag = (lambda i: ["--metrics", f"127.0.0.1:{ports[i]}"]) if metrics else (lambda i: [])
    scraper = None
    try:
        sink = p.start("backfill-sink", *flag(5))
        consumers = [p.start("backfill-consumer", *flag(i)) for i in range(5)]

        def settled():
            sets = [owned_partitions(c) for c in consumers]
            return all(sets) and len(set().union(*sets)) == 12
        wait_for(settled, 60, "5 consumers to share 12 partitions")
        time.sleep(1)
        if metrics:
            scraper = Scraper(ports, a.scrape_ms / 1000)
            scraper.start()
        wall, _ = produce_and_wait(p, repos, "metrics on" if metrics else "metrics off")
        usage = [proc_usage(c.p.pid) for c in consumers] + [proc_usage(sink.p.pid)]
        prs = p.query("SELECT count(*) FROM pull_requests")[0][0]
        r = {"wall": wall, "prs": prs, "cpu": sum(u[1] for u in usage),
             "rss": max(u[0] for u in usage[:-1]), "sink_rss": usage[-1][0]}
        if scraper:
            scraper.halt.set()
            scraper.join()
            r.update(scrapes=len(scraper.times), errors=scraper.errors,
                     size=median(scraper.sizes) if scraper.sizes else 0,
                     answer_ms=median(scraper.times) * 1000 if scraper.times else 0)
        return r
    finally:
        if scraper:
            scraper.halt.set()
        p.close()
        sim.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--scrape-ms", type=int, default=1000)
    a = ap.parse_args()
    repos = [f"sim-250-0/bench-{i:02d}" for i in range(a.repos)]
    res = {False: [], True: []}
    with services() as (kafka, pg, work):
        for i in range(a.runs):
            for metrics in (False, True):
                r = one_run(kafka, pg, work, repos, a, metrics)
                res[metrics].append(r)
                print(f"run {i + 1} metrics {'on ' if metrics else 'off'}: {r['wall']:6.2f}s "
                      f"CPU {r['cpu']:.2f}s {r['prs']} PRs"
                      + (f"  {r['scrapes']} scrapes, {r['errors']} failed" if metrics else ""),
                      flush=True)
    print(f"\n{a.repos} repositories x 250 PRs, maxPRs 200, {a.latency_ms} ms/request, "
          f"5 consumers, default --jobs, 12 partitions, median of {a.runs}; "
          f"scraped every {a.scrape_ms} ms when on")
    print(f"  {'metrics':8s} {'time':>7s} {'CPU s/1000 PRs':>15s} {'consumer RSS':>13s} "
          f"{'sink RSS':>9s} {'scrape size':>12s} {'scrape answer':>14s}")
    for metrics in (False, True):
        rs = res[metrics]
        cpu = median([r["cpu"] / r["prs"] * 1000 for r in rs])
        extra = (f" {median([r['size'] for r in rs]) / 1024:9.1f} KiB"
                 f" {median([r['answer_ms'] for r in rs]):11.2f} ms") if metrics else \
            f" {'-':>12s} {'-':>14s}"
        print(f"  {'on' if metrics else 'off':8s} {median([r['wall'] for r in rs]):6.2f}s "
              f"{cpu:15.3f} {max(r['rss'] for r in rs) / 1024:9.1f} MiB "
              f"{max(r['sink_rss'] for r in rs) / 1024:5.1f} MiB{extra}")
    off, on = (median([r["wall"] for r in res[m]]) for m in (False, True))
    print(f"  time with metrics / without: {on / off:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
