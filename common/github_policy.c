/* github_policy: see github_policy.h. Decides; never acts. */
#include "github_policy.h"

#include <stdio.h>
#include <string.h>

void gh_budget_init(struct gh_budget *b, int reserve)
{
    memset(b, 0, sizeof *b);
    b->reserve = reserve > 0 ? reserve : 0;
    b->remaining = -1;
    b->cost = 1;
}

void gh_budget_note(struct gh_budget *b, const struct gh_page *page)
{
    if (page->remaining >= 0)
        b->remaining = page->remaining;
    if (page->reset_at > 0)
        b->reset_at = page->reset_at;
    if (page->cost > 0)
        b->cost = page->cost;
}

void gh_budget_exhausted(struct gh_budget *b, time_t reset_at, time_t now)
{
    b->remaining = 0;
    b->reset_at = reset_at > now ? reset_at : now + 60;
}

time_t gh_budget_wait_until(struct gh_budget *b, time_t now)
{
    if (b->remaining < 0)
        return 0;
    if (b->reset_at > 0 && now >= b->reset_at) {
        b->remaining = -1; /* a new window: find out with the next answer */
        return 0;
    }
    if ((long)b->remaining >= (long)b->cost + b->reserve)
        return 0;
    if (b->reset_at <= 0) {
        b->remaining = -1; /* no reset time to wait for: try, and learn from the answer */
        return 0;
    }
    return b->reset_at + 1;
}

long gh_backoff_ms(int base_ms, int attempt, unsigned rnd)
{
    long ms = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && ms < GH_BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > GH_BACKOFF_MAX_MS)
        ms = GH_BACKOFF_MAX_MS;
    return ms + (long)(rnd % (unsigned long)(ms / 2 + 1));
}

long gh_secondary_wait_ms(const struct gh_page *page, int hits, long default_ms, int base_ms,
                          unsigned rnd, time_t now)
{
    long told;
    if (page->retry_after >= 0)
        told = page->retry_after > GH_BACKOFF_MAX_MS / 1000 ? GH_BACKOFF_MAX_MS
                                                              : page->retry_after * 1000L;
    else if (page->remaining == 0 && page->reset_at > now)
        told = (long)(page->reset_at - now + 1) * 1000L;
    else
        told = default_ms;
    return hits > 1 ? told + gh_backoff_ms(base_ms, hits - 1, rnd) : told;
}

void gh_budget_spend(struct gh_budget *b)
{
    if (b->remaining > 0)
        b->remaining -= b->cost > 0 ? b->cost : 1;
}

void gh_attempts_init(struct gh_attempts *a, const struct gh_retry_conf *conf)
{
    a->page_max = conf->page_size;
    a->retries = 0;
    a->secondary = 0;
}

/* Clears *d for a verdict; reason empty. */
static void gh_decision_set(struct gh_decision *d, enum gh_verdict v, int answered)
{
    memset(d, 0, sizeof *d);
    d->verdict = v;
    d->answered = answered;
}

void gh_decide_send(struct gh_budget *b, time_t now, struct gh_decision *d)
{
    time_t until = gh_budget_wait_until(b, now);

    gh_decision_set(d, until ? GH_WAIT_RESET : GH_SEND, 0);
    if (!until)
        return;
    d->until = until;
    snprintf(d->reason, sizeof d->reason,
             "primary rate limit: %d points left, %d kept in reserve for other workers",
             b->remaining, b->reserve);
}

/* A secondary-limit answer: wait as GitHub says, then back off; give up
 * after GH_SECONDARY_MAX of them to one request. */
static void gh_decide_secondary(const struct gh_retry_conf *conf, struct gh_attempts *a,
                                const struct gh_page *page, unsigned rnd, time_t now,
                                struct gh_decision *d)
{
    if (++a->secondary > GH_SECONDARY_MAX) {
        gh_decision_set(d, GH_FAIL, 1);
        d->to_dlq = 1;
        snprintf(d->reason, sizeof d->reason, "gave up after %d secondary rate limit answers: %s",
                 GH_SECONDARY_MAX, page->error);
        return;
    }
    gh_decision_set(d, GH_RETRY, 1);
    d->wait_ms = gh_secondary_wait_ms(page, a->secondary, conf->secondary_wait_ms,
                                      conf->retry_base_ms, rnd, now);
    snprintf(d->reason, sizeof d->reason, "%s; retrying in %.1f s (secondary limit %d/%d for "
             "this request)", page->error, d->wait_ms / 1000.0, a->secondary, GH_SECONDARY_MAX);
}

/* A server error or a transient failure: back off (server errors with a
 * smaller page); give up after conf->max_retries of one request. */
static void gh_decide_transient(const struct gh_retry_conf *conf, struct gh_attempts *a,
                                const struct gh_page *page, unsigned rnd, struct gh_decision *d)
{
    if (++a->retries > conf->max_retries) {
        gh_decision_set(d, GH_FAIL, 1);
        d->to_dlq = 1;
        snprintf(d->reason, sizeof d->reason, "gave up after %d retries: %s", conf->max_retries,
                 page->error);
        return;
    }
    if (page->status == GH_SERVER_ERROR && a->page_max > GH_MIN_PAGE)
        a->page_max = a->page_max / 2 > GH_MIN_PAGE ? a->page_max / 2 : GH_MIN_PAGE;
    gh_decision_set(d, GH_RETRY, 1);
    d->wait_ms = gh_backoff_ms(conf->retry_base_ms, a->retries, rnd);
    snprintf(d->reason, sizeof d->reason, "%s; retry %d/%d in %.1f s with pages of %d",
             page->error, a->retries, conf->max_retries, d->wait_ms / 1000.0, a->page_max);
}

void gh_decide(const struct gh_retry_conf *conf, struct gh_attempts *a, struct gh_budget *b,
               const struct gh_page *page, unsigned rnd, time_t now, struct gh_decision *d)
{
    gh_budget_note(b, page);
    switch (page->status) {
    case GH_OK:
        gh_decision_set(d, GH_ACCEPT, 1);
        a->retries = a->secondary = 0;
        if (a->page_max < conf->page_size)
            a->page_max = a->page_max * 2 < conf->page_size ? a->page_max * 2 : conf->page_size;
        return;
    case GH_RATE_LIMITED:
        gh_budget_exhausted(b, page->reset_at, now);
        gh_decision_set(d, GH_WAIT_RESET, 1);
        d->until = gh_budget_wait_until(b, now);
        snprintf(d->reason, sizeof d->reason, "%s", page->error);
        return;
    case GH_SECONDARY_LIMIT:
        gh_decide_secondary(conf, a, page, rnd, now, d);
        return;
    case GH_SERVER_ERROR:
    case GH_TRANSIENT:
        gh_decide_transient(conf, a, page, rnd, d);
        return;
    case GH_NOT_FOUND:
    case GH_FORBIDDEN:
    case GH_UNAUTHORIZED:
    case GH_INVALID:
        break;
    }
    gh_decision_set(d, GH_FAIL, 1); /* terminal: retrying cannot help */
    snprintf(d->reason, sizeof d->reason, "%s", page->error);
}
