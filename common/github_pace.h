/* github_pace: a worker's share of GitHub's secondary limits on one
 * account — at most 2,000 points a minute (a GraphQL query without
 * mutations counts 1) and 100 requests in flight, whatever number of
 * tokens and clients the account uses — as a pure decision like
 * github_policy's: the caller passes the clock and acts.
 *
 * The share. Every worker of the group takes the fraction of the group's
 * limits that its partitions are of the jobs topic's partitions (the
 * caller computes it after each rebalance). Those fractions add up to at
 * most 1 at every moment, without any server or message between the
 * workers: a partition belongs to one member, and with cooperative
 * rebalancing it is revoked before it is assigned elsewhere. A worker
 * without partitions runs no job and sends nothing.
 *
 * Points. A token bucket per account and worker: capacity C (two seconds'
 * worth, at least one request) and rate r = (W - C) / 60 s for the
 * worker's share W of the points a minute, so that in any 60 s window
 * the worker spends at most C + 60 r = W, and the group at most the
 * limit, sliding window or not.
 *
 * In flight. At most max(1, floor(share x limit)) requests of the worker
 * on the account at once: the group stays under the limit as long as it
 * has no more workers with partitions than the limit (100 by default). */
#ifndef BACKFILL_GITHUB_PACE_H
#define BACKFILL_GITHUB_PACE_H

#define GH_PACE_POINTS_PER_MINUTE 2000 /* GitHub's documented secondary limits */
#define GH_PACE_CONCURRENCY 100
#define GH_PACE_QUERY_POINTS 1.0 /* what a GraphQL query without mutations counts */

struct gh_pace {
    double capacity;  /* most points the bucket holds */
    double rate;      /* points added a second */
    double tokens;    /* points in the bucket at `last` */
    double last;      /* when tokens was computed (seconds, caller's clock) */
    int max_in_flight;
    int in_flight;
};

/* An unconfigured pace lets nothing through until gh_pace_share. */
void gh_pace_init(struct gh_pace *p);

/* Sets the worker's share (0..1) of the group's points_per_minute and
 * concurrency (0 = that limit is not enforced). Points already in the
 * bucket are kept up to the new capacity. */
void gh_pace_share(struct gh_pace *p, int points_per_minute, int concurrency, double share,
                   double now);

/* 0 if a request of `cost` points may go now, else the seconds to wait
 * (for points to refill; a full in-flight count answers a short poll). */
double gh_pace_wait(struct gh_pace *p, double cost, double now);

/* A request of `cost` points goes out / has been answered. */
void gh_pace_take(struct gh_pace *p, double cost, double now);
void gh_pace_done(struct gh_pace *p);

#endif
