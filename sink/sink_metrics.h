/* sink_metrics: backfill-sink's Prometheus series (common/metrics.h) and
 * what its /healthz says, in one place under the Kafka loop and main:
 *
 *   backfill_sink_events_total{type,outcome}       events whose batch committed
 *   backfill_sink_rows_written_total{table}        rows inserted or changed
 *   backfill_sink_batch_size                       events per committed batch
 *   backfill_sink_commit_duration_seconds          from sending a batch to its COMMIT
 *   backfill_sink_postgres_reconnects_total        reconnects after Postgres failed
 *   backfill_sink_postgres_up                      1 while Postgres answers
 *
 * type is one of the event names of DESIGN.md ("backfill/pull_requests",
 * "backfill/progress.update", "repository/backfill.initial") or "unknown"
 * for anything else, so a garbage name cannot grow the series. outcome:
 *   applied   written (or absorbed: a replayed or stale event is applied
 *             as a no-op by the writer's idempotent upserts)
 *   invalid   skipped: not an envelope, or failed validation in C
 *   refused   skipped: Postgres refused its values at commit
 *   ignored   a type the sink does not write
 * Counts move only when the batch holding the event committed, so each
 * event is counted once however often a failed batch is consumed again.
 *
 * Health (sm_health, for metrics_http): ready when no fatal Kafka error
 * was seen, every broker is reachable, the group assigned this sink its
 * partitions (an empty share counts: it joined) and the last use of
 * Postgres worked. The Kafka loop sets those flags; the callback only
 * reads atomics, from the HTTP server's thread. */
#ifndef BACKFILL_SINK_METRICS_H
#define BACKFILL_SINK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "pg_writer.h"

enum sm_type { SM_TYPE_PULL_REQUESTS = 0, SM_TYPE_PROGRESS, SM_TYPE_JOB, SM_TYPE_UNKNOWN, SM_NTYPES };
enum sm_outcome { SM_APPLIED = 0, SM_INVALID, SM_REFUSED, SM_IGNORED, SM_NOUTCOMES };

/* Per-batch event counts, kept by the loop until the batch's outcome is
 * known (sm_batch_committed). */
struct sm_tally {
    int64_t n[SM_NTYPES][SM_NOUTCOMES];
};

/* Registers the families in metrics_default() and backfill_build_info for
 * backfill-sink. Call once, before the other functions (they do nothing
 * before it). */
void sm_init(void);

/* The enum sm_type of an envelope name (NULL: SM_TYPE_UNKNOWN). */
enum sm_type sm_type_of(const char *name);

/* A batch of n events committed after `seconds` in flight: its tally and
 * the rows it wrote (enum pgw_table) are added to the counters. */
void sm_batch_committed(const struct sm_tally *t, int n, double seconds,
                        const int64_t rows[PGW_NTABLES]);

/* Reconnected to Postgres after it failed. */
void sm_postgres_reconnected(void);

/* Health: whether Postgres worked the last time it was used (when not,
 * why: a password-free reason, copied; NULL for "connection lost"), and
 * whether the group assigned this sink its share (lost: 0). */
void sm_set_postgres_ok(int ok, const char *why);
void sm_set_group_joined(int joined);

/* metrics_health_fn: 1 when ready, else 0 with the first reason in why.
 * ctx is unused. Reads atomics only. */
int sm_health(void *ctx, char *why, size_t whylen);

#endif
