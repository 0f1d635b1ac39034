/* kafka_health: see kafka_health.h. */
#define _GNU_SOURCE /* strcasestr */
#include "kafka_health.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kafka_lag_metrics.h"
#include "log.h"

#define HEALTH_MAX_BROKERS 32
#define HEALTH_TEXT 256

struct broker_state {
    char name[128];            /* "host:port" */
    char reason[HEALTH_TEXT];  /* why it is down; "" while up */
    int down;
};

/* One process-wide table: every handle reports into it, so that three
 * handles failing to reach the same broker give one log line. */
static struct {
    pthread_mutex_t lock;
    struct broker_state b[HEALTH_MAX_BROKERS];
    int n;
    char fatal_text[HEALTH_TEXT + 64];
} health = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int health_down; /* brokers currently down */
static atomic_int health_fatal_flag;

/* The broker's entry, created if new; NULL when the table is full.
 * Caller holds the lock. */
static struct broker_state *broker_entry(const char *name)
{
    for (int i = 0; i < health.n; i++)
        if (strcmp(health.b[i].name, name) == 0)
            return &health.b[i];
    if (health.n == HEALTH_MAX_BROKERS)
        return NULL;
    struct broker_state *b = &health.b[health.n++];
    snprintf(b->name, sizeof b->name, "%s", name);
    return b;
}

static void broker_down(const char *name, const char *reason)
{
    pthread_mutex_lock(&health.lock);
    struct broker_state *b = broker_entry(name);
    if (b && (!b->down || strcmp(b->reason, reason) != 0)) {
        if (!b->down)
            atomic_fetch_add(&health_down, 1);
        b->down = 1;
        snprintf(b->reason, sizeof b->reason, "%s", reason);
        log_warn("cannot reach Kafka at %s: %s; retrying", name, reason);
    }
    pthread_mutex_unlock(&health.lock);
}

static void broker_up(const char *name)
{
    pthread_mutex_lock(&health.lock);
    for (int i = 0; i < health.n; i++)
        if (health.b[i].down && strcmp(health.b[i].name, name) == 0) {
            health.b[i].down = 0;
            health.b[i].reason[0] = '\0';
            atomic_fetch_sub(&health_down, 1);
            log_info("Kafka at %s answers again", name);
        }
    pthread_mutex_unlock(&health.lock);
}

int kafka_health_parse_broker_error(const char *text, char *broker, size_t blen, char *reason,
                                    size_t rlen)
{
    const char *start = text, *slash, *colon, *why, *after, *p;
    size_t n;

    if (strncmp(start, "[thrd:", 6) == 0 && (p = strstr(start, "]: ")))
        start = p + 3; /* log lines carry the thread's name first */
    if ((p = strstr(start, "://")) && p < strchr(start, '/'))
        start = p + 3; /* "sasl_ssl://host:9093/1" */
    slash = strchr(start, '/');
    colon = slash ? strstr(slash, ": ") : NULL;
    if (!slash || slash == start || !colon)
        return -1;
    n = (size_t)(slash - start);
    snprintf(broker, blen, "%.*s", (int)(n < blen ? n : blen - 1), start);
    why = colon + 2;
    if ((p = strstr(why, " failed: ")))
        why = p + 9; /* "Connect to ipv4#... failed: Connection refused" */
    else if (strncmp(why, "Failed to resolve ", 18) == 0 && (p = strstr(why, "': ")))
        why = p + 3; /* "Failed to resolve 'h:9092': Name or service not known" */
    after = strstr(why, " (after ");
    n = after ? (size_t)(after - why) : strlen(why);
    snprintf(reason, rlen, "%.*s", (int)(n < rlen ? n : rlen - 1), why);
    if (reason[0] && isupper((unsigned char)reason[0]) && !isupper((unsigned char)reason[1]))
        reason[0] = (char)tolower((unsigned char)reason[0]);
    return 0;
}

