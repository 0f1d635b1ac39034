/* github_policy: GitHub's documented rules for API clients, as pure
 * decisions the worker applies between requests. No I/O, no clock of its
 * own (callers pass `now`), no randomness of its own (callers pass a
 * random number for jitter), no logging: every rule is unit-testable, and
 * the caller acts on what it decides.
 *
 * Primary budget. Every answer (success or failure) that carries
 * `rateLimit { remaining resetAt cost }` or `x-ratelimit-*` headers is
 * noted. A worker sends its next request only if the remaining budget it
 * last saw covers that request *plus a reserve* left for the other
 * requests in flight on the same token; otherwise it waits until the
 * window resets.
 *
 * Why the reserve makes a fleet safe: a worker runs up to --jobs jobs at
 * once, each with at most one request in flight on its own fetcher
 * thread; the worker's main thread owns all job state and makes every
 * decision here from one budget per worker, which also counts the
 * worker's own requests sent since the last answer (gh_budget_spend).
 * So a token has at most S = workers x jobs requests in flight, and each
 * is decided on the answer to an earlier one. Take the last answer that
 * still showed at least cost + reserve points: after it, each of the S
 * request slots can send at most one more request (the answers that
 * follow show less, so they stop). So at most S requests follow, and
 * S * cost points are there if reserve >= (S - 1) * cost. With GitHub's
 * cost of 1 point for this query, a reserve of R covers R + 1 requests in
 * flight on one token (default 10: 11). A worker that knows nothing yet
 * (first request, or after a reset) sends one request to find out, which
 * the same argument covers at the start of a window.
 *
 * Secondary limit (403/429): wait `retry-after` seconds if given; else,
 * if x-ratelimit-remaining is 0, until the reset; else the default wait
 * (60 s). Each further hit of the same request adds an exponentially
 * growing backoff with jitter; after GH_SECONDARY_MAX hits the job gives
 * up. 502/504/"Something went wrong" are retried with half the page (down
 * to GH_MIN_PAGE), which grows back after a success. Other transient
 * failures back off exponentially with jitter from a base; after
 * max_retries of one request the job gives up (to the DLQ). NOT_FOUND,
 * FORBIDDEN, a refused token or a rejected query end the job at once. */
#ifndef BACKFILL_GITHUB_POLICY_H
#define BACKFILL_GITHUB_POLICY_H

#include <time.h>

#include "github.h"

#define GH_BUDGET_DEFAULT_RESERVE 10
#define GH_BACKOFF_MAX_MS (15L * 60 * 1000) /* no single backoff above 15 minutes */
#define GH_SECONDARY_MAX 8 /* secondary-limit answers to one request before giving up */
#define GH_MIN_PAGE 5      /* smallest page after server errors */
#define GH_REASON_MAX 600  /* a decision's reason: a page's error and what follows */

struct gh_budget {
    int reserve;      /* points left for other requests sharing the token */
    int remaining;    /* points left as last seen, -1 unknown */
    int cost;         /* cost of the last query, at least 1 */
    time_t reset_at;  /* when the window resets (epoch seconds), 0 unknown */
};

void gh_budget_init(struct gh_budget *b, int reserve);

/* Records what an answer said about the budget (any status: fields that
 * are unknown in the page, -1 / 0, are ignored). */
void gh_budget_note(struct gh_budget *b, const struct gh_page *page);

/* Records a primary rate-limit refusal: nothing left until reset_at (0 if
 * the answer did not say; then one minute from now is assumed). */
void gh_budget_exhausted(struct gh_budget *b, time_t reset_at, time_t now);

/* Counts a request just sent against the budget as last seen (one query's
 * cost), so this worker's own requests in flight count too. Unknown
 * budgets stay unknown. */
void gh_budget_spend(struct gh_budget *b);

/* 0 if a request may be sent now; otherwise the epoch second to wait
 * until (one second after the reset, so the server's window has rolled).
 * Forgets the seen budget once its window has passed. */
time_t gh_budget_wait_until(struct gh_budget *b, time_t now);

/* Backoff before retry `attempt` (1-based): base_ms * 2^(attempt-1),
 * capped at GH_BACKOFF_MAX_MS, plus jitter in [0, half of that) taken
 * from rnd. */
long gh_backoff_ms(int base_ms, int attempt, unsigned rnd);

/* Wait after the `hits`-th (1-based) consecutive secondary-limit answer
 * `page` to the same request, as above. default_ms is the wait when
 * GitHub said nothing (60000); base_ms the backoff base. */
long gh_secondary_wait_ms(const struct gh_page *page, int hits, long default_ms, int base_ms,
                          unsigned rnd, time_t now);

/* A worker's retry options. */
struct gh_retry_conf {
    int page_size;          /* the full page, 1..GH_PAGE_MAX */
    int max_retries;        /* transient failures of one request before giving up */
    int retry_base_ms;      /* first backoff; doubles per retry, with jitter */
    long secondary_wait_ms; /* secondary limit that says nothing (GitHub: 60 s) */
};

/* What the policy remembers of one job's requests between answers. */
struct gh_attempts {
    int page_max;  /* size of the next page (shrinks after server errors) */
    int retries;   /* transient failures of the current request */
    int secondary; /* secondary-limit answers to the current request */
};

enum gh_verdict {
    GH_SEND,       /* the budget covers the next request: send it */
    GH_ACCEPT,     /* the answer is a page: take it */
    GH_WAIT_RESET, /* primary limit: wait until `until`, then ask again */
    GH_RETRY,      /* send the same request again after wait_ms, with page_max */
    GH_FAIL,       /* the job ends as failed with `reason` */
};

struct gh_decision {
    enum gh_verdict verdict;
    int answered;              /* decided on an answer: one request more was made */
    time_t until;              /* GH_WAIT_RESET: epoch second to wait until */
    long wait_ms;              /* GH_RETRY: how long to wait */
    int to_dlq;                /* GH_FAIL: dead-letter the job (it gave up, not terminal) */
    char reason[GH_REASON_MAX]; /* all but GH_SEND, GH_ACCEPT: one readable line, e.g.
                                 * "<error>; retry 1/3 in 1.2 s with pages of 50" */
};

/* Starts a job's attempts at the full page size. */
void gh_attempts_init(struct gh_attempts *a, const struct gh_retry_conf *conf);

/* Before a request: GH_SEND if the budget covers it, else GH_WAIT_RESET
 * with the time and why. Fills *d; may forget a budget whose window has
 * passed (gh_budget_wait_until). */
void gh_decide_send(struct gh_budget *b, time_t now, struct gh_decision *d);

/* After an answer: notes what it said about the budget, updates the
 * job's attempts, and fills *d with what to do:
 *   GH_OK                        GH_ACCEPT; attempts reset, page grows back
 *   GH_RATE_LIMITED              GH_WAIT_RESET until one second past the reset
 *   GH_SECONDARY_LIMIT           GH_RETRY after gh_secondary_wait_ms; GH_FAIL
 *                                (to the DLQ) after GH_SECONDARY_MAX of them
 *   GH_SERVER_ERROR              GH_RETRY with half the page (at least GH_MIN_PAGE)
 *   GH_TRANSIENT                 GH_RETRY with backoff at the same page; both give
 *                                up (GH_FAIL to the DLQ) after conf->max_retries
 *   anything else                GH_FAIL with the page's error, no DLQ
 * rnd is a random number for jitter. d->answered is always 1. */
void gh_decide(const struct gh_retry_conf *conf, struct gh_attempts *a, struct gh_budget *b,
               const struct gh_page *page, unsigned rnd, time_t now, struct gh_decision *d);

#endif
