#!/usr/bin/env python3
"""GitHub GraphQL API simulator for backfill's tests (Python 3 stdlib only).

    python3 tests/sim/github_sim.py --port 0 --port-file PATH [--latency-ms N]
        [--budget N] [--reset-seconds N] [--token T] [--nul-text] [--surrogate-text]
        [--repo owner/name=IN_WINDOW:OLDER ...]
        [--secondary-points-per-minute N] [--max-concurrent N]
        [--app-id N --app-public-key PEMFILE [--app-token-lifetime S]
         [--app-installation ID:ACCOUNT[:OWNER[,OWNER...]] ...]]

Serves POST /graphql the way api.github.com does for the backfill worker's
query: a small GraphQL parser/executor over a mini copy of GitHub's schema
(only the types the worker touches), so unknown fields, missing selections,
undeclared variables, `first` > 100 and bad cursors are rejected like GitHub
does, and only the fields that were asked for are returned. A few REST
endpoints serve GitHub App authentication (see "GitHub App" below).

Pull requests are deterministic per repository (a hash of the lower-cased
"owner/name" and the PR number); timestamps are relative to server start.
In-window PRs are created between 1 hour and 29 days before start, older PRs
between 31 and 400 days before start; none between 29 and 31 days.

Admin endpoints (no auth), all JSON:
  GET  /healthz                  -> "ok"
  GET  /_sim/stats               -> {"requests", "points", "by_repo", "remaining", "budget",
                                     "resetAt", "faults_pending", "unauthorized", "secondary",
                                     "rest": {"user", "installation", "access_tokens"},
                                     "accounts": {KEY: {...}}}
  GET  /_sim/requests            -> [{"repo","first","after","status","cost","t","account",...}]
                                    (GraphQL requests only)
  GET  /_sim/rest-requests       -> [{"method","path","endpoint","status","t","account","error"}]
  POST /_sim/reset-stats         (every counter above, of every account; not budgets)
  GET  /_sim/expected?repo=o/n&max=200&since_days=30
  POST /_sim/faults  {"repo": "o/n"|null, "kind": K, "count": N, "retryAfter": S}
  GET  /_sim/faults   DELETE /_sim/faults
  GET  /_sim/config   POST /_sim/config {"latencyMs","budget","resetSeconds","remaining","nulText",
                                           "surrogateText","secondaryPointsPerMinute","maxConcurrent"}
  GET  /_sim/accounts -> {"accounts": [{"key","login","type","tokens"}]} (tokens: how many)
  POST /_sim/accounts {"accounts": [{"login": "alice", "tokens": ["tok-a1", "tok-a2"]}, ...]}
  POST /_sim/tokens/revoke {"token": T}   -> {"ok", "account"}; 404 if T is unknown
  GET  /_sim/app      POST /_sim/app {"appId", "publicKeyPem", "tokenLifetimeSeconds",
                                      "installations": [{"id", "account", "repositoryOwners"}]}
Bad admin input is answered 400 {"message": ...}.

--nul-text puts a \u0000 into every tenth title and body; --surrogate-text
puts a lone surrogate escape (\ud800, \udc00: not valid Unicode, refused by
strict JSON parsers such as jansson) into another tenth.

Accounts. Every authenticated request is some account's, with that
account's own primary GraphQL budget (--budget points per --reset-seconds;
the window starts when the account is created and rolls over in whole
periods), its own secondary limits and its own counters; the x-ratelimit-*
headers and the rateLimit fields of an answer are its account's.
  - "sim-user", the default account: the token of --token; without --token,
    as before, any non-empty token that is no other account's.
  - PAT accounts added by POST /_sim/accounts: key = login; all tokens of
    an account share its budget. An account posted again (same login, any
    case) is replaced by a new one: its old tokens stop working, its budget
    and counters start afresh. Logins are GitHub-like (letters, digits and
    hyphens, at most 39, not "sim-user"); tokens are printable ASCII without
    spaces, and a token may belong to one account only (400 otherwise).
  - App installations: key "installation/<id>"; the App itself, for the
    requests made with its JWT: key "app/<id>".
POST /_sim/tokens/revoke makes a token (a PAT or an installation token) give
401 Bad credentials from then on (without --token any token can be revoked);
posting the token in an account again makes it valid again.
The old top-level "remaining", "budget" and "resetAt" of /_sim/stats and
/_sim/config describe the default account. POST /_sim/config "remaining"
sets every account's remaining points; "budget" and "resetSeconds" apply to
every account and restart all their windows. Each account in /_sim/stats:
  {"login", "type" ("user"|"installation"|"app"), "requests" (GraphQL),
   "points", "remaining", "budget", "resetAt", "rateLimited" (RATE_LIMITED
   answers), "secondary" (answers of the secondary limits below, not of
   faults), "rest" (REST requests), "inFlight" (now), "maxInFlight" and
   "maxPointsPerMinute" (the most ever seen, since reset-stats)}
Top level: "unauthorized" counts 401 answers (GraphQL and REST), "secondary"
all the accounts' secondary answers, "rest" the REST requests by endpoint.

Secondary limits (GitHub: 2,000 points a minute for GraphQL, a query counts
1, and 100 concurrent requests, per account). Every authenticated request,
GraphQL or REST, counts 1 point for its account when it arrives, in a
sliding 60 s window, and is in flight for its account from its arrival
(after authentication) until its answer is written, its latency included
(it leaves just before the write, so a client that sends its next request
when it has the last one's answer is never seen with both in flight). A
request that makes the window's points exceed --secondary-points-per-minute
(default 2000), or the account's requests in flight exceed --max-concurrent
(default 100), is answered 403 with SECONDARY_BODY, the account's
x-ratelimit headers and retry-after: 60, after the usual latency; it costs
no primary points. A rejected request counts as much as any other (its
point, its time in flight), so a client that keeps hammering stays limited,
as on GitHub. 0 disables a check. Both are also "secondaryPointsPerMinute"
and "maxConcurrent" of /_sim/config. The "secondary" fault is independent
of these limits (and not counted as "secondary").

GitHub App. POST /_sim/app (or the --app-* options) configures one App and
replaces any earlier one: "appId" (number), "publicKeyPem" (an RSA public
key, "BEGIN PUBLIC KEY" or "BEGIN RSA PUBLIC KEY"), "tokenLifetimeSeconds"
(default 3600) and "installations", each {"id", "account" (a login),
"repositoryOwners" (default [account]), optional "accountType"
("Organization"), "permissions" ({"pull_requests": "read", "metadata":
"read"})}. The REST endpoints, JSON, with x-ratelimit-resource: core
headers of a separate core budget (5000 an hour per account, counted, not
enforced; never the GraphQL budget), the latency and the secondary limits:
  GET  /repos/{owner}/{repo}/installation          (JWT) 200 | 404
  POST /app/installations/{id}/access_tokens       (JWT) 201 {"token": "ghs_...",
                                                    "expires_at", "permissions", ...} | 404
  GET  /user   (token) 200 {"login","id","type"}; an installation token: 403
The JWT (Authorization: Bearer) must be RS256, signed by the App's key
(verified here in pure Python), with "iss" the App id (number or string),
"iat" at most 60 s ahead, "exp" in the future and at most 600 s after
"iat"; else 401 with GitHub's message ("A JSON web token could not be
decoded" for garbage, a bad signature or another App's id). An installation
token authenticates GraphQL (and /user) as "installation/<id>" until its
expires_at (now + the lifetime, rounded up to a whole second), then 401
Bad credentials; it sees only the repositories of its repositoryOwners
(case-insensitive): any other answers like an unknown repository (NOT_FOUND).
Reconfiguring the App keeps the tokens of installations it still has.

Latency and CPU: --latency-ms is the time from a request's arrival (the
accept of its connection for a connection's first request, else the reading
of its request line) to its answer, as with GitHub, where the answer's own
work is part of the latency: the request is parsed, validated, executed and
encoded first, then only the rest of the latency is slept, so a request takes
max(latency, compute) rather than latency + compute, and concurrent requests
overlap their compute with each other's latency (one Python process shares
one CPU; the GIL is handed over every 1 ms so new requests start promptly). The rest happens after the wait, as before: faults are taken, the
rate-limit point is charged and the rateLimit fields are filled in (they are
left out of the encoded answer and put in per request). A "slow" fault still
adds its retryAfter seconds on top of the latency. REST requests take their
latency the same way.
The encoded answer of a valid request is cached (see Sim.prepare): it depends
only on the request, the text options and the repositories the account may
see, so a repeated page (a retry, a re-run) costs about a millisecond; a
fault still applies to a cached page.
"""

import argparse
import base64
import binascii
import collections
import contextlib
import functools
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import signal
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DAY = 86400
HOUR = 3600

