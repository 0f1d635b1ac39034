/* codec: see codec.h. */
#include "codec.h"

#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_field.h"
#include "isotime.h"
#include "utf8.h"

static void event_random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < len) { /* no entropy source: fall back to a time-seeded mix */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (size_t i = got; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
    }
}

#define EVENT_ID_POOL 64 /* ids' worth of random bytes fetched per getrandom call */

/* 16 random bytes from a per-thread pool: one system call per
 * EVENT_ID_POOL ids (a producer queueing 10,000 jobs made 10,000). */
static void event_id_bytes(unsigned char b[16])
{
    static _Thread_local unsigned char pool[EVENT_ID_POOL * 16];
    static _Thread_local size_t left;
    if (left == 0) {
        event_random_bytes(pool, sizeof pool);
        left = EVENT_ID_POOL;
    }
    left--;
    memcpy(b, pool + left * 16, 16);
}

void event_new_id(char out[EVENT_ID_MAX + 1])
{
    unsigned char b[16];
    event_id_bytes(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, EVENT_ID_MAX + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

char *event_dump(const char *name, const char *id, int64_t ts, json_t *data)
{
    json_t *env = json_object();
    char *out = NULL;

    if (!env || !data)
        goto done;
    if (json_object_set_new(env, "name", json_string(name)) ||
        json_object_set_new(env, "id", json_string(id)) ||
        json_object_set_new(env, "ts", json_integer(ts)) ||
        json_object_set_new(env, "v", json_integer(1)) || json_object_set(env, "data", data))
        goto done;
    out = json_dumps(env, JSON_COMPACT);
done:
    json_decref(env);
    json_decref(data);
    return out;
}

void job_init(struct job *job, const char *owner, const char *name, const char *triggered_from)
{
    memset(job, 0, sizeof *job);
    event_new_id(job->id);
    job->ts = isotime_now_ms();
    snprintf(job->owner, sizeof job->owner, "%s", owner);
    snprintf(job->name, sizeof job->name, "%s", name);
    repo_key(job->owner, job->name, job->key);
    job->max_prs = JOB_DEFAULT_MAX_PRS;
    job->since_days = JOB_DEFAULT_SINCE_DAYS;
    snprintf(job->triggered_from, sizeof job->triggered_from, "%s",
             triggered_from ? triggered_from : "");
}

/* Appends s as a JSON string literal to b (room for 6 bytes per byte of s
 * plus 2 is the caller's). -1 if s is not valid UTF-8 (jansson refuses
 * that too). Only '"', '\\' and control characters need escaping. */
static int event_put_string(char *b, size_t *len, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), at = *len;

    b[at++] = '"';
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len(p + i, n - i);
        if (k == 0)
            return -1;
        if (p[i] == '"' || p[i] == '\\') {
            b[at++] = '\\';
            b[at++] = (char)p[i];
        } else if (p[i] < 0x20) {
            at += (size_t)sprintf(b + at, "\\u%04x", p[i]);
        } else {
            memcpy(b + at, p + i, k);
            at += k;
        }
        i += k;
    }
    b[at++] = '"';
    *len = at;
    return 0;
}

/* The job envelope, written directly: building it as a jansson tree and
 * dumping it was 40% of the producer's CPU for 10,000 jobs. Same JSON as
 * event_dump would give (job_decode reads either). */
char *job_encode(const struct job *job)
{
    size_t cap = 256 + 6 * (strlen(job->id) + strlen(job->owner) + strlen(job->name) +
                            strlen(job->triggered_from));
    char *b = malloc(cap);
    size_t len = 0;

    if (!b)
        return NULL;
    len += (size_t)sprintf(b, "{\"name\":\"%s\",\"id\":", EVENT_JOB);
    if (event_put_string(b, &len, job->id))
        goto bad;
    len += (size_t)sprintf(b + len, ",\"ts\":%lld,\"v\":1,\"data\":{\"owner\":",
                           (long long)job->ts);
    if (event_put_string(b, &len, job->owner))
        goto bad;
    memcpy(b + len, ",\"name\":", 8);
    len += 8;
    if (event_put_string(b, &len, job->name))
        goto bad;
    len += (size_t)sprintf(b + len, ",\"maxPRs\":%d,\"sinceDays\":%d", job->max_prs,
                           job->since_days);
    if (job->repository_id > 0)
        len += (size_t)sprintf(b + len, ",\"repositoryId\":%lld", (long long)job->repository_id);
    if (job->triggered_from[0]) {
        memcpy(b + len, ",\"triggeredFrom\":", 17);
        len += 17;
        if (event_put_string(b, &len, job->triggered_from))
            goto bad;
    }
    memcpy(b + len, "}}", 3);
    return b;
bad:
    free(b);
    return NULL;
}

