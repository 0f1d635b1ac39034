/* worker_metrics: what backfill-consumer counts, as Prometheus series in
 * metrics_default() (metrics.h). This is the one file that knows the
 * worker's metric names; job.c, fetcher.c and credentials.c call the
 * small functions below at the points where things happen.
 *
 *   backfill_jobs_started_total                 jobs taken on (or resumed) here
 *   backfill_jobs_completed_total               jobs that ended completed
 *   backfill_jobs_failed_total{reason}          jobs that ended failed (enum wm_fail)
 *   backfill_jobs_in_progress                   jobs held by this worker now
 *   backfill_poison_messages_total              job messages dead-lettered as invalid
 *   backfill_github_requests_total{class}       GraphQL answers by class (enum wm_class)
 *   backfill_github_request_duration_seconds    their latency (histogram)
 *   backfill_github_points_total                points GitHub charged (rateLimit.cost)
 *   backfill_github_pages_total                 pages accepted
 *   backfill_pull_requests_fetched_total        pull requests taken from those pages
 *   backfill_rate_limit_wait_seconds_total      waits scheduled for a budget reset, a
 *                                               secondary limit or the shared pace
 *   backfill_github_budget_remaining{account}   primary budget left, as last answered
 *   backfill_github_budget_reset_timestamp_seconds{account}  when it resets
 *   backfill_job_seconds_total{span}            finished jobs' time by span (job_timeline.h),
 *                                               plus "handover": slots free before a job
 *   backfill_job_overhead_seconds               per job, its time outside GitHub (histogram)
 *
 * Every label value comes from a fixed set, except `account`: an account
 * key of the credential pool ("alice", "installation/42", "credential 2"),
 * bounded by the configured credentials and never a token.
 *
 * wm_init() registers everything once, before any other thread starts;
 * every other function may be called from any thread (updates are
 * atomics; metrics.h). Without wm_init() they do nothing. */
#ifndef BACKFILL_WORKER_METRICS_H
#define BACKFILL_WORKER_METRICS_H

#include <time.h>

#include "github.h"
#include "job_timeline.h"

/* Why a job failed: the reason label of backfill_jobs_failed_total. */
enum wm_fail {
    WM_FAIL_NOT_FOUND,         /* GitHub: NOT_FOUND */
    WM_FAIL_FORBIDDEN,         /* GitHub: FORBIDDEN */
    WM_FAIL_INVALID,           /* GitHub rejected the query */
    WM_FAIL_UNAUTHORIZED,      /* a credential GitHub refused, with nothing to retry on */
    WM_FAIL_RETRIES_EXHAUSTED, /* transient or server errors past --retries (DLQ) */
    WM_FAIL_SECONDARY_LIMIT,   /* too many secondary-limit answers to one request (DLQ) */
    WM_FAIL_NO_CREDENTIAL,     /* no credential can see the repository */
    WM_FAIL_CANCELLED,         /* cancelled on the control topic */
    WM_FAIL_OTHER,
    WM_FAIL_N
};

/* The class label of backfill_github_requests_total. */
enum wm_class {
    WM_CLASS_OK,
    WM_CLASS_RATE_LIMITED,
    WM_CLASS_SECONDARY_LIMIT,
    WM_CLASS_SERVER_ERROR, /* 5xx, "Something went wrong" */
    WM_CLASS_TIMEOUT,
    WM_CLASS_UNAUTHORIZED,
    WM_CLASS_OTHER,
    WM_CLASS_N
};

/* Registers the worker's families in metrics_default(). 0, or -1 when the
 * registry could not be made (the functions below then do nothing). */
int wm_init(void);

void wm_job_started(void);  /* a job begins here: started, in progress + 1 */
void wm_job_released(void); /* a started job is no longer held: in progress - 1 */
void wm_job_completed(void);
void wm_job_failed(enum wm_fail reason);
void wm_poison(void);

/* The failure reason for a job GitHub's policy ended on this answer. */
enum wm_fail wm_fail_for(enum gh_status status);

/* The class of an answer (exposed for tests). */
enum wm_class wm_class_of(const struct gh_page *page);

/* One GraphQL answer that took `seconds` (any thread): its class, its
 * latency and the points it cost. */
void wm_github_answer(const struct gh_page *page, double seconds);

/* A page accepted, with the pull requests taken from it. */
void wm_page_accepted(int pull_requests);

/* A wait of `seconds` for a budget reset, a secondary limit or the pace. */
void wm_rate_limit_wait(double seconds);

/* A job finished (final commit done): its spans and its overhead. */
void wm_job_timeline(const struct job_timeline *t);

/* What an answer said about an account's primary budget: remaining < 0 or
 * reset_at == 0 leave that series as it was. account is the pool's
 * account key (borrowed). */
void wm_budget(const char *account, int remaining, time_t reset_at);

#endif
