/* kafka_group: the rebalance callback every consumer-group member of ours
 * shares (the worker, the sink). It logs each assignment and revocation
 * with its partitions ("assigned 3 partitions [0,4,8]", "revoked ...
 * (assignment lost)"), applies it the way the group's protocol wants
 * (incremental under cooperative-sticky and KIP-848, whole under eager),
 * and reports a failure to apply it. What a member must do around those
 * moments comes as hooks, all optional, all run in the thread that polls
 * the consumer, inside librdkafka's rebalance callback. */
#ifndef BACKFILL_KAFKA_GROUP_H
#define BACKFILL_KAFKA_GROUP_H

#include <librdkafka/rdkafka.h>

struct kafka_group_hooks {
    /* before the partitions are assigned: may set each one's start offset */
    void (*before_assign)(void *ctx, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts);
    /* after they are assigned */
    void (*after_assign)(void *ctx, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts);
    /* before they are taken away; lost: another member may own them already */
    void (*before_revoke)(void *ctx, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                          int lost);
    /* after they are gone */
    void (*after_revoke)(void *ctx, rd_kafka_t *rk);
    void *ctx; /* borrowed: handed to every hook */
};

/* Installs the shared rebalance callback on conf; hooks (borrowed) must
 * outlive the consumer made from conf. Uses conf's opaque. */
void kafka_group_install(rd_kafka_conf_t *conf, const struct kafka_group_hooks *hooks);

/* Leaves the group: revokes the assignment (the hooks run), commits
 * nothing on its own, and waits up to timeout_ms for the close to finish
 * (rd_kafka_consumer_close waits forever, and a close that meets a
 * rebalance in flight has been seen to hang). Returns 0, or -1 when the
 * close did not finish in time: the caller then destroys the handle with
 * RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE, and the group moves the
 * partitions on after session.timeout.ms (the checkpoints are committed
 * already). */
int kafka_group_close(rd_kafka_t *rk, int timeout_ms);

/* How long our binaries give kafka_group_close: a close takes well under
 * a second; compose's stop_grace_period is longer than this. */
#define GROUP_CLOSE_MS 15000

/* Formats the partition numbers of parts as "0,3,7" into buf (truncated to
 * fit) and returns buf. */
const char *kafka_group_partition_list(const rd_kafka_topic_partition_list_t *parts, char *buf,
                                       size_t len);

#endif
