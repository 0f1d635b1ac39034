/* pgw_events: applying backfill/pull_requests and backfill/progress.update
 * (see schemas/pull_requests.schema.json, progress.update.schema.json) to Postgres.
 *
 * Each event is validated completely in C before anything is written, so
 * a malformed event costs no round trip. Then a handful of multi-row
 * statements: a chunk of up to 100 pull requests is one JSON parameter
 * expanded server-side by json_to_recordset, so the cost is a few round
 * trips per chunk, never one per pull request.
 *
 * Idempotency: every upsert has a WHERE clause that skips no-op updates, so
 * applying the same event twice changes nothing (not even a timestamp).
 * Ordering: a pull request is only overwritten by data at least as recent
 * (GitHub's updatedAt); the backfill state only by a newer seq of the same
 * backfill or by a backfill that started later. */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgw_fields.h"
#include "pgw_internal.h"

#define REQ PGWF_REQUIRED
#define OPT PGWF_OPTIONAL
#define NUL_OK PGWF_NULLABLE
#define INT32_HI 2147483647
#define IDENT_MAX 255         /* owner, name, login: GitHub's are far shorter */
#define BACKFILL_ID_MAX 64    /* envelope id */
#define MS_MAX 253402300799999 /* 9999-12-31T23:59:59.999Z */

