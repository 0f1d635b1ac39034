/* job_github: the JOB_FETCH step of a job — one GitHub request and
 * GitHub's policy around it (github_policy.h): wait for the primary
 * budget's reset before a request the budget (minus the reserve for other
 * workers) cannot cover; after a secondary limit wait as told, then back
 * off exponentially; retry 502/504/"Something went wrong" with a smaller
 * page; retry other transient failures with backoff; after max_retries
 * (or too many secondary limits) fail the job to the DLQ; fail NOT_FOUND,
 * FORBIDDEN and the like at once. Each job has at most one request in
 * flight, run by its slot's fetcher thread; a worker has at most --jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"
#include "job_internal.h"
#include "log.h"

#define JOB_SECONDARY_MAX 8 /* secondary-limit answers to one request before giving up */
#define JOB_MIN_PAGE 5      /* smallest page after server errors */
#define JOB_FETCH_POLL 0.004 /* seconds between looks at a request in flight */

/* Publishes rate_limited with the time work resumes, commits it, and
 * schedules the next fetch for then (the loop keeps polling Kafka). */
static enum job_step job_wait_rate_limit(job_run *jr, time_t until, const char *why)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    char retry_at[ISOTIME_LEN + 1];

    isotime_format(until, retry_at);
    log_warn("%s: %s; waiting until %s (status paused, still polling Kafka)", jr->job.key, why,
             retry_at);
    next.seq = jr->seq;
    job_progress_info(jr, &next, &pi, "rate_limited");
    pi.retry_at = retry_at;
    pi.reset_at = retry_at;
    if (job_send_progress(jr, &pi, &next.seq) != 0) {
        log_warn("%s: rate_limited event not published; waiting anyway", jr->job.key);
        jr->seq = next.seq;
        jr->not_before = (double)until;
        return JOB_STEP_WAIT;
    }
    jr->pager_before = jr->pager;
    return job_published(jr, &next, 0, JOB_FETCH, JOB_FETCH, (double)until);
}

/* A failed request that may succeed later: wait and retry, or give up. */
static enum job_step job_retry(job_run *jr, const struct gh_page *page)
{
    const struct worker_ctx *ctx = jr->ctx;
    char reason[sizeof jr->fail_reason];
    long wait_ms;

    if (page->status == GH_SECONDARY_LIMIT) {
        if (++jr->secondary > JOB_SECONDARY_MAX) {
            snprintf(reason, sizeof reason, "gave up after %d secondary rate limit answers: %s",
                     JOB_SECONDARY_MAX, page->error);
            return job_fail(jr, reason, 1);
        }
        wait_ms = gh_secondary_wait_ms(page, jr->secondary, ctx->secondary_wait_ms,
                                       ctx->retry_base_ms, (unsigned)rand(), time(NULL));
        log_warn("%s: %s; retrying in %.1f s (secondary limit %d/%d for this request)",
                 jr->job.key, page->error, wait_ms / 1000.0, jr->secondary, JOB_SECONDARY_MAX);
        return job_wait(jr, wait_ms / 1000.0);
    }
    if (++jr->retries > ctx->max_retries) {
        snprintf(reason, sizeof reason, "gave up after %d retries: %s", ctx->max_retries,
                 page->error);
        return job_fail(jr, reason, 1);
    }
    if (page->status == GH_SERVER_ERROR && jr->page_max > JOB_MIN_PAGE)
        jr->page_max = jr->page_max / 2 > JOB_MIN_PAGE ? jr->page_max / 2 : JOB_MIN_PAGE;
    wait_ms = gh_backoff_ms(ctx->retry_base_ms, jr->retries, (unsigned)rand());
    log_warn("%s: %s; retry %d/%d in %.1f s with pages of %d", jr->job.key, page->error,
             jr->retries, ctx->max_retries, wait_ms / 1000.0, jr->page_max);
    return job_wait(jr, wait_ms / 1000.0);
}

/* Queues a fetched chunk and its progress (and the completion); the
 * commit follows once Kafka acknowledged them. */
