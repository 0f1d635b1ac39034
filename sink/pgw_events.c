/* pgw_events: decoding backfill/pull_requests and backfill/progress.update
 * (see schemas/pull_requests.schema.json, progress.update.schema.json)
 * into rows of the staging table (pgw_stage.c).
 *
 * Each event is validated completely in C before anything is staged, so a
 * malformed event costs no round trip and leaves nothing behind. Its rows
 * are written as COPY text in the column order of the staging table
 * (schemas/pg_writer/stage_table.sql): one line
 * for the event and one per pull request. Text is cleaned (NUL dropped,
 * invalid UTF-8 replaced) on the way; whatever Postgres alone can judge
 * (a timestamp on February 30, a duplicate (repository, number)) is judged
 * by the statements of schemas/pg_writer/. Calls pgw_stage.c and
 * pgw_fields.c. */
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

/* FNV-1a of "owner/name" folded to ASCII lower case: which progress events
 * of a batch concern the same repository (see progress_rounds in pgw_stage.c). */
static uint64_t repo_key(const struct ev_head *h)
{
    uint64_t x = 14695981039346656037ULL;
    const char *parts[2] = {h->owner, h->name};
    int i;

    for (i = 0; i < 2; i++) {
        const unsigned char *p;

        for (p = (const unsigned char *)parts[i]; *p; p++)
            x = (x ^ (uint64_t)ascii_lower(*p)) * 1099511628211ULL;
        x = (x ^ '/') * 1099511628211ULL;
    }
    return x;
}

/* json_object_set_new that also fails on a NULL value (allocation
 * failure upstream). Steals v either way. */
static int put(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

/* The columns every staged line starts with: kind, ev, pos, owner, name,
 * backfill_id, repo_gid. */
static void put_head(struct pgwf_buf *b, char kind, long ev, long pos, const struct ev_head *h)
{
    pgwf_buf_raw(b, &kind, 1);
    pgwf_copy_int(b, ev);
    pgwf_copy_int(b, pos);
    pgwf_copy_text(b, h->owner, strlen(h->owner));
    pgwf_copy_text(b, h->name, strlen(h->name));
    pgwf_copy_text(b, h->backfill_id, strlen(h->backfill_id));
    if (h->github_id)
        pgwf_copy_lit(b, h->github_id);
    else
        pgwf_copy_null(b);
}

/* n NULL columns. */
static void put_nulls(struct pgwf_buf *b, int n)
{
    while (n-- > 0)
        pgwf_copy_null(b);
}

/* A pull request's fields, in the order of their staging columns. */
enum field_type { F_TEXT, F_INT, F_TIME, F_BOOL };
static const struct pr_field {
    const char *key; /* in the event */
    enum field_type type;
    int flags;
    int64_t lo; /* F_INT: minimum (maximum: INT32_HI) */
} pr_fields[] = {
    {"number", F_INT, REQ, 1},
    {"title", F_TEXT, REQ, 0},
    {"body", F_TEXT, OPT | NUL_OK, 0},
    {"draft", F_BOOL, REQ, 0},
    {"merged", F_BOOL, REQ, 0},
    {"createdAt", F_TIME, REQ, 0},
    {"updatedAt", F_TIME, REQ, 0},
    {"closedAt", F_TIME, OPT | NUL_OK, 0},
    {"mergedAt", F_TIME, OPT | NUL_OK, 0},
    {"additions", F_INT, OPT | NUL_OK, 0},
    {"deletions", F_INT, OPT | NUL_OK, 0},
    {"changedFiles", F_INT, OPT | NUL_OK, 0},
    {"baseBranch", F_TEXT, OPT | NUL_OK, 0},
    {"headBranch", F_TEXT, OPT | NUL_OK, 0},
    {"url", F_TEXT, REQ, 0},
};
#define PR_COLS 2 /* gid, state */
#define AUTHOR_COLS 4
#define PROGRESS_COLS 14
#define NPR_FIELDS ((int)(sizeof pr_fields / sizeof pr_fields[0]))

/* Appends the COPY field for obj[f->key]; NULL if absent or null. 0 ok,
 * -1 invalid (errstr). */
static int emit_field(struct pgwf_buf *b, const struct pr_field *f, json_t *obj,
                      const char *ctx, char *errstr, size_t errlen)
{
    const char *s;
    size_t len;
    int64_t v;
    int rc, flag;

    switch (f->type) {
    case F_TEXT:
        if ((rc = pgwf_get_text(obj, ctx, f->key, f->flags, &s, &len, errstr, errlen)) > 0)
            pgwf_copy_text(b, s, len);
        break;
    case F_INT:
        if ((rc = pgwf_get_int(obj, ctx, f->key, f->flags, f->lo, INT32_HI, &v, errstr,
                               errlen)) > 0)
            pgwf_copy_int(b, v);
        break;
    case F_TIME: /* validated: digits, '-', ':', '.', 'T', 'Z', '+' only */
        if ((rc = pgwf_get_time(obj, ctx, f->key, f->flags, &s, errstr, errlen)) > 0)
            pgwf_copy_lit(b, s);
        break;
    default:
        if ((rc = pgwf_get_bool(obj, ctx, f->key, f->flags, &flag, errstr, errlen)) > 0)
            pgwf_copy_lit(b, flag ? "t" : "f");
        break;
    }
    if (rc == 0)
        pgwf_copy_null(b);
    return rc < 0 ? -1 : 0;
}

/* The author of one pull request: author_gid, username, avatar_url,
 * is_bot when GitHub gave an id; four NULLs (author_id NULL) for a null
 * author or one without id. */
static int decode_author(json_t *pr, const char *ctx, struct pgwf_buf *row, char *errstr,
                         size_t errlen)
{
    static const struct pr_field avatar = {"avatarUrl", F_TEXT, OPT | NUL_OK, 0};
    static const struct pr_field bot = {"isBot", F_BOOL, REQ, 0};
    json_t *a;
    char actx[80];
    const char *login;
    size_t len;
    int64_t gid;
    int rc;

    if ((rc = pgwf_get_object(pr, ctx, "author", REQ | NUL_OK, &a, errstr, errlen)) <= 0) {
        put_nulls(row, AUTHOR_COLS);
        return rc;
    }
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
        put_nulls(row, AUTHOR_COLS);
        return rc ? -1 : 0;
    }
    pgwf_copy_int(row, gid);
    pgwf_copy_text(row, login, len);
    if (emit_field(row, &avatar, a, actx, errstr, errlen) ||
        emit_field(row, &bot, a, actx, errstr, errlen))
        return -1;
    return 0;
}

