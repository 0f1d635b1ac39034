/* kafka: what every binary shares about librdkafka — configuration built
 * from defaults, the bootstrap servers and kcat-style `-X key=value`
 * overrides (applied last, so a user can change anything); librdkafka's
 * logs routed through our logger; topic creation at startup. */
#ifndef BACKFILL_KAFKA_H
#define BACKFILL_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>

#define KAFKA_DEFAULT_BOOTSTRAP "localhost:9092"

typedef struct kprops kprops;

/* A list of key=value librdkafka properties. kprops_free(NULL) is a no-op. */
kprops *kprops_new(void);
void kprops_free(kprops *kp);

/* Adds "key=value" (copied). Returns 0, or -1 with a reason when the text
 * has no '=' or memory runs out (kp unchanged). */
int kprops_add(kprops *kp, const char *kv, char *errstr, size_t errlen);

/* Builds a configuration: `defaults` (NULL-terminated key, value pairs,
 * may be NULL), then bootstrap.servers, then every user property, then
 * allow.auto.create.topics=false (no client of ours may make a broker
 * auto-create a topic with the broker's default partition count). Under
 * group.protocol=consumer the defaults the broker decides there
 * (session.timeout.ms, heartbeat.interval.ms,
 * partition.assignment.strategy) are left out. Installs
 * the log callback and kafka_health's error and statistics callbacks. Returns a conf the caller owns (hand it to
 * rd_kafka_new), or NULL with the failing property named in errstr. */
rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                const kprops *user, char *errstr, size_t errlen);

struct kafka_topic {
    const char *name; /* borrowed */
    int partitions;   /* wanted: the count a missing topic is created with */
    int found;        /* out: the partitions it has (set by kafka_ensure_topics) */
};

/* Makes sure each topic exists: asks the cluster which exist (clients of
 * ours never let a broker auto-create a topic, see kafka_conf_new),
 * creates the missing ones with CreateTopics and their `partitions`
 * (replication factor: the broker default; "already exists" is fine: a
 * peer was first), then reads back what exists into `found`. An existing
 * topic is never altered, whatever its partition count. Returns 0, or a
 * negative value with the reason in errstr (naming the broker and why
 * when Kafka cannot be reached). */
int kafka_ensure_topics(rd_kafka_t *rk, struct kafka_topic *topics, size_t n, int timeout_ms,
                        char *errstr, size_t errlen);

/* kafka_ensure_topics, tried again while the cluster does not answer (a
 * broker still starting, or down: kafka_health says so once), or has not
 * yet spread a topic just created (a busy broker can take seconds), until
 * it does or *stop becomes non-zero. For long-running binaries. Returns 0,
 * -1 with errstr on any other failure, 1 when stopped first. */
int kafka_ensure_topics_wait(rd_kafka_t *rk, struct kafka_topic *topics, size_t n,
                             const volatile sig_atomic_t *stop, char *errstr, size_t errlen);

/* The partition count of `topic` now: > 0, 0 when it does not exist, -1
 * when the cluster did not answer within timeout_ms. */
int kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* When t->found < t->partitions, writes a warning for the log into buf:
 * what the topic has, `consequence` (what that limits), and the command
 * that adds partitions with what it changes. An existing topic is never
 * altered by us. Returns 1 then, 0 (buf untouched) when it has enough. */
int kafka_topic_shortfall(const struct kafka_topic *t, const char *bootstrap,
                          const char *consequence, char *buf, size_t buflen);

/* Fetches metadata for one topic now, so the first message produced to it
 * is not held back until librdkafka's periodic (1 s) topic scan notices a
 * freshly created topic. Returns 0, or -1 (harmless: produce still works). */
int kafka_warm_topic(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* Copies the value of header `name` of msg into buf (NUL-terminated,
 * truncated to buflen). Returns 0 if found, -1 if absent. */
int kafka_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t buflen);

#endif