/* 1 if the JSON string v holds a control character (NUL included). */
static int event_has_control(json_t *v)
{
    const char *s = json_string_value(v);
    for (size_t i = 0, n = json_string_length(v); i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* 1 if the JSON string v holds a NUL character (\u0000). */
static int event_has_nul(json_t *v)
{
    return strlen(json_string_value(v)) != json_string_length(v);
}

/* Makes a reason fit for a log line and a Kafka header: printable ASCII
 * only (jansson quotes pieces of the input, which may be any bytes). */
static void event_clean_reason(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

/* Reads an optional integer field in [lo, hi]; absent leaves *out as is. */
static int event_opt_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi,
                         json_int_t *out, char *errstr, size_t errlen)
{
    int64_t v;
    switch (jfield_int(obj, key, lo, hi, &v)) {
    case JF_OK: *out = v; return 0;
    case JF_ABSENT: return 0;
    case JF_WRONG_TYPE: snprintf(errstr, errlen, "data.%s must be an integer", key); return -1;
    default:
        snprintf(errstr, errlen, "data.%s out of range %lld..%lld", key, (long long)lo,
                 (long long)hi);
        return -1;
    }
}

static int job_decode_data(json_t *data, struct job *job, char *errstr, size_t errlen)
{
    json_t *owner = json_object_get(data, "owner"), *name = json_object_get(data, "name");
    json_t *trig = json_object_get(data, "triggeredFrom");
    json_int_t max_prs = JOB_DEFAULT_MAX_PRS, since = JOB_DEFAULT_SINCE_DAYS, repo_id = 0;

    if (!json_is_string(owner) || !json_is_string(name)) {
        snprintf(errstr, errlen, "data.owner and data.name must be strings");
        return -1;
    }
    if (event_has_nul(owner) || event_has_nul(name)) {
        snprintf(errstr, errlen, "data.%s contains a NUL character",
                 event_has_nul(owner) ? "owner" : "name");
        return -1;
    }
    if (!repo_owner_valid(json_string_value(owner), json_string_length(owner))) {
        snprintf(errstr, errlen, "data.owner is not a valid GitHub owner");
        return -1;
    }
    if (!repo_name_valid(json_string_value(name), json_string_length(name))) {
        snprintf(errstr, errlen, "data.name is not a valid GitHub repository name");
        return -1;
    }
    if (event_opt_int(data, "maxPRs", 1, 1000, &max_prs, errstr, errlen) ||
        event_opt_int(data, "sinceDays", 1, 365, &since, errstr, errlen) ||
        event_opt_int(data, "repositoryId", 1, INT64_MAX, &repo_id, errstr, errlen))
        return -1;
    if (trig && !json_is_null(trig) &&
        (!json_is_string(trig) || json_string_length(trig) > JOB_TRIGGER_MAX)) {
        snprintf(errstr, errlen, "data.triggeredFrom must be a string of at most %d bytes",
                 JOB_TRIGGER_MAX);
        return -1;
    }
    if (json_is_string(trig) && event_has_nul(trig)) {
        snprintf(errstr, errlen, "data.triggeredFrom contains a NUL character");
        return -1;
    }
    snprintf(job->owner, sizeof job->owner, "%s", json_string_value(owner));
    snprintf(job->name, sizeof job->name, "%s", json_string_value(name));
    repo_key(job->owner, job->name, job->key);
    job->max_prs = (int)max_prs;
    job->since_days = (int)since;
    job->repository_id = repo_id;
    if (json_is_string(trig))
        snprintf(job->triggered_from, sizeof job->triggered_from, "%s", json_string_value(trig));
    return 0;
}

int job_decode(const char *buf, size_t len, struct job *job, char *errstr, size_t errlen)
{
    json_error_t jerr;
    json_t *root = NULL, *name, *id, *ts, *v, *data;
    int rc = -1;

    memset(job, 0, sizeof *job);
    if (!buf || len == 0) {
        snprintf(errstr, errlen, "empty message");
        return -1;
    }
    if (len > JOB_MAX_BYTES) {
        snprintf(errstr, errlen, "message of %zu bytes exceeds the %d-byte job limit", len,
                 JOB_MAX_BYTES);
        return -1;
    }
    /* NULs are let through the parser so the reason can name the field. */
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        snprintf(errstr, errlen, "not valid JSON: %s at byte %d", jerr.text, jerr.position);
        event_clean_reason(errstr);
        return -1;
    }
    name = json_object_get(root, "name");
    id = json_object_get(root, "id");
    ts = json_object_get(root, "ts");
    v = json_object_get(root, "v");
    data = json_object_get(root, "data");
    if (!json_is_object(root) || !json_is_string(name) ||
        strcmp(json_string_value(name), EVENT_JOB) != 0) {
        snprintf(errstr, errlen, "not a %s envelope", EVENT_JOB);
        goto done;
    }
    /* The id becomes every event's backfillId and part of the checkpoint:
     * the sink and the commit metadata take no control characters. */
    if (!json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) > EVENT_ID_MAX || event_has_control(id)) {
        snprintf(errstr, errlen, "id must be a string of 1..%d bytes without control characters",
                 EVENT_ID_MAX);
        goto done;
    }
    if (!json_is_integer(ts) || json_integer_value(ts) < 0) {
        snprintf(errstr, errlen, "ts must be a non-negative integer (ms)");
        goto done;
    }
    if (!json_is_integer(v) || json_integer_value(v) != 1) {
        snprintf(errstr, errlen, "unsupported envelope version (v must be 1)");
        goto done;
    }
    if (!json_is_object(data)) {
        snprintf(errstr, errlen, "data must be an object");
        goto done;
    }
    if (job_decode_data(data, job, errstr, errlen))
        goto done;
    snprintf(job->id, sizeof job->id, "%s", json_string_value(id));
    job->ts = json_integer_value(ts);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

char *cancel_encode(const char *owner, const char *name)
{
    char id[EVENT_ID_MAX + 1], key[REPO_FULL_MAX + 1];
    json_t *data;
    repo_key(owner, name, key);
    data = json_pack("{s:s, s:s, s:s}", "repository", key, "owner", owner, "name", name);
    if (!data)
        return NULL;
    event_new_id(id);
    return event_dump(EVENT_CANCEL, id, isotime_now_ms(), data);
}

int cancel_decode(const char *buf, size_t len, char key[REPO_FULL_MAX + 1], int64_t *ts,
                  char *errstr, size_t errlen)
{
    json_error_t jerr;
    json_t *root = len <= JOB_MAX_BYTES ? json_loadb(buf, len, 0, &jerr) : NULL;
    json_t *name = json_object_get(root, "name"), *t = json_object_get(root, "ts");
    json_t *data = json_object_get(root, "data");
    json_t *owner = json_object_get(data, "owner"), *repo = json_object_get(data, "name");
    int rc = -1;

    if (!json_is_string(name) || strcmp(json_string_value(name), EVENT_CANCEL) != 0 ||
        !json_is_integer(t) || !json_is_string(owner) || !json_is_string(repo) ||
        !repo_owner_valid(json_string_value(owner), json_string_length(owner)) ||
        !repo_name_valid(json_string_value(repo), json_string_length(repo))) {
        snprintf(errstr, errlen, "not a %s event", EVENT_CANCEL);
        goto done;
    }
    repo_key(json_string_value(owner), json_string_value(repo), key);
    *ts = json_integer_value(t);
    rc = 0;
done:
    json_decref(root);
    return rc;
}
