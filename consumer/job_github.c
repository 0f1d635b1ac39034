/* job_github: the GitHub side of a job's JOB_FETCH step (job_github.h).
 * It takes a credential from the worker's pool when one may send, starts
 * the job's request with it on the slot's fetcher thread, collects the
 * answer when it has come, gives the credential back with what GitHub
 * said, and hands back what GitHub's policy (github_policy.h) decided
 * about it. Each job has at most one request in flight, run by its
 * slot's fetcher thread; a worker has at most --jobs. All of this runs on
 * the worker's main thread. It calls only down (credentials, fetcher,
 * pager, github_policy) and never into job.c: acting on a decision —
 * publishing, waiting, failing, changing the phase — is job.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_github.h"

void job_gh_init(struct job_gh *g, fetcher *fetch, cred_pool *creds,
                 const struct gh_retry_conf *conf)
{
    memset(g, 0, sizeof *g);
    g->fetch = fetch;
    g->creds = creds;
    g->conf = *conf;
    gh_attempts_init(&g->tries, &g->conf);
}

/* Gives back a lease whose request never went out. */
static void job_gh_unlease(struct job_gh *g)
{
    struct gh_page none = {.status = GH_TRANSIENT, .cost = -1, .remaining = -1};
    struct gh_budget b;
    char why[8];
    cred_pool_release(g->creds, &g->lease, &none, time(NULL), &b, why, sizeof why);
}

/* Hands the next request to the fetcher on the credential the pool picks,
 * unless the job must wait or fail first (returns 1 with *d). The
 * fetcher's thread does the blocking I/O; the main thread keeps polling
 * Kafka and runs the worker's other jobs. */
static int job_gh_send(struct job_gh *g, const struct job *job, const struct pager *pager,
                       struct gh_decision *d)
{
    enum cred_verdict v = cred_pool_acquire(g->creds, job->owner, job->name, time(NULL),
                                            &g->lease, &g->later_s, d);
    g->no_credential = v == CRED_NONE;
    g->paced = v == CRED_LATER;
    switch (v) {
    case CRED_GO:
        break;
    case CRED_LATER:
    case CRED_READYING:
        return 0;
    case CRED_WAIT:
    case CRED_NONE:
    case CRED_UNCOVERED:
    default:
        return 1;
    }
    if (fetcher_start(g->fetch, g->lease.token, job->owner, job->name,
                      pager_next_first(pager, g->tries.page_max), pager->cursor) != 0) {
        job_gh_unlease(g);
        return 0;
    }
    g->in_flight = 1;
    return 0;
}

/* The decision on an answer: the credentials first (a refused one is
 * retried at once elsewhere), then GitHub's policy. */
static void job_gh_decide(struct job_gh *g, const struct gh_page *page, struct gh_decision *d)
{
    struct gh_budget budget;
    char why[GH_REASON_MAX];

    if (cred_pool_release(g->creds, &g->lease, page, time(NULL), &budget, why, sizeof why)) {
        memset(d, 0, sizeof *d);
        d->verdict = GH_RETRY;
        d->answered = 1;
        snprintf(d->reason, sizeof d->reason, "%s", why);
        return;
    }
    gh_decide(&g->conf, &g->tries, &budget, page, (unsigned)rand(), time(NULL), d);
    if (d->verdict == GH_WAIT_RESET) {
        /* this account is spent; the next look takes another, or says how
         * long every account that can see the repository must wait */
        d->verdict = GH_RETRY;
        d->wait_ms = 0;
        snprintf(d->reason, sizeof d->reason, "%s; trying another account",
                 page->error[0] ? page->error : "primary rate limit");
    }
}

int job_gh_step(struct job_gh *g, const struct job *job, const struct pager *pager,
                struct gh_page *page, struct gh_decision *d)
{
    memset(page, 0, sizeof *page);
    g->later_s = 0;
    g->paced = 0;
    if (!g->in_flight)
        return job_gh_send(g, job, pager, d);
    if (!fetcher_collect(g->fetch, page, 0))
        return 0;
    g->in_flight = 0;
    g->answered_at = fetcher_answered_at(g->fetch);
    job_gh_decide(g, page, d);
    return 1;
}

void job_gh_abandon(struct job_gh *g)
{
    struct gh_page page;

    if (!g->in_flight)
        return;
    fetcher_collect(g->fetch, &page, 1);
    job_gh_unlease(g); /* the answer is dropped: nothing learned from it */
    gh_page_clear(&page);
    g->in_flight = 0;
}
