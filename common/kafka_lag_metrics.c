/* kafka_lag_metrics: see kafka_lag_metrics.h.
 *
 * One process-wide table of watched topics, each with the partitions it
 * has shown series for, under one lock: statistics arrive from whichever
 * thread polls a handle, watch() from any thread at startup. Series
 * pointers are kept (metrics.h: they stay valid until metrics_free), so a
 * statistics report looks a series up once per partition ever seen. */
#include "kafka_lag_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

/* A partition number we accept: Kafka allows more, nobody has them, and
 * this bounds the table whatever a statistics report says. */
#define LAG_PARTITION_MAX 100000

struct lag_part {
    int partition;
    int shown; /* some series of it is shown */
    int seen;  /* assigned in the report being read */
    struct metric *lag, *committed, *end; /* borrowed from the registry */
};

struct lag_topic {
    char *name;             /* owned */
    struct lag_part *parts; /* owned, nparts used of cap */
    int nparts, cap;
};

static struct {
    pthread_mutex_t lock;
    struct lag_topic topics[KAFKA_LAG_TOPICS_MAX];
    int ntopics;
    struct metric_family *lag, *committed, *end, *brokers; /* borrowed from the registry */
} lagm = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int lag_watching; /* 1 once a topic is watched */
static atomic_int lag_joined;   /* the group consumer's last report: a settled member */

/* Registers the families; caller holds the lock. */
static void lag_register(void)
{
    struct metrics *m = metrics_default();
    if (lagm.lag || !m)
        return;
    lagm.lag = metrics_family(m, METRIC_GAUGE, "backfill_kafka_consumer_lag",
                              "Messages of the partition this process's group consumer has not "
                              "committed yet (log end minus committed offset).",
                              "topic,partition", NULL, 0);
    lagm.committed = metrics_family(m, METRIC_GAUGE, "backfill_kafka_committed_offset",
                                    "The group's committed offset of the partition.",
                                    "topic,partition", NULL, 0);
    lagm.end = metrics_family(m, METRIC_GAUGE, "backfill_kafka_log_end_offset",
                              "The partition's high watermark, as last fetched.",
                              "topic,partition", NULL, 0);
    lagm.brokers = metrics_family(m, METRIC_GAUGE, "backfill_kafka_brokers_up",
                                  "Kafka brokers the group consumer is connected to.", NULL,
                                  NULL, 0);
}

void kafka_lag_metrics_watch(const char *topic)
{
    if (!topic || !*topic)
        return;
    pthread_mutex_lock(&lagm.lock);
    lag_register();
    for (int i = 0; i < lagm.ntopics; i++)
        if (strcmp(lagm.topics[i].name, topic) == 0)
            goto done;
    if (lagm.ntopics == KAFKA_LAG_TOPICS_MAX) {
        log_warn("not reporting the consumer lag of topic %s: already %d topics", topic,
                 KAFKA_LAG_TOPICS_MAX);
        goto done;
    }
    char *copy = strdup(topic);
    if (!copy) {
        log_warn("not reporting the consumer lag of topic %s: out of memory", topic);
        goto done;
    }
    lagm.topics[lagm.ntopics++] = (struct lag_topic){.name = copy};
    atomic_store(&lag_watching, 1);
done:
    pthread_mutex_unlock(&lagm.lock);
}

/* The partition's entry with its series, created if new; NULL when out
 * of memory. Caller holds the lock. */
static struct lag_part *lag_part_entry(struct lag_topic *t, int partition)
{
    char pnum[16];
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition)
            return &t->parts[i];
    if (t->nparts == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        struct lag_part *p = realloc(t->parts, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        t->parts = p;
        t->cap = cap;
    }
    snprintf(pnum, sizeof pnum, "%d", partition);
    struct lag_part *e = &t->parts[t->nparts++];
    *e = (struct lag_part){.partition = partition};
    e->lag = metrics_series2(lagm.lag, t->name, pnum);
    e->committed = metrics_series2(lagm.committed, t->name, pnum);
    e->end = metrics_series2(lagm.end, t->name, pnum);
    return e;
}

static void lag_part_hide(struct lag_part *e)
{
    metrics_hide(e->lag);
    metrics_hide(e->committed);
    metrics_hide(e->end);
    e->shown = 0;
}

