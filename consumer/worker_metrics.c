/* worker_metrics: see worker_metrics.h. The family and series pointers
 * are written once by wm_init() before the fetcher and credential threads
 * exist (pthread_create orders them), and only read afterwards. */
#include "worker_metrics.h"

#include <curl/curl.h>
#include <string.h>

#include "metrics.h"

static const char *const wm_fail_names[WM_FAIL_N] = {
    "not_found", "forbidden", "invalid", "unauthorized", "retries_exhausted",
    "secondary_limit", "no_credential", "cancelled", "other"};

static const char *const wm_class_names[WM_CLASS_N] = {
    "ok", "rate_limited", "secondary_limit", "server_error", "timeout", "unauthorized", "other"};

static struct {
    struct metric *started, *completed, *in_progress, *poison;
    struct metric *failed[WM_FAIL_N];
    struct metric *requests[WM_CLASS_N];
    struct metric *duration, *points, *pages, *prs, *rl_wait;
    struct metric_family *budget_remaining, *budget_reset; /* by account */
    struct metric *span[JT_N + 1]; /* the last one: handover */
    struct metric *overhead;
} wm;

/* Per-job overheads run from about a millisecond to a rate-limit-free
 * second; finer than METRICS_LATENCY_BUCKETS at the low end. */
static const double wm_overhead_buckets[] = {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02,
                                             0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

int wm_init(void)
{
    struct metrics *m = metrics_default();
    struct metric_family *f;

    if (!m)
        return -1;
    wm.started = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_jobs_started_total",
        "Backfill jobs this worker started or resumed.", NULL, NULL, 0));
    wm.completed = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_jobs_completed_total",
        "Backfill jobs that ended completed here (final event acknowledged).", NULL, NULL, 0));
    f = metrics_family(m, METRIC_COUNTER, "backfill_jobs_failed_total",
                       "Backfill jobs that ended failed here, by reason.", "reason", NULL, 0);
    for (int i = 0; i < WM_FAIL_N; i++)
        wm.failed[i] = metrics_series1(f, wm_fail_names[i]);
    wm.in_progress = metrics_series0(metrics_family(
        m, METRIC_GAUGE, "backfill_jobs_in_progress",
        "Backfill jobs this worker holds now (running or waiting).", NULL, NULL, 0));
    wm.poison = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_poison_messages_total",
        "Job messages that were not valid jobs, sent to the dead-letter topic.", NULL, NULL, 0));
    f = metrics_family(m, METRIC_COUNTER, "backfill_github_requests_total",
                       "GitHub GraphQL requests answered (or failed), by class.", "class", NULL,
                       0);
    for (int i = 0; i < WM_CLASS_N; i++)
        wm.requests[i] = metrics_series1(f, wm_class_names[i]);
    wm.duration = metrics_series0(metrics_family(
        m, METRIC_HISTOGRAM, "backfill_github_request_duration_seconds",
        "Time from sending a GitHub GraphQL request to its answer or failure.", NULL,
        METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS));
    wm.points = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_github_points_total",
        "Primary rate-limit points GitHub charged (rateLimit.cost of the answers).", NULL, NULL,
        0));
    wm.pages = metrics_series0(metrics_family(m, METRIC_COUNTER, "backfill_github_pages_total",
                                              "Pages of pull requests accepted from GitHub.",
                                              NULL, NULL, 0));
    wm.prs = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_pull_requests_fetched_total",
        "Pull requests taken from accepted pages and published.", NULL, NULL, 0));
    wm.rl_wait = metrics_series0(metrics_family(
        m, METRIC_COUNTER, "backfill_rate_limit_wait_seconds_total",
        "Seconds jobs were scheduled to wait for a primary budget reset, a secondary limit or "
        "the shared pace.", NULL, NULL, 0));
    wm.budget_remaining = metrics_family(
        m, METRIC_GAUGE, "backfill_github_budget_remaining",
        "Primary rate-limit points left on the account, as GitHub last answered.", "account",
        NULL, 0);
    wm.budget_reset = metrics_family(
        m, METRIC_GAUGE, "backfill_github_budget_reset_timestamp_seconds",
        "When the account's primary rate-limit window resets (Unix time).", "account", NULL, 0);
    f = metrics_family(m, METRIC_COUNTER, "backfill_job_seconds_total",
                       "Seconds finished jobs spent, by span of their timeline (github: at "
                       "GitHub; wait: limits and backoff; handover: the slot free before the "
                       "job's message came; the rest is the worker's own overhead).",
                       "span", NULL, 0);
    for (int i = 0; i < JT_N; i++)
        wm.span[i] = metrics_series1(f, jt_name((enum jt_span)i));
    wm.span[JT_N] = metrics_series1(f, "handover");
    wm.overhead = metrics_series0(metrics_family(
        m, METRIC_HISTOGRAM, "backfill_job_overhead_seconds",
        "Per finished job: its time outside GitHub (total less the requests and the waits "
        "GitHub's limits imposed).", NULL, wm_overhead_buckets,
        (int)(sizeof wm_overhead_buckets / sizeof wm_overhead_buckets[0])));
    return 0;
}

