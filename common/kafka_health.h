/* kafka_health: what this process knows about its connection to Kafka,
 * from every librdkafka handle it owns (a worker has three: the group
 * consumer, its producer and the control-topic reader).
 *
 * - Reachability: a broker that cannot be reached is reported once, with
 *   the actual reason ("cannot reach Kafka at 127.0.0.1:9092: connection
 *   refused"), and once more when it answers again; librdkafka's own
 *   per-attempt connection errors are logged at debug level only. A new
 *   line appears only when the state or the reason changes.
 * - Fatal errors (an idempotent producer that lost its guarantees, a
 *   fenced static member): logged once with the underlying error and kept,
 *   so that the main loop can stop without committing anything it did not
 *   deliver and exit non-zero.
 * - Statistics: every handle's report (each KAFKA_HEALTH_STATS_MS) is
 *   parsed once and also handed to kafka_lag_metrics (a group consumer's
 *   lag per partition, for the topics the process watches).
 *
 * kafka_conf_new() installs the callbacks on every configuration; they run
 * in whichever thread polls the handle. */
#ifndef BACKFILL_KAFKA_HEALTH_H
#define BACKFILL_KAFKA_HEALTH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* How often each handle reports its brokers' states (the statistics
 * callback), i.e. how soon a recovered broker is noticed. */
#define KAFKA_HEALTH_STATS_MS 2000

/* Takes one of librdkafka's "FAIL" log lines (a broker connection that
 * failed; logged from librdkafka's own threads, so it arrives even while
 * nobody polls) and reports the broker unreachable if that is news. */
void kafka_health_broker_log(const char *text);

/* Installs the error and statistics callbacks on conf. 0, or -1 with the
 * failing property in errstr. */
int kafka_health_install(rd_kafka_conf_t *conf, char *errstr, size_t errlen);

/* 1 once any handle reported a fatal error, with its text copied to buf
 * (may be NULL); 0 otherwise. Safe from any thread. */
int kafka_health_fatal(char *buf, size_t buflen);

/* 1 while some broker is known to be unreachable, with "HOST:PORT: reason"
 * copied to buf (may be NULL); 0 otherwise. Safe from any thread. */
int kafka_health_unreachable(char *buf, size_t buflen);

/* 1 when this process's Kafka side is healthy (no fatal error, no broker
 * known unreachable); else 0 with "fatal Kafka error: ..." or "cannot reach
 * Kafka at HOST:PORT: reason" in why. For /healthz; safe from any thread. */
int kafka_health_ready(char *why, size_t whylen);

/* Parses librdkafka's broker error text, e.g. "[thrd:...]:
 * 127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed:
 * Connection refused (after 0ms in state CONNECT)", into the broker's
 * "host:port" and a short lower-case reason ("connection refused").
 * Returns 0, or -1 when the text names no broker. Exposed for tests. */
int kafka_health_parse_broker_error(const char *text, char *broker, size_t blen, char *reason,
                                    size_t rlen);

#endif
