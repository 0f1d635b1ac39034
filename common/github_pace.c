/* github_pace: see github_pace.h. */
#include "github_pace.h"

#include <math.h>
#include <string.h>

#define GH_PACE_POLL_S 0.05 /* how soon to look again when every slot is in flight */

void gh_pace_init(struct gh_pace *p)
{
    memset(p, 0, sizeof *p);
}

static void gh_pace_refill(struct gh_pace *p, double now)
{
    if (isinf(p->rate)) {
        p->tokens = INFINITY; /* no limit (and no 0 x inf) */
        p->last = now;
    } else if (now > p->last) {
        p->tokens = fmin(p->capacity, p->tokens + (now - p->last) * p->rate);
        p->last = now;
    }
}

void gh_pace_share(struct gh_pace *p, int points_per_minute, int concurrency, double share,
                   double now)
{
    double w;
    /* nothing could be spent at the old pace: none yet, or a share of nothing */
    int fresh = isinf(p->tokens) || p->max_in_flight == 0 || p->rate == 0;

    if (share < 0)
        share = 0;
    if (share > 1)
        share = 1;
    gh_pace_refill(p, now);
    p->last = now;
    if (points_per_minute <= 0) {
        p->capacity = p->rate = INFINITY;
        p->tokens = INFINITY;
    } else {
        w = points_per_minute * share;
        p->capacity = fmax(1.0, w / 30.0);
        p->rate = (w > p->capacity ? w - p->capacity : w / 2) / 60.0;
        /* a first share starts full: C + 60 r = W holds from the start. So
         * does one after a share of nothing (the worker's pace before its
         * first assignment): it refilled nothing, and started nothing. */
        p->tokens = fresh ? p->capacity : fmin(p->tokens, p->capacity);
    }
    p->max_in_flight = concurrency <= 0 ? 1 << 30 : (int)fmax(1.0, floor(concurrency * share));
}

double gh_pace_wait(struct gh_pace *p, double cost, double now)
{
    if (p->max_in_flight <= 0)
        return 1.0; /* no share yet */
    if (p->in_flight >= p->max_in_flight)
        return GH_PACE_POLL_S;
    gh_pace_refill(p, now);
    if (p->tokens >= cost)
        return 0;
    if (p->rate <= 0)
        return 1.0; /* a share of nothing: look again later */
    if (cost > p->capacity) /* a share smaller than one request: wait for a full bucket */
        cost = p->capacity;
    return p->tokens >= cost ? 0 : (cost - p->tokens) / p->rate;
}

void gh_pace_take(struct gh_pace *p, double cost, double now)
{
    gh_pace_refill(p, now);
    p->tokens -= cost;
    p->in_flight++;
}

void gh_pace_done(struct gh_pace *p)
{
    if (p->in_flight > 0)
        p->in_flight--;
}
