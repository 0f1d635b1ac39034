/* github_policy: see github_policy.h. */
#include "github_policy.h"

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