/* An integer field of o, or dflt when absent or not an integer. */
static long long lag_int(const json_t *o, const char *key, long long dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* 1 when fetch_state says the group consumer has the partition assigned:
 * being started (offset-query, offset-wait, validate-epoch-wait) or
 * fetching (active; a paused partition stays active). */
static int lag_assigned(const char *fetch_state)
{
    return fetch_state && strcmp(fetch_state, "none") != 0 &&
           strcmp(fetch_state, "stopping") != 0 && strcmp(fetch_state, "stopped") != 0;
}

/* Sets one assigned partition's series from its statistics object. */
static void lag_part_update(struct lag_part *e, const json_t *p)
{
    long long hi = lag_int(p, "hi_offset", -1), ls = lag_int(p, "ls_offset", -1);
    long long lo = lag_int(p, "lo_offset", -1), committed = lag_int(p, "committed_offset", -1);
    long long lag = lag_int(p, "consumer_lag", -1);
    long long end = ls >= 0 ? ls : hi;

    if (lag < 0 && end >= 0) {
        /* no commit yet (reading starts at the low watermark), or a
         * commit newer than the end this report knows */
        long long base = committed >= 0 ? committed : (lo >= 0 ? lo : 0);
        lag = end > base ? end - base : 0;
    }
    if (lag >= 0)
        metric_set(e->lag, (double)lag);
    else
        metrics_hide(e->lag);
    if (committed >= 0)
        metric_set(e->committed, (double)committed);
    else
        metrics_hide(e->committed);
    if (hi >= 0)
        metric_set(e->end, (double)hi);
    else
        metrics_hide(e->end);
    e->shown = 1;
}

/* Updates topic t from its object in the report (NULL: not in it). */
static void lag_topic_update(struct lag_topic *t, json_t *tj)
{
    json_t *parts = json_object_get(tj, "partitions"), *p;
    const char *key;

    for (int i = 0; i < t->nparts; i++)
        t->parts[i].seen = 0;
    json_object_foreach(parts, key, p) {
        long long partition = lag_int(p, "partition", -1);
        struct lag_part *e;
        if (partition < 0 || partition > LAG_PARTITION_MAX) /* -1: librdkafka's unassigned queue */
            continue;
        if (!lag_assigned(json_string_value(json_object_get(p, "fetch_state"))))
            continue;
        if (!(e = lag_part_entry(t, (int)partition)))
            continue;
        e->seen = 1;
        lag_part_update(e, p);
    }
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].shown && !t->parts[i].seen)
            lag_part_hide(&t->parts[i]);
}

int kafka_lag_metrics_watching(void)
{
    return atomic_load(&lag_watching);
}

int kafka_lag_metrics_group_joined(void)
{
    return atomic_load(&lag_joined);
}

void kafka_lag_metrics_from_stats(const json_t *root)
{
    const char *type;
    json_t *topics, *brokers, *b, *cgrp;
    const char *key, *state, *join;
    int up = 0;

    if (!atomic_load(&lag_watching) || !json_is_object(root))
        return;
    type = json_string_value(json_object_get(root, "type"));
    cgrp = json_object_get(root, "cgrp");
    if (!type || strcmp(type, "consumer") != 0 || !json_is_object(cgrp))
        return; /* a producer, or a consumer without a group (tfollow) */
    state = json_string_value(json_object_get(cgrp, "state"));
    join = json_string_value(json_object_get(cgrp, "join_state"));
    atomic_store(&lag_joined, state && join && strcmp(state, "up") == 0 &&
                                  strcmp(join, "steady") == 0);
    topics = json_object_get(root, "topics");
    brokers = json_object_get(root, "brokers");
    json_object_foreach(brokers, key, b) {
        const char *state = json_string_value(json_object_get(b, "state"));
        if (lag_int(b, "nodeid", -1) >= 0 && state && strcmp(state, "UP") == 0)
            up++; /* bootstrap and coordinator entries have no node id */
    }

    pthread_mutex_lock(&lagm.lock);
    for (int i = 0; i < lagm.ntopics; i++)
        lag_topic_update(&lagm.topics[i], json_object_get(topics, lagm.topics[i].name));
    metric_set(metrics_series0(lagm.brokers), up);
    pthread_mutex_unlock(&lagm.lock);
}
