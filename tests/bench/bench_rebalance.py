"""Rebalance benchmark: how long the jobs-topic partitions take to reach
their new owners, under the classic consumer group protocol and under the
consumer group protocol (KIP-848, --group-protocol consumer), side by side.

usage: tests/bench/bench_rebalance.py [--runs N] [--consumers N] [--partitions N]
                                      [--protocols classic,consumer]
                                      [--scenarios kill,term,scale] [--keep]

Scenarios, each on fresh topics and a fresh consumer group, with
--consumers backfill-consumer processes (default 3) on --partitions jobs
partitions (default 12), idle (no jobs are queued):
  kill   the group settles (every partition owned by exactly one member),
         then one member gets SIGKILL; measured from the kill until the
         survivors own every partition, each exactly once.
  term   the same with SIGTERM (a clean shutdown: the member revokes its
         partitions and leaves the group).
  scale  one more consumer is started; measured from its start (process
         spawn, so its own startup is included) until it owns partitions
         and every partition is owned by exactly one member ("first"), and
         until the assignment is also balanced: every member owns
         floor(P/N) or ceil(P/N) partitions ("balanced").
Each kill or SIGTERM comes a random 2-7 s after the group settled, so it
falls anywhere in the members' heartbeat intervals (1 s under classic,
5 s under consumer with the stock broker).

Ownership is read from the consumers' own log lines ("assigned N
partitions [..]", "revoked N partitions [..]") by their timestamps, merged
across processes, so the figures do not include polling delay. After
each measured moment the benchmark watches the group a few seconds more
and reports any further assignment change. It also reports partitions
that two live members owned at once and every WARN/ERROR line of the
consumers (per protocol, with counts).

What to expect: under classic the consumer sets session.timeout.ms=10000
and heartbeat.interval.ms=1000 (consumer/main.c); under consumer the
broker decides both (group.consumer.session.timeout.ms, default 45000,
floor group.consumer.min.session.timeout.ms, default 45000; heartbeat
group.consumer.heartbeat.interval.ms, default 5000). The broker's values
are printed at the start.

The broker is the one in KAFKA_BOOTSTRAP_SERVERS, else a stock Kafka
started with tests/env/kafka.sh in the work directory (and stopped at the
end). Binaries come from BACKFILL_BIN (default build/bin). No Postgres is
needed: the consumers only need a GitHub URL (the simulator) and a token.
The default (3 runs of 3 scenarios x 2 protocols) takes about 9 minutes,
most of it the consumer protocol's kill -9 runs. For example:

  BACKFILL_BIN=build/bin .cache/venv/bin/python tests/bench/bench_rebalance.py --runs 3
"""
import argparse
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from benchlib import Simulator, median
from harness import (ENV_DIR, SECRET_TOKEN, Proc, binary, kafka_sh, log_time, owned_partitions,
                     wait_for)

OWNERSHIP = re.compile(r" (assigned|revoked) \d+ partitions \[([0-9,]*)\]")
BROKER_SETTINGS = ("group.consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms",
                   "group.consumer.heartbeat.interval.ms", "group.min.session.timeout.ms",
                   "group.initial.rebalance.delay.ms")
SETTLE_TIMEOUT = 120   # s for a new group to settle (consumer protocol: ~10-15 s)
MOVE_TIMEOUT = 150     # s for a move (consumer protocol kill -9: ~45 s)
WATCH = 6.0            # s watched after a measured moment (> one 5 s heartbeat)


# --- ownership from the consumers' logs ---------------------------------------

def ownership_events(proc, index):
    """(time, order, index, kind, partitions) for each assigned/revoked line
    of a consumer's log; revocations sort before assignments of the same
    millisecond, so a partition handed over within one millisecond does not
    look owned twice."""
    out = []
    for line in proc.output().splitlines():
        m = OWNERSHIP.search(line)
        if m:
            parts = frozenset(int(x) for x in m.group(2).split(",") if x)
            out.append((log_time(line), 0 if m.group(1) == "revoked" else 1, index, m.group(1),
                        parts))
    return out


