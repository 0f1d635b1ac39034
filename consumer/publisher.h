/* publisher: the worker's producer side — publishes progress and
 * pull-request events and dead letters, and tracks their delivery per
 * publisher (a tally per job slot), telling the caller when everything
 * published so far is acknowledged by Kafka (idempotent producer,
 * acks=all). Not the transactional-outbox pattern: nothing is stored
 * before it is sent. A job commits its checkpoint only after
 * publisher_check() returned 0 for its tally: commit after the effect. */
#ifndef BACKFILL_PUBLISHER_H
#define BACKFILL_PUBLISHER_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "cli.h"

typedef struct publisher publisher;

/* Fault injection for the test suite: with this environment variable set
 * to N, the producer raises a fatal idempotence error (the way librdkafka
 * does when the broker reports a sequence gap) right after queueing its
 * Nth message. Never set in production; the worker logs it at start. */
#define PUBLISHER_FATAL_AFTER_ENV "BACKFILL_TEST_FATAL_AFTER_SENDS"

/* Creates the producer. NULL with a reason on failure. */
publisher *publisher_new(const struct cli_common *c, char *errstr, size_t errlen);
void publisher_free(publisher *ob);

/* The underlying handle (borrowed), e.g. for admin requests. */
rd_kafka_t *publisher_handle(publisher *ob);

/* The deliveries of one publisher (a worker slot): messages queued and
 * not yet acknowledged or failed, and failures so far (only grows: a
 * caller takes a mark and later asks whether anything failed since).
 * Owned by the caller and must outlive every message sent with it (the
 * worker keeps one per slot for its whole life). Waiting on a tally waits
 * for that slot's messages only, so jobs running side by side neither
 * wait for nor redo each other's chunks. */
struct publisher_tally {
    int64_t in_flight;
    int64_t failed;
};

/* Queues value (a NUL-terminated JSON string, copied) on topic with key and
 * an `event` header, counted in t. Returns 0, or -1 if it could not be
 * queued (also counted as a failure of t). */
int publisher_send(publisher *ob, struct publisher_tally *t, const char *topic, const char *key,
                const char *event, const char *value);

struct dlq_info {
    const char *reason;    /* borrowed: readable one-line reason */
    const char *src_topic; /* borrowed */
    int32_t src_partition;
    int64_t src_offset;
    const char *checkpoint; /* borrowed, may be NULL */
};

/* Queues the original message bytes to the dead-letter topic with its key,
 * its original headers and dlq.* headers naming the reason and source,
 * counted in t. An original over 16 MiB, or one the DLQ topic refuses as
 * too large, goes as its first 512 KiB with dlq.truncated=true and
 * dlq.original.bytes. */
int publisher_send_dlq(publisher *ob, struct publisher_tally *t, const char *dlq_topic,
                    const rd_kafka_message_t *orig, const struct dlq_info *info);

/* Serves delivery reports for at most timeout_ms (0: only what is ready)
 * and returns 1 while messages of t are in flight (librdkafka retries them
 * until message.timeout.ms), 0 once none is, -1 if one of t failed since
 * the mark `since` (a value of t->failed taken earlier). */
int publisher_check(publisher *ob, struct publisher_tally *t, int timeout_ms, int64_t since);

/* Serves delivery reports without blocking. */
void publisher_poll(publisher *ob);

/* Has wake(rk, ctx) called from a librdkafka thread whenever a delivery
 * report is ready to be served, so a loop blocked elsewhere (in the
 * consumer's poll) can serve it at once; wake NULL turns that off (before
 * whatever ctx points to goes away). */
void publisher_set_wake(publisher *ob, void (*wake)(rd_kafka_t *rk, void *ctx), void *ctx);

#endif
