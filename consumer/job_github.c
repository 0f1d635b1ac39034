/* job_github: the GitHub side of a job's JOB_FETCH step (job_github.h).
 * It starts the job's request on the slot's fetcher thread when the
 * worker's primary budget allows, collects the answer when it has come,
 * and hands back what GitHub's policy (github_policy.h) decided about it.
 * Each job has at most one request in flight, run by its slot's fetcher
 * thread; a worker has at most --jobs. All of this runs on the worker's
 * main thread, which owns the budget its jobs share. It calls only down
 * (fetcher, pager, github_policy) and never into job.c: acting on a
 * decision — publishing, waiting, failing, changing the phase — is
 * job.c's. */
#include <stdlib.h>
#include <string.h>

#include "job_github.h"

void job_gh_init(struct job_gh *g, fetcher *fetch, struct gh_budget *budget,
                 const struct gh_retry_conf *conf)
{
    memset(g, 0, sizeof *g);
    g->fetch = fetch;
    g->budget = budget;
    g->conf = *conf;
    gh_attempts_init(&g->tries, &g->conf);
}

/* Hands the next request to the fetcher unless the budget says to wait
 * first (returns 1 with *d). The fetcher's thread does the blocking I/O;
 * the main thread keeps polling Kafka and runs the worker's other jobs. */
static int job_gh_send(struct job_gh *g, const struct job *job, const struct pager *pager,
                       struct gh_decision *d)
{
    gh_decide_send(g->budget, time(NULL), d);
    if (d->verdict != GH_SEND)
        return 1;
    if (fetcher_start(g->fetch, job->owner, job->name,
                      pager_next_first(pager, g->tries.page_max), pager->cursor) != 0)
        return 0;
    g->in_flight = 1;
    gh_budget_spend(g->budget);
    return 0;
}

int job_gh_step(struct job_gh *g, const struct job *job, const struct pager *pager,
                struct gh_page *page, struct gh_decision *d)
{
    memset(page, 0, sizeof *page);
    if (!g->in_flight)
        return job_gh_send(g, job, pager, d);
    if (!fetcher_collect(g->fetch, page, 0))
        return 0;
    g->in_flight = 0;
    gh_decide(&g->conf, &g->tries, g->budget, page, (unsigned)rand(), time(NULL), d);
    return 1;
}

void job_gh_abandon(struct job_gh *g)
{
    struct gh_page page;

    if (!g->in_flight)
        return;
    fetcher_collect(g->fetch, &page, 1);
    gh_page_clear(&page);
    g->in_flight = 0;
}