def timeline(procs, dead=None):
    """Replays every member's ownership in log-time order. Yields (time,
    owned) after each event, owned being one set per member. dead maps a
    member's index to the time it was SIGKILLed: from then on it owns
    nothing (its log stops; the broker takes its partitions away)."""
    dead = dead or {}
    events = [e for i, p in enumerate(procs) for e in ownership_events(p, i)]
    events += [(t, -1, i, "killed", frozenset()) for i, t in dead.items()]
    events.sort()   # by time; at a tie: kill, revocation, assignment
    owned = [set() for _ in procs]
    for t, _, i, kind, parts in events:
        if kind == "assigned":
            owned[i] |= parts
        elif kind == "revoked":
            owned[i] -= parts
        else:
            owned[i] = set()
        yield t, [set(s) for s in owned]


def exactly_once(owned, partitions):
    return (sum(len(s) for s in owned) == partitions
            and set().union(*owned) == set(range(partitions)))


def balanced(owned, partitions):
    live = [len(s) for s in owned]
    return exactly_once(owned, partitions) and max(live) - min(live) <= 1


def first_time(procs, since, cond):
    """Log time of the first event at or after `since` after which cond(owned)
    holds, or None."""
    for t, owned in timeline(procs):
        if t >= since and cond(owned):
            return t
    return None


def doubles(procs, since, dead=None):
    """[(time, partition)]: moments after `since` when a partition was owned
    by two members at once according to their logs."""
    out = []
    for t, owned in timeline(procs, dead):
        if t < since:
            continue
        seen = collections.Counter(p for s in owned for p in s)
        out += [(t, p) for p, n in seen.items() if n > 1]
    return out


def changes_after(procs, t):
    """Number of assigned/revoked lines naming partitions logged after log
    time t (an empty "assigned 0 partitions []" changes nothing)."""
    return sum(1 for i, p in enumerate(procs) for e in ownership_events(p, i) if e[0] > t and e[4])


# --- one group ----------------------------------------------------------------

class Group:
    """Consumers of one fresh group on fresh topics."""

    def __init__(self, kafka, sim, workdir, protocol, partitions, label):
        tag = uuid.uuid4().hex[:10]
        self.protocol, self.partitions = protocol, partitions
        self.dir = os.path.join(workdir, f"{label}-{protocol}-{tag}")
        os.makedirs(self.dir)
        # what Pipeline sets for a consumer, without Postgres (the consumer
        # does not use it) and without DATABASE_URL from the caller
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update({
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "BACKFILL_JOBS_TOPIC": f"jobs-{tag}",
            "BACKFILL_PROGRESS_TOPIC": f"progress-{tag}",
            "BACKFILL_DLQ_TOPIC": f"dlq-{tag}",
            "BACKFILL_CONTROL_TOPIC": f"control-{tag}",
            "BACKFILL_GROUP": f"workers-{tag}",
            "BACKFILL_PARTITIONS": str(partitions),
            "GITHUB_TOKEN": SECRET_TOKEN,
            "GITHUB_GRAPHQL_URL": f"{sim.url}/graphql",
        })
        self.procs = []

    def start(self):
        """Starts one consumer; returns it with its wall-clock start time."""
        log = os.path.join(self.dir, f"consumer-{len(self.procs) + 1}.log")
        t = time.time()
        p = Proc([binary("backfill-consumer"), "--group-protocol", self.protocol], self.env, log)
        self.procs.append(p)
        return p, t

    def settle(self, n):
        """Starts n consumers and waits until each owns partitions and every
        partition is owned by exactly one of them. Returns the seconds."""
        t0 = time.time()
        for _ in range(n):
            self.start()
        wait_for(lambda: first_time(self.procs, 0, lambda o: all(o) and exactly_once(
            o, self.partitions)), SETTLE_TIMEOUT, f"{n} {self.protocol} consumers to settle")
        return time.time() - t0

    def close(self, killed=()):
        """SIGTERM to every live consumer at once, then waits. Returns
        problems: a non-zero exit, a sanitizer report."""
        problems = []
        live = [p for p in self.procs if p not in killed]
        for p in live:
            if p.p.poll() is None:
                p.p.send_signal(signal.SIGTERM)
        for p in live:
            try:
                p.p.wait(30)
            except subprocess.TimeoutExpired:
                pass   # p.stop() below signals again, then kills
        for p in self.procs:
            rc = p.stop()
            if p not in killed and rc != 0:
                problems.append(f"{p.log_path}: exited {rc} after SIGTERM")
            out = p.output()
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer", SECRET_TOKEN):
                if marker in out:
                    problems.append(f"{p.log_path}: {marker[:20]} in the log")
        return problems


