/* group_lag_metrics: the consumer groups' lag as Prometheus gauges, asked
 * of Kafka (group_lag.h), not of the group's own members: what
 * kafka-lag-exporter and Burrow report. A group whose only member died
 * (a killed sink) reports nothing of itself, so backfill-web, which asks
 * these for both groups every few seconds, is where its lag shows.
 *
 *   backfill_consumer_group_lag{group,topic,partition}   messages not yet
 *       committed (end - committed; end - start where nothing is committed)
 *   backfill_consumer_group_members{group}                members now
 *   backfill_consumer_group_up{group}                     1 when Kafka
 *       described the group, 0 when it could not (the lag series of that
 *       group are then hidden, not left at their last value)
 *
 * Series are bounded by the two groups and their topics' partitions. */
#ifndef BACKFILL_GROUP_LAG_METRICS_H
#define BACKFILL_GROUP_LAG_METRICS_H

#include <librdkafka/rdkafka.h>

/* Asks Kafka through rk about group on topic (GLAG_TIMEOUT_MS at most) and
 * updates the gauges. Returns glag_query's code. Call from one thread. */
int glag_metrics_update(rd_kafka_t *rk, const char *group, const char *topic);

#endif
