/* kafka_lag_metrics: a group consumer's lag per partition, read from
 * librdkafka's statistics (the JSON every handle emits each
 * KAFKA_HEALTH_STATS_MS; see librdkafka's STATISTICS.md), not from a
 * second client that would ask the brokers again.
 *
 * A process says which topic(s) its group consumer reads
 * (kafka_lag_metrics_watch); kafka_health's statistics callback hands
 * every handle's parsed statistics to kafka_lag_metrics_from_stats, which
 * keeps only those of a group consumer ("type":"consumer" with a "cgrp"
 * object: the worker's assign()-less control-topic reader has no group and
 * is left out), only watched topics, and only partitions it has been
 * assigned (a fetch_state that is neither none, stopping nor stopped).
 * For each it sets, labelled {topic,partition}:
 *
 *   backfill_kafka_consumer_lag       messages between the committed
 *                                     offset and the end of the log
 *   backfill_kafka_committed_offset   the group's committed offset
 *   backfill_kafka_log_end_offset     the partition's high watermark
 *
 * plus backfill_kafka_brokers_up (brokers the group consumer is connected
 * to). Lag is librdkafka's consumer_lag (end minus committed offset), not
 * consumer_lag_stored: our consumers commit explicit offsets with
 * rd_kafka_commit and never store any (enable.auto.offset.store=false), so
 * stored_offset stays unset and consumer_lag_stored would always read -1.
 * A partition with no committed offset yet counts from its low watermark
 * (auto.offset.reset=earliest: that is where reading starts). The end is
 * the last stable offset under read_committed (librdkafka's default), as
 * librdkafka computes consumer_lag.
 *
 * A partition no longer assigned is hidden (metrics_hide), and shown again
 * if it comes back. Series are bounded by the watched topics' partition
 * counts. */
#ifndef BACKFILL_KAFKA_LAG_METRICS_H
#define BACKFILL_KAFKA_LAG_METRICS_H

#include <jansson.h>

/* At most this many topics are watched; further ones are ignored with a
 * warning. */
#define KAFKA_LAG_TOPICS_MAX 8

/* Registers the lag families in metrics_default() (once) and adds topic
 * (copied) to the watched ones; watching a topic twice is harmless.
 * Thread-safe. */
void kafka_lag_metrics_watch(const char *topic);

/* 1 once some topic is watched (a cheap check before parsing a report). */
int kafka_lag_metrics_watching(void);

/* 1 when the group consumer's last statistics (see above) showed it a
 * settled member of its group (cgrp state "up", join_state "steady"),
 * whether or not it was assigned any partition; 0 before, while
 * rebalancing, or when nothing is watched. Safe from any thread (an
 * atomic). */
int kafka_lag_metrics_group_joined(void);

/* Takes one handle's statistics, parsed (root is borrowed), and updates
 * the watched topics' series from it when it is a group consumer's.
 * Does nothing before the first kafka_lag_metrics_watch. Thread-safe;
 * runs in whichever thread polls the handle. */
void kafka_lag_metrics_from_stats(const json_t *root);

#endif