BUILTIN_REPOS = {
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

SIM_OWNER_RE = re.compile(r"^sim-(\d{1,9})-(\d{1,9})$", re.IGNORECASE)

FAULT_KINDS = ("502", "504", "something_went_wrong", "secondary", "429",
               "malformed", "slow", "rate_limit_type")

SECONDARY_BODY = {
    "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
}

DEFAULT_LOGIN = "sim-user"  # the default account: --token, or any token
LOGIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")  # a GitHub login
TOKEN_RE = re.compile(r"[\x21-\x7e]{1,1024}")  # fits an Authorization header
SECONDARY_WINDOW = 60.0  # seconds: the sliding window of the points-per-minute limit
CORE_LIMIT, CORE_RESET = 5000, 3600  # REST core budget of every account (not enforced)
DEFAULT_PERMISSIONS = {"pull_requests": "read", "metadata": "read"}
REST_DOCS = "https://docs.github.com/rest"
GRAPHQL_DOCS = "https://docs.github.com/graphql"
# GitHub's 401 messages for an App's JSON web token
JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = ("'Expiration time' claim ('exp') must be a numeric value representing the "
               "future time at which the assertion expires")
JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
JWT_IAT = ("'Issued at' claim ('iat') must be an Integer representing the time that the "
           "assertion was issued")
JWT_ISS = "'Issuer' claim ('iss') must be an Integer"

MAX_PAGE = 100
CACHE_BYTES = 64 << 20  # prepared answers kept (Sim.prepare)
ID_BASE = 2_000_000_000_000_000_000  # > 2**53, and ID_BASE + 10**18 < 2**63


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


# A lone surrogate, as "surrogatepass" encodes it (ED A0..BF 80..BF: never
# part of valid UTF-8, so it cannot match inside another character).
_SURROGATE_UTF8_RE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")


def _surrogate_escape(m):
    return b"\\u%04x" % ord(m.group().decode("utf-8", "surrogatepass"))


def github_json(obj):
    """Serialise like GitHub (Rails): UTF-8, compact, with <, >, &, U+2028 and
    U+2029 escaped as \\uXXXX (these only occur inside strings).

    The escapes are applied to the UTF-8 bytes (the same result as replacing
    in the str and encoding, several times faster on pages with emoji, whose
    str takes 4 bytes a character)."""
    b = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    b = (b.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
         .replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029"))
    # a lone surrogate (--surrogate-text) cannot be UTF-8: send it as an escape
    if b"\xed" in b:
        b = _SURROGATE_UTF8_RE.sub(_surrogate_escape, b)
    return b


_sha256 = hashlib.sha256


def _h(*parts):
    return int.from_bytes(_sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


# --------------------------------------------------------------------------
# Deterministic data
# --------------------------------------------------------------------------

USER_FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
              "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
              "trent", "victor", "walter", "yuki", "zoe", "Rich", "DanTheMan", "xX"]
USER_SECOND = ["dev", "codes", "hacks", "js", "42", "io", "Harris", "oss", "builds", "Xx"]

BOTS = [  # (login as GraphQL returns it, databaseId, app id for avatar)
    ("dependabot", 49699333, 29110),
    ("renovate", 29139614, 2740),
    ("github-actions", 41898282, 15368),
    ("changeset-bot", 38271998, 28616),
]

AREAS = ["compiler", "runtime", "SSR", "hydration", "router", "types", "docs",
         "reactivity", "transitions", "build", "CI", "store", "devtools"]
THINGS = ["memory leak", "race condition", "off-by-one", "null deref", "flaky test",
          "slot fallback", "event delegation", "source maps", "keyed each"]
PKGS = ["vite", "typescript", "rollup", "esbuild", "eslint", "prettier", "vitest", "acorn"]
BRANCH_WORDS = ["fix", "feat", "chore", "refactor", "perf", "docs"]
TITLES = [  # (area, thing, number) -> a human PR title
    lambda area, thing, n: "Fix %s in %s" % (thing, area),
    lambda area, thing, n: "🚀 Improve %s performance" % area,
    lambda area, thing, n: "修复 %s 中的内存泄漏 (#%d)" % (area, n),
    lambda area, thing, n: "Cafe\u0301: handle combining accents in %s" % area,
    lambda area, thing, n: "feat(%s): support <svelte:%s> & \"quoted\" attributes" % (area, thing.replace(" ", "-")),
    lambda area, thing, n: "Handle back\\slash paths in %s" % area,
    lambda area, thing, n: "إصلاح %s — RTL text" % area,
    lambda area, thing, n: "Family 👩\u200d👩\u200d👧 & flag 🇯🇵 emoji in %s" % area,
    lambda area, thing, n: "Support 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters in %s" % area,
    lambda area, thing, n: "Line\u2028separator in %s title" % area,
    lambda area, thing, n: "refactor(%s): tidy %s" % (area, thing),
    lambda area, thing, n: "docs: explain %s" % thing,
]


class Repo:
    """A known repository with a deterministic set of pull requests."""

    def __init__(self, full_name, in_window, older, start):
        self.full_name = full_name  # canonical spelling
        self.key = full_name.lower()
        self.owner, self.name = full_name.split("/", 1)
        self.in_window = int(in_window)
        self.older = int(older)
        self.total = self.in_window + self.older
        self.start = int(start)
        self.database_id = 100_000_000 + _h("repo", self.key) % 1_900_000_000  # < 2**31
        self.id_prefix = (_h("repo-ids", self.key) % 1_000_000_000) * 1_000_000_000

    # -- ordering: number N (1..total); higher number = newer ---------------
    def created_at(self, n):
        k, m = self.in_window, self.older
        if n > m:  # in-window
            i = self.total - n  # 0 = newest
            span = 29 * DAY - HOUR
            age = HOUR + (i * span / (k - 1) if k > 1 else 0)
        else:
            j = m - n
            span = 369 * DAY
            age = 31 * DAY + (j * span / (m - 1) if m > 1 else 0)
        return self.start - int(round(age))

    def full_database_id(self, n):
        return ID_BASE + self.id_prefix + n

    def cursor(self, n):
        raw = "cursor:v2:%d:%d" % (self.database_id, n)
        return base64.b64encode(raw.encode()).decode()

    def decode_cursor(self, cur):
        """-> PR number to continue after (exclusive), or None if invalid."""
        if not isinstance(cur, str) or not cur or len(cur) > 200:
            return None
        try:
            raw = base64.b64decode(cur.encode("ascii"), validate=True).decode("ascii")
        except (binascii.Error, ValueError, UnicodeError):
            return None
        m = re.fullmatch(r"cursor:v2:(\d+):(\d+)", raw)
        if not m or int(m.group(1)) != self.database_id:
            return None
        n = int(m.group(2))
        if n < 1 or n > self.total:
            return None
        return n

    def author(self, n):
        r = _h("author", self.key, n) % 100
        if r < 5:
            return None  # ghost (deleted account)
        if r < 17:
            login, dbid, app = BOTS[_h("bot", self.key, n) % len(BOTS)]
            return {"__typename": "Bot", "login": login, "databaseId": dbid,
                    "avatarUrl": "https://avatars.githubusercontent.com/in/%d?v=4" % app,
                    "url": "https://github.com/apps/%s" % login,
                    "resourcePath": "/apps/%s" % login,
                    "id": "BOT_kgDO%s" % base64.b64encode(str(dbid).encode()).decode().rstrip("=")}
        u = _h("user", self.key, n) % (len(USER_FIRST) * len(USER_SECOND))
        login = "%s-%s" % (USER_FIRST[u % len(USER_FIRST)], USER_SECOND[u // len(USER_FIRST)])
        dbid = 1000 + _h("uid", login) % 150_000_000
        return {"__typename": "User", "login": login, "databaseId": dbid,
                "avatarUrl": "https://avatars.githubusercontent.com/u/%d?v=4" % dbid,
                "url": "https://github.com/%s" % login, "resourcePath": "/%s" % login,
                "id": "U_kgDO%s" % base64.b64encode(str(dbid).encode()).decode().rstrip("="),
                "name": login.replace("-", " ").title()}

    def pr(self, n, nul_text=False, surrogate_text=False):
        """The full PullRequest object for number n (all fields)."""
        key = self.key
        prefix = "%s\x1f%s\x1f" % (key, n)

        def h(salt):  # == _h(key, n, salt), without re-joining the parts
            return int.from_bytes(_sha256((prefix + salt).encode()).digest()[:8], "big")
        created = self.created_at(n)
        in_window = n > self.older
        st = h("state") % 100
        if in_window:
            state = "OPEN" if st < 35 else ("MERGED" if st < 85 else "CLOSED")
        else:
            state = "OPEN" if st < 10 else ("MERGED" if st < 75 else "CLOSED")
        is_draft = state == "OPEN" and h("draft") % 100 < 30
        author = self.author(n)
        is_bot = author is not None and author["__typename"] == "Bot"

        # updatedAt >= closedAt >= createdAt; never after server start
        limit = self.start - 60
        life = min(h("life") % (12 * DAY) + 120, max(limit - created, 0))
        closed_at = merged_at = None
        if state in ("CLOSED", "MERGED"):
            closed = created + life
            closed_at = iso(closed)
            if state == "MERGED":
                merged_at = closed_at
            updated = min(closed + h("upd") % (2 * DAY), limit)
            updated = max(updated, closed)
        else:
            updated = created + life
        area = AREAS[h("area") % len(AREAS)]
        thing = THINGS[h("thing") % len(THINGS)]
        if is_bot:
            pkg = PKGS[h("pkg") % len(PKGS)]
            a, b = h("v1") % 20, h("v2") % 30
            title = "chore(deps): bump %s from %d.%d.0 to %d.%d.1" % (pkg, a, b, a, b)
            head = "%s/npm_and_yarn/%s-%d.%d.1" % (author["login"], pkg, a, b)
        else:
            title = TITLES[h("title") % len(TITLES)](area, thing, n)
            word = BRANCH_WORDS[h("bw") % len(BRANCH_WORDS)]
            head = ("%s/ünïcödé-%d" % (word, n)) if h("ub") % 10 == 0 else ("%s/%s-%d" % (word, area.lower(), n))
        base = ["main", "main", "main", "main", "master", "next", "v4"][h("base") % 7]

        bk = h("body") % 100
        if bk < 10:
            body = ""  # PullRequest.body is String! — GitHub returns "" for no body
        elif bk < 13:
            body = big_body(key, n)
        else:
            body = ("## Summary\r\n\r\nThis PR fixes %s in **%s**.\r\n\r\n"
                    "- [x] tests\r\n- [ ] docs\r\n\r\n```js\r\nconst a = \"<tag>\" && 'b';\r\n```\r\n"
                    "Closes #%d. Thanks 🙏 — 谢谢 — ñandú\ttab" % (thing, area, max(n - 1, 1)))
        if nul_text and h("nul") % 10 == 0:
            title = title + " NUL\u0000here"
            body = "before\u0000after " + body
        if surrogate_text and h("nul") % 10 == 1:
            title = title + " lone \ud800 high"
            body = body + " lone low \udc00 end"
        additions = h("add") % 2000 if h("add0") % 20 else 0
        deletions = h("del") % 800
        changed = 1 + h("files") % 60 if (additions or deletions) else 0
        num = self.full_database_id(n)
        return {
            "__typename": "PullRequest",
            "id": "PR_kwDO%s" % base64.b64encode(("%d:%d" % (self.database_id, n)).encode()).decode().rstrip("="),
            "fullDatabaseId": str(num),
            "number": n,
            "title": title,
            "body": body,
            "state": state,
            "isDraft": is_draft,
            "merged": state == "MERGED",
            "closed": state != "OPEN",
            "createdAt": iso(created),
            "updatedAt": iso(updated),
            "closedAt": closed_at,
            "mergedAt": merged_at,
            "additions": additions,
            "deletions": deletions,
            "changedFiles": changed,
            "baseRefName": base,
            "headRefName": head,
            "url": "https://github.com/%s/pull/%d" % (self.full_name, n),
            "permalink": "https://github.com/%s/pull/%d" % (self.full_name, n),
            "resourcePath": "/%s/pull/%d" % (self.full_name, n),
            "locked": False,
            "author": author,
            "_databaseId_overflow": num,
        }


def big_body(key, n):
    """~100 KB of markdown with multi-byte characters (the same for every n)."""
    return _big_body(key)


@functools.lru_cache(maxsize=64)
def _big_body(key):
    line = "Line %%05d of a very long description — ünïcödé ✓ 漢字 🎉 <b>&amp;</b> \"q\" \\ %s\r\n" % key
    parts = [line % i for i in range(900)]
    s = "".join(parts)
    return s[: 100_000]


# --------------------------------------------------------------------------
# Minimal GraphQL: lexer, parser, schema, validation, execution
# --------------------------------------------------------------------------

class GQLError(Exception):
    def __init__(self, message, line=None, column=None, **extra):
        super().__init__(message)
        self.err = {"message": message}
        if line is not None:
            self.err["locations"] = [{"line": line, "column": column}]
        self.err.update(extra)


_PUNCT = set("!$&()[]{}:=@|")
_NAME_RE = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_NUM_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_TOKNAMES = {"{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET",
             "]": "RBRACKET", ":": "COLON", "$": "VAR_SIGN", "!": "BANG", "=": "EQUALS",
             "@": "DIR_SIGN", "...": "ELLIPSIS", "|": "PIPE", "&": "AMP"}


def tokenize(src):
    toks = []
    i, n, line, ls = 0, len(src), 1, 0
    while i < n:
        c = src[i]
        if c in " \t,\ufeff":
            i += 1
            continue
        if c == "\n" or c == "\r":
            if c == "\r" and i + 1 < n and src[i + 1] == "\n":
                i += 1
            i += 1
            line += 1
            ls = i
            continue
        if c == "#":
            while i < n and src[i] not in "\r\n":
                i += 1
            continue
        col = i - ls + 1
        if src.startswith("...", i):
            toks.append(("P", "...", line, col))
            i += 3
        elif c in _PUNCT:
            toks.append(("P", c, line, col))
            i += 1
        elif c == "_" or c.isascii() and c.isalpha():
            m = _NAME_RE.match(src, i)
            toks.append(("NAME", m.group(0), line, col))
            i = m.end()
        elif c == "-" or c.isdigit():
            m = _NUM_RE.match(src, i)
            if not m:
                raise GQLError("Parse error on \"%s\" at [%d, %d]" % (c, line, col), line, col)
            text = m.group(0)
            toks.append(("FLOAT" if (m.group(2) or m.group(3)) else "INT", text, line, col))
            i = m.end()
        elif c == '"':
            if src.startswith('"""', i):
                j = i + 3
                buf = []
                while True:
                    if j >= n:
                        raise GQLError("Parse error: unterminated string at [%d, %d]" % (line, col), line, col)
                    if src.startswith('\\"""', j):
                        buf.append('"""')
                        j += 4
                    elif src.startswith('"""', j):
                        j += 3
                        break
                    else:
                        if src[j] == "\n":
                            line += 1
                            ls = j + 1
                        buf.append(src[j])
                        j += 1
                toks.append(("STRING", "".join(buf), line, col))
                i = j
            else:
                j = i + 1
                buf = []
                while True:
                    if j >= n or src[j] in "\r\n":
                        raise GQLError("Parse error: unterminated string at [%d, %d]" % (line, col), line, col)
                    ch = src[j]
                    if ch == '"':
                        j += 1
                        break
                    if ch == "\\":
                        e = src[j + 1:j + 2]
                        simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f",
                                  "n": "\n", "r": "\r", "t": "\t"}
                        if e in simple:
                            buf.append(simple[e])
                            j += 2
                        elif e == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", src[j + 2:j + 6] or ""):
                            buf.append(chr(int(src[j + 2:j + 6], 16)))
                            j += 6
                        else:
                            raise GQLError("Parse error: bad escape at [%d, %d]" % (line, col), line, col)
                    else:
                        buf.append(ch)
                        j += 1
                toks.append(("STRING", "".join(buf), line, col))
                i = j
        else:
            raise GQLError("Parse error on \"%s\" at [%d, %d]" % (c, line, col), line, col)
    toks.append(("EOF", "", line, i - ls + 1))
    return toks


class Field:
    __slots__ = ("alias", "name", "args", "directives", "selections", "line", "column")

    def __init__(self, alias, name, args, directives, selections, line, column):
        self.alias, self.name, self.args = alias, name, args
        self.directives, self.selections = directives, selections
        self.line, self.column = line, column

    @property
    def key(self):
        return self.alias or self.name


class InlineFragment:
    __slots__ = ("type_condition", "directives", "selections", "line", "column")

    def __init__(self, tc, directives, selections, line, column):
        self.type_condition, self.directives, self.selections = tc, directives, selections
        self.line, self.column = line, column


class FragmentSpread:
    __slots__ = ("name", "directives", "line", "column")

    def __init__(self, name, directives, line, column):
        self.name, self.directives, self.line, self.column = name, directives, line, column


class Parser:
    def __init__(self, src):
        self.toks = tokenize(src)
        self.i = 0

    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, t):
        kind, val, line, col = t
        shown = val if kind != "EOF" else "end of file"
        name = _TOKNAMES.get(val, kind if kind != "P" else val) if kind != "EOF" else "EOF"
        raise GQLError('Parse error on "%s" (%s) at [%d, %d]' % (shown, name, line, col), line, col)

    def expect(self, val):
        t = self.next()
        if t[0] != "P" or t[1] != val:
            self.fail(t)
        return t

    def is_p(self, val):
        t = self.peek()
        return t[0] == "P" and t[1] == val

    def name(self):
        t = self.next()
        if t[0] != "NAME":
            self.fail(t)
        return t[1]

    def document(self):
        ops, frags = [], {}
        while self.peek()[0] != "EOF":
            t = self.peek()
            if t[0] == "P" and t[1] == "{":
                ops.append({"type": "query", "name": None, "vars": [], "selections": self.selection_set(),
                            "line": t[2], "column": t[3]})
            elif t[0] == "NAME" and t[1] in ("query", "mutation", "subscription"):
                self.next()
                name = self.name() if self.peek()[0] == "NAME" else None
                var_defs = self.variable_definitions() if self.is_p("(") else []
                self.directives()
                ops.append({"type": t[1], "name": name, "vars": var_defs,
                            "selections": self.selection_set(), "line": t[2], "column": t[3]})
            elif t[0] == "NAME" and t[1] == "fragment":
                self.next()
                fname = self.name()
                on = self.name()
                if on != "on":
                    self.fail(self.toks[self.i - 1])
                tc = self.name()
                self.directives()
                frags[fname] = (tc, self.selection_set(), t[2], t[3])
            else:
                self.fail(t)
        if not ops:
            raise GQLError("Parse error: no operation in document")
        return ops, frags

    def variable_definitions(self):
        self.expect("(")
        out = []
        while not self.is_p(")"):
            t = self.expect("$")
            name = self.name()
            self.expect(":")
            typ = self.type_ref()
            default = None
            has_default = False
            if self.is_p("="):
                self.next()
                default = self.value(const=True)
                has_default = True
            self.directives()
            out.append({"name": name, "type": typ, "default": default, "has_default": has_default,
                        "line": t[2], "column": t[3]})
        self.next()
        if not out:
            self.fail(self.toks[self.i - 1])
        return out

    def type_ref(self):
        if self.is_p("["):
            self.next()
            inner = self.type_ref()
            self.expect("]")
            s = "[%s]" % inner
        else:
            s = self.name()
        if self.is_p("!"):
            self.next()
            s += "!"
        return s

    def selection_set(self):
        self.expect("{")
        sels = []
        while not self.is_p("}"):
            sels.append(self.selection())
        self.next()
        if not sels:
            self.fail(self.toks[self.i - 1])
        return sels

    def selection(self):
        t = self.peek()
        if t[0] == "P" and t[1] == "...":
            self.next()
            nt = self.peek()
            if nt[0] == "NAME" and nt[1] != "on":
                name = self.name()
                return FragmentSpread(name, self.directives(), t[2], t[3])
            tc = None
            if nt[0] == "NAME" and nt[1] == "on":
                self.next()
                tc = self.name()
            dirs = self.directives()
            return InlineFragment(tc, dirs, self.selection_set(), t[2], t[3])
        if t[0] != "NAME":
            self.fail(t)
        self.next()
        alias, name = None, t[1]
        if self.is_p(":"):
            self.next()
            alias, name = name, self.name()
        args = self.arguments() if self.is_p("(") else {}
        dirs = self.directives()
        sels = self.selection_set() if self.is_p("{") else None
        return Field(alias, name, args, dirs, sels, t[2], t[3])

    def arguments(self):
        self.expect("(")
        out = {}
        while not self.is_p(")"):
            name = self.name()
            self.expect(":")
            out[name] = self.value()
        self.next()
        return out

    def directives(self):
        out = []
        while self.is_p("@"):
            self.next()
            name = self.name()
            out.append((name, self.arguments() if self.is_p("(") else {}))
        return out

    def value(self, const=False):
        t = self.next()
        kind, val = t[0], t[1]
        if kind == "P" and val == "$" and not const:
            return ("var", self.name(), t[2], t[3])
        if kind == "INT":
            return ("lit", int(val))
        if kind == "FLOAT":
            return ("lit", float(val))
        if kind == "STRING":
            return ("lit", val)
        if kind == "NAME":
            if val in ("true", "false"):
                return ("lit", val == "true")
            if val == "null":
                return ("lit", None)
            return ("enum", val)
        if kind == "P" and val == "[":
            items = []
            while not self.is_p("]"):
                items.append(self.value(const))
            self.next()
            return ("list", items)
        if kind == "P" and val == "{":
            fields = {}
            while not self.is_p("}"):
                k = self.name()
                self.expect(":")
                fields[k] = self.value(const)
            self.next()
            return ("obj", fields)
        self.fail(t)


class Enum(str):
    """An enum value (from a literal, or a string variable for an enum type)."""


# Mini copy of GitHub's schema: type -> {field: (type, {arg: type})}
ACTOR_FIELDS = {"login": ("String!", {}), "avatarUrl": ("URI!", {"size": "Int"}),
                "url": ("URI!", {}), "resourcePath": ("URI!", {})}
SCHEMA = {
    "Query": {
        "rateLimit": ("RateLimit", {"dryRun": "Boolean"}),
        "repository": ("Repository", {"owner": "String!", "name": "String!", "followRenames": "Boolean"}),
    },
    "RateLimit": dict({f: ("Int!", {}) for f in ("cost", "remaining", "limit", "used", "nodeCount")},
                      resetAt=("DateTime!", {})),
    "Repository": {
        "databaseId": ("Int", {}), "id": ("ID!", {}), "name": ("String!", {}),
        "nameWithOwner": ("String!", {}), "url": ("URI!", {}), "isPrivate": ("Boolean!", {}),
        "pullRequests": ("PullRequestConnection!", {
            "first": "Int", "after": "String", "last": "Int", "before": "String",
            "orderBy": "IssueOrder", "states": "[PullRequestState!]", "labels": "[String!]",
            "baseRefName": "String", "headRefName": "String"}),
    },
    "PullRequestConnection": {"pageInfo": ("PageInfo!", {}), "nodes": ("[PullRequest]", {}),
                              "edges": ("[PullRequestEdge]", {}), "totalCount": ("Int!", {})},
    "PullRequestEdge": {"cursor": ("String!", {}), "node": ("PullRequest", {})},
    "PageInfo": {"hasNextPage": ("Boolean!", {}), "hasPreviousPage": ("Boolean!", {}),
                 "startCursor": ("String", {}), "endCursor": ("String", {})},
    "PullRequest": dict(
        {f: ("String!", {}) for f in ("title", "body", "baseRefName", "headRefName")},
        id=("ID!", {}), fullDatabaseId=("BigInt", {}), databaseId=("Int", {}),
        number=("Int!", {}), state=("PullRequestState!", {}), isDraft=("Boolean!", {}),
        merged=("Boolean!", {}), closed=("Boolean!", {}), locked=("Boolean!", {}),
        createdAt=("DateTime!", {}), updatedAt=("DateTime!", {}), closedAt=("DateTime", {}),
        mergedAt=("DateTime", {}), additions=("Int!", {}), deletions=("Int!", {}),
        changedFiles=("Int!", {}), url=("URI!", {}), permalink=("URI!", {}),
        resourcePath=("URI!", {}), author=("Actor", {})),
    "Actor": dict(ACTOR_FIELDS),
    "User": dict(ACTOR_FIELDS, databaseId=("Int", {}), id=("ID!", {}), name=("String", {})),
    "Bot": dict(ACTOR_FIELDS, databaseId=("Int", {}), id=("ID!", {})),
    "Organization": dict(ACTOR_FIELDS, databaseId=("Int", {}), id=("ID!", {}), name=("String", {})),
    "Mannequin": dict(ACTOR_FIELDS, databaseId=("Int", {}), id=("ID!", {})),
    "EnterpriseUserAccount": dict(ACTOR_FIELDS, id=("ID!", {}), name=("String", {})),
}
INTERFACES = {"Actor": {"User", "Bot", "Organization", "Mannequin", "EnterpriseUserAccount"}}
SCALARS = {"Int", "Float", "String", "Boolean", "ID", "DateTime", "URI", "BigInt"}
ENUMS = {"PullRequestState": {"OPEN", "CLOSED", "MERGED"},
         "IssueOrderField": {"CREATED_AT", "UPDATED_AT", "COMMENTS"},
         "OrderDirection": {"ASC", "DESC"}}
INPUTS = {"IssueOrder": {"field": "IssueOrderField!", "direction": "OrderDirection!"}}
DEPRECATED = {("PullRequest", "databaseId"):
              "`databaseId` will be removed because it does not support 64-bit signed integer "
              "identifiers. Use `fullDatabaseId` instead. Removal on 2024-07-01 UTC."}


def base_type(t):
    return t.strip("[]!")


def coerce(value, typ, where):
    """Coerce a JSON variable value (or resolved literal) to typ; raise ValueError."""
    if typ.endswith("!"):
        if value is None:
            raise ValueError("Expected value to not be null")
        return coerce(value, typ[:-1], where)
    if value is None:
        return None
    if typ.startswith("["):
        inner = typ[1:-1]
        if not isinstance(value, list):
            value = [value]
        return [coerce(v, inner, where) for v in value]
    if typ == "Int":
        if isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31:
            raise ValueError("Could not coerce value %s to Int" % json.dumps(value))
        return value
    if typ == "Float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("Could not coerce value %s to Float" % json.dumps(value))
        return float(value)
    if typ in ("String", "DateTime", "URI", "BigInt"):
        if not isinstance(value, str) or isinstance(value, Enum):
            raise ValueError("Could not coerce value %s to %s" % (json.dumps(value), typ))
        return value
    if typ == "ID":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError("Could not coerce value %s to ID" % json.dumps(value))
        return str(value)
    if typ == "Boolean":
        if not isinstance(value, bool):
            raise ValueError("Could not coerce value %s to Boolean" % json.dumps(value))
        return value
    if typ in ENUMS:
        if not isinstance(value, str) or value not in ENUMS[typ]:
            raise ValueError("Expected %s to be one of: %s" % (json.dumps(value), ", ".join(sorted(ENUMS[typ]))))
        return Enum(value)
    if typ in INPUTS:
        if not isinstance(value, dict):
            raise ValueError("Expected %s to be a key-value object" % json.dumps(value))
        spec = INPUTS[typ]
        out = {}
        for k in value:
            if k not in spec:
                raise ValueError("Field is not defined on %s: %s" % (typ, k))
        for k, t in spec.items():
            out[k] = coerce(value.get(k), t, where)
        return out
    raise ValueError("Unknown type %s" % typ)


class Request:
    """One parsed+validated GraphQL request."""

    def __init__(self, query, variables, operation_name):
        self.errors = []
        self.repo_arg = None  # (owner, name) of the first repository field
        self.first = None
        self.after = None
        if not isinstance(query, str) or not query.strip():
            raise GQLError("A query attribute must be specified and must be a string.")
        ops, self.frags = Parser(query).document()
        if operation_name:
            ops = [o for o in ops if o["name"] == operation_name]
            if not ops:
                raise GQLError('No operation named "%s"' % operation_name)
        elif len(ops) > 1:
            raise GQLError("An operation name is required")
        self.op = ops[0]
        opname = "%s %s" % (self.op["type"], self.op["name"]) if self.op["name"] else self.op["type"]
        self.opname = opname
        if self.op["type"] != "query":
            raise GQLError("Schema is not configured for %ss (simulator serves queries only)" % self.op["type"])
        # variables
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise GQLError("Variables must be an object")
        self.var_defs = {v["name"]: v for v in self.op["vars"]}
        self.vars = {}
        for v in self.op["vars"]:
            if base_type(v["type"]) not in SCALARS | set(ENUMS) | set(INPUTS):
                self.errors.append({"message": "%s isn't a defined input type (on $%s)" % (base_type(v["type"]), v["name"]),
                                    "locations": [{"line": v["line"], "column": v["column"]}],
                                    "path": [opname],
                                    "extensions": {"code": "variableRequiresValidType",
                                                   "typeName": base_type(v["type"]), "variableName": v["name"]}})
                continue
            provided = v["name"] in variables
            raw = variables.get(v["name"]) if provided else (self.resolve_const(v["default"]) if v["has_default"] else None)
            try:
                self.vars[v["name"]] = coerce(raw, v["type"], v["name"])
            except ValueError as e:
                self.errors.append({"message": "Variable $%s of type %s was provided invalid value" % (v["name"], v["type"]),
                                    "locations": [{"line": v["line"], "column": v["column"]}],
                                    "extensions": {"value": raw, "problems": [{"path": [], "explanation": str(e)}]}})
        if self.errors:
            return
        self.used_vars = set()
        self.validate_selections("Query", self.op["selections"], [opname], set())
        for name, v in self.var_defs.items():
            if name not in self.used_vars:
                self.errors.append({"message": "Variable $%s is declared by %s but not used" % (name, self.op["name"] or "anonymous query"),
                                    "locations": [{"line": v["line"], "column": v["column"]}],
                                    "path": [opname],
                                    "extensions": {"code": "variableNotUsed", "variableName": name}})

    def resolve_const(self, node):
        return self.resolve_value(node, None)

    def resolve_value(self, node, typ):
        kind = node[0]
        if kind == "var":
            return self.vars.get(node[1])
        if kind == "lit":
            return node[1]
        if kind == "enum":
            return Enum(node[1])
        if kind == "list":
            inner = typ[1:-1] if typ and typ.rstrip("!").startswith("[") else None
            if inner:
                inner = typ.rstrip("!")[1:-1]
            return [self.resolve_value(x, inner) for x in node[1]]
        if kind == "obj":
            spec = INPUTS.get(base_type(typ or ""), {})
            return {k: self.resolve_value(v, spec.get(k)) for k, v in node[1].items()}
        raise AssertionError(node)

    def check_var_usage(self, node, typ, argname, field):
        """Validate variable references inside an argument value."""
        if node[0] == "var":
            name = node[1]
            d = self.var_defs.get(name)
            if d is None:
                self.errors.append({"message": "Variable $%s is used by %s but not declared" % (name, self.op["name"] or "anonymous query"),
                                    "locations": [{"line": node[2], "column": node[3]}],
                                    "path": [self.opname],
                                    "extensions": {"code": "variableNotDefined", "variableName": name}})
                return False
            self.used_vars.add(name)
            dt = d["type"]
            if base_type(dt) != base_type(typ) or dt.rstrip("!").count("[") != typ.rstrip("!").count("["):
                self.errors.append({"message": "Type mismatch on variable $%s and argument %s (%s / %s)" % (name, argname, dt, typ),
                                    "locations": [{"line": node[2], "column": node[3]}],
                                    "path": [self.opname],
                                    "extensions": {"code": "variableMismatch", "variableName": name,
                                                   "typeName": dt, "argumentName": argname, "errorMessage": "Type mismatch"}})
                return False
            if typ.endswith("!") and not dt.endswith("!") and not d["has_default"]:
                self.errors.append({"message": "Nullability mismatch on variable $%s and argument %s (%s / %s)" % (name, argname, dt, typ),
                                    "locations": [{"line": node[2], "column": node[3]}],
                                    "path": [self.opname],
                                    "extensions": {"code": "variableMismatch", "variableName": name,
                                                   "typeName": dt, "argumentName": argname, "errorMessage": "Nullability mismatch"}})
                return False
            return True
        ok = True
        if node[0] == "list":
            for x in node[1]:
                ok = self.check_var_usage(x, typ.rstrip("!")[1:-1] if typ.rstrip("!").startswith("[") else typ, argname, field) and ok
        elif node[0] == "obj":
            spec = INPUTS.get(base_type(typ), {})
            for k, v in node[1].items():
                ok = self.check_var_usage(v, spec.get(k, "String"), argname, field) and ok
        return ok

    def field_args(self, parent, f, path):
        """Validate and resolve a field's arguments -> dict, or None on error."""
        _, argdefs = SCHEMA[parent][f.name]
        out = {}
        ok = True
        for a, node in f.args.items():
            if a not in argdefs:
                self.errors.append({"message": "Field '%s' doesn't accept argument '%s'" % (f.name, a),
                                    "locations": [{"line": f.line, "column": f.column}], "path": path + [a],
                                    "extensions": {"code": "argumentNotAccepted", "name": f.name,
                                                   "typeName": "Field", "argumentName": a}})
                ok = False
                continue
            if not self.check_var_usage(node, argdefs[a], a, f.name):
                ok = False
                continue
            val = self.resolve_value(node, argdefs[a])
            try:
                out[a] = coerce(val, argdefs[a], a)
            except ValueError:
                shown = "$" + node[1] if node[0] == "var" else json.dumps(val)
                self.errors.append({"message": "Argument '%s' on Field '%s' has an invalid value (%s). Expected type '%s'." % (a, f.name, shown, argdefs[a]),
                                    "locations": [{"line": f.line, "column": f.column}], "path": path + [a],
                                    "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "Field",
                                                   "argumentName": a}})
                ok = False
        missing = [a for a, t in argdefs.items() if t.endswith("!") and a not in f.args]
        if missing:
            self.errors.append({"message": "Field '%s' is missing required arguments: %s" % (f.name, ", ".join(missing)),
                                "locations": [{"line": f.line, "column": f.column}], "path": path,
                                "extensions": {"code": "missingRequiredArguments", "className": "Field",
                                               "name": f.name, "arguments": ", ".join(missing)}})
            ok = False
        return out if ok else None

    def validate_selections(self, parent, selections, path, seen_frags):
        for s in selections:
            if isinstance(s, FragmentSpread):
                if s.name not in self.frags:
                    self.errors.append({"message": "Fragment %s was used, but not defined" % s.name,
                                        "locations": [{"line": s.line, "column": s.column}], "path": path + ["... %s" % s.name],
                                        "extensions": {"code": "undefinedFragment", "fragmentName": s.name}})
                    continue
                if s.name in seen_frags:
                    self.errors.append({"message": "Fragment %s contains an infinite loop" % s.name,
                                        "locations": [{"line": s.line, "column": s.column}]})
                    continue
                tc, sels, _, _ = self.frags[s.name]
                self.validate_fragment_type(parent, tc, s, path)
                self.validate_selections(tc if tc in SCHEMA else parent, sels, path + ["... %s" % s.name], seen_frags | {s.name})
                continue
            if isinstance(s, InlineFragment):
                tc = s.type_condition or parent
                if self.validate_fragment_type(parent, tc, s, path):
                    self.validate_selections(tc, s.selections, path + ["... on %s" % tc], seen_frags)
                continue
            f = s
            fpath = path + [f.key]
            if f.name == "__typename":
                continue
            if f.name not in SCHEMA.get(parent, {}):
                self.errors.append({"message": "Field '%s' doesn't exist on type '%s'" % (f.name, parent),
                                    "locations": [{"line": f.line, "column": f.column}], "path": fpath,
                                    "extensions": {"code": "undefinedField", "typeName": parent, "fieldName": f.name}})
                continue
            ftype, _ = SCHEMA[parent][f.name]
            bt = base_type(ftype)
            args = self.field_args(parent, f, fpath)
            if (parent, f.name) in DEPRECATED:
                pass  # GitHub serves deprecated fields; resolved with an error below
            composite = bt in SCHEMA
            if composite and not f.selections:
                self.errors.append({"message": "Field must have selections (field '%s' returns %s but has no selections. Did you mean '%s { ... }'?)" % (f.name, ftype, f.name),
                                    "locations": [{"line": f.line, "column": f.column}], "path": fpath,
                                    "extensions": {"code": "selectionMismatch", "nodeName": "field '%s'" % f.name, "typeName": ftype}})
                continue
            if not composite and f.selections:
                self.errors.append({"message": "Selections can't be made on scalars (field '%s' returns %s but has selections [%s])" % (f.name, ftype, ", ".join(x.name for x in f.selections if isinstance(x, Field))),
                                    "locations": [{"line": f.line, "column": f.column}], "path": fpath,
                                    "extensions": {"code": "selectionMismatch", "nodeName": "field '%s'" % f.name, "typeName": ftype}})
                continue
            if args is not None:
                self.check_pagination(parent, f, args, fpath)
            if composite:
                self.validate_selections(bt, f.selections, fpath, seen_frags)

    def validate_fragment_type(self, parent, tc, node, path):
        if tc not in SCHEMA:
            self.errors.append({"message": "No such type %s, so it can't be a fragment condition" % tc,
                                "locations": [{"line": node.line, "column": node.column}], "path": path,
                                "extensions": {"code": "undefinedType", "typeName": tc}})
            return False
        possible = lambda t: INTERFACES.get(t, {t})  # noqa: E731
        if not (possible(parent) & possible(tc)):
            self.errors.append({"message": "Fragment on %s can't be spread inside %s" % (tc, parent),
                                "locations": [{"line": node.line, "column": node.column}], "path": path,
                                "extensions": {"code": "cannotSpreadFragment", "typeName": tc, "parentName": parent}})
            return False
        return True

    def check_pagination(self, parent, f, args, fpath):
        if parent == "Query" and f.name == "repository" and self.repo_arg is None:
            self.repo_arg = (args.get("owner"), args.get("name"))
        if parent != "Repository" or f.name != "pullRequests":
            return
        loc = {"locations": [{"line": f.line, "column": f.column}], "path": fpath}
        first, last = args.get("first"), args.get("last")
        self.first = first
        self.after = args.get("after")
        if last is not None or args.get("before") is not None:
            self.errors.append(dict(loc, message="github_sim: `last`/`before` are not supported by the simulator (the worker pages with `first`/`after`)."))
            return
        if first is None:
            self.errors.append(dict(loc, type="MISSING_PAGINATION_BOUNDARIES",
                                    message="You must provide a `first` or `last` value to properly paginate the `pullRequests` connection."))
        elif first < 0:
            self.errors.append(dict(loc, type="INVALID_PAGINATION",
                                    message="`first` on the `pullRequests` connection cannot be less than zero."))
        elif first < 1:
            self.errors.append(dict(loc, type="INVALID_PAGINATION",
                                    message="github_sim: requesting %d records on the `pullRequests` connection is rejected (first must be 1..100)." % first))
        elif first > MAX_PAGE:
            self.errors.append(dict(loc, type="EXCESSIVE_PAGINATION",
                                    message="Requesting %d records on the `pullRequests` connection exceeds the `first` limit of 100 records." % first))
        ob = args.get("orderBy")
        if ob is None or ob.get("field") != "CREATED_AT" or ob.get("direction") != "DESC":
            self.errors.append(dict(loc, message="github_sim: only orderBy: {field: CREATED_AT, direction: DESC} is supported by the simulator."))
        for a in ("states", "labels", "baseRefName", "headRefName"):
            if args.get(a) is not None:
                self.errors.append(dict(loc, message="github_sim: argument `%s` is not supported by the simulator." % a))

    # ---------------------------------------------------------------- execution
    def directives_allow(self, dirs):
        for name, args in dirs:
            if name in ("include", "skip") and "if" in args:
                v = bool(self.resolve_value(args["if"], "Boolean!"))
                if (name == "include" and not v) or (name == "skip" and v):
                    return False
        return True

    def collect(self, runtime, selections, out):
        for s in selections:
            if not self.directives_allow(s.directives):
                continue
            if isinstance(s, Field):
                out.setdefault(s.key, []).append(s)
            else:
                if isinstance(s, FragmentSpread):
                    tc, sels = self.frags[s.name][0], self.frags[s.name][1]
                else:
                    tc, sels = s.type_condition, s.selections
                if tc is None or tc == runtime or runtime in INTERFACES.get(tc, ()):
                    self.collect(runtime, sels, out)
        return out


class _Null(Exception):
    pass


# rateLimit fields deferred by Executor(defer_ratelimit=True) are stood in
# for by "<this>:<i>" strings until Prepared.finish puts in the real values
# (nothing else in an answer can contain this random string).
_DEFER_TOKEN = "ghsim:deferred-rateLimit:%s" % binascii.hexlify(os.urandom(16)).decode()
# fields whose resolver is not a plain lookup in the value (see resolve)
_SPECIAL_SCALARS = {("PullRequest", "databaseId")}


class Executor:
    def __init__(self, sim, req, ratelimit, defer_ratelimit=False, scope=None):
        self.sim, self.req, self.rl = sim, req, ratelimit
        self.scope = scope  # lower-cased owners an installation may see; None: all
        self.errors = []
        self.defer = defer_ratelimit
        self.deferred = []  # (token, ftype, sub, path) of each deferred rateLimit field
        self._plans = {}

    def run(self):
        try:
            data = self.object("Query", {}, self.req.op["selections"], [])
        except _Null:
            data = None
        return data, self.errors

    def plan(self, runtime, selections):
        """The collected fields of selections on runtime, once per request:
        [(key, field or None for __typename, type, sub-selections, plain)];
        plain: a scalar read straight from the value (no arguments, no errors)."""
        k = (runtime, id(selections))
        hit = self._plans.get(k)
        if hit is not None and hit[0] is selections:
            return hit[1]
        p = []
        for key, nodes in self.req.collect(runtime, selections, {}).items():
            f = nodes[0]
            if f.name == "__typename":
                p.append((key, None, None, None, False))
                continue
            ftype = SCHEMA[runtime][f.name][0]
            sub = [s for n in nodes for s in (n.selections or [])]
            plain = (not ftype.startswith("[") and ftype.rstrip("!") not in SCHEMA
                     and (runtime, f.name) not in _SPECIAL_SCALARS)
            p.append((key, f, ftype, sub, plain))
        self._plans[k] = (selections, p)  # keeps selections alive: its id stays unique
        return p

    def object(self, typ, value, selections, path):
        runtime = value.get("__typename", typ) if typ in INTERFACES else typ
        out = {}
        for key, f, ftype, sub, plain in self.plan(runtime, selections):
            if f is None:
                out[key] = runtime
            elif plain:  # == complete(ftype, resolve(...)) for these fields
                v = value.get(f.name)
                if v is None and ftype[-1] == "!":
                    raise _Null()
                out[key] = v
            elif self.defer and runtime == "Query" and f.name == "rateLimit":
                token = "%s:%d" % (_DEFER_TOKEN, len(self.deferred))
                self.deferred.append((token, ftype, sub, path + [key]))
                out[key] = token
            else:
                raw = self.resolve(runtime, value, f, path + [key])
                out[key] = self.complete(ftype, raw, sub, path + [key])
        return out

    def complete(self, ftype, raw, sub, path):
        if ftype.endswith("!"):
            v = self.complete_nullable(ftype[:-1], raw, sub, path)
            if v is None:
                raise _Null()
            return v
        try:
            return self.complete_nullable(ftype, raw, sub, path)
        except _Null:
            return None

    def complete_nullable(self, ftype, raw, sub, path):
        if raw is None:
            return None
        if ftype.startswith("["):
            return [self.complete(ftype[1:-1], item, sub, path + [i]) for i, item in enumerate(raw)]
        if ftype in SCHEMA:
            return self.object(ftype, raw, sub, path)
        return raw

    def resolve(self, typ, value, f, path):
        args = self.req.field_args(typ, f, path) or {}
        loc = [{"line": f.line, "column": f.column}]
        if typ == "Query" and f.name == "rateLimit":
            return self.rl
        if typ == "Query" and f.name == "repository":
            owner, name = args["owner"], args["name"]
            visible = self.scope is None or (isinstance(owner, str) and owner.lower() in self.scope)
            repo = self.sim.lookup(owner, name) if visible else None
            if repo is None:
                self.errors.append({"type": "NOT_FOUND", "path": path, "locations": loc,
                                    "message": "Could not resolve to a Repository with the name '%s/%s'." % (owner, name)})
                return None
            return {"__typename": "Repository", "_repo": repo, "databaseId": repo.database_id,
                    "id": "R_kgDO%s" % base64.b64encode(str(repo.database_id).encode()).decode().rstrip("="),
                    "name": repo.name, "nameWithOwner": repo.full_name,
                    "url": "https://github.com/%s" % repo.full_name, "isPrivate": False}
        if typ == "Repository" and f.name == "pullRequests":
            return self.pull_requests(value["_repo"], args, path, loc)
        if typ == "PullRequest" and f.name == "databaseId":
            self.errors.append({"message": "Int cannot represent non 32-bit signed integer value: %d" % value["_databaseId_overflow"],
                                "path": path, "locations": loc})
            return None
        return value.get(f.name)

    def pull_requests(self, repo, args, path, loc):
        first, after = args.get("first"), args.get("after")
        top = repo.total
        if after is not None:
            n = repo.decode_cursor(after)
            if n is None:
                self.errors.append({"type": "INVALID_CURSOR_ARGUMENTS", "path": path, "locations": loc,
                                    "message": "`%s` does not appear to be a valid cursor." % after})
                return None
            top = n - 1
        numbers = list(range(top, max(top - first, 0), -1))
        nodes = [repo.pr(n, self.sim.nul_text, self.sim.surrogate_text) for n in numbers]
        last = numbers[-1] if numbers else None
        return {
            "totalCount": repo.total,
            "pageInfo": {"hasNextPage": bool(numbers) and last > 1,
                         "hasPreviousPage": after is not None and top < repo.total,
                         "startCursor": repo.cursor(numbers[0]) if numbers else None,
                         "endCursor": repo.cursor(last) if numbers else None},
            "nodes": nodes,
            "edges": [{"cursor": repo.cursor(p["number"]), "node": p} for p in nodes],
        }


def error_note(errs):
    """The error type logged for an answer's errors."""
    e = errs[0] if errs else {}
    return e.get("type") or (e.get("extensions") or {}).get("code") or "ERROR"


class Prepared:
    """A valid request executed and encoded ahead of its rate-limit
    accounting: the body with a stand-in for each rateLimit field."""
    __slots__ = ("source", "req", "body", "deferred", "err", "flags")

    def __init__(self, source, req, body, deferred, err, flags):
        self.source = source  # (query, variables, operationName, scope)
        self.req, self.body, self.deferred, self.err, self.flags = req, body, deferred, err, flags

    def finish(self, sim, ratelimit):
        """-> the answer's bytes with this request's rateLimit values."""
        body = self.body
        for token, ftype, sub, path in self.deferred:
            value = Executor(sim, self.req, ratelimit).complete(ftype, ratelimit, sub, path)
            body = body.replace(token, github_json(value), 1)
        return body


# --------------------------------------------------------------------------
# Accounts, and a GitHub App's JSON web tokens (RS256, pure Python)
# --------------------------------------------------------------------------

class Account:
    """Whom a request is answered as: a PAT user (key: its login), an App
    installation ("installation/<id>") or the App itself, for the requests
    made with its JWT ("app/<id>"). Everything here is guarded by sim.lock."""

    def __init__(self, key, login, kind, uid):
        self.key = key
        self.login = login
        self.kind = kind  # "user", "installation" or "app"
        self.uid = uid  # its user, installation or App id
        self.window_start = time.time()  # primary (GraphQL) budget window
        self.used = 0
        self.core_start = self.window_start  # REST core budget window
        self.core_used = 0
        self.points_seen = collections.deque()  # time.monotonic() of each secondary point, last 60 s
        self.in_flight = 0
        self.reset_counters()

    def reset_counters(self):
        self.requests = self.points = self.rest = 0
        self.rate_limited = self.secondary = 0
        self.max_in_flight = self.in_flight
        self.max_points_per_minute = 0

    def rate_limit_subject(self):
        """As GitHub's "API rate limit exceeded for ..." names the account."""
        return "%s ID %d" % ("installation" if self.kind == "installation" else "user", self.uid)


def user_id(login):
    """A PAT account's stable user id (the default account is user ID 1, as
    the RATE_LIMITED message has always said)."""
    if login == DEFAULT_LOGIN:
        return 1
    return 10_000_000 + _h("account-id", login.lower()) % 90_000_000


def _der(data, i, tag):
    """The DER element with this tag at data[i]: -> (content start, end)."""
    if i + 2 > len(data) or data[i] != tag:
        raise ValueError("publicKeyPem: not the DER structure of an RSA public key")
    n, i = data[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 4 or i + k > len(data):
            raise ValueError("publicKeyPem: bad DER length")
        n, i = int.from_bytes(data[i:i + k], "big"), i + k
    if i + n > len(data):
        raise ValueError("publicKeyPem: truncated DER")
    return i, i + n


_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_PEM_RE = re.compile(r"-----BEGIN (RSA )?PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END \1?PUBLIC KEY-----")


def rsa_public_key(pem):
    """An RSA public key's (n, e) from its PEM: a SubjectPublicKeyInfo
    ("BEGIN PUBLIC KEY", as openssl rsa -pubout writes it) or PKCS#1
    ("BEGIN RSA PUBLIC KEY"). Raises ValueError."""
    m = _PEM_RE.search(pem)
    if not m:
        raise ValueError("publicKeyPem: no PEM public key (BEGIN PUBLIC KEY) found")
    try:
        der = base64.b64decode("".join(m.group(2).split()), validate=True)
    except binascii.Error:
        raise ValueError("publicKeyPem: bad base64")
    if not m.group(1):
        # SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID, params }, BIT STRING { RSAPublicKey } }
        s, _ = _der(der, 0, 0x30)
        a, a_end = _der(der, s, 0x30)
        o, o_end = _der(der, a, 0x06)
        if der[o:o_end] != _RSA_OID:
            raise ValueError("publicKeyPem: not an RSA key (only RSA keys sign GitHub App JWTs)")
        b, b_end = _der(der, a_end, 0x03)
        if b == b_end or der[b] != 0:
            raise ValueError("publicKeyPem: bad BIT STRING")
        der = der[b + 1:b_end]
    # RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }
    s, _ = _der(der, 0, 0x30)
    n0, n1 = _der(der, s, 0x02)
    e0, e1 = _der(der, n1, 0x02)
    n, e = int.from_bytes(der[n0:n1], "big"), int.from_bytes(der[e0:e1], "big")
    if n.bit_length() < 1024 or e < 3 or e % 2 == 0:
        raise ValueError("publicKeyPem: not a usable RSA key (want >= 1024 bits, odd e)")
    return n, e


def rs256_verify(key, signed, sig):
    """RSASSA-PKCS1-v1_5 with SHA-256: whether sig signs the bytes signed.
    The same work for any signature of the key's length: one pow, then a
    constant-time comparison with the expected EMSA-PKCS1-v1_5 encoding."""
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    em = pow(s, e, n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(signed).digest()
    want = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, want) and s < n


def _b64url(part):
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_jwt(app, jwt, now):
    """None if jwt authenticates as the App (a dict of Sim.configure_app, or
    None when there is none), else GitHub's message for the 401."""
    try:
        h64, p64, s64 = jwt.split(".")
        header, claims = json.loads(_b64url(h64)), json.loads(_b64url(p64))
        sig = _b64url(s64)
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise ValueError("not an RS256 JWT")
    except (ValueError, binascii.Error):  # UnicodeError and JSON errors are ValueErrors
        return JWT_UNDECODABLE
    iss = claims.get("iss")
    if isinstance(iss, str) and re.fullmatch(r"[0-9]{1,18}", iss):
        iss = int(iss)
    if not isinstance(iss, int) or isinstance(iss, bool):
        return JWT_ISS
    # another App's id: GitHub cannot find the key, and says so this way
    if app is None or iss != app["appId"]:
        return JWT_UNDECODABLE
    if not rs256_verify(app["key"], ("%s.%s" % (h64, p64)).encode("ascii"), sig):
        return JWT_UNDECODABLE
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _is_number(iat) or iat > now + 60:
        return JWT_IAT
    if not _is_number(exp) or exp <= now:
        return JWT_EXPIRED
    if exp - iat > 600:
        return JWT_TOO_LONG
    return None


def _positive_int(v, what):
    if isinstance(v, str) and re.fullmatch(r"[0-9]{1,18}", v):
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError("%s: want a positive integer, got %s" % (what, json.dumps(v)))
    return v


# --------------------------------------------------------------------------
# Simulator state
# --------------------------------------------------------------------------

class Sim:
    def __init__(self, opts):
        self.lock = threading.Lock()
        self.start = int(time.time())
        self.t0 = time.time()
        self.latency_ms = opts.latency_ms
        self.budget = opts.budget  # every account's primary budget ...
        self.reset_seconds = opts.reset_seconds  # ... per this many seconds
        self.secondary_ppm = opts.secondary_points_per_minute  # 0: no limit
        self.max_concurrent = opts.max_concurrent  # 0: no limit
        self.token = opts.token  # None: any token is the default account's
        self.nul_text = opts.nul_text
        self.surrogate_text = opts.surrogate_text
        # accounts by key (see Account); tokens: PATs -> account key,
        # installation tokens -> (installation id, expiry epoch)
        self.default = Account(DEFAULT_LOGIN, DEFAULT_LOGIN, "user", user_id(DEFAULT_LOGIN))
        self.accounts = {DEFAULT_LOGIN: self.default}
        self.pat_tokens = {opts.token: DEFAULT_LOGIN} if opts.token else {}
        self.installation_tokens = {}
        self.revoked = set()
        self.app = None  # see configure_app
        self.faults = []
        self.repos = {}
        self.log_requests = []
        self.req_counter = 0
        for name, (k, m) in BUILTIN_REPOS.items():
            self.repos[name.lower()] = Repo(name, k, m, self.start)
        for spec in opts.repo or []:
            name, prof = spec.rsplit("=", 1)
            k, m = prof.split(":")
            if name.count("/") != 1:
                raise SystemExit("--repo wants owner/name=IN:OLDER, got %r" % spec)
            self.repos[name.lower()] = Repo(name, int(k), int(m), self.start)
        # answers of valid requests, executed and encoded (see prepare)
        self.cache_lock = threading.Lock()
        self.cache = collections.OrderedDict()
        self.cache_bytes = 0
        self.cache_hits = 0
        self.reset_stats()

    def prepare(self, query, variables, operation_name, scope=None):
        """Parse, validate, execute and encode a request: -> (Request, Prepared),
        or (Request, None) if it has validation errors; raises GQLError.
        scope: the lower-cased repository owners an installation may see
        (a frozenset), None for all.

        The answer to a valid request depends on nothing but the request, the
        scope and the text options (the data is deterministic and a
        repository, once known, stays), so it is cached (least recently used
        first out, up to CACHE_BYTES of bodies); rateLimit is left out and
        filled in for each request by Prepared.finish."""
        flags = (self.nul_text, self.surrogate_text)
        key = json.dumps([query, variables, operation_name, flags,
                          None if scope is None else sorted(scope)])
        with self.cache_lock:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache.move_to_end(key)
                self.cache_hits += 1
                return hit.req, hit
        req = Request(query, variables, operation_name)
        if req.errors:
            return req, None
        ex = Executor(self, req, None, defer_ratelimit=True, scope=scope)
        data, errors = ex.run()
        out = {"data": data}
        if errors:
            out["errors"] = errors
        prepared = Prepared((query, variables, operation_name, scope), req, github_json(out),
                            [(github_json(t), ft, sub, path) for t, ft, sub, path in ex.deferred],
                            error_note(errors) if errors else None, flags)
        with self.cache_lock:
            old = self.cache.pop(key, None)
            if old is not None:
                self.cache_bytes -= len(old.body)
            self.cache[key] = prepared
            self.cache_bytes += len(prepared.body)
            while self.cache_bytes > CACHE_BYTES and len(self.cache) > 1:
                _, gone = self.cache.popitem(last=False)
                self.cache_bytes -= len(gone.body)
        return req, prepared

    def reset_stats(self):
        self.stats_requests = 0
        self.stats_points = 0
        self.stats_unauthorized = 0
        self.stats_secondary = 0
        self.rest_counts = {"user": 0, "installation": 0, "access_tokens": 0}
        self.by_repo = {}
        self.log_requests = []
        self.log_rest = []
        for acc in self.accounts.values():
            acc.reset_counters()

    def lookup(self, owner, name):
        if not isinstance(owner, str) or not isinstance(name, str) or not owner or not name:
            return None
        key = ("%s/%s" % (owner, name)).lower()
        with self.lock:
            r = self.repos.get(key)
            if r is None:
                m = SIM_OWNER_RE.match(owner)
                if m and re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
                    r = Repo("%s/%s" % (owner, name), int(m.group(1)), int(m.group(2)), self.start)
                    self.repos[key] = r
            return r

    # an account's primary rate limit window (call with lock held; the
    # account defaults to the default one)
    def _roll(self, acc=None):
        acc = acc or self.default
        now = time.time()
        if self.reset_seconds > 0 and now >= acc.window_start + self.reset_seconds:
            k = int((now - acc.window_start) // self.reset_seconds)
            acc.window_start += k * self.reset_seconds
            acc.used = 0

    def _reset_epoch(self, acc=None):
        return int(math.ceil((acc or self.default).window_start + self.reset_seconds))

    def rl_headers(self, remaining=None, acc=None):
        acc = acc or self.default
        rem = max(self.budget - acc.used, 0) if remaining is None else remaining
        return {"x-ratelimit-limit": str(self.budget), "x-ratelimit-remaining": str(rem),
                "x-ratelimit-used": str(self.budget - rem), "x-ratelimit-reset": str(self._reset_epoch(acc)),
                "x-ratelimit-resource": "graphql"}

    def core_headers(self, acc, charge=False):
        """The REST core rate limit headers of acc (None: unauthenticated,
        GitHub's 60 an hour); charge: count this request (lock held)."""
        if acc is None:
            return {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "60", "x-ratelimit-used": "0",
                    "x-ratelimit-reset": str(int(time.time()) + CORE_RESET), "x-ratelimit-resource": "core"}
        now = time.time()
        if now >= acc.core_start + CORE_RESET:
            acc.core_start += (now - acc.core_start) // CORE_RESET * CORE_RESET
            acc.core_used = 0
        if charge:
            acc.core_used += 1
        rem = max(CORE_LIMIT - acc.core_used, 0)
        return {"x-ratelimit-limit": str(CORE_LIMIT), "x-ratelimit-remaining": str(rem),
                "x-ratelimit-used": str(CORE_LIMIT - rem),
                "x-ratelimit-reset": str(int(math.ceil(acc.core_start + CORE_RESET))),
                "x-ratelimit-resource": "core"}

    def account_stats(self, acc):
        self._roll(acc)
        return {"login": acc.login, "type": acc.kind, "requests": acc.requests, "points": acc.points,
                "remaining": max(self.budget - acc.used, 0), "budget": self.budget,
                "resetAt": iso(self._reset_epoch(acc)), "rateLimited": acc.rate_limited,
                "secondary": acc.secondary, "rest": acc.rest, "inFlight": acc.in_flight,
                "maxInFlight": acc.max_in_flight, "maxPointsPerMinute": acc.max_points_per_minute}

    # ------------------------------------------------ authentication (lock held)
    def authenticate(self, token):
        """The Account a token (PAT or installation token) is, or None: 401."""
        if not token or token in self.revoked:
            return None
        it = self.installation_tokens.get(token)
        if it is not None:
            inst, expires = it
            if time.time() >= expires or self.app is None or inst not in self.app["installations"]:
                return None
            return self.accounts["installation/%d" % inst]
        key = self.pat_tokens.get(token)
        if key is not None:
            return self.accounts[key]
        return self.default if self.token is None else None

    def scope(self, acc):
        """The lower-cased repository owners acc may see; None: all."""
        if acc.kind != "installation":
            return None
        inst = self.app["installations"].get(acc.uid) if self.app else None
        return inst["owners_lc"] if inst else frozenset()

    def enter(self, acc):
        """A request of acc arrives: count its secondary point and put it in
        flight (until leave). -> whether it exceeds a secondary limit."""
        now = time.monotonic()
        seen = acc.points_seen
        while seen and seen[0] <= now - SECONDARY_WINDOW:
            seen.popleft()
        seen.append(now)
        acc.in_flight += 1
        acc.max_in_flight = max(acc.max_in_flight, acc.in_flight)
        acc.max_points_per_minute = max(acc.max_points_per_minute, len(seen))
        return ((self.secondary_ppm > 0 and len(seen) > self.secondary_ppm)
                or (self.max_concurrent > 0 and acc.in_flight > self.max_concurrent))

    def leave(self, acc):
        acc.in_flight -= 1

    # ------------------------------------------------ admin: accounts, App
    def add_accounts(self, items):
        """POST /_sim/accounts: add PAT accounts, or replace them by login
        (a new account: fresh budget and counters, only the new tokens).
        Raises ValueError for bad input, changing nothing."""
        if not isinstance(items, list):
            raise ValueError("want {\"accounts\": [{\"login\": L, \"tokens\": [T, ...]}, ...]}")
        logins, seen_tokens = set(), set()
        for it in items:
            if not isinstance(it, dict):
                raise ValueError("an account is an object {\"login\", \"tokens\"}")
            login, tokens = it.get("login"), it.get("tokens")
            if not isinstance(login, str) or not LOGIN_RE.fullmatch(login):
                raise ValueError("login: want a GitHub login (letters, digits, hyphens; at most 39), got %s"
                                 % json.dumps(login))
            if login.lower() == DEFAULT_LOGIN or login.lower() in logins:
                raise ValueError("login %s: the default account's, or twice" % login)
            logins.add(login.lower())
            if not isinstance(tokens, list) or not tokens:
                raise ValueError("account %s: tokens: want a non-empty list of strings" % login)
            for t in tokens:
                if not isinstance(t, str) or not TOKEN_RE.fullmatch(t):
                    raise ValueError("account %s: a token must be a string of printable ASCII without spaces"
                                     % login)
                if t in seen_tokens:
                    raise ValueError("account %s: a token is given twice" % login)
                seen_tokens.add(t)
        with self.lock:
            for t in seen_tokens:
                owner = self.pat_tokens.get(t)
                if (owner is not None and owner.lower() not in logins) or t in self.installation_tokens:
                    raise ValueError("a token of the accounts is another account's already")
            for it in items:
                old = [k for k, a in self.accounts.items() if a.kind == "user" and k.lower() == it["login"].lower()]
                for k in old:
                    del self.accounts[k]
                    for t in [t for t, o in self.pat_tokens.items() if o == k]:
                        del self.pat_tokens[t]
                acc = Account(it["login"], it["login"], "user", user_id(it["login"]))
                self.accounts[acc.key] = acc
                for t in it["tokens"]:
                    self.pat_tokens[t] = acc.key
                    self.revoked.discard(t)
            return [it["login"] for it in items]

    def revoke(self, token):
        """POST /_sim/tokens/revoke: -> the key of the token's account (None
        for a revoked one's), or raises KeyError for an unknown token."""
        with self.lock:
            if token in self.pat_tokens:
                key = self.pat_tokens[token]
            elif token in self.installation_tokens:
                key = "installation/%d" % self.installation_tokens[token][0]
            elif token in self.revoked:
                key = None
            elif self.token is None:
                key = DEFAULT_LOGIN  # any token is the default account's
            else:
                raise KeyError(token)
            self.revoked.add(token)
            return key

    def configure_app(self, spec):
        """POST /_sim/app (or the --app-* options): validate an App and make it
        the App, replacing any earlier one; raises ValueError for bad input.
        Installation tokens issued before stay valid (until they expire) for
        the installations the new App still has."""
        if not isinstance(spec, dict):
            raise ValueError("want an object {\"appId\", \"publicKeyPem\", \"installations\", ...}")
        app_id = _positive_int(spec.get("appId"), "appId")
        pem = spec.get("publicKeyPem")
        if not isinstance(pem, str):
            raise ValueError("publicKeyPem: want the App's RSA public key, PEM")
        key = rsa_public_key(pem)
        lifetime = spec.get("tokenLifetimeSeconds", 3600)
        if not _is_number(lifetime) or lifetime <= 0:
            raise ValueError("tokenLifetimeSeconds: want a positive number")
        items = spec.get("installations", [])
        if not isinstance(items, list):
            raise ValueError("installations: want a list")
        insts = {}
        for it in items:
            if not isinstance(it, dict):
                raise ValueError("an installation is an object {\"id\", \"account\", \"repositoryOwners\"}")
            iid = _positive_int(it.get("id"), "installation id")
            if iid in insts:
                raise ValueError("installation %d: twice" % iid)
            login = it.get("account")
            if not isinstance(login, str) or not LOGIN_RE.fullmatch(login):
                raise ValueError("installation %d: account: want a GitHub login" % iid)
            owners = it.get("repositoryOwners", [login])
            if (not isinstance(owners, list)
                    or not all(isinstance(o, str) and LOGIN_RE.fullmatch(o) for o in owners)):
                raise ValueError("installation %d: repositoryOwners: want a list of logins" % iid)
            perms = it.get("permissions", DEFAULT_PERMISSIONS)
            if not isinstance(perms, dict) or not all(isinstance(v, str) for v in perms.values()):
                raise ValueError("installation %d: permissions: want an object of strings" % iid)
            kind = it.get("accountType", "Organization")
            if kind not in ("Organization", "User"):
                raise ValueError("installation %d: accountType: Organization or User" % iid)
            insts[iid] = {"id": iid, "account": login, "accountType": kind, "owners": list(owners),
                          "owners_lc": frozenset(o.lower() for o in owners), "permissions": dict(perms)}
        app = {"appId": app_id, "key": key, "tokenLifetimeSeconds": lifetime, "installations": insts}
        with self.lock:
            self.app = app
            if "app/%d" % app_id not in self.accounts:
                self.accounts["app/%d" % app_id] = Account("app/%d" % app_id, "app-%d" % app_id, "app", app_id)
            for iid, inst in insts.items():
                k = "installation/%d" % iid
                if k not in self.accounts:
                    self.accounts[k] = Account(k, inst["account"], "installation", iid)
                self.accounts[k].login = inst["account"]
        return app

    def app_summary(self):
        """GET /_sim/app (lock held)."""
        app = self.app
        if app is None:
            return {"app": None}
        return {"appId": app["appId"], "keyBits": app["key"][0].bit_length(),
                "tokenLifetimeSeconds": app["tokenLifetimeSeconds"],
                "installations": [{"id": i["id"], "account": i["account"], "accountType": i["accountType"],
                                   "repositoryOwners": i["owners"], "permissions": i["permissions"]}
                                  for i in app["installations"].values()]}

    def issue_installation_token(self, app, inst):
        """A new installation token of inst of app (lock held): -> (token,
        expiry epoch, a whole second: the token never lives less than the
        lifetime)."""
        alphabet = string.ascii_letters + string.digits
        token = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        expires = int(math.ceil(time.time() + app["tokenLifetimeSeconds"]))
        self.installation_tokens[token] = (inst["id"], expires)
        return token, expires

    def take_fault(self, repo_key):
        with self.lock:
            for i, f in enumerate(self.faults):
                if f["repo"] is None or (repo_key is not None and f["repo"].lower() == repo_key):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self.faults.pop(i)
                    return dict(f)
        return None

    def expected(self, repo_name, max_n, since_days):
        owner, _, name = repo_name.partition("/")
        repo = self.lookup(owner, name) if name else None
        if repo is None:
            return {"repo": repo_name, "known": False, "in_window": 0, "older": 0,
                    "expected": [], "min_pages": 1 if max_n > 0 else 0}
        cutoff = time.time() - since_days * DAY
        exp = []
        n = repo.total
        while n >= 1 and len(exp) < max_n and repo.created_at(n) > cutoff:
            exp.append({"number": n, "githubId": str(repo.full_database_id(n)),
                        "state": repo.pr(n)["state"], "createdAt": iso(repo.created_at(n))})
            n -= 1
        # pages a correct worker needs: page size min(100, max - fetched); stop at max,
        # at the first PR older than the cutoff, or when hasNextPage is false.
        pages, fetched, top = 0, 0, repo.total
        while max_n > 0:
            size = min(MAX_PAGE, max_n - fetched)
            pages += 1
            page = list(range(top, max(top - size, 0), -1))
            stop = False
            for p in page:
                if repo.created_at(p) <= cutoff:
                    stop = True
                    break
                fetched += 1
            if stop or fetched >= max_n or not page or page[-1] <= 1:
                break
            top = page[-1] - 1
        return {"repo": repo.full_name, "known": True, "in_window": repo.in_window, "older": repo.older,
                "expected": exp, "min_pages": pages}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def make_handler(sim):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "github-sim/1.0"
        sys_version = ""

        def log_message(self, fmt, *args):  # silence default logging; we log ourselves
            pass

        def setup(self):
            super().setup()
            self._t_accept = self.server.accepted.pop(self.request, None)

        def parse_request(self):
            # when the request arrived: its connection's accept for the first
            # request on a connection, else now (its request line was just read)
            self._t_arrival = self._t_accept if self._t_accept is not None else time.monotonic()
            self._t_accept = None
            return super().parse_request()

        def _log(self, status, extra=""):
            dt = (time.time() - self._t_start) * 1000
            sys.stderr.write("github_sim: %s %s %d %.1fms%s\n" % (self.command, self.path, status, dt, extra))
            sys.stderr.flush()

        def _send(self, status, body, ctype="application/json; charset=utf-8", headers=None, extra_log=""):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            self._sent = True
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if self._release is not None:
                # the request stops being in flight for its account now,
                # before the client can have its answer and send another
                self._release()
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self._log(status, extra_log)

        def _read_body(self):
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def _guard(self, fn):
            """Run a handler; turn exceptions into a 400 (bad admin input) or 500."""
            self._t_start = time.time()
            self._sent = False
            self._release = None  # see in_flight
            try:
                fn()
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                if self.path.startswith("/_sim/") and not self._sent:
                    return self._send(400, {"message": "bad request: %s" % e})
                raise
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception:
                import traceback
                traceback.print_exc()
                if not self._sent:
                    self._send(500, {"message": "github_sim internal error"})
                self.close_connection = True

        def do_GET(self):
            self._guard(self._do_get)

        def do_POST(self):
            self._guard(self._do_post)

        def do_DELETE(self):
            self._guard(self._do_delete)

        def _do_get(self):
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            if u.path == "/healthz":
                return self._send(200, "ok", "text/plain")
            if u.path == "/_sim/stats":
                with sim.lock:
                    sim._roll()
                    body = {"requests": sim.stats_requests, "points": sim.stats_points,
                            "by_repo": dict(sim.by_repo), "remaining": max(sim.budget - sim.default.used, 0),
                            "budget": sim.budget, "resetAt": iso(sim._reset_epoch()),
                            "faults_pending": sum(f["count"] for f in sim.faults),
                            "unauthorized": sim.stats_unauthorized, "secondary": sim.stats_secondary,
                            "rest": dict(sim.rest_counts),
                            "accounts": {k: sim.account_stats(a) for k, a in sim.accounts.items()}}
                return self._send(200, body)
            if u.path == "/_sim/requests":
                with sim.lock:
                    body = list(sim.log_requests)
                return self._send(200, body)
            if u.path == "/_sim/rest-requests":
                with sim.lock:
                    body = list(sim.log_rest)
                return self._send(200, body)
            if u.path == "/_sim/accounts":
                with sim.lock:
                    now = time.time()
                    live = collections.Counter(  # the tokens that work, by account
                        [k for t, k in sim.pat_tokens.items() if t not in sim.revoked]
                        + ["installation/%d" % i for t, (i, exp) in sim.installation_tokens.items()
                           if t not in sim.revoked and now < exp])
                    body = {"accounts": [{"key": k, "login": a.login, "type": a.kind, "tokens": live[k]}
                                         for k, a in sim.accounts.items()]}
                return self._send(200, body)
            if u.path == "/_sim/app":
                with sim.lock:
                    body = sim.app_summary()
                return self._send(200, body)
            if u.path == "/_sim/faults":
                with sim.lock:
                    body = [dict(f) for f in sim.faults]
                return self._send(200, body)
            if u.path == "/_sim/config":
                with sim.lock:
                    body = {"latencyMs": sim.latency_ms, "budget": sim.budget,
                            "resetSeconds": sim.reset_seconds, "nulText": sim.nul_text,
                            "surrogateText": sim.surrogate_text,
                            "startedAt": iso(sim.start), "start": sim.start,
                            "remaining": max(sim.budget - sim.default.used, 0),
                            "secondaryPointsPerMinute": sim.secondary_ppm,
                            "maxConcurrent": sim.max_concurrent}
                return self._send(200, body)
            if u.path == "/_sim/expected":
                repo = (q.get("repo") or [""])[0]
                try:
                    max_n = int((q.get("max") or ["200"])[0])
                    since = float((q.get("since_days") or ["30"])[0])
                except ValueError:
                    return self._send(400, {"message": "bad max/since_days"})
                return self._send(200, sim.expected(repo, max_n, since))
            if u.path == "/graphql":
                return self._send(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/graphql"})
            route = rest_route("GET", u.path)
            if route:
                return self.rest(*route, b"")
            return self._send(404, {"message": "Not Found"})

        def _do_delete(self):
            self._read_body()
            if urlsplit(self.path).path == "/_sim/faults":
                with sim.lock:
                    sim.faults.clear()
                return self._send(200, {"ok": True})
            return self._send(404, {"message": "Not Found"})

        def _do_post(self):
            path = urlsplit(self.path).path
            raw = self._read_body()
            if path == "/graphql":
                return self.graphql(raw)
            route = rest_route("POST", path)
            if route:
                return self.rest(*route, raw)
            try:
                body = json.loads(raw.decode("utf-8") or "{}")
            except (ValueError, UnicodeDecodeError):
                return self._send(400, {"message": "Problems parsing JSON"})
            if path == "/_sim/faults":
                items = body if isinstance(body, list) else [body]
                added = []
                for it in items:
                    kind = str(it.get("kind"))
                    if kind not in FAULT_KINDS:
                        return self._send(400, {"message": "unknown fault kind %r; known: %s" % (kind, ", ".join(FAULT_KINDS))})
                    f = {"repo": it.get("repo"), "kind": kind, "count": int(it.get("count", 1)),
                         "retryAfter": it.get("retryAfter")}
                    if f["count"] > 0:
                        added.append(f)
                with sim.lock:
                    sim.faults.extend(added)
                    pending = [dict(f) for f in sim.faults]
                return self._send(200, {"ok": True, "faults": pending})
            if path == "/_sim/reset-stats":
                with sim.lock:
                    sim.reset_stats()
                return self._send(200, {"ok": True})
            if path == "/_sim/config":
                limits = {}
                for k in ("secondaryPointsPerMinute", "maxConcurrent"):
                    if k in body:
                        limits[k] = int(body[k])
                        if limits[k] < 0 or isinstance(body[k], bool):
                            return self._send(400, {"message": "%s: want an integer >= 0 (0: no limit)" % k})
                with sim.lock:
                    if "latencyMs" in body:
                        sim.latency_ms = float(body["latencyMs"])
                    if "nulText" in body:
                        sim.nul_text = bool(body["nulText"])
                    if "surrogateText" in body:
                        sim.surrogate_text = bool(body["surrogateText"])
                    sim.secondary_ppm = limits.get("secondaryPointsPerMinute", sim.secondary_ppm)
                    sim.max_concurrent = limits.get("maxConcurrent", sim.max_concurrent)
                    if "budget" in body or "resetSeconds" in body:
                        if "budget" in body:
                            sim.budget = int(body["budget"])
                        if "resetSeconds" in body:
                            sim.reset_seconds = float(body["resetSeconds"])
                        for acc in sim.accounts.values():  # every account's window restarts
                            acc.window_start = time.time()
                            acc.used = 0
                    if "remaining" in body:
                        remaining = int(body["remaining"])
                        for acc in sim.accounts.values():
                            sim._roll(acc)
                            acc.used = max(0, min(sim.budget, sim.budget - remaining))
                return self._send(200, {"ok": True})
            if path == "/_sim/accounts":
                if not isinstance(body, dict) or "accounts" not in body:
                    return self._send(400, {"message": "want {\"accounts\": [{\"login\": L, \"tokens\": [T, ...]}, ...]}"})
                try:
                    added = sim.add_accounts(body["accounts"])
                except ValueError as e:
                    return self._send(400, {"message": str(e)})
                return self._send(200, {"ok": True, "accounts": added})
            if path == "/_sim/tokens/revoke":
                token = body.get("token") if isinstance(body, dict) else None
                if not isinstance(token, str) or not token:
                    return self._send(400, {"message": "want {\"token\": T}"})
                try:
                    key = sim.revoke(token)
                except KeyError:
                    return self._send(404, {"message": "unknown token"})
                return self._send(200, {"ok": True, "account": key})
            if path == "/_sim/app":
                try:
                    sim.configure_app(body)
                except ValueError as e:
                    return self._send(400, {"message": str(e)})
                with sim.lock:
                    body = dict(sim.app_summary(), ok=True)
                return self._send(200, body)
            return self._send(404, {"message": "Not Found"})

        @contextlib.contextmanager
        def in_flight(self, acc):
            """Around the handling of a request of acc that Sim.enter counted:
            it leaves acc's requests in flight when _send is about to write
            its answer (or at the end, if there was none)."""
            def release():
                self._release = None
                with sim.lock:
                    sim.leave(acc)
            self._release = release
            try:
                yield
            finally:
                if self._release is release:
                    release()

        # ---------------------------------------------------------- /graphql
        def _token(self):
            """The token of the Authorization header ("bearer T" or "token T")."""
            parts = (self.headers.get("Authorization") or "").split(None, 1)
            return parts[1].strip() if len(parts) == 2 and parts[0].lower() in ("bearer", "token") else ""

        def graphql(self, raw):
            entry = {"repo": None, "first": None, "after": None, "status": None, "cost": 0,
                     "t": round(time.time() - sim.t0, 6), "error": None, "fault": None, "account": None}
            with sim.lock:
                latency = sim.latency_ms
                sim.req_counter += 1
                rid = sim.req_counter
            # The latency runs from the request's arrival; the request's CPU
            # work (parsing, executing, encoding) is done inside it, and only
            # the rest of it is slept before the faults and the rate-limit
            # accounting.
            deadline = self._t_arrival + latency / 1000.0
            acc = None  # the request's Account, once authenticated

            def wait_latency():
                rest = deadline - time.monotonic()
                if rest > 0:
                    time.sleep(rest)

            def finish(status, body, headers=None, ctype="application/json; charset=utf-8", cost=0):
                entry["status"], entry["cost"] = status, cost
                with sim.lock:
                    sim.stats_requests += 1
                    sim.stats_points += cost
                    if status == 401:
                        sim.stats_unauthorized += 1
                    if acc is not None:
                        acc.requests += 1
                        acc.points += cost
                    k = entry["repo"] or "?"
                    sim.by_repo[k] = sim.by_repo.get(k, 0) + 1
                    sim.log_requests.append(dict(entry))
                h = {"x-github-request-id": "SIM0:%04X:%06X" % (os.getpid() & 0xFFFF, rid)}
                h.update(headers or {})
                extra = " repo=%s first=%s after=%s cost=%d account=%s%s%s" % (
                    entry["repo"], entry["first"], entry["after"], cost, entry["account"],
                    " error=%s" % entry["error"] if entry["error"] else "",
                    " fault=%s" % entry["fault"] if entry["fault"] else "")
                self._send(status, body, ctype, h, extra)

            # auth
            with sim.lock:
                acc = sim.authenticate(self._token())
                if acc is not None:
                    # in flight from here until its answer has been sent (the
                    # finally below), its latency included
                    limited = sim.enter(acc)
                    scope = sim.scope(acc)
            if acc is None:
                wait_latency()
                entry["error"] = "BAD_CREDENTIALS"
                return finish(401, {"message": "Bad credentials", "documentation_url": GRAPHQL_DOCS})
            entry["account"] = acc.key
            with self.in_flight(acc):
                return self._graphql(raw, entry, acc, limited, scope, wait_latency, finish)

        def _graphql(self, raw, entry, acc, limited, scope, wait_latency, finish):
            """An authenticated request of acc; limited: over a secondary limit."""
            def secondary():
                entry["error"] = "SECONDARY_RATE_LIMIT"
                with sim.lock:
                    acc.secondary += 1
                    sim.stats_secondary += 1
                    sim._roll(acc)
                    h = dict(sim.rl_headers(acc=acc), **{"retry-after": "60"})
                return finish(403, github_json(SECONDARY_BODY), h)

            # body
            try:
                payload = json.loads(raw.decode("utf-8"))
                if not isinstance(payload, dict):
                    raise ValueError
            except (ValueError, UnicodeDecodeError):
                wait_latency()
                if limited:
                    return secondary()
                entry["error"] = "BAD_JSON"
                return finish(400, {"message": "Problems parsing JSON",
                                    "documentation_url": GRAPHQL_DOCS})
            variables = payload.get("variables")
            if isinstance(variables, str):
                try:
                    variables = json.loads(variables) if variables.strip() else None
                except ValueError:
                    variables = "bad"
            req, perr, prepared = None, None, None
            try:
                req, prepared = sim.prepare(payload.get("query"), variables, payload.get("operationName"), scope)
            except GQLError as e:
                perr = e.err
            wait_latency()
            if req is not None:
                if req.repo_arg and all(isinstance(x, str) for x in req.repo_arg):
                    entry["repo"] = ("%s/%s" % req.repo_arg).lower()
                entry["first"], entry["after"] = req.first, req.after
            if limited:  # before the faults: they stay for the next requests
                return secondary()

            # faults
            fault = sim.take_fault(entry["repo"])
            if fault:
                entry["fault"] = fault["kind"]
                kind, ra = fault["kind"], fault.get("retryAfter")
                with sim.lock:
                    sim._roll(acc)
                    rlh = sim.rl_headers(acc=acc)
                    zero = sim.rl_headers(remaining=0, acc=acc)
                if kind in ("502", "504"):
                    msg = "Bad Gateway" if kind == "502" else "Gateway Timeout"
                    html = ("<html><head><title>%s %s</title></head><body><h1>%s %s</h1>"
                            "<p>We couldn't respond to your request in time. Sorry about that.</p></body></html>"
                            % (kind, msg, kind, msg))
                    return finish(int(kind), html, ctype="text/html; charset=utf-8")
                if kind == "something_went_wrong":
                    return finish(200, github_json({"data": None, "errors": [{"message": "Something went wrong while executing your query. Please include `ABCD:1234` when reporting this issue."}]}), rlh)
                if kind in ("secondary", "429"):
                    h = dict(rlh)
                    if ra is not None:
                        h["retry-after"] = str(ra)
                    return finish(403 if kind == "secondary" else 429, github_json(SECONDARY_BODY), h)
                if kind == "rate_limit_type":
                    return finish(200, github_json({"errors": [{"type": "RATE_LIMIT", "message": "API rate limit exceeded for user ID 1."}]}), zero)
                if kind == "slow":
                    time.sleep(float(ra or 0))
                # "malformed" and "slow" fall through to a normal answer

            status, body, headers, cost, err = self.answer(req, perr, prepared, acc)
            entry["error"] = err
            if fault and fault["kind"] == "malformed":
                body = body[: max(1, len(body) // 2)]
            return finish(status, body, headers, cost=cost)

        def answer(self, req, perr, prepared, acc):
            """-> (status, body bytes, headers, cost, error type or None), charged to acc"""
            with sim.lock:
                sim._roll(acc)
                headers = sim.rl_headers(acc=acc)
            if perr is not None or req.errors:
                errs = [perr] if perr is not None else req.errors
                return 200, github_json({"errors": errs}), headers, 0, error_note(errs)
            cost = 1  # one connection of <= 100 nodes: GitHub's minimum cost
            with sim.lock:
                sim._roll(acc)
                remaining = sim.budget - acc.used
                if remaining < cost:
                    acc.used = sim.budget
                    acc.rate_limited += 1
                    headers = sim.rl_headers(remaining=0, acc=acc)
                    limited = True
                else:
                    acc.used += cost
                    headers = sim.rl_headers(acc=acc)
                    limited = False
                rl = {"__typename": "RateLimit", "cost": cost, "limit": sim.budget,
                      "remaining": max(sim.budget - acc.used, 0), "used": acc.used,
                      "resetAt": iso(sim._reset_epoch(acc)), "nodeCount": req.first or 1}
            if limited:
                return 200, github_json({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded for %s." % acc.rate_limit_subject()}]}), headers, 0, "RATE_LIMITED"
            if prepared.flags != (sim.nul_text, sim.surrogate_text):  # changed meanwhile
                _, prepared = sim.prepare(*prepared.source)
            return 200, prepared.finish(sim, rl), headers, cost, prepared.err

        # ---------------------------------------------------------- REST (the App's)
        def rest(self, endpoint, args, raw):
            """GET /user, GET /repos/{owner}/{repo}/installation and POST
            /app/installations/{id}/access_tokens (see the module docstring)."""
            entry = {"method": self.command, "path": urlsplit(self.path).path, "endpoint": endpoint,
                     "status": None, "t": round(time.time() - sim.t0, 6), "account": None, "error": None}
            with sim.lock:
                latency = sim.latency_ms
                sim.req_counter += 1
                rid = sim.req_counter
                sim.rest_counts[endpoint] += 1
            deadline = self._t_arrival + latency / 1000.0
            acc, app = None, None  # the request's Account; the App its JWT is of

            def wait_latency():
                rest = deadline - time.monotonic()
                if rest > 0:
                    time.sleep(rest)

            def finish(status, body, headers):
                entry["status"] = status
                with sim.lock:
                    if status == 401:
                        sim.stats_unauthorized += 1
                    if acc is not None:
                        acc.rest += 1
                    sim.log_rest.append(dict(entry))
                h = {"x-github-request-id": "SIM0:%04X:%06X" % (os.getpid() & 0xFFFF, rid)}
                h.update(headers)
                self._send(status, github_json(body), headers=h, extra_log=" account=%s%s" % (
                    entry["account"], " error=%s" % entry["error"] if entry["error"] else ""))

            # auth: the App's JWT, or a token for /user
            token = self._token()
            if endpoint == "user":
                with sim.lock:
                    acc = sim.authenticate(token)
                if acc is None:
                    entry["error"] = "BAD_CREDENTIALS" if token else "REQUIRES_AUTHENTICATION"
                    msg = "Bad credentials" if token else "Requires authentication"
                    why = {"message": msg, "documentation_url": REST_DOCS}
            else:
                with sim.lock:
                    app = sim.app
                msg = check_jwt(app, token, time.time())
                if msg is None:
                    with sim.lock:
                        acc = sim.accounts["app/%d" % app["appId"]]
                else:
                    entry["error"] = "BAD_JWT"
                    why = {"message": msg, "documentation_url": REST_DOCS}
            if acc is None:
                wait_latency()
                return finish(401, why, sim.core_headers(None))
            entry["account"] = acc.key
            with sim.lock:
                limited = sim.enter(acc)
            with self.in_flight(acc):
                if not limited:
                    status, body = self.rest_answer(endpoint, args, raw, acc, app)
                wait_latency()
                with sim.lock:
                    if limited:
                        entry["error"] = "SECONDARY_RATE_LIMIT"
                        acc.secondary += 1
                        sim.stats_secondary += 1
                        headers = dict(sim.core_headers(acc), **{"retry-after": "60"})
                        status, body = 403, SECONDARY_BODY
                    else:
                        headers = sim.core_headers(acc, charge=True)
                return finish(status, body, headers)

        def rest_answer(self, endpoint, args, raw, acc, app):
            """-> (status, body) of an authenticated REST request."""
            if endpoint == "user":
                if acc.kind != "user":
                    return 403, {"message": "Resource not accessible by integration",
                                 "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"}
                return 200, {"login": acc.login, "id": acc.uid, "type": "User"}
            if endpoint == "installation":
                owner = args[0].lower()
                for inst in app["installations"].values():
                    if owner in inst["owners_lc"]:
                        return 200, installation_json(app, inst)
                return 404, {"message": "Not Found", "documentation_url":
                             "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app"}
            # access_tokens
            inst = app["installations"].get(int(args[0]))
            if inst is None:
                return 404, {"message": "Not Found", "documentation_url":
                             "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"}
            if raw.strip():
                try:
                    json.loads(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    return 400, {"message": "Problems parsing JSON", "documentation_url": REST_DOCS}
            with sim.lock:
                token, expires = sim.issue_installation_token(app, inst)
            return 201, {"token": token, "expires_at": iso(expires), "permissions": dict(inst["permissions"]),
                         "repository_selection": "all"}

    return Handler


REST_ROUTES = [  # (method, path, endpoint name in /_sim/stats "rest")
    ("GET", re.compile(r"/user/?"), "user"),
    ("GET", re.compile(r"/repos/([^/]+)/([^/]+)/installation/?"), "installation"),
    ("POST", re.compile(r"/app/installations/([0-9]{1,18})/access_tokens/?"), "access_tokens"),
]


def rest_route(method, path):
    """-> (endpoint, path groups) of a REST endpoint, or None."""
    for m, pattern, endpoint in REST_ROUTES:
        match = pattern.fullmatch(path)
        if m == method and match:
            return endpoint, match.groups()
    return None


def installation_json(app, inst):
    return {"id": inst["id"], "account": {"login": inst["account"], "type": inst["accountType"]},
            "app_id": app["appId"], "repository_selection": "all", "permissions": dict(inst["permissions"])}


class Server(ThreadingHTTPServer):
    """Notes when each connection was accepted (the handler's thread may
    start later, when the computing threads let it have the GIL)."""

    def __init__(self, *args, **kw):
        self.accepted = {}  # socket -> time.monotonic() of its accept
        super().__init__(*args, **kw)

    def get_request(self):
        sock, addr = super().get_request()
        self.accepted[sock] = time.monotonic()
        return sock, addr

    def shutdown_request(self, request):
        self.accepted.pop(request, None)
        super().shutdown_request(request)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--budget", type=int, default=5000)
    ap.add_argument("--reset-seconds", type=float, default=3600)
    ap.add_argument("--token", default=None)
    ap.add_argument("--nul-text", action="store_true")
    ap.add_argument("--surrogate-text", action="store_true")
    ap.add_argument("--repo", action="append", metavar="OWNER/NAME=IN:OLDER")
    ap.add_argument("--secondary-points-per-minute", type=int, default=2000, metavar="N",
                    help="secondary limit: points per account in any 60 s (0: none)")
    ap.add_argument("--max-concurrent", type=int, default=100, metavar="N",
                    help="secondary limit: requests of an account in flight at once (0: none)")
    ap.add_argument("--app-id", type=int, metavar="N", help="a GitHub App (see POST /_sim/app)")
    ap.add_argument("--app-public-key", metavar="PEMFILE", help="the App's RSA public key")
    ap.add_argument("--app-installation", action="append", metavar="ID:ACCOUNT[:OWNER[,OWNER...]]",
                    help="an installation of the App (repeatable); owners default to ACCOUNT")
    ap.add_argument("--app-token-lifetime", type=float, default=3600, metavar="S",
                    help="seconds an installation token lives")
    opts = ap.parse_args(argv)
    if opts.secondary_points_per_minute < 0 or opts.max_concurrent < 0:
        ap.error("--secondary-points-per-minute and --max-concurrent want N >= 0")
    if (opts.app_id is None) != (opts.app_public_key is None):
        ap.error("--app-id and --app-public-key go together")
    if opts.app_installation and opts.app_id is None:
        ap.error("--app-installation wants --app-id and --app-public-key")

    sim = Sim(opts)
    if opts.app_id is not None:
        installations = []
        for spec in opts.app_installation or []:
            parts = spec.split(":", 2)
            if len(parts) < 2 or not parts[0].isdigit():
                ap.error("--app-installation wants ID:ACCOUNT[:OWNER[,OWNER...]], got %r" % spec)
            owners = parts[2].split(",") if len(parts) == 3 else [parts[1]]
            installations.append({"id": int(parts[0]), "account": parts[1], "repositoryOwners": owners})
        try:
            with open(opts.app_public_key) as fh:
                pem = fh.read()
            sim.configure_app({"appId": opts.app_id, "publicKeyPem": pem, "installations": installations,
                               "tokenLifetimeSeconds": opts.app_token_lifetime})
        except (OSError, ValueError) as e:
            ap.error("--app-*: %s" % e)
    # Hand the GIL over every 1 ms (not 5): a request that arrives while
    # others are being computed is accepted and started sooner.
    sys.setswitchinterval(0.001)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = Server((opts.host, opts.port), make_handler(sim))
    port = srv.server_address[1]
    if opts.port_file:
        tmp = "%s.tmp.%d" % (opts.port_file, os.getpid())
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.replace(tmp, opts.port_file)
    sys.stderr.write("github_sim: listening on http://%s:%d (budget %d / %gs, latency %gms)\n"
                     % (opts.host, port, sim.budget, sim.reset_seconds, sim.latency_ms))
    sys.stderr.flush()

    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
