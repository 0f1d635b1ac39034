/* api: see api.h. */
#include "api.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"
#include "dynbuf.h"
#include "group_lag.h"
#include "json_field.h"
#include "kafka.h"
#include "kafka_health.h"
#include "log.h"
#include "repo_list.h"
#include "repo_name.h"

/* web/assets/, embedded at build time (cmake/embed_text.cmake) */
extern const char web_index_html[];
extern const char web_app_js[];
extern const char web_style_css[];

#define API_TRIGGER "bulk_add_ui"

void api_error(struct web_reply *rp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    free(rp->body);
    rp->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    rp->len = rp->body ? strlen(rp->body) : 0;
    rp->status = status;
    rp->type = "application/json";
}

/* Answers with the JSON value o (stolen). */
static void api_json(struct web_reply *rp, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        api_error(rp, 500, "out of memory");
        return;
    }
    free(rp->body);
    rp->body = s;
    rp->len = strlen(s);
    rp->status = status;
    rp->type = "application/json";
}

/* Answers {"<name>": <json text>} without parsing the text again. */
static void api_wrap(struct web_reply *rp, const char *name, const char *json_text)
{
    struct dynbuf b;
    dynbuf_init(&b, 0);
    if (dynbuf_add(&b, "{\"", 2) || dynbuf_add(&b, name, strlen(name)) ||
        dynbuf_add(&b, "\":", 2) || dynbuf_add(&b, json_text, strlen(json_text)) ||
        dynbuf_add(&b, "}", 1)) {
        dynbuf_free(&b);
        api_error(rp, 500, "out of memory");
        return;
    }
    free(rp->body);
    rp->body = b.data; /* taken from the buffer */
    rp->len = b.len;
    rp->status = 200;
    rp->type = "application/json";
}

/* --- what a request must carry to change anything ------------------------ */

/* Constant-time comparison, so the token cannot be guessed by timing. */
static int api_same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

/* A POST must be JSON, from this origin (no cross-site form or script can
 * change anything), and carry the token when one is set. 0: allowed. */
static int api_may_change(const struct web_app *app, const struct web_request *rq,
                          struct web_reply *rp)
{
    const char *type = rq->header(rq->conn, "Content-Type");
    const char *origin = rq->header(rq->conn, "Origin");
    const char *host = rq->header(rq->conn, "Host");
    const char *site = rq->header(rq->conn, "Sec-Fetch-Site");
    const char *auth = rq->header(rq->conn, "Authorization");
    char own[300];

    if (app->token && (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
                       !api_same_secret(auth + 7, app->token))) {
        api_error(rp, 401, "this server needs its access token: Authorization: Bearer TOKEN");
        return -1;
    }
    if (site && strcmp(site, "cross-site") == 0) {
        api_error(rp, 403, "cross-site requests may not change anything here");
        return -1;
    }
    if (origin && strcmp(origin, "null") != 0) {
        const char *o = strstr(origin, "://");
        snprintf(own, sizeof own, "%s", host ? host : "");
        if (!o || strcasecmp(o + 3, own) != 0) {
            api_error(rp, 403, "requests from another origin (%.100s) may not change anything "
                               "here", origin);
            return -1;
        }
    } else if (origin) {
        api_error(rp, 403, "requests from an opaque origin may not change anything here");
        return -1;
    }
    if (!type || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
        api_error(rp, 415, "send the body as JSON with Content-Type: application/json");
        return -1;
    }
    return 0;
}