void wm_job_started(void)
{
    metric_add(wm.started, 1);
    metric_add(wm.in_progress, 1);
}

void wm_job_released(void)
{
    metric_add(wm.in_progress, -1);
}

void wm_job_completed(void)
{
    metric_add(wm.completed, 1);
}

void wm_job_failed(enum wm_fail reason)
{
    metric_add(wm.failed[reason >= 0 && reason < WM_FAIL_N ? reason : WM_FAIL_OTHER], 1);
}

void wm_poison(void)
{
    metric_add(wm.poison, 1);
}

enum wm_fail wm_fail_for(enum gh_status status)
{
    switch (status) {
    case GH_NOT_FOUND: return WM_FAIL_NOT_FOUND;
    case GH_FORBIDDEN: return WM_FAIL_FORBIDDEN;
    case GH_INVALID: return WM_FAIL_INVALID;
    case GH_UNAUTHORIZED: return WM_FAIL_UNAUTHORIZED;
    case GH_SECONDARY_LIMIT: return WM_FAIL_SECONDARY_LIMIT;
    case GH_SERVER_ERROR:
    case GH_TRANSIENT: return WM_FAIL_RETRIES_EXHAUSTED;
    default: return WM_FAIL_OTHER;
    }
}

enum wm_class wm_class_of(const struct gh_page *page)
{
    switch (page->status) {
    case GH_OK: return WM_CLASS_OK;
    case GH_RATE_LIMITED: return WM_CLASS_RATE_LIMITED;
    case GH_SECONDARY_LIMIT: return WM_CLASS_SECONDARY_LIMIT;
    case GH_UNAUTHORIZED: return WM_CLASS_UNAUTHORIZED;
    case GH_SERVER_ERROR: return WM_CLASS_SERVER_ERROR;
    default: break;
    }
    if (page->http_status >= 500 && page->http_status <= 599)
        return WM_CLASS_SERVER_ERROR;
    /* the client reports curl's own text for a timeout (github_http.c) */
    if (page->status == GH_TRANSIENT &&
        strstr(page->error, curl_easy_strerror(CURLE_OPERATION_TIMEDOUT)))
        return WM_CLASS_TIMEOUT;
    return WM_CLASS_OTHER;
}

void wm_github_answer(const struct gh_page *page, double seconds)
{
    metric_add(wm.requests[wm_class_of(page)], 1);
    metric_observe(wm.duration, seconds >= 0 ? seconds : 0);
    if (page->cost > 0)
        metric_add(wm.points, page->cost);
}

void wm_page_accepted(int pull_requests)
{
    metric_add(wm.pages, 1);
    if (pull_requests > 0)
        metric_add(wm.prs, pull_requests);
}

void wm_rate_limit_wait(double seconds)
{
    if (seconds > 0)
        metric_add(wm.rl_wait, seconds);
}

void wm_job_timeline(const struct job_timeline *t)
{
    for (int i = 0; i < JT_N; i++)
        if (t->span[i] > 0)
            metric_add(wm.span[i], t->span[i]);
    if (t->handover > 0)
        metric_add(wm.span[JT_N], t->handover);
    metric_observe(wm.overhead, jt_outside(t));
}

void wm_budget(const char *account, int remaining, time_t reset_at)
{
    if (!account || !wm.budget_remaining)
        return;
    if (remaining >= 0)
        metric_set(metrics_series1(wm.budget_remaining, account), remaining);
    if (reset_at > 0)
        metric_set(metrics_series1(wm.budget_reset, account), (double)reset_at);
}