const struct pgw_stmt pgw_event_stmts[] = {
    /* Insert the repository or find it; github_id is filled in or
     * corrected when the event knows it. The second SELECT finds an
     * existing row the no-op-skipping upsert did not return. */
    {"pgw_repo",
     "WITH ins AS (\n"
     "  INSERT INTO repositories AS r (owner, name, github_id)\n"
     "  VALUES ($1::text, $2::text, $3::bigint)\n"
     "  ON CONFLICT ((lower(owner)), (lower(name))) DO UPDATE\n"
     "     SET github_id = EXCLUDED.github_id, updated_at = now()\n"
     "   WHERE EXCLUDED.github_id IS NOT NULL\n"
     "     AND r.github_id IS DISTINCT FROM EXCLUDED.github_id\n"
     "  RETURNING r.id)\n"
     "SELECT id FROM ins\n"
     "UNION ALL\n"
     "SELECT id FROM repositories\n"
     " WHERE lower(owner) = lower($1::text) AND lower(name) = lower($2::text)\n"
     "LIMIT 1",
     3},
    /* Authors of one chunk, deduplicated; sorted so concurrent writers lock
     * rows in the same order. A missing avatar does not erase a known one. */
    {"pgw_contrib",
     "INSERT INTO contributors AS c (github_id, username, avatar_url, is_bot)\n"
     "SELECT DISTINCT ON (a.github_id) a.github_id, a.username, a.avatar_url, a.is_bot\n"
     "  FROM json_to_recordset($1::json)\n"
     "       AS a(github_id bigint, username text, avatar_url text, is_bot boolean)\n"
     " ORDER BY a.github_id\n"
     "ON CONFLICT (github_id) DO UPDATE\n"
     "   SET username = EXCLUDED.username,\n"
     "       avatar_url = coalesce(EXCLUDED.avatar_url, c.avatar_url),\n"
     "       is_bot = EXCLUDED.is_bot,\n"
     "       updated_at = now()\n"
     " WHERE (c.username, c.avatar_url, c.is_bot) IS DISTINCT FROM\n"
     "       (EXCLUDED.username, coalesce(EXCLUDED.avatar_url, c.avatar_url), EXCLUDED.is_bot)",
     1},
    /* The pull requests of one chunk. backfill_id is the backfill that last
     * changed the row, so it is not part of the "did anything change" test. */
    {"pgw_prs",
     "INSERT INTO pull_requests AS p\n"
     "  (github_id, repository_id, number, title, body, state, author_id, created_at,\n"
     "   updated_at, closed_at, merged_at, merged, draft, additions, deletions,\n"
     "   changed_files, base_branch, head_branch, html_url, backfill_id)\n"
     "SELECT DISTINCT ON (x.github_id)\n"
     "       x.github_id, $1::bigint, x.number, x.title, x.body, x.state, c.id, x.created_at,\n"
     "       x.updated_at, x.closed_at, x.merged_at, x.merged, x.draft, x.additions,\n"
     "       x.deletions, x.changed_files, x.base_branch, x.head_branch, x.html_url, $2::text\n"
     "  FROM json_to_recordset($3::json) AS x(\n"
     "       github_id bigint, number integer, title text, body text, state text,\n"
     "       created_at timestamptz, updated_at timestamptz, closed_at timestamptz,\n"
     "       merged_at timestamptz, merged boolean, draft boolean, additions integer,\n"
     "       deletions integer, changed_files integer, base_branch text, head_branch text,\n"
     "       html_url text, author_github_id bigint)\n"
     "  LEFT JOIN contributors c ON c.github_id = x.author_github_id\n"
     " ORDER BY x.github_id, x.updated_at DESC\n"
     "ON CONFLICT (github_id) DO UPDATE SET\n"
     "  repository_id = EXCLUDED.repository_id, number = EXCLUDED.number,\n"
     "  title = EXCLUDED.title, body = EXCLUDED.body, state = EXCLUDED.state,\n"
     "  author_id = EXCLUDED.author_id, created_at = EXCLUDED.created_at,\n"
     "  updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at,\n"
     "  merged_at = EXCLUDED.merged_at, merged = EXCLUDED.merged, draft = EXCLUDED.draft,\n"
     "  additions = EXCLUDED.additions, deletions = EXCLUDED.deletions,\n"
     "  changed_files = EXCLUDED.changed_files, base_branch = EXCLUDED.base_branch,\n"
     "  head_branch = EXCLUDED.head_branch, html_url = EXCLUDED.html_url,\n"
     "  backfill_id = EXCLUDED.backfill_id, updated_in_db_at = now()\n"
     "WHERE p.updated_at <= EXCLUDED.updated_at\n"
     "  AND (p.repository_id, p.number, p.title, p.body, p.state, p.author_id,\n"
     "       p.created_at, p.updated_at, p.closed_at, p.merged_at, p.merged, p.draft,\n"
     "       p.additions, p.deletions, p.changed_files, p.base_branch, p.head_branch,\n"
     "       p.html_url)\n"
     "      IS DISTINCT FROM\n"
     "      (EXCLUDED.repository_id, EXCLUDED.number, EXCLUDED.title, EXCLUDED.body,\n"
     "       EXCLUDED.state, EXCLUDED.author_id, EXCLUDED.created_at, EXCLUDED.updated_at,\n"
     "       EXCLUDED.closed_at, EXCLUDED.merged_at, EXCLUDED.merged, EXCLUDED.draft,\n"
     "       EXCLUDED.additions, EXCLUDED.deletions, EXCLUDED.changed_files,\n"
     "       EXCLUDED.base_branch, EXCLUDED.head_branch, EXCLUDED.html_url)",
     3},
    /* The state row, only if this event is newer than the stored one. */
    {"pgw_state",
     "INSERT INTO progressive_backfill_state AS s\n"
     "  (repository_id, backfill_id, status, event_status, total_prs, processed_prs,\n"
     "   last_processed_cursor, last_processed_at, error, metadata, last_seq, started_at,\n"
     "   finished_at)\n"
     "VALUES ($1::bigint, $2::text, $3::text, $4::text, $5::integer, $6::integer, $7::text,\n"
     "        CASE WHEN $8::boolean THEN now() END, $9::text, $10::jsonb, $11::bigint,\n"
     "        $12::timestamptz,\n"
     "        CASE WHEN $3::text IN ('completed', 'failed') THEN now() END)\n"
     "ON CONFLICT (repository_id) DO UPDATE SET\n"
     "  backfill_id = EXCLUDED.backfill_id, status = EXCLUDED.status,\n"
     "  event_status = EXCLUDED.event_status, total_prs = EXCLUDED.total_prs,\n"
     "  processed_prs = EXCLUDED.processed_prs,\n"
     "  last_processed_cursor = EXCLUDED.last_processed_cursor,\n"
     "  last_processed_at = coalesce(EXCLUDED.last_processed_at,\n"
     "      CASE WHEN s.backfill_id = EXCLUDED.backfill_id THEN s.last_processed_at END),\n"
     "  error = EXCLUDED.error, metadata = EXCLUDED.metadata, last_seq = EXCLUDED.last_seq,\n"
     "  started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,\n"
     "  updated_at = now()\n"
     "WHERE (s.backfill_id = EXCLUDED.backfill_id AND EXCLUDED.last_seq > s.last_seq)\n"
     "   OR (s.backfill_id <> EXCLUDED.backfill_id AND EXCLUDED.started_at > s.started_at)",
     12},
    {"pgw_chunk",
     "INSERT INTO backfill_chunks (backfill_id, chunk_number, repository_id, pr_count,\n"
     "                             processed_prs, cursor, api_requests, api_points)\n"
     "VALUES ($1::text, $2::integer, $3::bigint, $4::integer, $5::integer, $6::text,\n"
     "        $7::bigint, $8::bigint)\n"
     "ON CONFLICT (backfill_id, chunk_number) DO NOTHING",
     8},
};
const size_t pgw_event_nstmts = sizeof pgw_event_stmts / sizeof pgw_event_stmts[0];