/* Parses a JSON object body ("" counts as {}); NULL after answering. */
static json_t *api_body_object(const struct web_request *rq, struct web_reply *rp)
{
    json_error_t jerr;
    json_t *o;
    if (rq->body_len == 0)
        return json_object();
    o = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        api_error(rp, 400, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        api_error(rp, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* Refuses a field that is not in allowed (NULL-terminated). */
static int api_known_fields(const json_t *o, const char *const *allowed, struct web_reply *rp)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(k, *a) == 0;
        if (!known) {
            api_error(rp, 422, "unknown field \"%.100s\"", k);
            return -1;
        }
    }
    return 0;
}

/* Reads optional integer field key in [lo, hi] into *out (default kept). */
static int api_int_field(const json_t *o, const char *key, int lo, int hi, int *out,
                         struct web_reply *rp)
{
    int64_t v;
    switch (jfield_int(o, key, lo, hi, &v)) {
    case JF_OK: *out = (int)v; return 0;
    case JF_ABSENT: return 0;
    case JF_WRONG_TYPE: api_error(rp, 422, "%s must be an integer", key); return -1;
    default: api_error(rp, 422, "%s must be between %d and %d", key, lo, hi); return -1;
    }
}

/* --- queueing -------------------------------------------------------------- */

/* The progress update a queued backfill starts with, for every open page
 * (the workers' own events follow). */
static void api_announce_queued(const struct web_app *app, const struct job *job)
{
    char full[REPO_FULL_MAX + 2];
    snprintf(full, sizeof full, "%s/%s", job->owner, job->name);
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:i, s:I, s:n, s:n}",
                          "repository", full, "owner", job->owner, "name", job->name,
                          "backfillId", job->id, "seq", 0, "status", "queued", "progress", 0,
                          "total", job->max_prs, "startedAt", (json_int_t)job->ts, "error",
                          "retryAt");
    char *s = d ? json_dumps(d, JSON_COMPACT) : NULL;
    if (s)
        hub_publish(app->hub, job->key, s);
    free(s);
    json_decref(d);
}

/* Records jobs in Postgres: with_ids, the acknowledged ones with their
 * backfill (queued rows); else every one as a bare repository. */
