/* kafka: what every binary shares about librdkafka — configuration built
 * from defaults, the bootstrap servers and kcat-style `-X key=value`
 * overrides (applied last, so a user can change anything); librdkafka's
 * logs routed through our logger; topic creation at startup. */
#ifndef BACKFILL_KAFKA_H
#define BACKFILL_KAFKA_H

#include <librdkafka/rdkafka.h>
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
 * may be NULL), then bootstrap.servers, then every user property. Installs
 * the log callback. Returns a conf the caller owns (hand it to
 * rd_kafka_new), or NULL with the failing property named in errstr. */
rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                const kprops *user, char *errstr, size_t errlen);

struct kafka_topic {
    const char *name; /* borrowed */
    int partitions;
};

/* Creates each topic that does not exist yet (replication factor: the
 * broker default), tolerating "already exists". Returns 0, or -1 with the
 * first failure in errstr. */
int kafka_ensure_topics(rd_kafka_t *rk, const struct kafka_topic *topics, size_t n, int timeout_ms,
                        char *errstr, size_t errlen);

/* Fetches metadata for one topic now, so the first message produced to it
 * is not held back until librdkafka's periodic (1 s) topic scan notices a
 * freshly created topic. Returns 0, or -1 (harmless: produce still works). */
int kafka_warm_topic(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* Copies the value of header `name` of msg into buf (NUL-terminated,
 * truncated to buflen). Returns 0 if found, -1 if absent. */
int kafka_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t buflen);

#endif