static enum job_step job_publish_chunk(job_run *jr, const struct pager *before, json_t *records,
                                       const struct gh_page *page)
{
    struct checkpoint next = jr->cp;
    struct progress_info pi;
    char **parts = NULL;
    size_t nparts = 0, n = json_array_size(records);
    int bad = 0;
    double pause = jr->ctx->chunk_pause_ms / 1000.0;

    next.seq = jr->seq;
    next.requests++;
    next.points += page->cost > 0 ? page->cost : 1;
    if (n > 0) {
        next.chunk++;
        bad = events_pull_requests(&jr->job, jr->repository_id, next.chunk, records, &next.seq,
                                   &parts, &nparts);
        for (size_t i = 0; !bad && i < nparts; i++)
            bad = outbox_send(jr->ctx->ob, jr->tally, jr->ctx->progress_topic, jr->job.key,
                              EVENT_PULL_REQUESTS, parts[i]);
        events_free_parts(parts, nparts);
        job_progress_info(jr, &next, &pi, "processing");
        pi.chunk_size = (int)n;
        bad = bad || job_send_progress(jr, &pi, &next.seq);
    }
    if (!bad && jr->pager.done) {
        job_progress_info(jr, &next, &pi, "completed");
        bad = job_send_progress(jr, &pi, &next.seq);
    }
    snprintf(next.cursor, sizeof next.cursor, "%s", jr->pager.cursor);
    next.fetched = jr->pager.fetched;
    jr->seq = next.seq; /* never reuse a seq that may have gone out */
    if (bad) {
        log_warn("%s: could not queue chunk %d for Kafka; fetching it again in 1 s", jr->job.key,
                 next.chunk);
        jr->pager = *before;
        jr->cp.requests++;
        return job_wait(jr, 1.0);
    }
    log_debug("%s: chunk %d queued, %d/%d PRs", jr->job.key, next.chunk, jr->pager.fetched,
              jr->job.max_prs);
    jr->pager_before = *before;
    return job_published(jr, &next, jr->pager.done, JOB_FETCH, jr->pager.done ? JOB_END : JOB_FETCH,
                         pause > 0 && !jr->pager.done ? job_now() + pause : 0);
}

/* A GH_OK page: take what belongs to the backfill and publish it. */
static enum job_step job_accept(job_run *jr, const struct gh_page *page)
{
    const struct worker_ctx *ctx = jr->ctx;
    struct pager before = jr->pager;
    enum job_step st;
    json_t *records;

    jr->retries = jr->secondary = 0;
    if (jr->page_max < ctx->page_size)
        jr->page_max = jr->page_max * 2 < ctx->page_size ? jr->page_max * 2 : ctx->page_size;
    if (page->repository_id > 0)
        jr->repository_id = page->repository_id;
    records = pager_accept(&jr->pager, page);
    if (!records)
        return job_wait(jr, 1.0);
    st = job_publish_chunk(jr, &before, records, page);
    json_decref(records);
    return st;
}

/* Hands the next request to the slot's fetcher, unless the primary
 * budget says to wait first. The fetcher's thread does the blocking I/O;
 * this thread keeps polling Kafka and runs the worker's other jobs. */
static enum job_step job_fetch_start(job_run *jr)
{
    struct worker_ctx *ctx = jr->ctx;
    char why[128];
    time_t until = gh_budget_wait_until(&ctx->budget, time(NULL));

    if (until) {
        snprintf(why, sizeof why, "primary rate limit: %d points left, %d kept in reserve for "
                 "other workers", ctx->budget.remaining, ctx->budget.reserve);
        return job_wait_rate_limit(jr, until, why);
    }
    if (fetcher_start(jr->fetch, jr->job.owner, jr->job.name,
                      pager_next_first(&jr->pager, jr->page_max), jr->pager.cursor) != 0)
        return job_wait(jr, JOB_FETCH_POLL);
    jr->in_flight = 1;
    if (ctx->budget.remaining > 0) /* this process's own requests in flight count too */
        ctx->budget.remaining -= ctx->budget.cost > 0 ? ctx->budget.cost : 1;
    return job_wait(jr, JOB_FETCH_POLL);
}

enum job_step job_fetch(job_run *jr)
{
    struct worker_ctx *ctx = jr->ctx;
    struct gh_page page;
    enum job_step st;
    time_t now;

    if (!jr->in_flight)
        return job_fetch_start(jr);
    if (!fetcher_collect(jr->fetch, &page, 0))
        return job_wait(jr, JOB_FETCH_POLL);
    jr->in_flight = 0;
    now = time(NULL);
    gh_budget_note(&ctx->budget, &page);
    switch (page.status) {
    case GH_OK:
        st = job_accept(jr, &page);
        break;
    case GH_RATE_LIMITED:
        jr->cp.requests++;
        gh_budget_exhausted(&ctx->budget, page.reset_at, now);
        st = job_wait_rate_limit(jr, gh_budget_wait_until(&ctx->budget, now), page.error);
        break;
    case GH_SECONDARY_LIMIT:
    case GH_SERVER_ERROR:
    case GH_TRANSIENT:
        jr->cp.requests++;
        st = job_retry(jr, &page);
        break;
    default:
        jr->cp.requests++;
        st = job_fail(jr, page.error, 0);
        break;
    }
    gh_page_clear(&page);
    return st;
}