static int api_record(const struct web_app *app, const struct job *jobs, size_t n,
                      const struct jq_result *acked, char *err, size_t errlen)
{
    json_t *arr = json_array();
    char *text;
    int rc;
    for (size_t i = 0; i < n && arr; i++) {
        if (acked && acked[i].done != 1)
            continue;
        json_t *e = json_pack("{s:s, s:s, s:I, s:i}", "owner", jobs[i].owner, "name",
                              jobs[i].name, "startedAt", (json_int_t)jobs[i].ts, "total",
                              jobs[i].max_prs);
        if (e && acked)
            json_object_set_new(e, "backfillId", json_string(jobs[i].id));
        if (!e || json_array_append_new(arr, e)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = store_record(app->db, text, err, errlen);
    free(text);
    return rc;
}

/* Queues jobs, then records their queued rows and tells the open pages.
 * Fills res; returns how many were not queued. */
static size_t api_queue(const struct web_app *app, const struct job *jobs, size_t n,
                        struct jq_result *res)
{
    char err[512];
    size_t failed = jq_send(app->jq, jobs, n, 0, res);
    if (failed < n && api_record(app, jobs, n, res, err, sizeof err))
        log_warn("queued, but the queued state was not recorded (%s); the page shows the "
                 "backfills once the workers report", err);
    for (size_t i = 0; i < n; i++)
        if (res[i].done == 1)
            api_announce_queued(app, &jobs[i]);
    return failed;
}

/* --- POST /api/bulk-add ------------------------------------------------------ */

struct bulk_reject {
    char reason[256];
};

static void bulk_on_reject(void *ctx, const char *where, const char *entry, const char *reason)
{
    struct bulk_reject *r = ctx;
    (void)where;
    (void)entry;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
}

static void api_bulk_add(const struct web_app *app, const struct web_request *rq,
                         struct web_reply *rp)
{
    static const char *const fields[] = {"repositories", "includeBackfill", "maxPRs",
                                         "sinceDays", NULL};
    json_t *body = api_body_object(rq, rp), *repos, *results = NULL, *out = NULL;
    struct repo_list list;
    struct bulk_reject rej;
    struct jq_result *res = NULL;
    size_t *job_of = NULL, nrepos, queued = 0, failed = 0;
    int include = 1, max_prs = JOB_DEFAULT_MAX_PRS, since_days = JOB_DEFAULT_SINCE_DAYS;
    char err[512];
    json_t *inc;

    repo_list_init(&list);
    if (!body || api_known_fields(body, fields, rp))
        goto done;
    repos = json_object_get(body, "repositories");
    inc = json_object_get(body, "includeBackfill");
    if (!json_is_array(repos)) {
        api_error(rp, 422, "repositories must be an array of \"owner/name\" strings");
        goto done;
    }
    nrepos = json_array_size(repos);
    if (nrepos == 0 || nrepos > API_REPOS_MAX) {
        api_error(rp, 422, "repositories must hold 1 to %d entries (it holds %zu)",
                  API_REPOS_MAX, nrepos);
        goto done;
    }
    for (size_t i = 0; i < nrepos; i++)
        if (!json_is_string(json_array_get(repos, i))) {
            api_error(rp, 422, "repositories[%zu] is not a string", i);
            goto done;
        }
    if (inc && !json_is_null(inc) && !json_is_boolean(inc)) {
        api_error(rp, 422, "includeBackfill must be true or false");
        goto done;
    }
    include = !inc || json_is_null(inc) || json_is_true(inc);
    if (api_int_field(body, "maxPRs", 1, 1000, &max_prs, rp) ||
        api_int_field(body, "sinceDays", 1, 365, &since_days, rp))
        goto done;

    /* every entry, in order: added (index of its job), duplicate or invalid */
    list.max_prs = max_prs;
    list.since_days = since_days;
    list.trigger = API_TRIGGER;
    list.on_reject = bulk_on_reject;
    list.reject_ctx = &rej;
    if (!(results = json_array()) || !(job_of = calloc(nrepos, sizeof *job_of)))
        goto oom;
    for (size_t i = 0; i < nrepos; i++) {
        const char *entry = json_string_value(json_array_get(repos, i));
        char where[32];
        snprintf(where, sizeof where, "repositories[%zu]", i);
        int r = repo_list_add(&list, entry, where);
        json_t *o;
        if (r < 0)
            goto oom;
        if (r == REPO_ADDED) {
            job_of[i] = list.n; /* + 1 */
            o = json_pack("{s:s}", "input", entry);
        } else if (r == REPO_DUPLICATE) {
            o = json_pack("{s:s, s:s}", "input", entry, "status", "duplicate");
        } else {
            o = json_pack("{s:s, s:s, s:s}", "input", entry, "status", "invalid", "error",
                          rej.reason);
        }
        if (!o || json_array_append_new(results, o))
            goto oom;
    }

    /* recorded first: when Postgres is down nothing is queued either */
    if (list.n && api_record(app, list.jobs, list.n, NULL, err, sizeof err)) {
        api_error(rp, 503, "nothing queued: %s", err);
        goto done;
    }
    if (include && list.n) {
        if (!(res = calloc(list.n, sizeof *res)))
            goto oom;
        failed = api_queue(app, list.jobs, list.n, res);
        queued = list.n - failed;
    }
    for (size_t i = 0; i < nrepos; i++) {
        json_t *o = json_array_get(results, i);
        if (!job_of[i])
            continue;
        const struct job *job = &list.jobs[job_of[i] - 1];
        char full[REPO_FULL_MAX + 2];
        snprintf(full, sizeof full, "%s/%s", job->owner, job->name);
        json_object_set_new(o, "repository", json_string(full));
        if (!include) {
            json_object_set_new(o, "status", json_string("added"));
        } else if (res[job_of[i] - 1].done == 1) {
            json_object_set_new(o, "status", json_string("queued"));
            json_object_set_new(o, "backfillId", json_string(job->id));
            json_object_set_new(o, "maxPRs", json_integer(job->max_prs));
            json_object_set_new(o, "sinceDays", json_integer(job->since_days));
        } else {
            json_object_set_new(o, "status", json_string("failed"));
            snprintf(err, sizeof err, "not queued: %s", res[job_of[i] - 1].error);
            json_object_set_new(o, "error", json_string(err));
        }
    }
    out = json_pack("{s:O, s:I, s:I, s:I, s:I, s:I}", "results", results, "queued",
                    (json_int_t)queued, "added", (json_int_t)(include ? 0 : list.n), "invalid",
                    (json_int_t)list.rejected, "duplicates", (json_int_t)list.duplicates,
                    "failed", (json_int_t)failed);
    log_info("bulk add: %zu queued, %zu recorded only, %zu invalid, %zu duplicates, %zu not "
             "queued", queued, include ? 0 : list.n, list.rejected, list.duplicates, failed);
    api_json(rp, list.rejected || failed ? 207 : 200, out);
    goto done;
oom:
    api_error(rp, 500, "out of memory");
done:
    json_decref(results);
    json_decref(body);
    free(res);
    free(job_of);
    repo_list_free(&list);
}

/* --- reading state ----------------------------------------------------------- */

static const char *const api_statuses[] = {"added", "queued", "running", "rate_limited",
                                           "completed", "failed", "cancelled", NULL};

static void api_backfills(const struct web_app *app, const struct web_request *rq,
                          struct web_reply *rp)
{
    const char *status = rq->query(rq->conn, "status"), *repo = rq->query(rq->conn, "repository");
    char owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1], key[REPO_FULL_MAX + 1] = "";
    char err[512], *rows;
    int known = !status || !status[0];
    for (const char *const *s = api_statuses; *s && !known; s++)
        known = strcmp(*s, status) == 0;
    if (!known) {
        api_error(rp, 400, "status must be one of added, queued, running, rate_limited, "
                           "completed, failed, cancelled");
        return;
    }
    if (repo && repo[0]) {
        if (repo_parse_entry(repo, owner, name, err, sizeof err)) {
            api_error(rp, 400, "repository: %s", err);
            return;
        }
        repo_key(owner, name, key);
    }
    if (!(rows = store_backfills(app->db, status ? status : "", key, 0, err, sizeof err))) {
        api_error(rp, 503, "%s", err);
        return;
    }
    api_wrap(rp, "backfills", rows);
    free(rows);
}

/* The latest backfill row of owner/name as a JSON object (new reference),
 * or NULL after answering (404 when unknown). */
static json_t *api_one(const struct web_app *app, const char *owner, const char *name,
                       int history, struct web_reply *rp)
{
    char key[REPO_FULL_MAX + 1], err[512], *rows;
    json_t *arr, *row;
    repo_key(owner, name, key);
    if (!(rows = store_backfills(app->db, "", key, history, err, sizeof err))) {
        api_error(rp, 503, "%s", err);
        return NULL;
    }
    arr = json_loads(rows, 0, NULL);
    free(rows);
    row = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    if (!row)
        api_error(rp, 404, "%s/%s has never been added here", owner, name);
    return row;
}

static void api_estimate(const struct web_app *app, struct web_reply *rp)
{
    char err[512], *e = store_estimate(app->db, err, sizeof err);
    if (!e) {
        api_error(rp, 503, "%s", err);
        return;
    }
    free(rp->body);
    rp->body = e;
    rp->len = strlen(e);
    rp->status = 200;
    rp->type = "application/json";
}

/* --- cancel and retry -------------------------------------------------------- */

static int api_status_is(const json_t *row, const char *const *any)
{
    const char *s = json_string_value(json_object_get(row, "status"));
    for (; s && *any; any++)
        if (strcmp(s, *any) == 0)
            return 1;
    return 0;
}

static void api_cancel(const struct web_app *app, const char *owner, const char *name,
                       struct web_reply *rp)
{
    static const char *const cancellable[] = {"queued", "running", "rate_limited", NULL};
    json_t *row = api_one(app, owner, name, 0, rp);
    struct job job;
    struct jq_result res;
    if (!row)
        return;
    if (!api_status_is(row, cancellable)) {
        api_error(rp, 409, "%s/%s has no queued or running backfill (it is %s)", owner, name,
                  json_string_value(json_object_get(row, "status")));
    } else {
        job_init(&job, owner, name, API_TRIGGER);
        if (jq_send(app->jq, &job, 1, 1, &res))
            api_error(rp, 503, "cancel not sent: %s", res.error);
        else
            api_json(rp, 202, json_pack("{s:s, s:s}", "repository",
                                        json_string_value(json_object_get(row, "repository")),
                                        "status", "cancel_requested"));
    }
    json_decref(row);
}

static void api_retry(const struct web_app *app, const struct web_request *rq,
                      const char *owner, const char *name, struct web_reply *rp)
{
    static const char *const fields[] = {"maxPRs", "sinceDays", NULL};
    static const char *const retryable[] = {"failed", "cancelled", NULL};
    json_t *body = api_body_object(rq, rp), *row = NULL;
    struct job job;
    struct jq_result res;
    int max_prs, since_days = JOB_DEFAULT_SINCE_DAYS;
    int64_t total;

    if (!body || api_known_fields(body, fields, rp) || !(row = api_one(app, owner, name, 0, rp)))
        goto done;
    max_prs = jfield_int(row, "total", 1, 1000, &total) == JF_OK ? (int)total
                                                                  : JOB_DEFAULT_MAX_PRS;
    if (api_int_field(body, "maxPRs", 1, 1000, &max_prs, rp) ||
        api_int_field(body, "sinceDays", 1, 365, &since_days, rp))
        goto done;
    if (!api_status_is(row, retryable)) {
        api_error(rp, 409, "only a failed or cancelled backfill is retried (%s/%s is %s)",
                  owner, name, json_string_value(json_object_get(row, "status")));
        goto done;
    }
    /* the stored spelling, as the first backfill had it */
    const char *full = json_string_value(json_object_get(row, "repository"));
    const char *slash = full ? strchr(full, '/') : NULL;
    if (slash && (size_t)(slash - full) <= REPO_OWNER_MAX) {
        char o[REPO_OWNER_MAX + 1];
        snprintf(o, sizeof o, "%.*s", (int)(slash - full), full);
        job_init(&job, o, slash + 1, API_TRIGGER);
    } else {
        job_init(&job, owner, name, API_TRIGGER);
    }
    job.max_prs = max_prs;
    job.since_days = since_days;
    if (api_queue(app, &job, 1, &res))
        api_error(rp, 503, "not queued: %s", res.error);
    else
        api_json(rp, 200, json_pack("{s:s, s:s, s:s, s:i, s:i}", "repository", full, "status",
                                    "queued", "backfillId", job.id, "maxPRs", max_prs,
                                    "sinceDays", since_days));
done:
    json_decref(row);
    json_decref(body);
}

/* --- health and the event stream --------------------------------------------- */

int api_ready(const struct web_app *app, char *kerr, size_t klen, char *perr, size_t plen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(jq_handle(app->jq), 0, NULL, &md, 3000);
    int kafka_ok = e == RD_KAFKA_RESP_ERR_NO_ERROR && hub_health(app->hub, kerr, klen) == 0;
    int pg_ok = store_ping(app->db, perr, plen) == 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (e)
        snprintf(kerr, klen, "%s", rd_kafka_err2str(e));
    return (kafka_ok ? 0 : 1) | (pg_ok ? 0 : 2);
}

static void api_healthz(const struct web_app *app, struct web_reply *rp)
{
    char kerr[512] = "", perr[512] = "";
    int bad = api_ready(app, kerr, sizeof kerr, perr, sizeof perr);
    int kafka_ok = !(bad & 1), pg_ok = !(bad & 2);
    api_json(rp, kafka_ok && pg_ok ? 200 : 503,
             json_pack("{s:s, s:s}", "kafka", kafka_ok ? "ok" : kerr, "postgres",
                       pg_ok ? "ok" : perr));
}

static void api_events(const struct web_app *app, const struct web_request *rq,
                       struct web_reply *rp)
{
    const char *repo = rq->query(rq->conn, "repository");
    const char *last = rq->header(rq->conn, "Last-Event-ID");
    char owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1], key[REPO_FULL_MAX + 1], err[256];
    if (!last)
        last = rq->query(rq->conn, "lastEventId");
    if (repo && repo[0]) {
        if (repo_parse_entry(repo, owner, name, err, sizeof err)) {
            api_error(rp, 400, "repository: %s", err);
            return;
        }
        repo_key(owner, name, key);
    }
    rp->stream = hub_open(app->hub, repo && repo[0] ? key : NULL, last);
    if (!rp->stream) {
        api_error(rp, 503, "too many open event streams; try again later");
        return;
    }
    rp->status = 200;
    rp->type = "text/event-stream";
}

