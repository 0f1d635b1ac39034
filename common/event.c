/* event: see event.h. */
#include "event.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isotime.h"

static void event_random_bytes(unsigned char *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    if (fd >= 0) {
        while (got < len) {
            ssize_t n = read(fd, buf + got, len - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        close(fd);
    }
    if (got < len) { /* no /dev/urandom: fall back to a time-seeded mix */
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

void event_new_id(char out[EVENT_ID_MAX + 1])
{
    unsigned char b[16];
    event_random_bytes(b, sizeof b);
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

char *job_encode(const struct job *job)
{
    json_t *data = json_object();
    if (!data)
        return NULL;
    if (json_object_set_new(data, "owner", json_string(job->owner)) ||
        json_object_set_new(data, "name", json_string(job->name)) ||
        json_object_set_new(data, "maxPRs", json_integer(job->max_prs)) ||
        json_object_set_new(data, "sinceDays", json_integer(job->since_days)) ||
        (job->repository_id > 0 &&
         json_object_set_new(data, "repositoryId", json_integer(job->repository_id))) ||
        (job->triggered_from[0] &&
         json_object_set_new(data, "triggeredFrom", json_string(job->triggered_from)))) {
        json_decref(data);
        return NULL;
    }
    return event_dump(EVENT_JOB, job->id, job->ts, data);
}

/* Reads an optional integer field in [lo, hi]; absent leaves *out as is. */
static int event_opt_int(json_t *obj, const char *key, json_int_t lo, json_int_t hi,
                         json_int_t *out, char *errstr, size_t errlen)
{
    json_t *v = json_object_get(obj, key); /* borrowed */
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        snprintf(errstr, errlen, "data.%s must be an integer", key);
        return -1;
    }
    if (json_integer_value(v) < lo || json_integer_value(v) > hi) {
        snprintf(errstr, errlen, "data.%s out of range %lld..%lld", key, (long long)lo,
                 (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
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
    if (!repo_owner_valid(json_string_value(owner), json_string_length(owner)) ||
        strlen(json_string_value(owner)) != json_string_length(owner)) {
        snprintf(errstr, errlen, "data.owner is not a valid GitHub owner");
        return -1;
    }
    if (!repo_name_valid(json_string_value(name), json_string_length(name)) ||
        strlen(json_string_value(name)) != json_string_length(name)) {
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
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(errstr, errlen, "not valid JSON: %s at byte %d", jerr.text, jerr.position);
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
    if (!json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) > EVENT_ID_MAX ||
        strlen(json_string_value(id)) != json_string_length(id)) {
        snprintf(errstr, errlen, "id must be a string of 1..%d bytes", EVENT_ID_MAX);
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
