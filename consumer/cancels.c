/* cancels: see cancels.h. */
#include "cancels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "isotime.h"
#include "kafka.h"
#include "log.h"

struct cancel_entry {
    char key[REPO_FULL_MAX + 1];
    int64_t ts; /* ms: the latest cancel of this repository */
};

struct cancels {
    rd_kafka_t *rk;             /* owned: a consumer without a group */
    rd_kafka_topic_t *rkt;      /* owned */
    rd_kafka_queue_t *q;        /* owned: every partition's messages */
    int started;                /* partitions started (0..started-1) */
    struct cancel_entry *items; /* owned */
    size_t n, cap;
};

static void cancels_note(cancels *cs, const char *key, int64_t ts)
{
    struct cancel_entry *grown;
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->items[i].key, key) == 0) {
            if (ts > cs->items[i].ts)
                cs->items[i].ts = ts;
            return;
        }
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 16;
        grown = realloc(cs->items, cap * sizeof *grown);
        if (!grown) {
            log_error("out of memory recording a cancellation of %s", key);
            return;
        }
        cs->items = grown;
        cs->cap = cap;
    }
    snprintf(cs->items[cs->n].key, sizeof cs->items[cs->n].key, "%s", key);
    cs->items[cs->n++].ts = ts;
    log_info("%s: cancellation requested", key);
}

/* Handles one polled message; returns 1 at a partition's end. */
static int cancels_handle(cancels *cs, rd_kafka_message_t *m)
{
    char key[REPO_FULL_MAX + 1], err[128];
    int64_t ts;
    int eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
    if (!m->err && cancel_decode(m->payload, m->len, key, &ts, err, sizeof err) == 0)
        cancels_note(cs, key, ts);
    else if (!m->err)
        log_warn("ignoring control message at offset %lld: %s", (long long)m->offset, err);
    else if (!eof)
        log_warn("control topic: %s", rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    return eof;
}

/* Metadata of the control topic once every partition has a leader (a
 * topic created a moment ago may not have them yet). NULL on timeout. */
static const struct rd_kafka_metadata *cancels_metadata(cancels *cs, double deadline)
{
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int ready = rd_kafka_metadata(cs->rk, 0, cs->rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
        for (int i = 0; ready && i < md->topics[0].partition_cnt; i++)
            ready = md->topics[0].partitions[i].leader >= 0;
        if (ready)
            return md;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (isotime_mono() >= deadline)
            return NULL;
        usleep(200 * 1000);
    }
}

/* Starts every partition of the control topic from the beginning on one
 * queue (the legacy consumer API: no group, nothing committed). Returns
 * the partition count or -1. */
static int cancels_start(cancels *cs, const char *topic, double deadline, char *errstr,
                         size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    cs->rkt = rd_kafka_topic_new(cs->rk, topic, NULL);
    cs->q = rd_kafka_queue_new(cs->rk);
    if (!cs->rkt || !cs->q || !(md = cancels_metadata(cs, deadline))) {
        snprintf(errstr, errlen, "control topic %s not available (no metadata or no leader)",
                 topic);
    } else {
        n = md->topics[0].partition_cnt;
        for (; cs->started < n; cs->started++)
            if (rd_kafka_consume_start_queue(cs->rkt, md->topics[0].partitions[cs->started].id,
                                             RD_KAFKA_OFFSET_BEGINNING, cs->q) == -1) {
                snprintf(errstr, errlen, "cannot read control topic %s: %s", topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                n = -1;
                break;
            }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    return n;
}

cancels *cancels_new(const struct cli_common *c, int timeout_ms, char *errstr, size_t errlen)
{
    static const char *const defaults[] = {"client.id", "backfill-consumer-control",
                                           "enable.auto.commit", "false",
                                           "enable.partition.eof", "true", NULL};
    cancels *cs = calloc(1, sizeof *cs);
    rd_kafka_conf_t *conf = cs ? kafka_conf_new(c->brokers, defaults, c->props, errstr, errlen) : NULL;
    double deadline = isotime_mono() + timeout_ms / 1000.0;
    int parts, eofs = 0;

    if (!conf)
        goto fail;
    cs->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen);
    if (!cs->rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        goto fail;
    }
    parts = cancels_start(cs, c->control_topic, deadline + 20.0, errstr, errlen); /* rd_kafka_new owns conf */
    if (parts < 0)
        goto fail;
    while (eofs < parts && isotime_mono() < deadline) { /* read what is there before any job */
        rd_kafka_message_t *m = rd_kafka_consume_queue(cs->q, 100);
        if (m)
            eofs += cancels_handle(cs, m);
    }
    return cs;
fail:
    if (!cs)
        snprintf(errstr, errlen, "out of memory");
    cancels_free(cs);
    return NULL;
}

void cancels_free(cancels *cs)
{
    if (!cs)
        return;
    while (cs->started > 0)
        rd_kafka_consume_stop(cs->rkt, --cs->started);
    if (cs->q)
        rd_kafka_queue_destroy(cs->q);
    if (cs->rkt)
        rd_kafka_topic_destroy(cs->rkt);
    if (cs->rk)
        rd_kafka_destroy(cs->rk);
    free(cs->items);
    free(cs);
}

void cancels_poll(cancels *cs)
{
    rd_kafka_message_t *m;
    if (cs)
        rd_kafka_poll(cs->rk, 0); /* error and statistics callbacks */
    while (cs && (m = rd_kafka_consume_queue(cs->q, 0)) != NULL)
        cancels_handle(cs, m);
}

int cancels_hit(const cancels *cs, const char *key, int64_t queued_ms)
{
    for (size_t i = 0; cs && i < cs->n; i++)
        if (strcmp(cs->items[i].key, key) == 0)
            return cs->items[i].ts >= queued_ms;
    return 0;
}