/* --- consumer lag ------------------------------------------------------------- */

/* GET /api/lag asks Kafka through the job queue's producer (any handle can
 * run the Admin API): two groups, each a metadata request and four admin
 * requests. One question at a time, and an answer at most API_LAG_CACHE_MS
 * old is served again, so a page polling it or a burst of requests costs
 * Kafka one round a second. */
#define API_LAG_CACHE_MS 1000

static struct {
    pthread_mutex_t lock;
    long long at_ms; /* when body was made; 0: never */
    int status;
    char *body;      /* owned: the JSON text */
} api_lag_cache = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL};

static long long api_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Asks Kafka; fills *status and returns the JSON text (malloc'd) or NULL
 * when out of memory. */
static char *api_lag_ask(const struct web_app *app, int *status)
{
    const char *groups[2], *topics[2] = {app->common->jobs_topic, app->common->progress_topic};
    json_t *o = json_object(), *arr = json_array();
    char err[1024], *text = NULL;
    int bad = !o || !arr, unreachable = 0;

    glag_default_groups(&groups[0], &groups[1]);
    *status = 200;
    for (int i = 0; i < 2 && !bad; i++) {
        struct glag_report *r = NULL;
        int rc = unreachable ? GLAG_EKAFKA
                             : glag_query(app->lag_client, groups[i], topics[i],
                                          GLAG_TIMEOUT_MS, &r, err, sizeof err);
        if (rc == GLAG_EKAFKA && !unreachable && kafka_health_unreachable(NULL, 0))
            unreachable = 1; /* the other group would only wait as long again */
        bad |= json_array_append_new(arr, rc == GLAG_OK ? glag_json(r)
                                                          : glag_json_error(groups[i], topics[i],
                                                                            rc, err));
        glag_free(r);
    }
    if (unreachable) {
        *status = 503;
        bad |= json_object_set_new(o, "error", json_string(err));
    }
    if (!bad) {
        bad |= json_object_set_new(o, "groups", arr);
        arr = NULL; /* o owns it now */
    }
    if (!bad)
        text = json_dumps(o, JSON_COMPACT);
    json_decref(arr);
    json_decref(o);
    return text;
}

static void api_lag(const struct web_app *app, struct web_reply *rp)
{
    char *copy = NULL;
    int status = 0;

    pthread_mutex_lock(&api_lag_cache.lock);
    if (!api_lag_cache.body || api_now_ms() - api_lag_cache.at_ms >= API_LAG_CACHE_MS) {
        char *fresh = api_lag_ask(app, &status);
        if (fresh) {
            free(api_lag_cache.body);
            api_lag_cache.body = fresh;
            api_lag_cache.status = status;
            api_lag_cache.at_ms = api_now_ms();
        }
    }
    if (api_lag_cache.body) {
        copy = strdup(api_lag_cache.body);
        status = api_lag_cache.status;
    }
    pthread_mutex_unlock(&api_lag_cache.lock);
    if (!copy) {
        api_error(rp, 500, "out of memory");
        return;
    }
    free(rp->body);
    rp->body = copy;
    rp->len = strlen(copy);
    rp->status = status;
    rp->type = "application/json";
}

/* --- routing ------------------------------------------------------------------ */

static void api_asset(struct web_reply *rp, const char *body, const char *type)
{
    rp->status = 200;
    rp->static_body = body;
    rp->len = strlen(body);
    rp->type = type;
    rp->cacheable = 1;
}

/* Splits "OWNER/NAME[/ACTION]" (after /api/backfills/); 0 when valid. */
static int api_repo_path(const char *p, char owner[REPO_OWNER_MAX + 1],
                         char name[REPO_NAME_MAX + 1], const char **action, struct web_reply *rp)
{
    char full[REPO_FULL_MAX + 2], err[256];
    const char *slash = strchr(p, '/'), *end = slash ? strchr(slash + 1, '/') : NULL;
    size_t len = end ? (size_t)(end - p) : strlen(p);
    *action = end ? end + 1 : "";
    if (len >= sizeof full) {
        api_error(rp, 404, "no such repository path");
        return -1;
    }
    memcpy(full, p, len);
    full[len] = '\0';
    if (repo_parse(full, owner, name, err, sizeof err)) {
        api_error(rp, 404, "not a repository: %s", err);
        return -1;
    }
    return 0;
}

static int api_method(const struct web_request *rq, const char *want, struct web_reply *rp)
{
    if (strcmp(rq->method, want) == 0 || (strcmp(want, "GET") == 0 &&
                                          strcmp(rq->method, "HEAD") == 0))
        return 0;
    api_error(rp, 405, "use %s here", want);
    rp->allow = strcmp(want, "GET") == 0 ? "GET, HEAD" : want;
    return -1;
}

void api_handle(const struct web_app *app, const struct web_request *rq, struct web_reply *rp)
{
    static const char prefix[] = "/api/backfills/";
    const char *p = rq->path, *action;
    char owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1];

    if (strcmp(p, "/") == 0 || strcmp(p, "/index.html") == 0) {
        if (!api_method(rq, "GET", rp))
            api_asset(rp, web_index_html, "text/html; charset=utf-8");
    } else if (strcmp(p, "/app.js") == 0) {
        if (!api_method(rq, "GET", rp))
            api_asset(rp, web_app_js, "text/javascript; charset=utf-8");
    } else if (strcmp(p, "/style.css") == 0) {
        if (!api_method(rq, "GET", rp))
            api_asset(rp, web_style_css, "text/css; charset=utf-8");
    } else if (strcmp(p, "/healthz") == 0) {
        if (!api_method(rq, "GET", rp))
            api_healthz(app, rp);
    } else if (strcmp(p, "/api/bulk-add") == 0) {
        if (!api_method(rq, "POST", rp) && !api_may_change(app, rq, rp))
            api_bulk_add(app, rq, rp);
    } else if (strcmp(p, "/api/backfills") == 0) {
        if (!api_method(rq, "GET", rp))
            api_backfills(app, rq, rp);
    } else if (strcmp(p, "/api/estimate") == 0) {
        if (!api_method(rq, "GET", rp))
            api_estimate(app, rp);
    } else if (strcmp(p, "/api/events") == 0) {
        if (!api_method(rq, "GET", rp))
            api_events(app, rq, rp);
    } else if (strcmp(p, "/api/lag") == 0) {
        if (!api_method(rq, "GET", rp))
            api_lag(app, rp);
    } else if (strncmp(p, prefix, sizeof prefix - 1) == 0) {
        if (api_repo_path(p + sizeof prefix - 1, owner, name, &action, rp))
            return;
        if (strcmp(action, "") == 0) {
            json_t *row;
            if (!api_method(rq, "GET", rp) && (row = api_one(app, owner, name, 1, rp)))
                api_json(rp, 200, row);
        } else if (strcmp(action, "cancel") == 0) {
            if (!api_method(rq, "POST", rp) && !api_may_change(app, rq, rp))
                api_cancel(app, owner, name, rp);
        } else if (strcmp(action, "retry") == 0) {
            if (!api_method(rq, "POST", rp) && !api_may_change(app, rq, rp))
                api_retry(app, rq, owner, name, rp);
        } else {
            api_error(rp, 404, "no such action: use cancel or retry");
        }
    } else {
        api_error(rp, 404, "nothing here");
    }
}
