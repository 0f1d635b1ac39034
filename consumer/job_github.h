/* job_github: the GitHub side of a job's JOB_FETCH step (job_github.c),
 * which job.c — and nothing outside consumer/job*.c — uses.
 *
 * The layers only call downward: job.c (the job's phases; the only code
 * that changes them) calls job_github.c, which calls the slot's fetcher
 * and GitHub's pure policy (github_policy.h) and never calls back. A step
 * here acts on nothing of the job: it starts or collects a request and
 * returns the policy's decision (accept the page, wait for the reset,
 * retry, fail with a reason) for job.c to publish, wait or fail on. */
#ifndef BACKFILL_JOB_GITHUB_H
#define BACKFILL_JOB_GITHUB_H

#include "codec.h"
#include "credentials.h"
#include "fetcher.h"
#include "github_policy.h"
#include "pager.h"

/* One job's GitHub requests and what the policy remembers between them. */
struct job_gh {
    fetcher *fetch;            /* borrowed: the slot's GitHub request thread */
    cred_pool *creds;          /* borrowed: the worker's credentials, shared by all its jobs */
    struct gh_retry_conf conf; /* the worker's retry options (copied) */
    struct gh_attempts tries;  /* page size and retries of the current request */
    struct cred_lease lease;   /* the credential of the request in flight */
    int in_flight;             /* a request of this job is with the fetcher */
    double later_s;            /* after a step that started nothing: when to look again */
    int no_credential;         /* waiting because no credential is valid (wake it when one is) */
    int paced;                 /* later_s is the shared pace's (not a credential being readied) */
    double answered_at;        /* isotime_mono() when the last collected answer arrived */
};

/* Sets up g for a new job on the slot's fetcher (borrowed, idle) with the
 * worker's credentials (borrowed) and retry options (copied). */
void job_gh_init(struct job_gh *g, fetcher *fetch, cred_pool *creds,
                 const struct gh_retry_conf *conf);

/* One look at the job's request, never blocking. With none in flight it
 * asks the credentials for one that may send now and either starts the
 * next page of `job` after pager's cursor on it (returns 0), finds none
 * ready yet (returns 0 with g->later_s set), or decides that the job must
 * wait for a reset or a valid credential (returns 1, GH_WAIT_RESET) or
 * cannot be served at all (returns 1, GH_FAIL). With one in flight it
 * returns 0 while the request runs, else collects the answer into *page
 * and returns 1 with the decision on it in *d: a refused credential is
 * GH_RETRY at once (on another), a spent budget GH_RETRY at once (the next
 * look finds another account or the time to wait). *page is always left
 * for the caller to gh_page_clear (zeroed unless an answer came); *d is
 * filled only when 1 is returned. Changes nothing of the job but g and
 * the credentials' counts. */
int job_gh_step(struct job_gh *g, const struct job *job, const struct pager *pager,
                struct gh_page *page, struct gh_decision *d);

/* Waits for the request in flight, if any (bounded by the client's
 * timeouts), and drops its answer, so that the slot's fetcher is free for
 * the next job. */
void job_gh_abandon(struct job_gh *g);

#endif
