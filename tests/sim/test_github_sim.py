"""Tests for the GitHub GraphQL simulator (stdlib urllib only).

Run: python3 -m pytest -q tests/sim
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "github_sim.py")
GRAPHQL_DIR = os.path.join(os.path.dirname(HERE), "graphql")
# the one copy of the worker's query: compiled into backfill-consumer too
QUERY_FILE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "schemas", "graphql",
                          "backfill_query.graphql")
with open(QUERY_FILE) as _f:
    QUERY = _f.read()

BUILTIN = {
    "sveltejs/svelte": (250, 40),
    "preactjs/preact": (50, 30),
    "alpinejs/alpine": (0, 20),
    "solidjs/solid": (120, 10),
    "lit/lit": (100, 5),
    "polymer/polymer": (0, 0),
    "aurelia/framework": (7, 0),
    "emberjs/ember.js": (205, 0),
    "stimulus-use/stimulus-use": (30, 200),
    "hotwired/turbo": (180, 50),
}


class Sim:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="ghsim-")
        pf = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([sys.executable, SIM, "--port", "0", "--port-file", pf, *args],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while not os.path.exists(pf):
            assert self.proc.poll() is None, "simulator exited: " + open(self.log.name).read()
            assert time.time() < deadline, "simulator did not start"
            time.sleep(0.05)
        self.port = int(open(pf).read())
        self.base = "http://127.0.0.1:%d" % self.port

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def http(self, method, path, body=None, headers=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def admin(self, method, path, body=None):
        st, _, raw = self.http(method, path, body)
        assert st == 200, raw
        return json.loads(raw)

    def gql(self, owner="sveltejs", name="svelte", first=100, after=None, token="t0k", query=QUERY,
            variables=None, raw=False):
        if variables is None:
            variables = {"owner": owner, "name": name, "first": first, "after": after}
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "bearer " + token
        st, h, body = self.http("POST", "/graphql", {"query": query, "variables": variables}, headers)
        if raw:
            return st, h, body
        return st, h, json.loads(body)


@pytest.fixture(scope="module")
def sim():
    s = Sim("--repo", "Acme/Widgets=3:2")
    yield s
    s.close()


def page_all(sim, owner, name, first=100):
    pages, nodes, after = [], [], None
    while True:
        st, h, d = sim.gql(owner, name, first=first, after=after)
        assert st == 200 and "errors" not in d, d
        conn = d["data"]["repository"]["pullRequests"]
        pages.append(conn)
        nodes.extend(conn["nodes"])
        if not conn["pageInfo"]["hasNextPage"]:
            return pages, nodes
        after = conn["pageInfo"]["endCursor"]


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def test_healthz(sim):
    st, _, body = sim.http("GET", "/healthz")
    assert st == 200 and body == b"ok"


def test_paging_svelte(sim):
    pages, nodes = page_all(sim, "sveltejs", "svelte")
    assert len(pages) == 3
    assert [len(p["nodes"]) for p in pages] == [100, 100, 90]
    assert len(nodes) == 290
    assert [n["number"] for n in nodes] == list(range(290, 0, -1))
    created = [ts(n["createdAt"]) for n in nodes]
    assert created == sorted(created, reverse=True)
    assert len(set(created)) == len(created)
    for p in pages[:-1]:
        assert p["pageInfo"]["hasNextPage"] is True and p["pageInfo"]["endCursor"]
    last = pages[-1]["pageInfo"]
    assert last["hasNextPage"] is False and last["endCursor"]
    # cursors are stable and resume exactly after the last node
    st, _, d = sim.gql(after=pages[0]["pageInfo"]["endCursor"], first=5)
    assert [n["number"] for n in d["data"]["repository"]["pullRequests"]["nodes"]] == [190, 189, 188, 187, 186]
    # after the very last cursor: empty page, endCursor null
    st, _, d = sim.gql(after=last["endCursor"], first=10)
    conn = d["data"]["repository"]["pullRequests"]
    assert conn["nodes"] == [] and conn["pageInfo"] == {"hasNextPage": False, "endCursor": None}
    # only selected fields are returned, in selection order
    assert list(nodes[0].keys()) == [
        "fullDatabaseId", "number", "title", "body", "state", "isDraft", "merged", "createdAt",
        "updatedAt", "closedAt", "mergedAt", "additions", "deletions", "changedFiles",
        "baseRefName", "headRefName", "url", "author"]


def test_no_prs_between_29_and_31_days(sim):
    _, nodes = page_all(sim, "sveltejs", "svelte")
    cfg = sim.admin("GET", "/_sim/config")
    ages = [(cfg["start"] - ts(n["createdAt"])) / 86400 for n in nodes]
    assert sum(1 for a in ages if a < 29.0001) == 250
    assert sum(1 for a in ages if a > 30.9999) == 40
    assert all(a >= 1 / 24 - 1e-6 and a <= 400.0001 for a in ages)


def test_node_shapes(sim):
    all_nodes = []
    for full in BUILTIN:
        o, n = full.split("/")
        all_nodes += page_all(sim, o, n)[1]
    ids = set()
    for n in all_nodes:
        fid = n["fullDatabaseId"]
        assert isinstance(fid, str) and fid.isdigit()
        assert 2 ** 53 < int(fid) < 2 ** 63
        ids.add(fid)
        assert n["state"] in ("OPEN", "CLOSED", "MERGED")
        assert n["merged"] is (n["state"] == "MERGED")
        assert (n["mergedAt"] is not None) is (n["state"] == "MERGED")
        assert (n["closedAt"] is not None) is (n["state"] != "OPEN")
        assert n["isDraft"] is False or n["state"] == "OPEN"
        assert isinstance(n["body"], str)  # PullRequest.body is String! in GitHub's schema
        assert ts(n["updatedAt"]) >= ts(n["createdAt"])
        if n["closedAt"]:
            assert ts(n["createdAt"]) <= ts(n["closedAt"]) <= ts(n["updatedAt"])
        assert n["url"].startswith("https://github.com/") and n["url"].endswith("/pull/%d" % n["number"])
        a = n["author"]
        if a is not None:
            assert a["__typename"] in ("User", "Bot")
            assert isinstance(a["databaseId"], int) and a["login"] and a["avatarUrl"].startswith("https://")
    assert len(ids) == len(all_nodes)
    n_total = len(all_nodes)
    assert 0.02 < sum(1 for n in all_nodes if n["author"] is None) / n_total < 0.09
    assert any(n["author"] and n["author"]["__typename"] == "Bot" for n in all_nodes)
    assert any(n["isDraft"] for n in all_nodes)
    assert any(n["body"] == "" for n in all_nodes)
    assert any(len(n["body"].encode()) >= 95_000 for n in all_nodes)
    assert any(any(ord(c) > 0xFFFF for c in n["title"]) for n in all_nodes)  # emoji / astral
    assert any("\u0301" in n["title"] for n in all_nodes)  # combining accent
    assert any(any("\u4e00" <= c <= "\u9fff" for c in n["title"]) for n in all_nodes)  # CJK
    assert not any("\u0000" in n["title"] or "\u0000" in n["body"] for n in all_nodes)


def test_github_style_json_escapes(sim):
    st, _, raw = sim.gql(first=100, raw=True)
    assert st == 200
    assert b"\\u003c" in raw and b"<" not in raw  # Rails escapes <, >, &
    assert "🚀".encode() in raw or "修复".encode() in raw  # non-ASCII sent as raw UTF-8


def test_determinism_across_runs(sim):
    other = Sim()
    try:
        a = sim.gql("hotwired", "turbo", first=50)[2]["data"]["repository"]
        b = other.gql("hotwired", "turbo", first=50)[2]["data"]["repository"]
        assert a["databaseId"] == b["databaseId"]
        strip = lambda ns: [{k: v for k, v in n.items() if not k.endswith("At")} for n in ns]  # noqa: E731
        assert strip(a["pullRequests"]["nodes"]) == strip(b["pullRequests"]["nodes"])
    finally:
        other.close()


def test_first_limits(sim):
    st, h, d = sim.gql(first=101)
    assert st == 200 and "data" not in d
    assert d["errors"][0]["message"] == \
        "Requesting 101 records on the `pullRequests` connection exceeds the `first` limit of 100 records."
    assert d["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    for bad in (0, -1):
        st, _, d = sim.gql(first=bad)
        assert st == 200 and "data" not in d and d["errors"]
    st, _, d = sim.gql(variables={"owner": "sveltejs", "name": "svelte"})  # $first: Int! missing
    assert "data" not in d and "was provided invalid value" in d["errors"][0]["message"]
    st, _, d = sim.gql(variables={"owner": "sveltejs", "name": "svelte", "first": "100"})
    assert "data" not in d and d["errors"]
    st, _, d = sim.gql(first=100)
    assert "errors" not in d


def test_unknown_repo_and_case_insensitive(sim):
    st, _, d = sim.gql("nobody", "nothing")
    assert st == 200
    assert d["data"]["repository"] is None and d["data"]["rateLimit"]["cost"] == 1
    e = d["errors"][0]
    assert e["type"] == "NOT_FOUND" and e["path"] == ["repository"]
    assert e["locations"] == [{"line": 3, "column": 3}]
    assert e["message"] == "Could not resolve to a Repository with the name 'nobody/nothing'."
    st, _, d = sim.gql("SvelteJS", "SVELTE", first=1)
    r = d["data"]["repository"]
    assert r["pullRequests"]["nodes"][0]["url"] == "https://github.com/sveltejs/svelte/pull/290"
    # --repo override and sim-<in>-<older> owners
    _, nodes = page_all(sim, "acme", "widgets")
    assert [n["number"] for n in nodes] == [5, 4, 3, 2, 1]
    assert nodes[0]["url"] == "https://github.com/Acme/Widgets/pull/5"
    _, nodes = page_all(sim, "sim-7-3", "bench")
    assert len(nodes) == 10


def test_cursors(sim):
    st, _, d = sim.gql(after="bm90IGEgY3Vyc29y")  # "not a cursor"
    assert d["data"]["repository"] is None
    assert d["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"
    st, _, d = sim.gql(after="%%%")
    assert d["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"
    # a cursor from another repository is rejected
    c = sim.gql("hotwired", "turbo", first=1)[2]["data"]["repository"]["pullRequests"]["pageInfo"]["endCursor"]
    st, _, d = sim.gql(after=c)
    assert d["errors"][0]["type"] == "INVALID_CURSOR_ARGUMENTS"


def test_auth():
    s = Sim("--token", "sekrit")
    try:
        for tok in (None, "", "wrong"):
            st, h, d = s.gql(token=tok)
            assert st == 401 and d == {"message": "Bad credentials",
                                       "documentation_url": "https://docs.github.com/graphql"}
        st, _, d = s.gql(token="sekrit", first=1)
        assert st == 200 and d["data"]["repository"]
        assert b"sekrit" not in open(s.log.name, "rb").read()
    finally:
        s.close()


def test_rate_limit_budget():
    s = Sim("--budget", "3", "--reset-seconds", "3")
    try:
        rem = []
        for _ in range(3):
            st, h, d = s.gql(first=1)
            assert st == 200 and "errors" not in d
            assert h["x-ratelimit-resource"] == "graphql" and h["x-ratelimit-limit"] == "3"
            assert int(h["x-ratelimit-used"]) + int(h["x-ratelimit-remaining"]) == 3
            assert d["data"]["rateLimit"]["remaining"] == int(h["x-ratelimit-remaining"])
            assert d["data"]["rateLimit"]["resetAt"].endswith("Z")
            rem.append(d["data"]["rateLimit"]["remaining"])
        assert rem == [2, 1, 0]
        st, h, d = s.gql(first=1)
        assert st == 200 and "data" not in d
        assert d["errors"] == [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for user ID 1."}]
        assert h["x-ratelimit-remaining"] == "0"
        reset = int(h["x-ratelimit-reset"])
        assert s.admin("GET", "/_sim/stats")["points"] == 3
        time.sleep(max(0, reset - time.time()) + 0.05)
        st, h, d = s.gql(first=1)
        assert "errors" not in d and d["data"]["rateLimit"]["remaining"] == 2
        # runtime config: set remaining / budget
        s.admin("POST", "/_sim/config", {"remaining": 0})
        assert s.gql(first=1)[2]["errors"][0]["type"] == "RATE_LIMITED"
        s.admin("POST", "/_sim/config", {"budget": 10, "resetSeconds": 60})
        st, h, d = s.gql(first=1)
        assert d["data"]["rateLimit"] == {"cost": 1, "remaining": 9, "limit": 10,
                                          "resetAt": d["data"]["rateLimit"]["resetAt"]}
    finally:
        s.close()


def test_faults(sim):
    sim.admin("DELETE", "/_sim/faults")
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "502", "count": 2})
    sim.admin("POST", "/_sim/faults", {"repo": None, "kind": "secondary", "count": 1, "retryAfter": 7})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "malformed"})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "something_went_wrong"})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "429"})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "rate_limit_type"})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "504"})
    sim.admin("POST", "/_sim/faults", {"repo": "lit/lit", "kind": "slow", "retryAfter": 0.4})
    # a request for another repo skips lit's faults but takes the any-repo one (FIFO among matches)
    st, h, raw = sim.gql("hotwired", "turbo", first=1, raw=True)
    assert st == 403 and h["retry-after"] == "7"
    assert "secondary rate limit" in json.loads(raw)["message"]
    for _ in range(2):
        st, h, raw = sim.gql("lit", "lit", first=1, raw=True)
        assert st == 502 and b"<html" in raw
    st, h, raw = sim.gql("lit", "lit", first=1, raw=True)
    assert st == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    st, h, d = sim.gql("lit", "lit", first=1)
    assert d["data"] is None and d["errors"][0]["message"].startswith("Something went wrong")
    st, h, d = sim.gql("lit", "lit", first=1)
    assert st == 429 and "retry-after" not in h
    st, h, d = sim.gql("lit", "lit", first=1)
    assert st == 200 and d["errors"][0]["type"] == "RATE_LIMIT" and h["x-ratelimit-remaining"] == "0"
    st, h, raw = sim.gql("lit", "lit", first=1, raw=True)
    assert st == 504
    t = time.time()
    st, h, d = sim.gql("lit", "lit", first=1)
    assert time.time() - t >= 0.35 and d["data"]["repository"]["pullRequests"]["nodes"]
    st, h, d = sim.gql("lit", "lit", first=1)
    assert st == 200 and "errors" not in d
    sim.admin("POST", "/_sim/faults", {"repo": None, "kind": "502", "count": 5})
    assert len(sim.admin("GET", "/_sim/faults")) == 1
    sim.admin("DELETE", "/_sim/faults")
    assert sim.gql(first=1)[0] == 200
    st, _, _ = sim.http("POST", "/_sim/faults", {"kind": "bogus"})
    assert st == 400


def test_stats_and_request_log(sim):
    sim.admin("POST", "/_sim/reset-stats")
    sim.gql("preactjs", "preact", first=100)
    sim.gql("preactjs", "preact", first=101)
    sim.gql("nope", "nope", first=10)
    stats = sim.admin("GET", "/_sim/stats")
    assert stats["requests"] == 3 and stats["points"] == 2
    assert stats["by_repo"] == {"preactjs/preact": 2, "nope/nope": 1}
    log = sim.admin("GET", "/_sim/requests")
    assert [(r["repo"], r["first"], r["status"], r["cost"]) for r in log] == [
        ("preactjs/preact", 100, 200, 1), ("preactjs/preact", 101, 200, 0), ("nope/nope", 10, 200, 1)]
    assert log[0]["after"] is None and log[0]["t"] <= log[1]["t"] <= log[2]["t"]


def worker_like(sim, owner, name, max_n=200, since_days=30):
    """A correct worker: pages of min(100, max - fetched), stops at max, at the
    first PR older than the cutoff, or when hasNextPage is false."""
    cutoff = time.time() - since_days * 86400
    stored, pages, after = [], 0, None
    while True:
        size = min(100, max_n - len(stored))
        st, h, d = sim.gql(owner, name, first=size, after=after)
        pages += 1
        repo = d["data"]["repository"]
        if repo is None:
            return stored, pages
        conn = repo["pullRequests"]
        for n in conn["nodes"]:
            if ts(n["createdAt"]) <= cutoff:
                return stored, pages
            stored.append({"number": n["number"], "githubId": n["fullDatabaseId"], "state": n["state"]})
            if len(stored) >= max_n:
                return stored, pages
        if not conn["pageInfo"]["hasNextPage"]:
            return stored, pages
        after = conn["pageInfo"]["endCursor"]


@pytest.mark.parametrize("full", sorted(BUILTIN) + ["nobody/nothing", "sim-250-10/bench"])
def test_expected_matches_worker(sim, full):
    exp = sim.admin("GET", "/_sim/expected?repo=%s&max=200&since_days=30" % full)
    stored, pages = worker_like(sim, *full.split("/"))
    assert [{k: e[k] for k in ("number", "githubId", "state")} for e in exp["expected"]] == stored
    assert exp["min_pages"] == pages
    if full in BUILTIN:
        k, m = BUILTIN[full]
        assert exp["known"] and (exp["in_window"], exp["older"]) == (k, m)
        assert len(stored) == min(200, k)
    else:
        assert exp["known"] is (full.startswith("sim-"))


def test_min_pages_examples(sim):
    def mp(repo, mx=200):
        return sim.admin("GET", "/_sim/expected?repo=%s&max=%d" % (repo, mx))["min_pages"]
    assert mp("sveltejs/svelte") == 2      # 250:40, max 200
    assert mp("lit/lit") == 2              # 100:5 -> can't know page 1 was the last in-window page
    assert mp("polymer/polymer") == 1      # 0:0
    assert mp("alpinejs/alpine") == 1      # 0:20
    assert mp("emberjs/ember.js") == 2     # 205:0, max 200
    assert mp("aurelia/framework") == 1    # 7:0
    assert mp("stimulus-use/stimulus-use") == 1  # 30:200
    assert mp("nobody/nothing") == 1
    assert mp("sim-100-0/x") == 1          # exactly one full page, hasNextPage false
    assert mp("sveltejs/svelte", 50) == 1


def test_query_validation(sim):
    q = QUERY.replace("fullDatabaseId number", "fullDatabaseId bogusField number")
    st, _, d = sim.gql(query=q)
    assert "data" not in d and d["errors"][0]["extensions"]["code"] == "undefinedField"
    q = QUERY.replace("... on User { databaseId } ... on Bot { databaseId }", "databaseId")
    st, _, d = sim.gql(query=q)
    assert "Field 'databaseId' doesn't exist on type 'Actor'" in d["errors"][0]["message"]
    q = QUERY.replace("fullDatabaseId number", "databaseId number")  # deprecated, > 32 bits
    st, _, d = sim.gql(query=q, first=1)
    assert d["data"]["repository"]["pullRequests"]["nodes"][0]["databaseId"] is None
    assert "32-bit" in d["errors"][0]["message"]
    st, _, d = sim.gql(query="query { repository(owner: \"lit\", name: \"lit\") { pullRequests(first: 2, orderBy: {field: CREATED_AT, direction: DESC}) { nodes { number } } } }")
    assert d == {"data": {"repository": {"pullRequests": {"nodes": [{"number": 105}, {"number": 104}]}}}}
    st, _, d = sim.gql(query="query { repository(owner: \"lit\", name: \"lit\") { pullRequests(first: 2) { nodes { number } } }")
    assert "Parse error" in d["errors"][0]["message"]


def test_nul_text():
    s = Sim("--nul-text")
    try:
        _, nodes = page_all(s, "sveltejs", "svelte")
        assert any("\u0000" in n["title"] for n in nodes)
        assert any("\u0000" in n["body"] for n in nodes)
    finally:
        s.close()


def test_latency_overlaps():
    s = Sim("--latency-ms", "300")
    try:
        import threading
        t = time.time()
        ths = [threading.Thread(target=s.gql, kwargs={"first": 1}) for _ in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        el = time.time() - t
        assert 0.3 <= el < 1.0
    finally:
        s.close()


def test_repeated_page_is_identical_and_charged_each_time(sim):
    """The answer of a valid request is cached (Sim.prepare): a repeat gives
    the same bytes, except rateLimit, which is computed for each request."""
    sim.admin("DELETE", "/_sim/faults")
    st1, h1, b1 = sim.gql("sim-250-0", "cache-a", raw=True)
    st2, h2, b2 = sim.gql("sim-250-0", "cache-a", raw=True)
    assert st1 == st2 == 200
    d1, d2 = json.loads(b1), json.loads(b2)
    assert "errors" not in d1 and len(d1["data"]["repository"]["pullRequests"]["nodes"]) == 100
    assert b1.split(b'"repository":', 1)[1] == b2.split(b'"repository":', 1)[1]
    rl1, rl2 = d1["data"]["rateLimit"], d2["data"]["rateLimit"]
    assert rl1["cost"] == rl2["cost"] == 1 and rl2["remaining"] == rl1["remaining"] - 1
    assert int(h2["x-ratelimit-remaining"]) == rl2["remaining"]
    # the same page of the next cursor, twice
    after = d1["data"]["repository"]["pullRequests"]["pageInfo"]["endCursor"]
    b3 = sim.gql("sim-250-0", "cache-a", after=after, raw=True)[2]
    b4 = sim.gql("sim-250-0", "cache-a", after=after, raw=True)[2]
    assert b3.split(b'"repository":', 1)[1] == b4.split(b'"repository":', 1)[1]
    assert json.loads(b3)["data"]["repository"]["pullRequests"]["nodes"][0]["number"] == 150


def test_fault_applies_to_a_cached_page(sim):
    sim.admin("DELETE", "/_sim/faults")
    st, _, good = sim.gql("sim-120-0", "cache-f", raw=True)
    assert st == 200
    sim.admin("POST", "/_sim/faults", [{"repo": "sim-120-0/cache-f", "kind": "malformed"},
                                       {"repo": "sim-120-0/cache-f", "kind": "502"},
                                       {"repo": "sim-120-0/cache-f", "kind": "slow", "retryAfter": 0.3}])
    st, _, raw = sim.gql("sim-120-0", "cache-f", raw=True)
    assert st == 200 and len(raw) == len(good) // 2
    with pytest.raises(ValueError):
        json.loads(raw)
    assert sim.gql("sim-120-0", "cache-f", raw=True)[0] == 502
    t = time.time()
    st, _, slow = sim.gql("sim-120-0", "cache-f", raw=True)
    assert st == 200 and time.time() - t >= 0.3
    assert slow.split(b'"repository":', 1)[1] == good.split(b'"repository":', 1)[1]
    assert not sim.admin("GET", "/_sim/faults")


def test_text_options_apply_to_cached_pages(sim):
    q = ("query($o: String!, $n: String!) { repository(owner: $o, name: $n) { pullRequests(first: 100, "
         "orderBy: {field: CREATED_AT, direction: DESC}) { nodes { title } } } }")
    v = {"o": "sim-100-0", "n": "cache-t"}
    plain = sim.gql(query=q, variables=v, raw=True)[2]
    assert b"\\u0000" not in plain
    sim.admin("POST", "/_sim/config", {"nulText": True})
    try:
        nul = sim.gql(query=q, variables=v, raw=True)[2]
    finally:
        sim.admin("POST", "/_sim/config", {"nulText": False})
    assert b"\\u0000" in nul
    assert sim.gql(query=q, variables=v, raw=True)[2] == plain


def test_latency_includes_compute():
    """--latency-ms is the whole answer time: compute first, then sleep the rest."""
    s = Sim("--latency-ms", "300")
    try:
        for name in ("lat-a", "lat-a", "lat-b"):  # a new page, the same (cached), another new one
            t = time.time()
            st, _, d = s.gql("sim-250-0", name)
            el = time.time() - t
            assert st == 200 and len(d["data"]["repository"]["pullRequests"]["nodes"]) == 100
            assert 0.3 <= el < 1.0, el
    finally:
        s.close()


@pytest.mark.skipif(not shutil.which("node") or not os.path.isdir(os.path.join(GRAPHQL_DIR, "node_modules")),
                    reason="node or tests/graphql/node_modules missing (run npm ci in tests/graphql)")
def test_query_document_validates_against_github_schema():
    r = subprocess.run(["node", "validate.mjs", QUERY_FILE], cwd=GRAPHQL_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------
# Accounts, secondary limits, GitHub App
# --------------------------------------------------------------------------

def rest(sim, method, path, token=None, body=None):
    headers = {"Accept": "application/vnd.github+json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    st, h, raw = sim.http(method, path, body, headers)
    return st, h, json.loads(raw)


def test_accounts_share_a_budget_and_keep_their_own():
    s = Sim("--token", "sekrit", "--budget", "3")
    try:
        r = s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "alice", "tokens": ["tok-a1", "tok-a2"]},
                                                            {"login": "bob", "tokens": ["tok-b1"]}]})
        assert r["accounts"] == ["alice", "bob"]
        rem = [s.gql(first=1, token=t)[2]["data"]["rateLimit"]["remaining"] for t in ("tok-a1", "tok-a2", "tok-a1")]
        assert rem == [2, 1, 0]  # alice's two tokens share her budget
        st, h, d = s.gql(first=1, token="tok-a2")
        assert d["errors"][0]["type"] == "RATE_LIMITED" and h["x-ratelimit-remaining"] == "0"
        assert d["errors"][0]["message"].startswith("API rate limit exceeded for user ID ")
        st, h, d = s.gql(first=1, token="tok-b1")  # bob's own budget
        assert d["data"]["rateLimit"]["remaining"] == 2 and h["x-ratelimit-remaining"] == "2"
        st, h, d = s.gql(first=1, token="sekrit")  # the default account's
        assert d["data"]["rateLimit"]["remaining"] == 2
        assert s.gql(first=1, token="tok-unknown")[0] == 401  # --token: no other token
        stats = s.admin("GET", "/_sim/stats")
        assert stats["remaining"] == 2 and stats["budget"] == 3  # the default account
        assert stats["requests"] == 7 and stats["points"] == 5 and stats["unauthorized"] == 1
        a = stats["accounts"]
        assert set(a) == {"sim-user", "alice", "bob"}
        assert {k: a["alice"][k] for k in ("requests", "points", "remaining", "rateLimited", "secondary")} == \
            {"requests": 4, "points": 3, "remaining": 0, "rateLimited": 1, "secondary": 0}
        assert (a["bob"]["requests"], a["bob"]["remaining"], a["sim-user"]["points"]) == (1, 2, 1)
        assert a["alice"]["maxInFlight"] == 1 and a["alice"]["maxPointsPerMinute"] == 4
        assert [r["account"] for r in s.admin("GET", "/_sim/requests")] == \
            ["alice", "alice", "alice", "alice", "bob", "sim-user", None]
        # GET /user: the account's login, a stable id
        st, h, u = rest(s, "GET", "/user", "tok-b1")
        assert st == 200 and u["login"] == "bob" and u["type"] == "User" and isinstance(u["id"], int)
        assert h["x-ratelimit-resource"] == "core" and rest(s, "GET", "/user", "tok-b1")[2] == u
        assert rest(s, "GET", "/user", "sekrit")[2] == {"login": "sim-user", "id": 1, "type": "User"}
        assert rest(s, "GET", "/user", "nope")[:3:2] == (401, {"message": "Bad credentials",
                                                                "documentation_url": "https://docs.github.com/rest"})
        assert rest(s, "GET", "/user")[2]["message"] == "Requires authentication"
        assert s.admin("GET", "/_sim/stats")["rest"] == {"user": 5, "installation": 0, "access_tokens": 0}
        assert s.gql(first=1, token="tok-b1")[2]["data"]["rateLimit"]["remaining"] == 1  # REST is not GraphQL's
        # remaining applies to every account; budget restarts every window
        s.admin("POST", "/_sim/config", {"remaining": 1})
        assert {k: v["remaining"] for k, v in s.admin("GET", "/_sim/stats")["accounts"].items()} == \
            {"sim-user": 1, "alice": 1, "bob": 1}
        s.admin("POST", "/_sim/config", {"budget": 10})
        assert s.gql(first=1, token="tok-a1")[2]["data"]["rateLimit"]["remaining"] == 9
        # replacing an account: new tokens, a fresh budget
        s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "Alice", "tokens": ["tok-a3"]}]})
        assert s.gql(first=1, token="tok-a1")[0] == 401
        assert s.gql(first=1, token="tok-a3")[2]["data"]["rateLimit"]["remaining"] == 9
        assert set(s.admin("GET", "/_sim/stats")["accounts"]) == {"sim-user", "Alice", "bob"}
        # bad input
        for bad in ({"accounts": [{"login": 7, "tokens": ["x"]}]},
                    {"accounts": [{"login": "carol", "tokens": []}]},
                    {"accounts": [{"login": "carol", "tokens": ["has space"]}]},
                    {"accounts": [{"login": "carol", "tokens": ["tok-b1"]}]},   # bob's
                    {"accounts": [{"login": "carol", "tokens": ["sekrit"]}]},   # --token's
                    {"accounts": [{"login": "sim-user", "tokens": ["x"]}]},
                    {"accounts": [{"login": "bad/login", "tokens": ["x"]}]},
                    {"accounts": {"login": "carol"}}, {"nope": 1}):
            st, _, raw = s.http("POST", "/_sim/accounts", bad)
            assert st == 400 and json.loads(raw)["message"], bad
        assert "carol" not in s.admin("GET", "/_sim/stats")["accounts"]
        # reset-stats: counters, not budgets
        s.admin("POST", "/_sim/reset-stats")
        stats = s.admin("GET", "/_sim/stats")
        assert (stats["requests"], stats["unauthorized"], stats["secondary"]) == (0, 0, 0)
        assert stats["rest"] == {"user": 0, "installation": 0, "access_tokens": 0}
        assert stats["accounts"]["bob"]["requests"] == 0 and stats["accounts"]["bob"]["maxInFlight"] == 0
        assert stats["accounts"]["bob"]["remaining"] == 10
    finally:
        s.close()


def test_revoke(sim):
    # without --token any token is the default account's, and can be revoked
    assert sim.gql(first=1, token="tok-revoke-me")[0] == 200
    assert sim.admin("POST", "/_sim/tokens/revoke", {"token": "tok-revoke-me"}) == {"ok": True, "account": "sim-user"}
    st, _, d = sim.gql(first=1, token="tok-revoke-me")
    assert st == 401 and d == {"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql"}
    assert rest(sim, "GET", "/user", "tok-revoke-me")[0] == 401
    assert sim.gql(first=1, token="t0k")[0] == 200  # the others still work
    s = Sim("--token", "sekrit")
    try:
        s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "bob", "tokens": ["tok-b1", "tok-b2"]}]})
        assert s.admin("POST", "/_sim/tokens/revoke", {"token": "tok-b1"})["account"] == "bob"
        assert s.gql(first=1, token="tok-b1")[0] == 401 and s.gql(first=1, token="tok-b2")[0] == 200
        assert s.http("POST", "/_sim/tokens/revoke", {"token": "never-seen"})[0] == 404
        assert s.http("POST", "/_sim/tokens/revoke", {"token": ""})[0] == 400
        assert s.admin("GET", "/_sim/stats")["unauthorized"] == 1
        # posting the token in an account again makes it valid again
        s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "bob", "tokens": ["tok-b1"]}]})
        assert s.gql(first=1, token="tok-b1")[0] == 200
    finally:
        s.close()


def test_secondary_points_per_minute():
    s = Sim("--secondary-points-per-minute", "3", "--budget", "100")
    try:
        s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "bob", "tokens": ["tok-b1"]}]})
        cfg = s.admin("GET", "/_sim/config")
        assert (cfg["secondaryPointsPerMinute"], cfg["maxConcurrent"]) == (3, 100)
        for _ in range(3):
            assert s.gql(first=1)[0] == 200
        st, h, d = s.gql(first=1)
        assert st == 403 and h["retry-after"] == "60" and "secondary rate limit" in d["message"]
        assert h["x-ratelimit-resource"] == "graphql" and h["x-ratelimit-remaining"] == "97"  # not charged
        st, h, d = rest(s, "GET", "/user", "t0k")  # REST counts too, and is limited too
        assert st == 403 and h["retry-after"] == "60" and h["x-ratelimit-resource"] == "core"
        assert s.gql(first=1, token="tok-b1")[0] == 200  # per account
        stats = s.admin("GET", "/_sim/stats")
        me = stats["accounts"]["sim-user"]
        assert stats["secondary"] == 2 and me["secondary"] == 2 and me["points"] == 3
        assert me["maxPointsPerMinute"] == 5 and stats["accounts"]["bob"]["secondary"] == 0
        assert [r["error"] for r in s.admin("GET", "/_sim/requests")][3] == "SECONDARY_RATE_LIMIT"
        s.admin("POST", "/_sim/config", {"secondaryPointsPerMinute": 0})  # 0: no limit
        assert s.gql(first=1)[0] == 200 and rest(s, "GET", "/user", "t0k")[0] == 200
        assert s.http("POST", "/_sim/config", {"maxConcurrent": -1})[0] == 400
    finally:
        s.close()


def test_max_concurrent():
    import threading
    s = Sim("--max-concurrent", "2", "--latency-ms", "400")
    try:
        s.admin("POST", "/_sim/accounts", {"accounts": [{"login": "bob", "tokens": ["tok-b1"]}]})
        tokens = ["t0k"] * 5 + ["tok-b1"] * 2
        results = [None] * len(tokens)
        go = threading.Barrier(len(tokens))

        def one(i):
            go.wait()
            results[i] = s.gql("sim-50-0", "conc", first=1, token=tokens[i], raw=True)[:2]
        ths = [threading.Thread(target=one, args=(i,)) for i in range(len(tokens))]
        t = time.time()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        assert time.time() - t < 1.5
        mine = sorted(st for st, _ in results[:5])
        assert mine == [200, 200, 403, 403, 403]  # a rejected one is answered after its latency too
        assert all(h["retry-after"] == "60" for st, h in results[:5] if st == 403)
        assert [st for st, _ in results[5:]] == [200, 200]  # bob: his own limit
        a = s.admin("GET", "/_sim/stats")["accounts"]
        assert a["sim-user"]["maxInFlight"] == 5 and a["sim-user"]["inFlight"] == 0
        assert a["sim-user"]["secondary"] == 3 and a["bob"]["maxInFlight"] == 2
        s.admin("POST", "/_sim/config", {"latencyMs": 0})
        assert s.gql(first=1)[0] == 200  # none in flight any more
    finally:
        s.close()


# --- GitHub App ------------------------------------------------------------

def b64url(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(key_file, claims, header=None):
    signing_input = "%s.%s" % (b64url(json.dumps(header or {"alg": "RS256", "typ": "JWT"}).encode()),
                               b64url(json.dumps(claims).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=signing_input.encode(),
                         capture_output=True, check=True).stdout
    return signing_input + "." + b64url(sig)


@pytest.fixture(scope="module")
def keys():
    if not shutil.which("openssl"):
        pytest.skip("openssl command missing")
    d = tempfile.mkdtemp(prefix="ghsim-keys-")
    paths = {n: os.path.join(d, n) for n in ("k.pem", "pub.pem", "pub-pkcs1.pem", "other.pem")}
    run = lambda *a: subprocess.run(["openssl", *a], capture_output=True, check=True)  # noqa: E731
    run("genrsa", "-out", paths["k.pem"], "2048")
    run("rsa", "-in", paths["k.pem"], "-pubout", "-out", paths["pub.pem"])
    run("rsa", "-in", paths["k.pem"], "-RSAPublicKey_out", "-out", paths["pub-pkcs1.pem"])
    run("genrsa", "-out", paths["other.pem"], "2048")
    yield paths
    shutil.rmtree(d, ignore_errors=True)


def app_jwt(keys, iss=123, key="k.pem", iat_off=-30, exp_off=540):
    now = int(time.time())
    return make_jwt(keys[key], {"iat": now + iat_off, "exp": now + exp_off, "iss": iss})


def test_app_flow(keys):
    s = Sim("--token", "sekrit", "--budget", "50", "--app-id", "123", "--app-public-key", keys["pub.pem"],
            "--app-installation", "42:org-a:org-a,sim-120-10", "--app-installation", "43:org-b")
    try:
        jwt = app_jwt(keys)
        st, h, d = rest(s, "GET", "/repos/org-a/anything/installation", jwt)
        assert st == 200 and d == {"id": 42, "account": {"login": "org-a", "type": "Organization"}, "app_id": 123,
                                   "repository_selection": "all",
                                   "permissions": {"pull_requests": "read", "metadata": "read"}}
        assert h["x-ratelimit-resource"] == "core"
        assert rest(s, "GET", "/repos/SIM-120-10/bench/installation", jwt)[2]["id"] == 42
        assert rest(s, "GET", "/repos/org-b/x/installation", jwt)[2]["id"] == 43
        st, _, d = rest(s, "GET", "/repos/sveltejs/svelte/installation", jwt)
        assert st == 404 and d == {"message": "Not Found", "documentation_url":
                                   "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"}
        assert rest(s, "POST", "/app/installations/7/access_tokens", jwt, {})[0] == 404
        t0 = time.time()
        st, _, tok = rest(s, "POST", "/app/installations/42/access_tokens", jwt, {})
        assert st == 201 and re.fullmatch(r"ghs_[A-Za-z0-9]{36}", tok["token"])
        assert tok["permissions"] == {"pull_requests": "read", "metadata": "read"}
        assert tok["repository_selection"] == "all"
        assert t0 + 3600 - 1 <= ts(tok["expires_at"]) <= time.time() + 3601
        ghs = tok["token"]
        # GraphQL as the installation: its own budget, its owners' repositories only
        s.gql(first=1, token="sekrit")
        st, h, d = s.gql("sim-120-10", "bench", first=5, token=ghs)
        assert st == 200 and len(d["data"]["repository"]["pullRequests"]["nodes"]) == 5
        assert d["data"]["rateLimit"]["remaining"] == 49 and h["x-ratelimit-remaining"] == "49"
        assert s.gql(first=1, token="sekrit")[2]["data"]["repository"]  # cached for the PAT ...
        st, _, d = s.gql(first=1, token=ghs)  # ... and still not visible to the installation
        assert d["data"]["repository"] is None and d["errors"][0]["type"] == "NOT_FOUND"
        assert d["errors"][0]["message"] == "Could not resolve to a Repository with the name 'sveltejs/svelte'."
        assert d["data"]["rateLimit"]["remaining"] == 48
        # GET /user is not for an installation
        st, h, d = rest(s, "GET", "/user", ghs)
        assert st == 403 and d["message"] == "Resource not accessible by integration"
        stats = s.admin("GET", "/_sim/stats")
        inst = stats["accounts"]["installation/42"]
        assert (inst["requests"], inst["points"], inst["remaining"], inst["rest"]) == (2, 2, 48, 1)
        assert stats["accounts"]["sim-user"]["remaining"] == 48 and stats["remaining"] == 48
        assert stats["rest"] == {"user": 1, "installation": 4, "access_tokens": 2}
        assert stats["accounts"]["app/123"]["rest"] == 6
        log = s.admin("GET", "/_sim/requests")
        assert [r["account"] for r in log] == ["sim-user", "installation/42", "sim-user", "installation/42"]
        assert [r["endpoint"] for r in s.admin("GET", "/_sim/rest-requests")][-2:] == ["access_tokens", "user"]
        # a token is no JWT, nor a JWT a token
        assert rest(s, "GET", "/repos/org-a/x/installation", ghs)[2]["message"] == \
            "A JSON web token could not be decoded"
        assert s.gql(first=1, token=jwt)[0] == 401
        # revoked
        assert s.admin("POST", "/_sim/tokens/revoke", {"token": ghs})["account"] == "installation/42"
        st, _, d = s.gql("sim-120-10", "bench", first=1, token=ghs)
        assert st == 401 and d["message"] == "Bad credentials"
        assert ghs.encode() not in open(s.log.name, "rb").read()
        app = s.admin("GET", "/_sim/app")
        assert app["appId"] == 123 and app["keyBits"] == 2048 and len(app["installations"]) == 2
    finally:
        s.close()


def test_jwt_rejections(keys):
    s = Sim("--app-id", "123", "--app-public-key", keys["pub.pem"], "--app-installation", "42:org-a")
    try:
        path = "/app/installations/42/access_tokens"
        undecodable = {"message": "A JSON web token could not be decoded",
                       "documentation_url": "https://docs.github.com/rest"}
        now = int(time.time())
        good = app_jwt(keys)
        h, p, sig = good.split(".")
        cases = [
            ("garbage", "not.a.jwt", undecodable["message"]),
            ("no token", None, undecodable["message"]),
            ("bad signature", app_jwt(keys, key="other.pem"), undecodable["message"]),
            ("tampered", "%s.%s.%s" % (h, b64url(json.dumps({"iat": now - 30, "exp": now + 500,
                                                             "iss": 124}).encode()), sig), undecodable["message"]),
            ("alg none", make_jwt(keys["k.pem"], {"iat": now, "exp": now + 60, "iss": 123},
                                  {"alg": "none"}), undecodable["message"]),
            ("wrong iss", app_jwt(keys, iss=124), undecodable["message"]),
            ("iss not an integer", app_jwt(keys, iss="my-app"), "'Issuer' claim ('iss') must be an Integer"),
            ("expired", app_jwt(keys, iat_off=-700, exp_off=-100),
             "'Expiration time' claim ('exp') must be a numeric value representing the future time "
             "at which the assertion expires"),
            ("exp too far", app_jwt(keys, iat_off=-10, exp_off=600), "'Expiration time' claim ('exp') is too far in the future"),
            ("iat ahead", app_jwt(keys, iat_off=120, exp_off=300),
             "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"),
        ]
        for what, jwt, msg in cases:
            st, h_, d = rest(s, "POST", path, jwt, {})
            assert (st, d) == (401, {"message": msg, "documentation_url": "https://docs.github.com/rest"}), what
            assert h_["x-ratelimit-resource"] == "core"
        stats = s.admin("GET", "/_sim/stats")
        assert stats["unauthorized"] == len(cases) and stats["rest"]["access_tokens"] == len(cases)
        assert rest(s, "POST", path, good, {})[0] == 201
        assert rest(s, "POST", path, app_jwt(keys, iss="123"), {})[0] == 201  # iss as a string
        # the App via POST /_sim/app, with a PKCS#1 key; bad configurations
        with open(keys["pub-pkcs1.pem"]) as fh:
            pkcs1 = fh.read()
        r = s.admin("POST", "/_sim/app", {"appId": 99, "publicKeyPem": pkcs1,
                                          "installations": [{"id": 5, "account": "org-c"}]})
        assert r["appId"] == 99 and r["installations"][0]["repositoryOwners"] == ["org-c"]
        assert rest(s, "POST", "/app/installations/5/access_tokens", app_jwt(keys, iss=99), {})[0] == 201
        assert rest(s, "POST", "/app/installations/5/access_tokens", good, {})[0] == 401  # the old App's
        for bad in ({"appId": 99, "publicKeyPem": "nope"},
                    {"appId": "x", "publicKeyPem": pkcs1},
                    {"appId": 99, "publicKeyPem": pkcs1, "tokenLifetimeSeconds": 0},
                    {"appId": 99, "publicKeyPem": pkcs1, "installations": [{"id": 1}]},
                    {"appId": 99, "publicKeyPem": pkcs1, "installations": [{"id": 1, "account": "a"},
                                                                           {"id": 1, "account": "b"}]}):
            st, _, raw = s.http("POST", "/_sim/app", bad)
            assert st == 400 and json.loads(raw)["message"], bad
    finally:
        s.close()


def test_installation_token_expires(keys):
    s = Sim()
    try:
        with open(keys["pub.pem"]) as fh:
            s.admin("POST", "/_sim/app", {"appId": 123, "publicKeyPem": fh.read(), "tokenLifetimeSeconds": 1,
                                          "installations": [{"id": 42, "account": "org-a",
                                                             "repositoryOwners": ["sim-120-10"]}]})
        st, _, tok = rest(s, "POST", "/app/installations/42/access_tokens", app_jwt(keys), {})
        assert st == 201
        expires = ts(tok["expires_at"])
        assert time.time() < expires <= time.time() + 2
        assert s.gql("sim-120-10", "x", first=1, token=tok["token"])[0] == 200
        time.sleep(max(0, expires - time.time()) + 0.05)
        st, _, d = s.gql("sim-120-10", "x", first=1, token=tok["token"])
        assert st == 401 and d == {"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql"}
        assert s.gql(first=1, token="any-pat")[0] == 200  # an expired token is not the default account's
    finally:
        s.close()
