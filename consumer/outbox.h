/* outbox: the consumer's producer side — publishes progress and
 * pull-request events and dead letters, and tells the caller when
 * everything published so far is acknowledged by Kafka (idempotent
 * producer, acks=all). A job commits its checkpoint only after
 * outbox_check() returned 0 for its tally: commit after the effect. */
#ifndef BACKFILL_OUTBOX_H
#define BACKFILL_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "cli.h"

typedef struct outbox outbox;

/* Fault injection for the test suite: with this environment variable set
 * to N, the producer raises a fatal idempotence error (the way librdkafka
 * does when the broker reports a sequence gap) right after queueing its
 * Nth message. Never set in production; the worker logs it at start. */
#define OUTBOX_FATAL_AFTER_ENV "BACKFILL_TEST_FATAL_AFTER_SENDS"

/* Creates the producer. NULL with a reason on failure. */
outbox *outbox_new(const struct cli_common *c, char *errstr, size_t errlen);
void outbox_free(outbox *ob);

/* The underlying handle (borrowed), e.g. for admin requests. */
rd_kafka_t *outbox_handle(outbox *ob);

/* The deliveries of one publisher (a worker slot): messages queued and
 * not yet acknowledged or failed, and failures so far (only grows: a
 * caller takes a mark and later asks whether anything failed since).
 * Owned by the caller and must outlive every message sent with it (the
 * worker keeps one per slot for its whole life). Waiting on a tally waits
 * for that slot's messages only, so jobs running side by side neither
 * wait for nor redo each other's chunks. */
struct outbox_tally {
    int64_t in_flight;
    int64_t failed;
};

/* Queues value (a NUL-terminated JSON string, copied) on topic with key and
 * an `event` header, counted in t. Returns 0, or -1 if it could not be
 * queued (also counted as a failure of t). */
int outbox_send(outbox *ob, struct outbox_tally *t, const char *topic, const char *key,
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
int outbox_send_dlq(outbox *ob, struct outbox_tally *t, const char *dlq_topic,
                    const rd_kafka_message_t *orig, const struct dlq_info *info);

/* Serves delivery reports for at most timeout_ms (0: only what is ready)
 * and returns 1 while messages of t are in flight (librdkafka retries them
 * until message.timeout.ms), 0 once none is, -1 if one of t failed since
 * the mark `since` (a value of t->failed taken earlier). */
int outbox_check(outbox *ob, struct outbox_tally *t, int timeout_ms, int64_t since);

/* Serves delivery reports without blocking. */
void outbox_poll(outbox *ob);

#endif
