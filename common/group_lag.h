/* group_lag (glag_): a consumer group's lag on one topic, per partition,
 * as `kafka-consumer-groups.sh --describe` shows it — committed offset,
 * log end offset, lag and the member that owns the partition — plus the
 * group's state. backfill-status --lag and backfill-web's GET /api/lag
 * both ask through here and render the same JSON (glag_json).
 *
 * How it asks (Admin API, any rd_kafka_t will do: the web passes its
 * producer): the topic's partition count from metadata, then at once on
 * one private queue DescribeConsumerGroups (state, members, assignments),
 * ListConsumerGroupOffsets (committed offsets) and two ListOffsets
 * (earliest and latest, read_uncommitted: the high watermark, which is
 * what kafka-consumer-groups calls LOG-END-OFFSET). Every request has a
 * timeout; nothing is created or changed.
 *
 * Lag where the group committed nothing: shown as unknown ("-" in the
 * table, null in JSON), exactly as kafka-consumer-groups does. For the
 * total it counts as end - start: our worker and sink both start such a
 * partition at the earliest offset (auto.offset.reset=earliest), so that
 * is what the group still has to read there. */
#ifndef BACKFILL_GROUP_LAG_H
#define BACKFILL_GROUP_LAG_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"

/* How long each question to Kafka may take by default. */
#define GLAG_TIMEOUT_MS 5000

struct glag_partition {
    int32_t partition;
    int64_t committed; /* the group's committed offset, -1: none */
    int64_t start;     /* log start offset (earliest) */
    int64_t end;       /* log end offset (high watermark) */
    int64_t lag;       /* end - committed (>= 0), -1 when nothing is committed */
    char *consumer_id; /* owned; NULL: no member owns the partition */
    char *host;        /* owned; NULL with consumer_id */
    char *client_id;   /* owned; NULL with consumer_id */
};

struct glag_report {
    char *group;                  /* owned */
    char *topic;                  /* owned */
    char *state;                  /* owned: "Stable", "Empty", "PreparingRebalance", ... */
    int members;                  /* members in the group now */
    size_t n;                     /* partitions of the topic */
    struct glag_partition *parts; /* owned: n of them, by partition */
    int64_t total_lag;            /* sum of lag, end - start where nothing is committed */
    size_t uncommitted;           /* partitions with no committed offset */
};

/* The client to ask glag_query with: a consumer handle with a group id of
 * its own (GLAG_CLIENT_GROUP) that never subscribes, so it never joins
 * anything. Not a producer: librdkafka 2.14 dereferences the handle's
 * consumer group when a ListConsumerGroupOffsets answer says
 * NOT_COORDINATOR (a group coordinator still loading, or moving), and a
 * producer has none: the process crashed. client_id names it in Kafka's
 * logs. NULL with the reason in errstr. */
#define GLAG_CLIENT_GROUP "backfill-lag-reader"
rd_kafka_t *glag_client_new(const char *brokers, const kprops *props, const char *client_id,
                            char *errstr, size_t errlen);

/* What glag_query returns. */
enum glag_rc {
    GLAG_OK = 0,
    GLAG_EKAFKA = -1,    /* Kafka unreachable, timed out or refused: errstr says */
    GLAG_ENOGROUP = -2,  /* "group X does not exist" */
    GLAG_ENOTOPIC = -3,  /* "topic X does not exist" */
    GLAG_ENOMEM = -4
};

/* The environment's group ids (GLAG_*_ENV, else the defaults), for the
 * binaries that have no flag of their own for them. Either may be NULL. */
void glag_default_groups(const char **worker, const char **sink);

/* Asks Kafka for group's lag on topic, waiting at most about timeout_ms
 * per round (two rounds). Returns GLAG_OK with *out set (caller frees
 * with glag_free), or an enum glag_rc with a sentence in errstr that names
 * the group, topic or broker (*out left NULL). rk is borrowed; its other
 * users are not disturbed (results come on a queue of our own). */
int glag_query(rd_kafka_t *rk, const char *group, const char *topic, int timeout_ms,
               struct glag_report **out, char *errstr, size_t errlen);

/* Frees a report; glag_free(NULL) is a no-op. */
void glag_free(struct glag_report *r);

/* The report as JSON (a new reference, NULL when out of memory):
 *   {"group": G, "topic": T, "state": "Stable", "members": 1,
 *    "totalLag": 28, "uncommittedPartitions": 0,
 *    "partitions": [{"partition": 0, "currentOffset": 12 | null,
 *                    "logStartOffset": 0, "logEndOffset": 40, "lag": 28 | null,
 *                    "consumerId": "..." | null, "host": "/127.0.0.1" | null,
 *                    "clientId": "backfill-sink" | null}, ...]} */
json_t *glag_json(const struct glag_report *r);

/* A group that could not be described, in the same shape:
 *   {"group": G, "topic": T, "error": errstr, "exists": false (GLAG_ENOGROUP only)}
 * NULL when out of memory. */
json_t *glag_json_error(const char *group, const char *topic, int rc, const char *errstr);

#endif
