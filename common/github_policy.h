/* github_policy: GitHub's documented rules for API clients, as pure
 * arithmetic the worker applies between requests. No I/O, no clock of
 * its own (callers pass `now`), no randomness of its own (callers pass a
 * random number for jitter), so every rule is unit-testable.
 *
 * Primary budget. Every answer (success or failure) that carries
 * `rateLimit { remaining resetAt cost }` or `x-ratelimit-*` headers is
 * noted. A worker sends its next request only if the remaining budget it
 * last saw covers that request *plus a reserve* left for the other
 * workers sharing the token; otherwise it waits until the window resets.
 *
 * Why the reserve makes a fleet safe: each worker is single-threaded, so
 * it has at most one request in flight and decides on the answer to its
 * own previous request. Take the last answer that still showed at least
 * cost + reserve points: after it, every worker can send at most one
 * more request (its next answer shows less than cost + reserve, so it
 * stops). So at most N requests follow, and N * cost points are there
 * if reserve >= (N - 1) * cost. With GitHub's cost of 1 point for this
 * query, a reserve of R covers R + 1 workers on one token (default 10:
 * up to 11 workers). A worker that knows nothing yet (first request, or
 * after a reset) sends one request to find out, which the same argument
 * covers at the start of a window.
 *
 * Secondary limit (403/429): wait `retry-after` seconds if given; else,
 * if x-ratelimit-remaining is 0, until the reset; else the default wait
 * (60 s). Each further hit of the same request adds an exponentially
 * growing backoff with jitter. Other transient failures back off
 * exponentially with jitter from a base. */
#ifndef BACKFILL_GITHUB_POLICY_H
#define BACKFILL_GITHUB_POLICY_H

#include <time.h>

#include "github.h"

#define GH_BUDGET_DEFAULT_RESERVE 10
#define GH_BACKOFF_MAX_MS (15L * 60 * 1000) /* no single backoff above 15 minutes */

struct gh_budget {
    int reserve;      /* points left for other workers sharing the token */
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

#endif