def wait_until(procs, since, cond, what, watch=WATCH):
    """Waits for the first log time >= since at which cond holds; then
    watches `watch` seconds more. Returns (that time, ownership changes
    logged after it)."""
    t = wait_for(lambda: first_time(procs, since, cond), MOVE_TIMEOUT, what, interval=0.1)
    time.sleep(max(0.0, t + watch - time.time()))
    return t, changes_after(procs, t)


def leave(kafka, sim, work, protocol, a, sig):
    """kill / term: one of a.consumers members stops by sig. Returns a result dict."""
    label = "kill" if sig == signal.SIGKILL else "term"
    g = Group(kafka, sim, work, protocol, a.partitions, label)
    killed = []
    try:
        settle = g.settle(a.consumers)
        time.sleep(random.uniform(2, 7))
        victim = g.procs[0]
        victim_parts = sorted(owned_partitions(victim))
        survivors = g.procs[1:]
        t0 = time.time()
        victim.p.send_signal(sig)
        if sig == signal.SIGKILL:
            killed.append(victim)
            victim.p.wait()
            t, later = wait_until(survivors, t0, lambda o: exactly_once(o, a.partitions),
                                  f"{protocol}: survivors to own every partition after kill -9")
            dbl = doubles(g.procs, t0, dead={0: t0})
            exit_note = ""
        else:
            t, later = wait_until(g.procs, t0, lambda o: not o[0] and exactly_once(
                o, a.partitions), f"{protocol}: survivors to own every partition after SIGTERM")
            dbl = doubles(g.procs, t0)
            rc = victim.p.wait(30)
            exit_note = "" if rc == 0 else f" exit {rc}"
        return {"move": t - t0, "settle": settle, "victim": victim_parts, "later": later,
                "doubles": dbl, "note": exit_note, "group": g}
    finally:
        g.problems = g.close(killed)


def scale(kafka, sim, work, protocol, a):
    """scale: one more consumer joins a.consumers settled ones."""
    g = Group(kafka, sim, work, protocol, a.partitions, "scale")
    try:
        settle = g.settle(a.consumers)
        time.sleep(random.uniform(2, 7))
        newcomer, t0 = g.start()
        first, _ = wait_until(g.procs, t0, lambda o: o[-1] and exactly_once(o, a.partitions),
                              f"{protocol}: the new consumer to own partitions", watch=0)
        t, later = wait_until(g.procs, t0, lambda o: balanced(o, a.partitions),
                              f"{protocol}: a balanced assignment of {a.consumers + 1} members")
        ready = [log_time(line) for line in newcomer.output().splitlines() if " consuming " in line]
        return {"move": first - t0, "balanced": t - t0, "settle": settle,
                "startup": (ready[0] - t0) if ready else float("nan"), "later": later,
                "doubles": doubles(g.procs, t0), "note": "", "group": g}
    finally:
        g.problems = g.close()


# --- reporting ------------------------------------------------------------------

def broker_settings(kafka):
    """{setting: value} of the group settings the broker runs with (a JVM
    start: ~3 s), or {} when they cannot be read."""
    out = subprocess.run(
        ["bash", os.path.join(ENV_DIR, "kafka-run-class.sh"), "org.apache.kafka.tools.ConfigCommand",
         "--bootstrap-server", kafka, "--describe", "--entity-type", "brokers", "--all"],
        capture_output=True, text=True, timeout=120)
    found = {}
    for line in out.stdout.splitlines():
        m = re.match(r"\s*([a-z.]+)=(\S*) ", line)
        if m and m.group(1) in BROKER_SETTINGS:
            found.setdefault(m.group(1), m.group(2))
    return found


def warnings_of(results):
    """Counter of WARN/ERROR lines of the consumers (timestamps, numbers,
    names of topics, groups and members normalized away)."""
    c = collections.Counter()
    for r in results:
        for p in r["group"].procs:
            for line in p.output().splitlines():
                if " WARN " in line or " ERROR " in line:
                    msg = line.split(" ", 1)[1]
                    msg = re.sub(r"[0-9a-f]{10}", "<tag>", msg)
                    msg = re.sub(r"[A-Za-z0-9_-]{22}", "<id>", msg)
                    msg = re.sub(r"\d+", "N", msg)
                    c[msg[:220]] += 1
    return c


