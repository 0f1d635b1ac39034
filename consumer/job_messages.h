/* job_messages: builds the messages a job publishes — backfill/progress.update
 * and backfill/pull_requests (schemas/ (one .schema.json per message)) — as JSON strings.
 * Pure jansson; no Kafka. */
#ifndef BACKFILL_JOB_MESSAGES_H
#define BACKFILL_JOB_MESSAGES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"

#define JOBMSG_PART_MAX_BYTES 900000 /* split pull_requests messages above this */

struct progress_info {
    const struct job *job;  /* borrowed */
    int64_t repository_id;  /* 0 unknown */
    int64_t seq;
    const char *status;     /* started|processing|rate_limited|completed|failed */
    int progress;
    int chunk;
    int chunk_size;         /* PRs in this chunk, -1 to omit */
    const char *cursor;     /* borrowed, "" = null */
    const char *cutoff;     /* borrowed ISO-8601 */
    bool reached_time_limit;
    const char *retry_at;   /* borrowed, NULL = null */
    const char *error;      /* borrowed, NULL = null */
    int64_t requests, points;
    int remaining;          /* -1 unknown */
    const char *reset_at;   /* borrowed, NULL = null */
};

/* Returns a malloc'd progress.update envelope, NULL on allocation failure. */
char *jobmsg_progress(const struct progress_info *pi);

/* Splits `records` (borrowed array) of one chunk into pull_requests
 * envelopes of at most JOBMSG_PART_MAX_BYTES each (a single oversized
 * record still goes alone). Each part takes the next seq: *seq is
 * incremented per part. On success returns 0 and sets *parts to a
 * malloc'd array of *nparts malloc'd strings (free with jobmsg_free_parts);
 * -1 on allocation failure (*seq unchanged). */
int jobmsg_pull_requests(const struct job *job, int64_t repository_id, int chunk,
                         json_t *records, int64_t *seq, char ***parts, size_t *nparts);

void jobmsg_free_parts(char **parts, size_t n);

#endif
