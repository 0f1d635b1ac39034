/* commits: the worker's offset commits, sent without blocking the loop.
 *
 * Every commit of the jobs topic goes through here as an asynchronous
 * commit whose answer comes back on a queue of the tracker's own; the
 * tracker remembers, per partition, the newest commit sent and whether
 * Kafka has answered it, and sends a failed newest commit again every
 * 0.2 s for up to a minute (then logs that it goes on without it: a later
 * commit of the partition covers it). An older commit that failed is
 * never sent again: the newer one, sent after it on the same connection,
 * supersedes it (the coordinator applies one client's commits in order).
 *
 * A job waits for its chunk checkpoints (commits_state), so a crash
 * never costs more than one page; its final commit it does not wait for:
 * the slot takes the next job while the commit travels, and
 * commits_flush makes sure it has landed before a partition is given up
 * or the worker leaves the group.
 *
 * Not thread-safe: the thread that polls the consumer calls everything. */
#ifndef BACKFILL_COMMITS_H
#define BACKFILL_COMMITS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct commits commits;

enum commit_state {
    COMMIT_PENDING,  /* sent (or being sent again), not answered yet */
    COMMIT_DONE,     /* it, or a newer commit of the partition, succeeded */
    COMMIT_GAVE_UP   /* still failing after a minute: going on without it */
};

/* A tracker committing through consumer (borrowed). NULL when out of
 * memory. */
commits *commits_new(rd_kafka_t *consumer);

/* Frees everything; answers still on their way are dropped. */
void commits_free(commits *c);

/* Has wake(rk, ctx) called from a librdkafka thread when an answer is
 * there to serve (see publisher_set_wake); NULL turns it off. */
void commits_set_wake(commits *c, void (*wake)(rd_kafka_t *rk, void *ctx), void *ctx);

/* Sends the commit of topic[partition] at offset, with metadata (copied,
 * NULL for none). Returns its ticket (> 0), or 0 if it could not even be
 * queued (nothing remembered: call again later). */
uint64_t commits_send(commits *c, const char *topic, int32_t partition, int64_t offset,
                      const char *metadata);

/* Where the commit with that ticket stands (serves answers first). */
enum commit_state commits_state(commits *c, const char *topic, int32_t partition,
                                uint64_t ticket);

/* Serves the answers that are there and sends again what failed and is
 * due. Never blocks. */
void commits_poll(commits *c);

/* 1 when the newest commit this tracker sent for topic[partition] (since
 * commits_forget) was `offset` without metadata: the message at `offset`
 * has no checkpoint of its own, since only the partition's owner commits
 * and it has not started that job. */
int commits_final_at(const commits *c, const char *topic, int32_t partition, int64_t offset);

/* Waits up to timeout_ms until no commit of the listed partitions (all
 * when parts is NULL) is pending. 0 when none is, -1 on timeout. */
int commits_flush(commits *c, const rd_kafka_topic_partition_list_t *parts, int timeout_ms);

/* Forgets the listed partitions (revoked or lost): no more retries. */
void commits_forget(commits *c, const rd_kafka_topic_partition_list_t *parts);

#endif
