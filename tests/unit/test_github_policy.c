/* Unit tests: GitHub's client rules (github_policy.h) — the primary
 * budget with a reserve, including a simulation of workers running
 * several jobs each on one token that must never be refused; backoff and
 * secondary-limit waits; and, table-driven, every decision a job's step
 * can get from gh_decide_send and gh_decide, with no Kafka and no
 * network. */
#include <stdio.h>
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

/* The same with W workers of J jobs each: a worker's jobs decide on the
 * worker's one budget, which counts the worker's own requests since the
 * last answer (gh_budget_spend). With reserve >= (W * J - 1) * cost no
 * request is ever refused. */
static int simulate_slots(int workers, int jobs, int reserve, int budget, unsigned seed)
{
    struct gh_budget b[8];
    int in_flight[8][8] = {{0}}, refused = 0, left = budget;
    unsigned x = seed;
    for (int i = 0; i < workers; i++)
        gh_budget_init(&b[i], reserve);
    for (int step = 0; step < 1500; step++) {
        int w, j;
        x = x * 1103515245u + 12345u;
        w = (int)((x >> 16) % (unsigned)workers);
        j = (int)((x >> 8) % (unsigned)jobs);
        if (!in_flight[w][j]) {
            struct gh_decision d;
            gh_decide_send(&b[w], now, &d);
            if (d.verdict == GH_SEND) {
                in_flight[w][j] = 1;
                gh_budget_spend(&b[w]);
            }
        } else {
            struct gh_page p;
            in_flight[w][j] = 0;
            if (left < 1) {
                refused++;
                gh_budget_exhausted(&b[w], now + 3600, now);
                continue;
            }
            left--;
            p = page_with(left, now + 3600, 1, -1);
            gh_budget_note(&b[w], &p);
        }
    }
    return refused;
}

