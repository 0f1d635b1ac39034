/* codec: the JSON envelope every backfill message uses, and the job and
 * cancel codecs.
 *
 *   {"name": "...", "id": "<uuid>", "ts": <ms>, "v": 1, "data": {...}}
 *
 * Contracts are fixed by schemas/ (one .schema.json per message). Decoding treats the input
 * as hostile: size-capped, every field type- and range-checked. */
#ifndef BACKFILL_CODEC_H
#define BACKFILL_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "repo_name.h"

#define EVENT_JOB "repository/backfill.initial"
#define EVENT_PROGRESS "backfill/progress.update"
#define EVENT_PULL_REQUESTS "backfill/pull_requests"
#define EVENT_CANCEL "repository/backfill.cancel"

#define EVENT_ID_MAX 64
#define JOB_MAX_BYTES 65536 /* a job is a few hundred bytes; more is garbage */
#define JOB_DEFAULT_MAX_PRS 200
#define JOB_DEFAULT_SINCE_DAYS 30
#define JOB_TRIGGER_MAX 100

struct job {
    char id[EVENT_ID_MAX + 1];
    int64_t ts; /* ms since epoch, when the job was queued */
    char owner[REPO_OWNER_MAX + 1];
    char name[REPO_NAME_MAX + 1];
    char key[REPO_FULL_MAX + 1]; /* lower-cased owner/name */
    int64_t repository_id;       /* 0 when not given */
    int max_prs;                 /* 1..1000 */
    int since_days;              /* 1..365 */
    char triggered_from[JOB_TRIGGER_MAX + 1];
};

/* Writes a fresh random UUID (v4) into out. */
void event_new_id(char out[EVENT_ID_MAX + 1]);

/* Wraps data (stolen, even on failure) in an envelope and serialises it
 * compactly. Returns a malloc'd NUL-terminated string (caller frees) or
 * NULL on allocation failure. */
char *event_dump(const char *name, const char *id, int64_t ts, json_t *data);

/* Fills a job with defaults (maxPRs 200, sinceDays 30) for owner/name,
 * a fresh id and the current time. owner and name must be valid. */
void job_init(struct job *job, const char *owner, const char *name, const char *triggered_from);

/* Serialises a job as a repository/backfill.initial envelope. Returns a
 * malloc'd string or NULL on allocation failure. */
char *job_encode(const struct job *job);

/* Decodes and validates a repository/backfill.initial message. Returns 0
 * and fills *job, or -1 with a one-line reason in errstr (job untouched
 * beyond being zeroed). Never crashes on any byte sequence. */
int job_decode(const char *buf, size_t len, struct job *job, char *errstr, size_t errlen);

/* Serialises a repository/backfill.cancel event for owner/name (valid
 * names), stamped now. Returns a malloc'd string or NULL on allocation
 * failure. */
char *cancel_encode(const char *owner, const char *name);

/* Decodes a repository/backfill.cancel event: fills key (lower-cased
 * owner/name) and *ts (ms). Returns 0, or -1 with a reason. */
int cancel_decode(const char *buf, size_t len, char key[REPO_FULL_MAX + 1], int64_t *ts,
                  char *errstr, size_t errlen);

#endif
