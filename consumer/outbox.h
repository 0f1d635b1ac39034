/* outbox: the consumer's producer side — publishes progress and
 * pull-request events and dead letters, and tells the caller when
 * everything published so far is acknowledged by Kafka (idempotent
 * producer, acks=all). A job commits its checkpoint only after
 * outbox_wait() returned 0: commit after the effect. */
#ifndef BACKFILL_OUTBOX_H
#define BACKFILL_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "cli.h"

typedef struct outbox outbox;

/* Creates the producer. NULL with a reason on failure. */
outbox *outbox_new(const struct cli_common *c, char *errstr, size_t errlen);
void outbox_free(outbox *ob);

/* The underlying handle (borrowed), e.g. for admin requests. */
rd_kafka_t *outbox_handle(outbox *ob);

/* Queues value (a NUL-terminated JSON string, copied) on topic with key and
 * an `event` header. Returns 0, or -1 if it could not be queued (the
 * failure is also counted for outbox_wait). */
int outbox_send(outbox *ob, const char *topic, const char *key, const char *event,
                const char *value);

struct dlq_info {
    const char *reason;    /* borrowed: readable one-line reason */
    const char *src_topic; /* borrowed */
    int32_t src_partition;
    int64_t src_offset;
    const char *checkpoint; /* borrowed, may be NULL */
};

/* Queues the original message bytes to the dead-letter topic with its key,
 * its original headers and dlq.* headers naming the reason and source.
 * An original over 16 MiB, or one the DLQ topic refuses as too large, goes
 * as its first 512 KiB with dlq.truncated=true and dlq.original.bytes. */
int outbox_send_dlq(outbox *ob, const char *dlq_topic, const rd_kafka_message_t *orig,
                    const struct dlq_info *info);

/* How many deliveries have failed so far. It only grows: a caller takes
 * this mark before (or at a point where nothing was in flight) and asks
 * later whether anything failed since. With several jobs publishing, a
 * failure cannot be pinned to one of them, so every job waiting at the
 * time redoes its chunk: redoing is harmless, losing is not. */
int64_t outbox_failures(const outbox *ob);

/* Waits until every queued message is acknowledged or failed, at most
 * timeout_ms. Returns 0 when all were delivered and none failed since
 * the mark `since`, -1 otherwise. */
int outbox_wait(outbox *ob, int timeout_ms, int64_t since);

/* Like outbox_wait, but a timeout is not a failure: serves delivery
 * reports for at most timeout_ms and returns 1 while messages are still
 * in flight (librdkafka keeps retrying them until message.timeout.ms),
 * 0 once nothing is in flight, -1 if a delivery failed since `since`. */
int outbox_check(outbox *ob, int timeout_ms, int64_t since);

/* Serves delivery reports without blocking. */
void outbox_poll(outbox *ob);

#endif