static void test_budget_fleet(void)
{
    int slot_refused = 0;
    for (unsigned seed = 1; seed < 200; seed++) {
        CHECK(simulate_slots(2, 3, 5, 37, seed) == 0);
        CHECK(simulate_slots(3, 4, 11, 60, seed) == 0);
        CHECK(simulate_slots(1, 8, 7, 20, seed) == 0);
        slot_refused += simulate_slots(2, 3, 0, 37, seed);
    }
    CHECK(slot_refused > 0); /* the reserve is what prevents it */

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

/* ---- decisions: what a job's step is told to do ---- */

static const struct gh_retry_conf conf = {.page_size = 100, .max_retries = 3,
                                          .retry_base_ms = 200, .secondary_wait_ms = 1500};

struct send_case {
    const char *name;
    int reserve, remaining, cost;
    time_t reset_at;
    enum gh_verdict verdict;
    time_t until;
    const char *reason;
};

static void test_decide_send(void)
{
    const struct send_case cases[] = { /* not static: `now` is no constant expression */
        {"budget unknown: one request to find out", 10, -1, 1, 0, GH_SEND, 0, ""},
        {"budget covers cost + reserve", 4, 5, 1, now + 100, GH_SEND, 0, ""},
        {"primary limit: wait until one second past the reset", 4, 4, 1, now + 100,
         GH_WAIT_RESET, now + 101,
         "primary rate limit: 4 points left, 4 kept in reserve for other workers"},
        {"costlier query", 0, 1, 2, now + 50, GH_WAIT_RESET, now + 51,
         "primary rate limit: 1 points left, 0 kept in reserve for other workers"},
        {"window passed: send", 4, 0, 1, now, GH_SEND, 0, ""},
        {"low but no reset known: send and learn", 10, 2, 1, 0, GH_SEND, 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct send_case *c = &cases[i];
        struct gh_budget b;
        struct gh_decision d;
        int ok;
        gh_budget_init(&b, c->reserve);
        b.remaining = c->remaining;
        b.cost = c->cost;
        b.reset_at = c->reset_at;
        memset(&d, 0x5a, sizeof d);
        gh_decide_send(&b, now, &d);
        ok = d.verdict == c->verdict && d.until == c->until && !d.answered &&
             strcmp(d.reason, c->reason) == 0;
        if (!ok)
            fprintf(stderr, "send case \"%s\": verdict %d until %lld reason \"%s\"\n", c->name,
                    (int)d.verdict, (long long)d.until, d.reason);
        CHECK(ok);
    }
}

struct decide_case {
    const char *name;
    struct gh_attempts before; /* {page_max, retries, secondary} */
    enum gh_status status;
    int remaining, retry_after;
    time_t reset_at;
    unsigned rnd;
    /* expected */
    enum gh_verdict verdict;
    long wait_ms;   /* GH_RETRY */
    time_t until;   /* GH_WAIT_RESET */
    int to_dlq;     /* GH_FAIL */
    struct gh_attempts after;  /* {page_max, retries, secondary} */
    const char *reason;
};

#define E "boom" /* the page's error in every case */

static void test_decide_table(void)
{
    const struct decide_case cases[] = {
        {"a page: accept, reset the counts", {100, 2, 3}, GH_OK, 90, -1, now + 900, 0,
         GH_ACCEPT, 0, 0, 0, {100, 0, 0}, ""},
        {"a page after server errors: the page grows back", {25, 1, 0}, GH_OK, -1, -1, 0, 0,
         GH_ACCEPT, 0, 0, 0, {50, 0, 0}, ""},
        {"growing back stops at the full page", {80, 0, 0}, GH_OK, -1, -1, 0, 0, GH_ACCEPT, 0, 0,
         0, {100, 0, 0}, ""},
        {"primary limit: wait until one second past the reset", {100, 0, 0}, GH_RATE_LIMITED, 0,
         -1, now + 300, 0, GH_WAIT_RESET, 0, now + 301, 0, {100, 0, 0}, E},
        {"primary limit without a reset time: a minute", {100, 1, 0}, GH_RATE_LIMITED, -1, -1, 0,
         0, GH_WAIT_RESET, 0, now + 61, 0, {100, 1, 0}, E},
        {"secondary with retry-after: as told", {100, 0, 0}, GH_SECONDARY_LIMIT, 50, 7,
         now + 500, 0, GH_RETRY, 7000, 0, 0, {100, 0, 1},
         E "; retrying in 7.0 s (secondary limit 1/8 for this request)"},
        {"secondary again: plus backoff", {100, 0, 1}, GH_SECONDARY_LIMIT, 50, 7, now + 500, 0,
         GH_RETRY, 7200, 0, 0, {100, 0, 2},
         E "; retrying in 7.2 s (secondary limit 2/8 for this request)"},
        {"secondary without retry-after, budget 0: until the reset", {100, 0, 0},
         GH_SECONDARY_LIMIT, 0, -1, now + 30, 0, GH_RETRY, 31000, 0, 0, {100, 0, 1},
         E "; retrying in 31.0 s (secondary limit 1/8 for this request)"},
        {"secondary saying nothing: the default wait", {100, 0, 0}, GH_SECONDARY_LIMIT, 50, -1,
         now + 30, 0, GH_RETRY, 1500, 0, 0, {100, 0, 1},
         E "; retrying in 1.5 s (secondary limit 1/8 for this request)"},
        {"secondary does not touch retries or the page", {50, 2, 0}, GH_SECONDARY_LIMIT, -1, 1,
         0, 0, GH_RETRY, 1000, 0, 0, {50, 2, 1},
         E "; retrying in 1.0 s (secondary limit 1/8 for this request)"},
        {"secondary too often: fail to the DLQ", {100, 0, GH_SECONDARY_MAX}, GH_SECONDARY_LIMIT,
         50, 7, now + 500, 0, GH_FAIL, 0, 0, 1, {100, 0, GH_SECONDARY_MAX + 1},
         "gave up after 8 secondary rate limit answers: " E},
        {"502/504: half the page", {100, 0, 0}, GH_SERVER_ERROR, -1, -1, 0, 0, GH_RETRY, 200, 0,
         0, {50, 1, 0}, E "; retry 1/3 in 0.2 s with pages of 50"},
        {"server error again: smaller, longer", {50, 1, 0}, GH_SERVER_ERROR, -1, -1, 0, 0,
         GH_RETRY, 400, 0, 0, {25, 2, 0}, E "; retry 2/3 in 0.4 s with pages of 25"},
        {"server error: never below the smallest page", {8, 0, 0}, GH_SERVER_ERROR, -1, -1, 0, 0,
         GH_RETRY, 200, 0, 0, {GH_MIN_PAGE, 1, 0}, E "; retry 1/3 in 0.2 s with pages of 5"},
        {"server error at the smallest page", {GH_MIN_PAGE, 0, 0}, GH_SERVER_ERROR, -1, -1, 0, 0,
         GH_RETRY, 200, 0, 0, {GH_MIN_PAGE, 1, 0}, E "; retry 1/3 in 0.2 s with pages of 5"},
        {"server error with jitter", {100, 2, 0}, GH_SERVER_ERROR, -1, -1, 0, 100, GH_RETRY,
         900, 0, 0, {50, 3, 0}, E "; retry 3/3 in 0.9 s with pages of 50"},
        {"server errors exhausted: fail to the DLQ", {25, 3, 0}, GH_SERVER_ERROR, -1, -1, 0, 0,
         GH_FAIL, 0, 0, 1, {25, 4, 0}, "gave up after 3 retries: " E},
        {"transient: same page, backoff", {100, 0, 0}, GH_TRANSIENT, -1, -1, 0, 0, GH_RETRY, 200,
         0, 0, {100, 1, 0}, E "; retry 1/3 in 0.2 s with pages of 100"},
        {"transient again: the backoff doubles", {100, 2, 0}, GH_TRANSIENT, -1, -1, 0, 0,
         GH_RETRY, 800, 0, 0, {100, 3, 0}, E "; retry 3/3 in 0.8 s with pages of 100"},
        {"transient retries exhausted: fail to the DLQ", {100, 3, 0}, GH_TRANSIENT, -1, -1, 0, 0,
         GH_FAIL, 0, 0, 1, {100, 4, 0}, "gave up after 3 retries: " E},
        {"NOT_FOUND: terminal, no DLQ", {100, 1, 1}, GH_NOT_FOUND, 4000, -1, now + 60, 0, GH_FAIL,
         0, 0, 0, {100, 1, 1}, E},
        {"FORBIDDEN: terminal, no DLQ", {100, 0, 0}, GH_FORBIDDEN, -1, -1, 0, 0, GH_FAIL, 0, 0, 0,
         {100, 0, 0}, E},
        {"bad credentials (401): terminal, no DLQ", {100, 0, 0}, GH_UNAUTHORIZED, -1, -1, 0, 0,
         GH_FAIL, 0, 0, 0, {100, 0, 0}, E},
        {"query rejected: terminal, no DLQ", {100, 0, 0}, GH_INVALID, -1, -1, 0, 0, GH_FAIL, 0,
         0, 0, {100, 0, 0}, E},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct decide_case *c = &cases[i];
        struct gh_attempts a = c->before;
        struct gh_budget b;
        struct gh_decision d;
        struct gh_page p = page_with(c->remaining, c->reset_at, 1, c->retry_after);
        int ok;

        p.status = c->status;
        snprintf(p.error, sizeof p.error, "%s", E);
        gh_budget_init(&b, 10);
        memset(&d, 0x5a, sizeof d);
        gh_decide(&conf, &a, &b, &p, c->rnd, now, &d);
        ok = d.verdict == c->verdict && d.answered == 1 &&
             (c->verdict != GH_RETRY || d.wait_ms == c->wait_ms) &&
             (c->verdict != GH_WAIT_RESET || d.until == c->until) &&
             (c->verdict != GH_FAIL || d.to_dlq == c->to_dlq) &&
             a.page_max == c->after.page_max && a.retries == c->after.retries &&
             a.secondary == c->after.secondary && strcmp(d.reason, c->reason) == 0;
        if (!ok)
            fprintf(stderr, "decide case \"%s\": verdict %d wait %ld until %lld dlq %d "
                    "attempts {%d,%d,%d} reason \"%s\"\n", c->name, (int)d.verdict, d.wait_ms,
                    (long long)d.until, d.to_dlq, a.page_max, a.retries, a.secondary, d.reason);
        CHECK(ok);
        /* every answer's budget fields are noted, whatever the verdict */
        if (c->status != GH_RATE_LIMITED && c->remaining >= 0)
            CHECK(b.remaining == c->remaining);
        if (c->status == GH_RATE_LIMITED)
            CHECK(b.remaining == 0 && gh_budget_wait_until(&b, now) == c->until);
    }
}

/* One request answered again and again: how the waits grow, and when the
 * policy gives up; a success in between starts the count over. */
static void test_decide_sequences(void)
{
    struct gh_attempts a;
    struct gh_budget b;
    struct gh_decision d;
    struct gh_page p = page_with(50, now + 500, 1, 1);
    long last = 0;

    gh_budget_init(&b, 0);
    gh_attempts_init(&a, &conf);
    CHECK(a.page_max == 100 && a.retries == 0 && a.secondary == 0);
    p.status = GH_SECONDARY_LIMIT;
    for (int hit = 1; hit <= GH_SECONDARY_MAX; hit++) {
        gh_decide(&conf, &a, &b, &p, 0, now, &d);
        CHECK(d.verdict == GH_RETRY && d.wait_ms >= 1000);
        CHECK(hit < 3 || d.wait_ms - 1000 == 2 * (last - 1000)); /* the backoff doubles */
        last = d.wait_ms;
    }
    gh_decide(&conf, &a, &b, &p, 0, now, &d);
    CHECK(d.verdict == GH_FAIL && d.to_dlq);

    gh_attempts_init(&a, &conf);
    p = page_with(-1, 0, -1, -1);
    p.status = GH_SERVER_ERROR;
    for (int i = 1; i <= conf.max_retries; i++) {
        gh_decide(&conf, &a, &b, &p, 0, now, &d);
        CHECK(d.verdict == GH_RETRY && d.wait_ms == 200L << (i - 1));
    }
    CHECK(a.page_max == 12);
    p.status = GH_OK; /* success: counts start over, the page grows back */
    gh_decide(&conf, &a, &b, &p, 0, now, &d);
    CHECK(d.verdict == GH_ACCEPT && a.retries == 0 && a.page_max == 24);
    p.status = GH_TRANSIENT;
    for (int i = 1; i <= conf.max_retries; i++) {
        gh_decide(&conf, &a, &b, &p, 0, now, &d);
        CHECK(d.verdict == GH_RETRY && a.page_max == 24);
    }
    gh_decide(&conf, &a, &b, &p, 0, now, &d);
    CHECK(d.verdict == GH_FAIL && d.to_dlq);
}

static void test_budget_spend(void)
{
    struct gh_budget b;
    struct gh_page p = page_with(3, now + 60, 2, -1);

    gh_budget_init(&b, 0);
    gh_budget_spend(&b); /* unknown stays unknown */
    CHECK(b.remaining == -1);
    gh_budget_note(&b, &p);
    gh_budget_spend(&b);
    CHECK(b.remaining == 1);
}

int main(void)
{
    test_budget_rule();
    test_budget_fleet();
    test_backoff();
    test_secondary();
    test_decide_send();
    test_decide_table();
    test_decide_sequences();
    test_budget_spend();
    return CHECK_DONE();
}
