#!/usr/bin/env python3
"""Regenerates tests/fuzz/corpus/fuzz_graphql/sim_* from the GitHub simulator.

    .cache/venv/bin/python tests/fuzz/make_graphql_seeds.py

Starts tests/sim/github_sim.py, sends it the worker's query
(schemas/graphql/backfill_query.graphql) in the situations the parser must
classify (pages, last and empty pages, NUL text, unknown repository, bad
cursor, every fault kind, exhausted budget, bad token) and writes each
answer in fuzz_graphql's input layout: status byte, header flags byte, the
header values each ended by '\n', then the body as received.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus", "fuzz_graphql")
STATUS = [200, 200, 200, 200, 200, 200, 200, 200, 401, 403, 429, 500, 502, 503, 504, 404]
QUERY = open(os.path.join(ROOT, "schemas", "graphql", "backfill_query.graphql")).read()


def http(base, path, body, token="t"):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def seed(status, headers, body):
    h = {k.lower(): v for k, v in headers.items()}
    flags, values = 0, b""
    for bit, name in enumerate(("x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")):
        if name in h:
            flags |= 1 << bit
            values += h[name].encode()[:31] + b"\n"
    return bytes([STATUS.index(status), flags]) + values + body


def main():
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        sim = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "sim", "github_sim.py"),
                                "--port", "0", "--port-file", port_file],
                               stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(port_file):
                    break
                time.sleep(0.05)
            base = "http://127.0.0.1:%d" % int(open(port_file).read())

            def gql(name, repo, first=3, after=None, token="t", fault=None, config=None):
                if fault:
                    http(base, "/_sim/faults", dict(fault, repo=None, count=1))
                if config:
                    http(base, "/_sim/config", config)
                owner, _, rname = repo.partition("/")
                status, headers, body = http(base, "/graphql", {
                    "query": QUERY, "variables": {"owner": owner, "name": rname,
                                                  "first": first, "after": after}}, token)
                with open(os.path.join(OUT, "sim_" + name), "wb") as fh:
                    fh.write(seed(status, headers, body))
                return body

            first = json.loads(gql("page_first", "solidjs/solid"))
            cursor = first["data"]["repository"]["pullRequests"]["pageInfo"]["endCursor"]
            gql("page_next", "solidjs/solid", after=cursor)
            gql("page_last", "sim-2-1/x", first=5)
            gql("page_empty", "polymer/polymer")
            gql("nul_text", "lit/lit", first=12, config={"nulText": True})
            http(base, "/_sim/config", {"nulText": False})
            gql("not_found", "nobody-here/nothing")
            gql("bad_cursor", "solidjs/solid", after="bm90IGEgY3Vyc29y")
            gql("first_too_big", "solidjs/solid", first=101)
            gql("bad_token", "solidjs/solid", token=None)
            for kind in ("502", "504", "something_went_wrong", "429", "rate_limit_type", "malformed"):
                gql("fault_" + kind, "solidjs/solid", fault={"kind": kind})
            gql("fault_secondary", "solidjs/solid", fault={"kind": "secondary", "retryAfter": 7})
            gql("rate_limited", "solidjs/solid", config={"remaining": 0})
        finally:
            sim.terminate()
            sim.wait()
    print("wrote", len([f for f in os.listdir(OUT) if f.startswith("sim_")]), "seeds to", OUT)


if __name__ == "__main__":
    main()
