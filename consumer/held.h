/* held: job messages fetched ahead of a free slot, at most one per
 * partition, so that a slot that frees up starts its next job at once
 * instead of resuming a partition and waiting for a fetch.
 *
 * A held message's partition stays paused (main.c), so the message is
 * that partition's next job and nothing behind it is fetched; the
 * partition's position is already past it, and nothing is committed for
 * it until its job runs. Given up with the partition (revoke, loss,
 * shutdown): whoever owns the partition next reads it again from the
 * committed offset.
 *
 * Not thread-safe: the thread that polls the consumer calls everything. */
#ifndef BACKFILL_HELD_H
#define BACKFILL_HELD_H

#include <librdkafka/rdkafka.h>

typedef struct held held;

held *held_new(void);

/* Destroys every held message. NULL is a no-op. */
void held_free(held *h);

/* Holds msg (taken) unless a message of its partition is held already
 * (then returns -1 and msg stays the caller's). 0 when held. */
int held_put(held *h, rd_kafka_message_t *msg);

/* 1 when a message of topic[partition] is held. */
int held_has(const held *h, const char *topic, int32_t partition);

/* Takes the message held longest whose partition busy() says is free
 * (busy(ctx, topic, partition) != 0: a job of it runs), or NULL. */
rd_kafka_message_t *held_take(held *h, int (*busy)(void *ctx, const char *topic, int32_t partition),
                              void *ctx);

/* Destroys the held messages of the listed partitions (all when NULL). */
void held_drop(held *h, const rd_kafka_topic_partition_list_t *parts);

#endif
