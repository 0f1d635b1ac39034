/* tview: backfill-tail's model — folds backfill events into one row per
 * repository (its latest backfill), the way a person wants to read them.
 *
 * Pure: jansson and our codecs only; no Kafka, no terminal, no clock
 * (callers pass "now" to whoever needs it). Events are hostile input:
 * every field is type- and range-checked, and a bad event is refused
 * without touching the view.
 *
 * Ordering rules (the same the sink applies):
 *   - a repository shows its newest backfill: an event of a backfill that
 *     started later (startedAt, then backfillId as tie-break) replaces
 *     the row; an event of an older backfill is ignored;
 *   - within a backfill, an event whose seq is not above the last one
 *     applied is a replay (a chunk fetched twice after a resume) and is
 *     ignored.
 *
 * "Followed" repositories: those given to tview_follow (the --repo list),
 * else every repository seen. tview_done says whether all of them reached
 * a terminal status. */
#ifndef BACKFILL_TVIEW_H
#define BACKFILL_TVIEW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "repo_name.h"

#define TVIEW_ERROR_MAX 200

enum tview_status {
    TV_WAITING = 0, /* followed with --repo, no event seen yet */
    TV_STARTED,
    TV_PROCESSING,
    TV_RATE_LIMITED,
    TV_COMPLETED,
    TV_FAILED,
};

struct tview_row {
    char key[REPO_FULL_MAX + 1];     /* lower-cased owner/name */
    char display[REPO_FULL_MAX + 1]; /* owner/name as the events spell it */
    char backfill_id[EVENT_ID_MAX + 1];
    enum tview_status status;
    int64_t seq;         /* last applied seq of this backfill, 0 none */
    int progress;        /* PRs stored so far */
    int total;           /* maxPRs of the job */
    int chunk;           /* chunks done */
    int64_t started_ms;  /* when the job was queued (startedAt) */
    int64_t updated_ms;  /* ts of the last applied event */
    int64_t retry_at_ms; /* rate_limited: when work resumes; 0 unknown */
    int64_t requests;    /* GraphQL requests so far */
    int64_t points;      /* API points so far */
    int64_t pr_events;   /* backfill/pull_requests events applied */
    int64_t pr_records;  /* pull requests carried by them */
    char error[TVIEW_ERROR_MAX + 1]; /* failed: the reason ("" otherwise) */
};

struct tview_totals {
    size_t repositories;
    size_t by_status[TV_FAILED + 1];
    int64_t progress;
    int64_t total;
    int64_t requests;
    int64_t points;
    int64_t first_started_ms; /* earliest startedAt of a row, 0 none */
    int64_t last_updated_ms;  /* latest event ts, 0 none */
};

enum tview_result {
    TV_APPLIED = 0,  /* the view changed */
    TV_IGNORED = 1,  /* filtered out, stale, a replay, or an event type the view ignores */
    TV_BAD = -1,     /* invalid event (reason in errstr); view unchanged */
    TV_NOMEM = -2,   /* out of memory; view unchanged */
};

typedef struct tview tview;

/* A new empty view, or NULL when out of memory. tview_free(NULL) is a no-op. */
tview *tview_new(void);
void tview_free(tview *tv);

/* Follows "owner/name" only (repeatable): events of other repositories are
 * ignored from then on, and the repository gets a TV_WAITING row at once.
 * Returns 0, -1 with a reason when the name is not a valid GitHub
 * owner/name, TV_NOMEM when out of memory (view unchanged either way).
 * Following the same repository twice is harmless. */
int tview_follow(tview *tv, const char *full, char *errstr, size_t errlen);

/* 1 if events of repository `key` (any case) pass the --repo filter. */
int tview_wants(const tview *tv, const char *key);

/* Folds one decoded envelope (borrowed, not modified) into the view.
 * Envelope names other than backfill/progress.update and
 * backfill/pull_requests are TV_IGNORED. */
enum tview_result tview_apply(tview *tv, json_t *envelope, char *errstr, size_t errlen);

/* Rows sorted by key; i < tview_count. Pointers stay valid until the next
 * tview_follow/tview_apply. */
size_t tview_count(const tview *tv);
const struct tview_row *tview_row(const tview *tv, size_t i);

/* Sums over every row. */
void tview_totals(const tview *tv, struct tview_totals *out);

/* 1 when at least one repository is followed and every followed one is
 * completed or failed; 0 otherwise. */
int tview_done(const tview *tv);

/* 1 when a followed repository's backfill failed. */
int tview_any_failed(const tview *tv);

/* "waiting", "started", "processing", "rate_limited", "completed", "failed". */
const char *tview_status_name(enum tview_status s);

/* 1 for completed and failed. */
int tview_terminal(enum tview_status s);

#endif
