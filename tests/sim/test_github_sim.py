"""Tests for the GitHub GraphQL simulator (stdlib urllib only).

Run: python3 -m pytest -q tests/sim
"""

import json
import os
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
