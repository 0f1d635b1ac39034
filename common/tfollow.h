/* tfollow, the topic follower: reads one topic from every partition
 * without joining a consumer group and without committing anything —
 * partitions come from the topic's metadata and are read directly
 * (librdkafka's simple consumer, as kcat does without -G), from the
 * beginning or from the current end. A read-only observer: it never moves
 * the workers' or the sink's positions and never triggers a rebalance.
 * backfill-tail follows the progress topic with it, the worker the
 * control topic (cancellations).
 *
 * It tracks partition EOF, so a caller can tell when it has read
 * everything the topic held ("caught up") and when it is at the end right
 * now. Partitions added to the topic after the start are not followed. */
#ifndef BACKFILL_TFOLLOW_H
#define BACKFILL_TFOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

typedef struct tfollow tfollow;

/* One message; every pointer is borrowed and valid until the next
 * tfollow_next or tfollow_free. */
struct tfollow_msg {
    const char *value;
    size_t len;
    const char *key; /* may be NULL */
    size_t key_len;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 unknown */
    char event[64];       /* the `event` header (the envelope's name), "" when absent */
};

enum tfollow_result { TF_MSG = 0, TF_IDLE = 1, TF_EOF = 2, TF_FATAL = -1 };

/* What to follow and how (all borrowed; must outlive the follower). */
struct tfollow_spec {
    const char *topic;
    int partitions;        /* to create the topic with when it is missing */
    const char *client_id; /* Kafka client.id, e.g. "backfill-tail" */
    int from_beginning;    /* 0: from the end the topic has now */
};

/* Connects with the shared options (-b, -X...) and starts every partition
 * of spec->topic, creating the topic first if it is missing (like every
 * backfill binary; a refusal is only a warning, an unreachable Kafka an
 * error). Returns a follower, or NULL with a reason in errstr. */
tfollow *tfollow_new(const struct cli_common *c, const struct tfollow_spec *spec, char *errstr,
                     size_t errlen);

/* Waits up to timeout_ms. TF_MSG fills *m; TF_EOF: a partition reached its
 * end; TF_IDLE: nothing happened; TF_FATAL: the client cannot go on (reason
 * in errstr). Transient errors are logged and reported as TF_IDLE. */
enum tfollow_result tfollow_next(tfollow *f, int timeout_ms, struct tfollow_msg *m, char *errstr,
                                 size_t errlen);

/* 1 once every partition has reported EOF at least once since the start:
 * everything the topic held when the tail started has been read. */
int tfollow_caught_up(const tfollow *f);

/* 1 while every partition is at its end (no message since its last EOF). */
int tfollow_at_end(const tfollow *f);

/* Number of partitions followed. */
int tfollow_partitions(const tfollow *f);

/* Closes the client (nothing to commit). NULL is a no-op. */
void tfollow_free(tfollow *f);

#endif