/* One pull request -> one 'p' line. */
static int decode_pr(json_t *pr, size_t i, const struct ev_head *h, long ev,
                     struct pgwf_buf *rows, char *errstr, size_t errlen)
{
    static const char *const states[] = {"open", "closed", "merged"};
    char ctx[48];
    const char *state;
    int64_t gid;
    int k;

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
    put_head(rows, PGW_KIND_PR, ev, (long)i, h);
    pgwf_copy_int(rows, gid);
    pgwf_copy_lit(rows, state);
    for (k = 0; k < NPR_FIELDS; k++)
        if (emit_field(rows, &pr_fields[k], pr, ctx, errstr, errlen))
            return -1;
    if (decode_author(pr, ctx, rows, errstr, errlen))
        return -1;
    put_nulls(rows, PROGRESS_COLS);
    pgwf_buf_raw(rows, "\n", 1);
    return 0;
}

int pgw_apply_pull_requests(pgw *w, json_t *data, char *errstr, size_t errlen)
{
    struct pgwf_buf *rows = pgw_rows(w); /* borrowed */
    long ev = pgw_event_index(w);
    struct ev_head h;
    json_t *prs;
    size_t i, n;

    pgwf_buf_reset(rows);
    if (decode_head(data, 1, &h, errstr, errlen) ||
        pgwf_get_array(data, "", "pullRequests", REQ, &prs, errstr, errlen) < 0)
        return PGW_EBADEVENT;
    put_head(rows, PGW_KIND_HEAD, ev, 0, &h);
    put_nulls(rows, PR_COLS + NPR_FIELDS + AUTHOR_COLS + PROGRESS_COLS);
    pgwf_buf_raw(rows, "\n", 1);
    n = json_array_size(prs);
    for (i = 0; i < n; i++)
        if (decode_pr(json_array_get(prs, i), i, &h, ev, rows, errstr, errlen) < 0)
            return PGW_EBADEVENT;
    return pgw_stage(w, PGW_KIND_HEAD, 0, errstr, errlen);
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

/* A text column from a string that may be NULL. */
static void put_opt_text(struct pgwf_buf *b, const char *s)
{
    if (s)
        pgwf_copy_text(b, s, strlen(s));
    else
        pgwf_copy_null(b);
}

/* The 's' line of a decoded progress event. */
static void put_progress(struct pgwf_buf *b, long ev, const struct ev_head *h,
                         const struct ev_progress *p)
{
    int processed = !strcmp(p->ev_status, "processing") || !strcmp(p->ev_status, "completed");
    char started[96]; /* fits any struct tm, keeps -Wformat-truncation quiet */

    fmt_ms(h->started_ms, started);
    put_head(b, PGW_KIND_PROGRESS, ev, 0, h);
    put_nulls(b, PR_COLS + NPR_FIELDS + AUTHOR_COLS);
    pgwf_copy_lit(b, p->status);
    pgwf_copy_lit(b, p->ev_status);
    pgwf_copy_int(b, p->total);
    pgwf_copy_int(b, p->progress);
    put_opt_text(b, p->cursor);
    pgwf_copy_lit(b, processed ? "t" : "f");
    put_opt_text(b, p->error);
    pgwf_copy_text(b, p->metadata, strlen(p->metadata));
    pgwf_copy_int(b, h->seq);
    pgwf_copy_lit(b, started);
    pgwf_copy_int(b, h->chunk);
    if (p->has_chunk_size)
        pgwf_copy_int(b, p->chunk_size);
    else
        pgwf_copy_null(b);
    pgwf_copy_int(b, p->requests);
    pgwf_copy_int(b, p->points);
    pgwf_buf_raw(b, "\n", 1);
}

int pgw_apply_progress(pgw *w, json_t *data, char *errstr, size_t errlen)
{
    struct pgwf_buf *rows = pgw_rows(w); /* borrowed */
    struct ev_head h;
    struct ev_progress p;
    int rc = PGW_EBADEVENT;

    memset(&p, 0, sizeof p);
    pgwf_buf_reset(rows);
    if (decode_head(data, 0, &h, errstr, errlen) || decode_progress(data, &h, &p, errstr, errlen))
        goto out;
    put_progress(rows, pgw_event_index(w), &h, &p);
    rc = pgw_stage(w, PGW_KIND_PROGRESS, repo_key(&h), errstr, errlen);
out:
    free(p.cursor);
    free(p.error);
    free(p.metadata);
    return rc;
}
