/* job_messages: see job_messages.h. */
#include "job_messages.h"

#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"
#include "isotime.h"

static json_t *jobmsg_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *jobmsg_repo_fields(const struct job *job, int64_t repository_id, int64_t seq)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    if (json_object_set_new(d, "repository", json_string(job->key)) ||
        json_object_set_new(d, "owner", json_string(job->owner)) ||
        json_object_set_new(d, "name", json_string(job->name)) ||
        json_object_set_new(d, "repositoryId",
                            repository_id > 0 ? json_integer(repository_id) : json_null()) ||
        json_object_set_new(d, "backfillId", json_string(job->id)) ||
        json_object_set_new(d, "seq", json_integer(seq)) ||
        json_object_set_new(d, "startedAt", json_integer(job->ts))) {
        json_decref(d);
        return NULL;
    }
    return d;
}

char *jobmsg_progress(const struct progress_info *pi)
{
    char id[EVENT_ID_MAX + 1];
    json_t *cost, *d = jobmsg_repo_fields(pi->job, pi->repository_id, pi->seq);
    if (!d)
        return NULL;
    cost = json_pack("{s:I, s:I, s:o, s:o}", "requests", (json_int_t)pi->requests, "points",
                     (json_int_t)pi->points, "remaining",
                     pi->remaining >= 0 ? json_integer(pi->remaining) : json_null(), "resetAt",
                     jobmsg_str_or_null(pi->reset_at));
    if (!cost || json_object_set_new(d, "status", json_string(pi->status)) ||
        json_object_set_new(d, "progress", json_integer(pi->progress)) ||
        json_object_set_new(d, "total", json_integer(pi->job->max_prs)) ||
        json_object_set_new(d, "chunk", json_integer(pi->chunk)) ||
        (pi->chunk_size >= 0 && json_object_set_new(d, "chunkSize", json_integer(pi->chunk_size))) ||
        json_object_set_new(d, "cursor", jobmsg_str_or_null(pi->cursor)) ||
        json_object_set_new(d, "cutoffDate", json_string(pi->cutoff)) ||
        json_object_set_new(d, "reachedTimeLimit", json_boolean(pi->reached_time_limit)) ||
        json_object_set_new(d, "retryAt", jobmsg_str_or_null(pi->retry_at)) ||
        json_object_set_new(d, "error", jobmsg_str_or_null(pi->error)) ||
        json_object_set_new(d, "apiCost", cost)) {
        json_decref(d);
        return NULL;
    }
    event_new_id(id);
    return event_dump(EVENT_PROGRESS, id, isotime_now_ms(), d);
}

/* One envelope with records[from, to). */
static char *jobmsg_pr_part(const struct job *job, int64_t repository_id, int chunk,
                            json_t *records, size_t from, size_t to, int64_t seq)
{
    char id[EVENT_ID_MAX + 1];
    json_t *arr = json_array(), *d = jobmsg_repo_fields(job, repository_id, seq);
    if (!arr || !d)
        goto fail;
    for (size_t i = from; i < to; i++)
        if (json_array_append(arr, json_array_get(records, i)))
            goto fail;
    if (json_object_set_new(d, "chunk", json_integer(chunk)) ||
        json_object_set(d, "pullRequests", arr))
        goto fail;
    json_decref(arr);
    event_new_id(id);
    return event_dump(EVENT_PULL_REQUESTS, id, isotime_now_ms(), d);
fail:
    json_decref(arr);
    json_decref(d);
    return NULL;
}

void jobmsg_free_parts(char **parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        free(parts[i]);
    free(parts);
}

/* The parts being built: an array of n strings with room for cap. */
struct jobmsg_parts {
    char **items; /* owned, and each string */
    size_t n, cap;
};

/* Encodes records[from,to) as parts, halving ranges that are too big. */
static int jobmsg_split(const struct job *job, int64_t repository_id, int chunk, json_t *records,
                        size_t from, size_t to, int64_t *seq, struct jobmsg_parts *out)
{
    char *s = jobmsg_pr_part(job, repository_id, chunk, records, from, to, *seq + 1);
    if (!s)
        return -1;
    if (strlen(s) > JOBMSG_PART_MAX_BYTES && to - from > 1) {
        size_t mid = from + (to - from) / 2;
        free(s);
        return jobmsg_split(job, repository_id, chunk, records, from, mid, seq, out) ||
               jobmsg_split(job, repository_id, chunk, records, mid, to, seq, out);
    }
    if (dynbuf_grow_array(&out->items, &out->cap, out->n + 1, sizeof *out->items)) {
        free(s);
        return -1;
    }
    out->items[out->n++] = s;
    (*seq)++;
    return 0;
}

int jobmsg_pull_requests(const struct job *job, int64_t repository_id, int chunk,
                         json_t *records, int64_t *seq, char ***parts, size_t *nparts)
{
    struct jobmsg_parts out = {NULL, 0, 0};
    int64_t s = *seq;
    *parts = NULL;
    *nparts = 0;
    if (jobmsg_split(job, repository_id, chunk, records, 0, json_array_size(records), &s, &out)) {
        jobmsg_free_parts(out.items, out.n);
        return -1;
    }
    *parts = out.items;
    *nparts = out.n;
    *seq = s;
    return 0;
}