/* The fields both event types share. Strings are borrowed from data. */
struct ev_head {
    const char *owner, *name;
    const char *github_id; /* repositoryId as text, or NULL */
    const char *backfill_id;
    int64_t seq, chunk, started_ms;
    char github_id_buf[24];
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Does full equal owner "/" name, ignoring ASCII case? */
static int same_repo(const char *full, const char *owner, const char *name)
{
    size_t lo = strlen(owner), i;

    if (strlen(full) != lo + 1 + strlen(name) || full[lo] != '/')
        return 0;
    for (i = 0; i < lo; i++)
        if (ascii_lower((unsigned char)full[i]) != ascii_lower((unsigned char)owner[i]))
            return 0;
    for (i = 0; name[i]; i++)
        if (ascii_lower((unsigned char)full[lo + 1 + i]) != ascii_lower((unsigned char)name[i]))
            return 0;
    return 1;
}

static int decode_head(json_t *d, int64_t chunk_min, struct ev_head *h, char *errstr,
                       size_t errlen)
{
    const char *full;
    int64_t rid;
    int rc;

    memset(h, 0, sizeof *h);
    if (pgwf_get_ident(d, "", "repository", REQ, 2 * IDENT_MAX + 1, &full, errstr, errlen) < 0 ||
        pgwf_get_ident(d, "", "owner", REQ, IDENT_MAX, &h->owner, errstr, errlen) < 0 ||
        pgwf_get_ident(d, "", "name", REQ, IDENT_MAX, &h->name, errstr, errlen) < 0 ||
        pgwf_get_ident(d, "", "backfillId", REQ, BACKFILL_ID_MAX, &h->backfill_id, errstr,
                       errlen) < 0 ||
        pgwf_get_int(d, "", "seq", REQ, 1, INT64_MAX, &h->seq, errstr, errlen) < 0 ||
        pgwf_get_int(d, "", "chunk", REQ, chunk_min, INT32_HI, &h->chunk, errstr, errlen) < 0 ||
        pgwf_get_int(d, "", "startedAt", REQ, 0, MS_MAX, &h->started_ms, errstr, errlen) < 0 ||
        (rc = pgwf_get_int(d, "", "repositoryId", OPT | NUL_OK, 1, INT64_MAX, &rid, errstr,
                           errlen)) < 0)
        return PGW_EBADEVENT;
    if (strchr(h->owner, '/') || strchr(h->name, '/') || !same_repo(full, h->owner, h->name)) {
        snprintf(errstr, errlen, "repository: does not match owner/name");
        return PGW_EBADEVENT;
    }
    if (rc > 0) {
        snprintf(h->github_id_buf, sizeof h->github_id_buf, "%lld", (long long)rid);
        h->github_id = h->github_id_buf;
    }
    return PGW_OK;
}

/* Upserts the repository; its id (decimal) into id. */
static int repo_id(pgw *w, const struct ev_head *h, char id[24], char *errstr, size_t errlen)
{
    const char *params[3] = {h->owner, h->name, h->github_id};
    PGresult *r;
    int rc, tries;

    /* No row comes back only if a concurrent writer inserted the row after
     * this statement's snapshot was taken; the next try sees it. */
    for (tries = 0; tries < 3; tries++) {
        if ((rc = pgw_exec(w, "repository upsert", "pgw_repo", 3, params, &r, errstr, errlen)))
            return rc;
        if (PQntuples(r) == 1) {
            snprintf(id, 24, "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
            return PGW_OK;
        }
        PQclear(r);
    }
    snprintf(errstr, errlen, "repository upsert: row not found after 3 tries");
    return PGW_EDB;
}

/* json_object_set_new that also fails on a NULL value (allocation
 * failure upstream). Steals v either way. */
static int put(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

/* A pull request's fields, copied into one object of the pgw_prs
 * recordset (written straight as JSON text, see pgwf_buf). */
enum field_type { F_TEXT, F_INT, F_TIME, F_BOOL };
static const struct pr_field {
    const char *key; /* in the event */
    const char *col; /* in the recordset */
    enum field_type type;
    int flags;
    int64_t lo; /* F_INT: minimum (maximum: INT32_HI) */
} pr_fields[] = {
    {"number", "number", F_INT, REQ, 1},
    {"title", "title", F_TEXT, REQ, 0},
    {"body", "body", F_TEXT, OPT | NUL_OK, 0},
    {"draft", "draft", F_BOOL, REQ, 0},
    {"merged", "merged", F_BOOL, REQ, 0},
    {"createdAt", "created_at", F_TIME, REQ, 0},
    {"updatedAt", "updated_at", F_TIME, REQ, 0},
    {"closedAt", "closed_at", F_TIME, OPT | NUL_OK, 0},
    {"mergedAt", "merged_at", F_TIME, OPT | NUL_OK, 0},
    {"additions", "additions", F_INT, OPT | NUL_OK, 0},
    {"deletions", "deletions", F_INT, OPT | NUL_OK, 0},
    {"changedFiles", "changed_files", F_INT, OPT | NUL_OK, 0},
    {"baseBranch", "base_branch", F_TEXT, OPT | NUL_OK, 0},
    {"headBranch", "head_branch", F_TEXT, OPT | NUL_OK, 0},
    {"url", "html_url", F_TEXT, REQ, 0},
};

static void emit_key(struct pgwf_buf *b, const char *col)
{
    pgwf_buf_lit(b, ",\"");
    pgwf_buf_lit(b, col);
    pgwf_buf_lit(b, "\":");
}

/* Appends ,"col":value for obj[f->key]; nothing if absent or null (the
 * recordset reads NULL). 0 ok, -1 invalid (errstr). */
static int emit_field(struct pgwf_buf *b, const struct pr_field *f, json_t *obj,
                      const char *ctx, char *errstr, size_t errlen)
{
    const char *s;
    size_t len;
    int64_t v;
    int rc, flag;

    switch (f->type) {
    case F_TEXT:
        if ((rc = pgwf_get_text(obj, ctx, f->key, f->flags, &s, &len, errstr, errlen)) > 0) {
            emit_key(b, f->col);
            pgwf_buf_text(b, s, len);
        }
        break;
    case F_INT:
        if ((rc = pgwf_get_int(obj, ctx, f->key, f->flags, f->lo, INT32_HI, &v, errstr,
                               errlen)) > 0) {
            emit_key(b, f->col);
            pgwf_buf_int(b, v);
        }
        break;
    case F_TIME: /* validated: digits, '-', ':', '.', 'T', 'Z', '+' only */
        if ((rc = pgwf_get_time(obj, ctx, f->key, f->flags, &s, errstr, errlen)) > 0) {
            emit_key(b, f->col);
            pgwf_buf_lit(b, "\"");
            pgwf_buf_lit(b, s);
            pgwf_buf_lit(b, "\"");
        }
        break;
    default:
        if ((rc = pgwf_get_bool(obj, ctx, f->key, f->flags, &flag, errstr, errlen)) > 0) {
            emit_key(b, f->col);
            pgwf_buf_lit(b, flag ? "true" : "false");
        }
        break;
    }
    return rc < 0 ? -1 : 0;
}

/* The author of one pull request. When GitHub gave an id, appends a
 * contributor object to authors and ,"author_github_id":id to the row;
 * a null author or one without id leaves author_id NULL. */
static int decode_author(json_t *pr, const char *ctx, struct pgwf_buf *row,
                         struct pgwf_buf *authors, size_t *nauthors, char *errstr, size_t errlen)
{
    static const struct pr_field avatar = {"avatarUrl", "avatar_url", F_TEXT, OPT | NUL_OK, 0};
    static const struct pr_field bot = {"isBot", "is_bot", F_BOOL, REQ, 0};
    json_t *a;
    char actx[80];
    const char *login;
    size_t len;
    int64_t gid;
    int rc;

    if ((rc = pgwf_get_object(pr, ctx, "author", REQ | NUL_OK, &a, errstr, errlen)) <= 0)
        return rc;
    snprintf(actx, sizeof actx, "%s.author", ctx);
    if (pgwf_get_text(a, actx, "login", REQ, &login, &len, errstr, errlen) < 0 ||
        (rc = pgwf_get_int(a, actx, "githubId", OPT | NUL_OK, 1, INT64_MAX, &gid, errstr,
                           errlen)) < 0)
        return -1;
    if (len == 0 || len > IDENT_MAX) {
        snprintf(errstr, errlen, "%s.login: %s", actx, len ? "too long" : "empty");
        return -1;
    }
    if (rc == 0) { /* no GitHub id: validated, not stored */
        struct pgwf_buf scratch = {0};

        rc = emit_field(&scratch, &avatar, a, actx, errstr, errlen) ||
             emit_field(&scratch, &bot, a, actx, errstr, errlen);
        pgwf_buf_free(&scratch);
        return rc ? -1 : 0;
    }
    emit_key(row, "author_github_id");
    pgwf_buf_int(row, gid);
    pgwf_buf_lit(authors, (*nauthors)++ ? ",{\"github_id\":" : "[{\"github_id\":");
    pgwf_buf_int(authors, gid);
    emit_key(authors, "username");
    pgwf_buf_text(authors, login, len);
    if (emit_field(authors, &avatar, a, actx, errstr, errlen) ||
        emit_field(authors, &bot, a, actx, errstr, errlen))
        return -1;
    pgwf_buf_lit(authors, "}");
    return 0;
}

/* One pull request -> one object of the pgw_prs recordset. */
static int decode_pr(json_t *pr, size_t i, struct pgwf_buf *rows, struct pgwf_buf *authors,
                     size_t *nauthors, char *errstr, size_t errlen)
{
    static const char *const states[] = {"open", "closed", "merged"};
    char ctx[48];
    const char *state;
    int64_t gid;
    size_t k;

    snprintf(ctx, sizeof ctx, "pullRequests[%zu]", i);
    if (!json_is_object(pr)) {
        snprintf(errstr, errlen, "%s: expected an object", ctx);
        return -1;
    }
    if (pgwf_get_id64(pr, ctx, "githubId", REQ, &gid, errstr, errlen) < 0 ||
        pgwf_get_ident(pr, ctx, "state", REQ, 16, &state, errstr, errlen) < 0)
        return -1;
    for (k = 0; k < 3 && strcmp(state, states[k]); k++)
        ;
    if (k == 3) {
        snprintf(errstr, errlen, "%s.state: expected open, closed or merged", ctx);
        return -1;
    }
    pgwf_buf_lit(rows, i ? ",{\"github_id\":" : "[{\"github_id\":");
    pgwf_buf_int(rows, gid);
    emit_key(rows, "state");
    pgwf_buf_text(rows, state, strlen(state));
    for (k = 0; k < sizeof pr_fields / sizeof pr_fields[0]; k++)
        if (emit_field(rows, &pr_fields[k], pr, ctx, errstr, errlen))
            return -1;
    if (decode_author(pr, ctx, rows, authors, nauthors, errstr, errlen))
        return -1;
    pgwf_buf_lit(rows, "}");
    return 0;
}

int pgw_apply_pull_requests(pgw *w, json_t *data, char *errstr, size_t errlen)
{
    struct ev_head h;
    struct pgwf_buf rows = {0}, authors = {0}; /* owned */
    json_t *prs;
    const char *rows_txt, *authors_txt;
    char rid[24];
    size_t i, n, nauthors = 0;
    int rc = PGW_EBADEVENT;

    if (decode_head(data, 1, &h, errstr, errlen) ||
        pgwf_get_array(data, "", "pullRequests", REQ, &prs, errstr, errlen) < 0)
        goto out;
    n = json_array_size(prs);
    for (i = 0; i < n; i++)
        if (decode_pr(json_array_get(prs, i), i, &rows, &authors, &nauthors, errstr, errlen) < 0)
            goto out;
    pgwf_buf_lit(&rows, n ? "]" : "[]");
    pgwf_buf_lit(&authors, nauthors ? "]" : "[]");
    rows_txt = pgwf_buf_str(&rows);
    authors_txt = pgwf_buf_str(&authors);
    if (!rows_txt || !authors_txt) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    if ((rc = pgw_savepoint(w, errstr, errlen)) || (rc = repo_id(w, &h, rid, errstr, errlen)))
        goto out;
    if (nauthors > 0) {
        const char *p[1] = {authors_txt};

        if ((rc = pgw_exec(w, "contributors upsert", "pgw_contrib", 1, p, NULL, errstr, errlen)))
            goto out;
    }
    if (n > 0) {
        const char *p[3] = {rid, h.backfill_id, rows_txt};

        rc = pgw_exec(w, "pull_requests upsert", "pgw_prs", 3, p, NULL, errstr, errlen);
    }
out:
    pgwf_buf_free(&rows);
    pgwf_buf_free(&authors);
    return rc;
}

/* ms since the epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (ms in [0, MS_MAX]). */
static void fmt_ms(int64_t ms, char out[96])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Event status -> state status; NULL if unknown. */
static const char *state_status(const char *ev)
{
    static const char *const map[][2] = {{"started", "active"},     {"processing", "active"},
                                         {"rate_limited", "paused"}, {"completed", "completed"},
                                         {"failed", "failed"}};
    size_t i;

    for (i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(ev, map[i][0]))
            return map[i][1];
    return NULL;
}

/* The decoded progress event beyond the head; strings owned. */
struct ev_progress {
    const char *ev_status, *status; /* borrowed / static */
    int64_t progress, total, chunk_size, requests, points;
    int has_chunk_size;
    char *cursor, *error, *metadata; /* owned, NULL = SQL NULL */
};

/* A nullable text field, cleaned, as a malloc'd string (*out untouched if
 * absent or null). */
static int get_clean(json_t *d, const char *key, int flags, char **out, char *errstr,
                     size_t errlen)
{
    const char *s;
    size_t len;
    int rc = pgwf_get_text(d, "", key, flags | NUL_OK, &s, &len, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!(*out = pgwf_clean(s, len, NULL))) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    return 1;
}

/* metadata jsonb: chunk, chunkSize, cutoffDate, reachedTimeLimit, apiCost
 * {requests, points, remaining, resetAt}, retryAt. */
static int build_metadata(json_t *d, const struct ev_head *h, struct ev_progress *p,
                          char *errstr, size_t errlen)
{
    json_t *cost;               /* borrowed from d */
    json_t *m = NULL, *c = NULL; /* owned */
    const char *cutoff, *retry = NULL, *reset;
    size_t reset_len;
    int64_t remaining;
    int reached, has_remaining, has_reset, rc = -1;

    if (pgwf_get_time(d, "", "cutoffDate", REQ, &cutoff, errstr, errlen) < 0 ||
        pgwf_get_bool(d, "", "reachedTimeLimit", REQ, &reached, errstr, errlen) < 0 ||
        pgwf_get_time(d, "", "retryAt", OPT | NUL_OK, &retry, errstr, errlen) < 0 ||
        pgwf_get_object(d, "", "apiCost", REQ, &cost, errstr, errlen) < 0 ||
        pgwf_get_int(cost, "apiCost", "requests", REQ, 0, INT64_MAX, &p->requests, errstr,
                     errlen) < 0 ||
        pgwf_get_int(cost, "apiCost", "points", REQ, 0, INT64_MAX, &p->points, errstr, errlen) <
            0 ||
        (has_remaining = pgwf_get_int(cost, "apiCost", "remaining", OPT | NUL_OK, INT64_MIN,
                                      INT64_MAX, &remaining, errstr, errlen)) < 0 ||
        (has_reset = pgwf_get_text(cost, "apiCost", "resetAt", OPT | NUL_OK, &reset, &reset_len,
                                   errstr, errlen)) < 0)
        return -1;
    if (!(m = json_object()) || !(c = json_object()) ||
        put(c, "requests", json_integer(p->requests)) ||
        put(c, "points", json_integer(p->points)) ||
        put(c, "remaining", has_remaining ? json_integer(remaining) : json_null()) ||
        put(c, "resetAt", has_reset ? pgwf_clean_json(reset, reset_len) : json_null()) ||
        json_object_set(m, "apiCost", c) || /* m takes its own reference */
        put(m, "chunk", json_integer(h->chunk)) ||
        (p->has_chunk_size && put(m, "chunkSize", json_integer(p->chunk_size))) ||
        put(m, "cutoffDate", json_string(cutoff)) ||
        put(m, "reachedTimeLimit", json_boolean(reached)) ||
        put(m, "retryAt", retry ? json_string(retry) : json_null())) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    if (!(p->metadata = json_dumps(m, JSON_COMPACT))) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(c);
    json_decref(m);
    return rc;
}

static int decode_progress(json_t *d, const struct ev_head *h, struct ev_progress *p,
                           char *errstr, size_t errlen)
{
    int rc;

    if (pgwf_get_ident(d, "", "status", REQ, 32, &p->ev_status, errstr, errlen) < 0)
        return -1;
    if (!(p->status = state_status(p->ev_status))) {
        snprintf(errstr, errlen,
                 "status: expected started, processing, rate_limited, completed or failed");
        return -1;
    }
    if (pgwf_get_int(d, "", "progress", REQ, 0, INT32_HI, &p->progress, errstr, errlen) < 0 ||
        pgwf_get_int(d, "", "total", REQ, 1, INT32_HI, &p->total, errstr, errlen) < 0 ||
        (rc = pgwf_get_int(d, "", "chunkSize", OPT, 0, INT32_HI, &p->chunk_size, errstr,
                           errlen)) < 0)
        return -1;
    p->has_chunk_size = rc > 0;
    if (get_clean(d, "cursor", REQ, &p->cursor, errstr, errlen) < 0 ||
        get_clean(d, "error", OPT, &p->error, errstr, errlen) < 0)
        return -1;
    return build_metadata(d, h, p, errstr, errlen);
}

int pgw_apply_progress(pgw *w, json_t *data, char *errstr, size_t errlen)
{
    struct ev_head h;
    struct ev_progress p;
    char rid[24], total[24], progress[24], seq[24], chunk[24], size[24], req[24], pts[24];
    char started[96]; /* fits any struct tm, keeps -Wformat-truncation quiet */
    int rc = PGW_EBADEVENT;

    memset(&p, 0, sizeof p);
    if (decode_head(data, 0, &h, errstr, errlen) || decode_progress(data, &h, &p, errstr, errlen))
        goto out;
    snprintf(total, sizeof total, "%lld", (long long)p.total);
    snprintf(progress, sizeof progress, "%lld", (long long)p.progress);
    snprintf(seq, sizeof seq, "%lld", (long long)h.seq);
    snprintf(chunk, sizeof chunk, "%lld", (long long)h.chunk);
    snprintf(size, sizeof size, "%lld", (long long)p.chunk_size);
    snprintf(req, sizeof req, "%lld", (long long)p.requests);
    snprintf(pts, sizeof pts, "%lld", (long long)p.points);
    fmt_ms(h.started_ms, started);

    if ((rc = pgw_savepoint(w, errstr, errlen)) || (rc = repo_id(w, &h, rid, errstr, errlen)))
        goto out;
    {
        int processed = !strcmp(p.ev_status, "processing") || !strcmp(p.ev_status, "completed");
        const char *sp[12] = {rid,     h.backfill_id, p.status,   p.ev_status,
                              total,   progress,      p.cursor,   processed ? "true" : "false",
                              p.error, p.metadata,    seq,        started};

        if ((rc = pgw_exec(w, "backfill state upsert", "pgw_state", 12, sp, NULL, errstr,
                           errlen)))
            goto out;
    }
    if (!strcmp(p.ev_status, "processing") && h.chunk >= 1) {
        const char *cp[8] = {h.backfill_id, chunk,    rid, p.has_chunk_size ? size : NULL,
                             progress,      p.cursor, req, pts};

        rc = pgw_exec(w, "backfill chunk insert", "pgw_chunk", 8, cp, NULL, errstr, errlen);
    }
out:
    free(p.cursor);
    free(p.error);
    free(p.metadata);
    return rc;
}