def fmt(xs):
    return " ".join(f"{x:.2f}" for x in xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--consumers", type=int, default=3, help="members before the change (default 3)")
    ap.add_argument("--partitions", type=int, default=12, help="jobs topic partitions (default 12)")
    ap.add_argument("--protocols", default="classic,consumer")
    ap.add_argument("--scenarios", default="kill,term,scale")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    a = ap.parse_args()
    protocols = a.protocols.split(",")
    scenarios = a.scenarios.split(",")
    if a.consumers < 2 or a.partitions < a.consumers + 1:
        ap.error("need --consumers >= 2 and --partitions > --consumers")
    if not set(scenarios) <= {"kill", "term", "scale"} or \
            not set(protocols) <= {"classic", "consumer"}:
        ap.error("unknown scenario or protocol")

    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="backfill-rebalance-", dir="/tmp")
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    own_broker = None
    results = collections.defaultdict(list)   # (scenario, protocol) -> [result]
    problems = []
    try:
        if not kafka:
            own_broker = os.path.join(work, "kafka")
            kafka = kafka_sh("start", own_broker)
        settings = broker_settings(kafka)
        print(f"broker {kafka}: " + (", ".join(f"{k}={settings[k]}" for k in BROKER_SETTINGS
                                               if k in settings) or "settings unknown"))
        print(f"{a.consumers} consumers, {a.partitions} partitions, runs: {a.runs}; "
              f"classic: session.timeout.ms=10000 heartbeat.interval.ms=1000 (consumer/main.c)",
              flush=True)
        sim = Simulator(work)
        try:
            for run in range(1, a.runs + 1):
                for scenario in scenarios:
                    for protocol in protocols:
                        if scenario == "scale":
                            r = scale(kafka, sim, work, protocol, a)
                            extra = (f"balanced {r['balanced']:6.2f}s  startup {r['startup']:.2f}s")
                        else:
                            sig = signal.SIGKILL if scenario == "kill" else signal.SIGTERM
                            r = leave(kafka, sim, work, protocol, a, sig)
                            extra = f"victim owned {r['victim']}"
                        results[(scenario, protocol)].append(r)
                        problems += r["group"].problems
                        odd = ""
                        if r["later"]:
                            odd += f"  {r['later']} ownership changes after it"
                        if r["doubles"]:
                            odd += f"  owned twice: {sorted({p for _, p in r['doubles']})}"
                        print(f"run {run} {scenario:5s} {protocol:8s}: {r['move']:6.2f}s  "
                              f"(group settled in {r['settle']:5.2f}s)  {extra}{r['note']}{odd}",
                              flush=True)
        finally:
            sim.stop()

        print(f"\nmedian seconds over {a.runs} runs ({a.consumers} consumers, "
              f"{a.partitions} partitions; all values in brackets)")
        heads = {"kill": "kill -9 move (s)", "term": "SIGTERM move (s)",
                 "scale": f"scale-up {a.consumers}->{a.consumers + 1} (s)"}
        print(f"  {'protocol':10s}" + "".join(f" {heads[s]:>22s}" for s in scenarios)
              + (f" {'balanced (s)':>14s}" if "scale" in scenarios else ""))
        for protocol in protocols:
            row = f"  {protocol:10s}"
            for s in scenarios:
                row += f" {median([r['move'] for r in results[(s, protocol)]]):22.2f}"
            if "scale" in scenarios:
                row += f" {median([r['balanced'] for r in results[('scale', protocol)]]):14.2f}"
            print(row)
        for protocol in protocols:
            for s in scenarios:
                rs = results[(s, protocol)]
                print(f"  {protocol:8s} {s:5s} [{fmt(r['move'] for r in rs)}]"
                      + (f"  balanced [{fmt(r['balanced'] for r in rs)}]"
                         f"  newcomer startup [{fmt(r['startup'] for r in rs)}]"
                         if s == "scale" else "")
                      + f"  settle [{fmt(r['settle'] for r in rs)}]")
        for protocol in protocols:
            w = warnings_of([r for s in scenarios for r in results[(s, protocol)]])
            print(f"\n{protocol}: {sum(w.values())} WARN/ERROR lines in the consumer logs")
            for msg, n in w.most_common(15):
                print(f"  {n:4d} x {msg}")
        if problems:
            print("\nproblems:\n  " + "\n  ".join(problems))
        print(f"\nbenchmark took {time.monotonic() - started:.0f} s"
              + (f"; logs kept in {work}" if a.keep else ""))
        return 1 if problems else 0
    finally:
        if own_broker:
            kafka_sh("stop", own_broker)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
