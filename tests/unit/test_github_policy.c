/* Unit tests: GitHub's client rules (github_policy.h) — the primary
 * budget with a reserve, including a simulation of N single-threaded
 * workers sharing one token that must never be refused; backoff and
 * secondary-limit waits. */
#include <string.h>

#include "check.h"
#include "github_policy.h"

static const time_t now = 1764360000;

static struct gh_page page_with(int remaining, time_t reset_at, int cost, int retry_after)
{
    struct gh_page p;
    memset(&p, 0, sizeof p);
    p.remaining = remaining;
    p.reset_at = reset_at;
    p.cost = cost;
    p.retry_after = retry_after;
    return p;
}

static void test_budget_rule(void)
{
    struct gh_budget b;
    struct gh_page p;

    gh_budget_init(&b, 4);
    CHECK(gh_budget_wait_until(&b, now) == 0); /* unknown: one request to find out */
    p = page_with(6, now + 100, 1, -1);
    gh_budget_note(&b, &p);
    CHECK(gh_budget_wait_until(&b, now) == 0); /* 6 >= 1 + 4 */
    p = page_with(5, now + 100, 1, -1);
    gh_budget_note(&b, &p);
    CHECK(gh_budget_wait_until(&b, now) == 0); /* 5 >= 1 + 4 */
    p = page_with(4, now + 100, 1, -1);
    gh_budget_note(&b, &p);
    CHECK(gh_budget_wait_until(&b, now) == now + 101); /* 4 < 5: wait for the reset */
    CHECK(gh_budget_wait_until(&b, now + 100) == 0);   /* window passed */
    CHECK(b.remaining == -1);

    /* unknown fields of an answer change nothing */
    gh_budget_init(&b, 0);
    p = page_with(3, now + 50, 2, -1);
    gh_budget_note(&b, &p);
    p = page_with(-1, 0, -1, -1);
    gh_budget_note(&b, &p);
    CHECK(b.remaining == 3 && b.reset_at == now + 50 && b.cost == 2);
    p = page_with(1, now + 50, 2, -1);
    gh_budget_note(&b, &p);
    CHECK(gh_budget_wait_until(&b, now) == now + 51); /* 1 < cost 2 */

    /* a refusal without a reset time: one minute */
    gh_budget_init(&b, 0);
    gh_budget_exhausted(&b, 0, now);
    CHECK(gh_budget_wait_until(&b, now) == now + 61);
    /* low budget but no reset time known: try and learn */
    gh_budget_init(&b, 10);
    p = page_with(2, 0, 1, -1);
    gh_budget_note(&b, &p);
    CHECK(gh_budget_wait_until(&b, now) == 0);
}

/* N workers, each with at most one request in flight, interleaved in the
 * worst order: each decides on its last answer, and the server processes
 * requests one at a time. With reserve >= (N - 1) * cost no request is
 * ever refused, whatever the order. */
static int simulate(int workers, int reserve, int budget, unsigned seed)
{
    struct gh_budget b[16];
    int in_flight[16] = {0}, refused = 0, left = budget, sent = 0;
    unsigned x = seed;
    for (int i = 0; i < workers; i++)
        gh_budget_init(&b[i], reserve);
    for (int step = 0; step < 4000; step++) {
        int w;
        x = x * 1103515245u + 12345u;
        w = (int)((x >> 16) % (unsigned)workers);
        if (!in_flight[w]) { /* worker w decides whether to send */
            if (gh_budget_wait_until(&b[w], now) == 0)
                in_flight[w] = 1;
        } else { /* the server answers worker w's request */
            struct gh_page p;
            in_flight[w] = 0;
            if (left < 1) {
                refused++;
                gh_budget_exhausted(&b[w], now + 3600, now);
                continue;
            }
            left--;
            sent++;
            p = page_with(left, now + 3600, 1, -1);
            gh_budget_note(&b[w], &p);
        }
    }
    (void)sent;
    return refused;
}

static void test_budget_fleet(void)
{
    for (unsigned seed = 1; seed < 300; seed++) {
        CHECK(simulate(5, 4, 37, seed) == 0);
        CHECK(simulate(5, 10, 37, seed) == 0);
        CHECK(simulate(11, 10, 60, seed) == 0);
    }
    /* without a reserve, five workers do get refused in some order */
    int refused = 0;
    for (unsigned seed = 1; seed < 300; seed++)
        refused += simulate(5, 0, 37, seed);
    CHECK(refused > 0);
}

static void test_backoff(void)
{
    CHECK(gh_backoff_ms(200, 1, 0) == 200);
    CHECK(gh_backoff_ms(200, 2, 0) == 400);
    CHECK(gh_backoff_ms(200, 3, 0) == 800);
    CHECK(gh_backoff_ms(200, 3, 399) == 800 + 399 % 401);
    CHECK(gh_backoff_ms(200, 3, 12345) < 800 + 401);
    CHECK(gh_backoff_ms(1000, 100, 0) == GH_BACKOFF_MAX_MS); /* no overflow */
    CHECK(gh_backoff_ms(0, 1, 0) == 1);
}

static void test_secondary(void)
{
    struct gh_page p = page_with(100, now + 500, 1, 7);
    CHECK(gh_secondary_wait_ms(&p, 1, 60000, 200, 0, now) == 7000); /* retry-after */
    CHECK(gh_secondary_wait_ms(&p, 2, 60000, 200, 0, now) == 7200); /* + backoff */
    CHECK(gh_secondary_wait_ms(&p, 3, 60000, 200, 0, now) == 7400);
    CHECK(gh_secondary_wait_ms(&p, 3, 60000, 200, 1000, now) <= 7400 + 200);
    p = page_with(0, now + 30, 1, -1); /* no retry-after, budget 0: until the reset */
    CHECK(gh_secondary_wait_ms(&p, 1, 60000, 200, 0, now) == 31000);
    p = page_with(50, now + 30, 1, -1); /* nothing said: the default minute */
    CHECK(gh_secondary_wait_ms(&p, 1, 60000, 200, 0, now) == 60000);
    CHECK(gh_secondary_wait_ms(&p, 1, 1500, 200, 0, now) == 1500);
}

int main(void)
{
    test_budget_rule();
    test_budget_fleet();
    test_backoff();
    test_secondary();
    return CHECK_DONE();
}
