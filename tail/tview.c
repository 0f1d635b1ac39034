/* tview: see tview.h. Rows live in one array kept sorted by key (binary
 * search, insertion by memmove): a bulk add is hundreds of repositories,
 * not millions. The --repo filter is a second sorted array of keys. */
#define _POSIX_C_SOURCE 200809L
#include "tview.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dynbuf.h"
#include "json_field.h"
#include "isotime.h"

struct tview {
    struct tview_row *rows; /* owned, sorted by key */
    size_t n, cap;
    char (*follow)[REPO_FULL_MAX + 1]; /* owned, sorted; NULL = follow everything */
    size_t nfollow, follow_cap;
};

tview *tview_new(void)
{
    return calloc(1, sizeof(tview));
}

void tview_free(tview *tv)
{
    if (!tv)
        return;
    free(tv->rows);
    free(tv->follow);
    free(tv);
}

static void lower_copy(const char *in, char out[REPO_FULL_MAX + 1])
{
    size_t i;
    for (i = 0; in[i] && i < REPO_FULL_MAX; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* Index of key in rows, or -(insertion point) - 1. */
static long find_row(const tview *tv, const char *key)
{
    size_t lo = 0, hi = tv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(tv->rows[mid].key, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* The row for key (lower-cased), created (TV_WAITING, zeroed) if absent.
 * NULL when out of memory. */
static struct tview_row *get_row(tview *tv, const char *key, const char *display)
{
    long at = find_row(tv, key);
    size_t pos;
    struct tview_row *r;

    if (at >= 0)
        return &tv->rows[at];
    pos = (size_t)(-at - 1);
    if (dynbuf_grow_array(&tv->rows, &tv->cap, tv->n + 1, sizeof *tv->rows))
        return NULL;
    memmove(&tv->rows[pos + 1], &tv->rows[pos], (tv->n - pos) * sizeof *tv->rows);
    tv->n++;
    r = &tv->rows[pos];
    memset(r, 0, sizeof *r);
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->display, sizeof r->display, "%s", display);
    return r;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int tview_wants(const tview *tv, const char *key)
{
    char k[REPO_FULL_MAX + 1];
    if (!tv->follow)
        return 1;
    lower_copy(key, k);
    return bsearch(k, tv->follow, tv->nfollow, sizeof *tv->follow, cmp_key) != NULL;
}

int tview_follow(tview *tv, const char *full, char *errstr, size_t errlen)
{
    char owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1], key[REPO_FULL_MAX + 1];

    if (repo_parse(full, owner, name, errstr, errlen))
        return -1;
    repo_key(owner, name, key);
    if (tv->follow && tview_wants(tv, key))
        return 0;
    if (dynbuf_grow_array(&tv->follow, &tv->follow_cap, tv->nfollow + 1, sizeof *tv->follow))
        return TV_NOMEM;
    if (!get_row(tv, key, full)) {
        if (tv->nfollow == 0) { /* keep "follow everything" meaning intact */
            free(tv->follow);
            tv->follow = NULL;
            tv->follow_cap = 0;
        }
        return TV_NOMEM;
    }
    memcpy(tv->follow[tv->nfollow++], key, sizeof key);
    qsort(tv->follow, tv->nfollow, sizeof *tv->follow, cmp_key);
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* What both event types carry; strings borrowed from the envelope. */
struct tv_head {
    const char *repository, *backfill_id;
    char display[REPO_FULL_MAX + 1]; /* owner/name with their case, else repository */
    int64_t seq, started_ms, ts;
};

/* Writes the reason; returns TV_BAD (-1). */
static int bad(char *errstr, size_t errlen, const char *what)
{
    snprintf(errstr, errlen, "%s", what);
    return TV_BAD;
}

/* 0 when integer field k of o is in [lo, hi] (into *out), else -1 */
static int tv_get_int(json_t *o, const char *k, int64_t lo, int64_t hi, int64_t *out)
{
    return jfield_int(o, k, lo, hi, out) == JF_OK ? 0 : -1;
}

static int decode_head(json_t *env, json_t *d, struct tv_head *h, char *errstr, size_t errlen)
{
    const char *slash, *owner, *name;
    if (tv_get_int(env, "ts", 0, INT64_MAX / 2, &h->ts))
        return bad(errstr, errlen, "ts: expected a non-negative integer");
    if (!(h->repository = jfield_str(d, "repository", REPO_FULL_MAX)) ||
        !(slash = strchr(h->repository, '/')) || slash == h->repository || !slash[1] ||
        strchr(slash + 1, '/'))
        return bad(errstr, errlen, "data.repository: expected owner/name");
    if (!(h->backfill_id = jfield_str(d, "backfillId", EVENT_ID_MAX)))
        return bad(errstr, errlen, "data.backfillId: expected a string of 1..64 bytes");
    if (tv_get_int(d, "seq", 1, INT64_MAX, &h->seq))
        return bad(errstr, errlen, "data.seq: expected an integer >= 1");
    if (tv_get_int(d, "startedAt", 0, INT64_MAX / 2, &h->started_ms))
        return bad(errstr, errlen, "data.startedAt: expected a non-negative integer");
    /* the key is lower-cased; owner and name keep GitHub's spelling */
    owner = jfield_str(d, "owner", REPO_OWNER_MAX);
    name = jfield_str(d, "name", REPO_NAME_MAX);
    if (owner && name && strlen(owner) + 1 + strlen(name) == strlen(h->repository) &&
        !strncasecmp(owner, h->repository, strlen(owner)) &&
        !strcasecmp(name, h->repository + strlen(owner) + 1))
        snprintf(h->display, sizeof h->display, "%s/%s", owner, name);
    else
        snprintf(h->display, sizeof h->display, "%s", h->repository);
    return 0;
}

static int parse_status(const char *s, enum tview_status *out)
{
    static const struct {
        const char *name;
        enum tview_status st;
    } map[] = {{"started", TV_STARTED},
               {"processing", TV_PROCESSING},
               {"rate_limited", TV_RATE_LIMITED},
               {"completed", TV_COMPLETED},
               {"failed", TV_FAILED}};
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *out = map[i].st;
            return 0;
        }
    return -1;
}

/* The progress fields, decoded into a scratch row (applied only if valid). */
static int decode_progress(json_t *d, struct tview_row *p, char *errstr, size_t errlen)
{
    json_t *cost = json_object_get(d, "apiCost"); /* borrowed */
    json_t *err = json_object_get(d, "error");    /* borrowed */
    const char *retry = json_string_value(json_object_get(d, "retryAt"));
    int64_t progress, total, chunk;
    time_t t;

    if (parse_status(json_string_value(json_object_get(d, "status")), &p->status))
        return bad(errstr, errlen, "data.status: expected started, processing, rate_limited, "
                                   "completed or failed");
    if (tv_get_int(d, "progress", 0, 1000000, &progress) || tv_get_int(d, "total", 1, 1000000, &total) ||
        tv_get_int(d, "chunk", 0, 1000000, &chunk))
        return bad(errstr, errlen, "data.progress/total/chunk: expected integers in range");
    if (!json_is_object(cost) || tv_get_int(cost, "requests", 0, INT64_MAX, &p->requests) ||
        tv_get_int(cost, "points", 0, INT64_MAX, &p->points))
        return bad(errstr, errlen, "data.apiCost: expected {requests, points}");
    if (err && !json_is_null(err) && !json_is_string(err))
        return bad(errstr, errlen, "data.error: expected a string or null");
    p->progress = (int)progress;
    p->total = (int)total;
    p->chunk = (int)chunk;
    p->retry_at_ms = retry && !isotime_parse(retry, &t) ? (int64_t)t * 1000 : 0;
    snprintf(p->error, sizeof p->error, "%s", json_is_string(err) ? json_string_value(err) : "");
    for (char *c = p->error; *c; c++) /* one row is one line */
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return 0;
}

/* Is (started, id) of the event newer than the row's backfill? */
static int newer_backfill(const struct tview_row *r, const struct tv_head *h)
{
    if (!r->backfill_id[0])
        return 1;
    if (h->started_ms != r->started_ms)
        return h->started_ms > r->started_ms;
    return strcmp(h->backfill_id, r->backfill_id) > 0;
}

enum tview_result tview_apply(tview *tv, json_t *env, char *errstr, size_t errlen)
{
    const char *name = json_string_value(json_object_get(env, "name"));
    json_t *d = json_object_get(env, "data"); /* borrowed */
    struct tview_row scratch, *r;
    struct tv_head h;
    char key[REPO_FULL_MAX + 1];
    int is_progress;

    if (!name)
        return bad(errstr, errlen, "not an event envelope (no name)");
    is_progress = !strcmp(name, EVENT_PROGRESS);
    if (!is_progress && strcmp(name, EVENT_PULL_REQUESTS))
        return TV_IGNORED;
    if (!json_is_object(d))
        return bad(errstr, errlen, "data: expected an object");
    if (decode_head(env, d, &h, errstr, errlen))
        return TV_BAD;
    memset(&scratch, 0, sizeof scratch);
    if (is_progress && decode_progress(d, &scratch, errstr, errlen))
        return TV_BAD;
    lower_copy(h.repository, key);
    if (!tview_wants(tv, key))
        return TV_IGNORED;
    if (!(r = get_row(tv, key, h.display)))
        return TV_NOMEM;
    if (strcmp(r->backfill_id, h.backfill_id)) {
        if (!newer_backfill(r, &h))
            return TV_IGNORED;
        memset(&r->backfill_id, 0, sizeof *r - offsetof(struct tview_row, backfill_id));
        snprintf(r->backfill_id, sizeof r->backfill_id, "%s", h.backfill_id);
        snprintf(r->display, sizeof r->display, "%s", h.display);
        r->started_ms = h.started_ms;
        r->status = TV_STARTED;
    } else if (h.seq <= r->seq) {
        return TV_IGNORED;
    }
    r->seq = h.seq;
    r->updated_ms = h.ts > r->updated_ms ? h.ts : r->updated_ms;
    if (!is_progress) {
        r->pr_events++;
        r->pr_records += (int64_t)json_array_size(json_object_get(d, "pullRequests"));
        return TV_APPLIED;
    }
    r->status = scratch.status;
    r->progress = scratch.progress;
    r->total = scratch.total;
    r->chunk = scratch.chunk;
    r->requests = scratch.requests;
    r->points = scratch.points;
    r->retry_at_ms = scratch.status == TV_RATE_LIMITED ? scratch.retry_at_ms : 0;
    memcpy(r->error, scratch.error, sizeof r->error);
    return TV_APPLIED;
}

/* ---- reading ------------------------------------------------------------ */

size_t tview_count(const tview *tv)
{
    return tv->n;
}

const struct tview_row *tview_row(const tview *tv, size_t i)
{
    return i < tv->n ? &tv->rows[i] : NULL;
}

void tview_totals(const tview *tv, struct tview_totals *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < tv->n; i++) {
        const struct tview_row *r = &tv->rows[i];
        out->repositories++;
        out->by_status[r->status]++;
        out->progress += r->progress;
        out->total += r->total;
        out->requests += r->requests;
        out->points += r->points;
        if (r->started_ms && (!out->first_started_ms || r->started_ms < out->first_started_ms))
            out->first_started_ms = r->started_ms;
        if (r->updated_ms > out->last_updated_ms)
            out->last_updated_ms = r->updated_ms;
    }
}

int tview_terminal(enum tview_status s)
{
    return s == TV_COMPLETED || s == TV_FAILED;
}

int tview_done(const tview *tv)
{
    if (tv->n == 0)
        return 0;
    /* rows only exist for followed repositories (the filter drops the rest) */
    for (size_t i = 0; i < tv->n; i++)
        if (!tview_terminal(tv->rows[i].status))
            return 0;
    return 1;
}

int tview_any_failed(const tview *tv)
{
    for (size_t i = 0; i < tv->n; i++)
        if (tv->rows[i].status == TV_FAILED)
            return 1;
    return 0;
}

const char *tview_status_name(enum tview_status s)
{
    static const char *const names[] = {"waiting",      "started",   "processing",
                                        "rate_limited", "completed", "failed"};
    return (unsigned)s <= TV_FAILED ? names[s] : "?";
}
