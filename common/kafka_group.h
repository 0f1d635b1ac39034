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

/* Formats the partition numbers of parts as "0,3,7" into buf (truncated to
 * fit) and returns buf. */
const char *kafka_group_partition_list(const rd_kafka_topic_partition_list_t *parts, char *buf,
                                       size_t len);

#endif