static void health_error_cb(rd_kafka_t *rk, int err, const char *text, void *opaque)
{
    char fatal[HEALTH_TEXT];
    (void)opaque;

    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
        err = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        pthread_mutex_lock(&health.lock);
        if (!atomic_load(&health_fatal_flag))
            snprintf(health.fatal_text, sizeof health.fatal_text, "%s: %s", rd_kafka_err2name(err),
                     fatal);
        atomic_store(&health_fatal_flag, 1);
        pthread_mutex_unlock(&health.lock);
        log_error("fatal Kafka error in %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err),
                  fatal);
        return;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        /* already reported from the log line (kafka_health_broker_log) */
        log_debug("librdkafka %s: %s", rd_kafka_name(rk), text);
        return;
    default:
        break;
    }
    log_warn("librdkafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), text);
}

void kafka_health_broker_log(const char *text)
{
    char broker[128], reason[HEALTH_TEXT];
    if (kafka_health_parse_broker_error(text, broker, sizeof broker, reason, sizeof reason))
        return;
    /* An idle connection the broker closed is not a failure to reach it. */
    if (!strcasestr(reason, "disconnected"))
        broker_down(broker, reason);
}

/* Marks every broker the statistics show connected ("state": "UP") as up,
 * and hands the same parsed report to the lag metrics (which keep only a
 * group consumer's). One parse per report. */
static int health_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    json_t *root, *brokers, *b;
    const char *key;
    (void)rk;
    (void)opaque;
    if (atomic_load(&health_down) == 0 &&
        (!kafka_lag_metrics_watching() || !memmem(json, len, "\"cgrp\"", 6)))
        return 0; /* nothing to learn: spare the parse */
    root = json_loadb(json, len, 0, NULL);
    if (!root)
        return 0; /* librdkafka frees json */
    if (atomic_load(&health_down) > 0) {
        brokers = json_object_get(root, "brokers");
        json_object_foreach(brokers, key, b) {
            const char *state = json_string_value(json_object_get(b, "state"));
            const char *name = json_string_value(json_object_get(b, "nodename"));
            if (state && name && strcmp(state, "UP") == 0)
                broker_up(name);
        }
    }
    kafka_lag_metrics_from_stats(root);
    json_decref(root);
    return 0; /* librdkafka frees json */
}

int kafka_health_install(rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
    char interval[16];
    snprintf(interval, sizeof interval, "%d", KAFKA_HEALTH_STATS_MS);
    if (rd_kafka_conf_set(conf, "statistics.interval.ms", interval, errstr, errlen) !=
        RD_KAFKA_CONF_OK)
        return -1;
    rd_kafka_conf_set_error_cb(conf, health_error_cb);
    rd_kafka_conf_set_stats_cb(conf, health_stats_cb);
    return 0;
}

int kafka_health_fatal(char *buf, size_t buflen)
{
    if (!atomic_load(&health_fatal_flag))
        return 0;
    if (buf && buflen) {
        pthread_mutex_lock(&health.lock);
        snprintf(buf, buflen, "%s", health.fatal_text);
        pthread_mutex_unlock(&health.lock);
    }
    return 1;
}

int kafka_health_ready(char *why, size_t whylen)
{
    char buf[HEALTH_TEXT + 64];
    if (kafka_health_fatal(buf, sizeof buf)) {
        snprintf(why, whylen, "fatal Kafka error: %s", buf);
        return 0;
    }
    if (kafka_health_unreachable(buf, sizeof buf)) {
        snprintf(why, whylen, "cannot reach Kafka at %s", buf);
        return 0;
    }
    return 1;
}

int kafka_health_unreachable(char *buf, size_t buflen)
{
    int down = 0;
    pthread_mutex_lock(&health.lock);
    for (int i = 0; i < health.n && !down; i++)
        if (health.b[i].down) {
            down = 1;
            if (buf && buflen)
                snprintf(buf, buflen, "%s: %s", health.b[i].name, health.b[i].reason);
        }
    pthread_mutex_unlock(&health.lock);
    return down;
}
