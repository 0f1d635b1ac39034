/* publisher: see publisher.h.
 *
 * Dead letters keep the original bytes when they can: the producer takes
 * messages up to PUBLISHER_MAX_MESSAGE. A dead letter larger than
 * PUBLISHER_DLQ_MAX_BYTES, or one the DLQ topic refuses as too large (its
 * max.message.bytes is smaller than the jobs topic's), is sent again as
 * its first PUBLISHER_DLQ_CUT_BYTES with headers dlq.truncated=true and
 * dlq.original.bytes, so a huge message can never block a partition. */
#include "publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"
#include "log.h"

#define PUBLISHER_MAX_MESSAGE "17825792"     /* 17 MiB: a full dead letter plus headers */
#define PUBLISHER_DLQ_MAX_BYTES (16u << 20)  /* larger originals are cut */
#define PUBLISHER_DLQ_CUT_BYTES (512u << 10) /* what is left of a cut one: fits any topic */

/* The msg_opaque of every message: whose it is, and for a dead letter
 * whether it carries the whole original (then it may be cut and re-sent
 * if refused as too large). Freed by the delivery report. */
enum publisher_kind { PUBLISHER_EVENT, PUBLISHER_DLQ_WHOLE, PUBLISHER_DLQ_CUT };
struct publisher_tag {
    struct publisher_tally *tally; /* borrowed: outlives the message */
    enum publisher_kind kind;
};

struct publisher {
    rd_kafka_t *rk; /* owned */
    long fatal_after; /* fault injection for tests: sends before a fatal error, 0 = never */
    long sent;
};

static int publisher_send_cut(publisher *ob, struct publisher_tally *t, const char *topic, const void *key,
                           size_t keylen, const void *value, size_t len,
                           const rd_kafka_headers_t *orig_hdrs);

static int publisher_too_large(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* A dead letter refused as too large: send its cut version instead.
 * Returns 1 if that was queued (counted in the same tally). */
static int publisher_recut(publisher *ob, const rd_kafka_message_t *m, struct publisher_tally *t)
{
    rd_kafka_headers_t *hdrs = NULL; /* borrowed from m */
    /* Producing from a delivery report is allowed; flush waits for it too. */
    log_warn("dead letter of %zu bytes refused by %s (%s); sending its first %u bytes "
             "instead, marked dlq.truncated",
             m->len, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
             PUBLISHER_DLQ_CUT_BYTES);
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    return publisher_send_cut(ob, t, rd_kafka_topic_name(m->rkt), m->key, m->key_len, m->payload,
                           m->len, hdrs) == 0;
}

static void publisher_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    publisher *ob = opaque;                 /* borrowed */
    struct publisher_tag *tag = m->_private; /* owned: this message's */
    (void)rk;
    if (!tag)
        return;
    if (m->err && !(tag->kind == PUBLISHER_DLQ_WHOLE && publisher_too_large(m->err) &&
                    publisher_recut(ob, m, tag->tally))) {
        tag->tally->failed++;
        log_warn("delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
    }
    tag->tally->in_flight--;
    free(tag);
}

publisher *publisher_new(const struct cli_common *c, char *errstr, size_t errlen)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "0",
        "message.max.bytes", PUBLISHER_MAX_MESSAGE, "compression.type", "lz4",
        "client.id", "backfill-consumer", NULL};
    publisher *ob = calloc(1, sizeof *ob);
    rd_kafka_conf_t *conf;

    if (!ob) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    conf = kafka_conf_new(c->brokers, defaults, c->props, errstr, errlen);
    if (!conf) {
        free(ob);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, publisher_on_delivery);
    rd_kafka_conf_set_opaque(conf, ob);
    ob->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (!ob->rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        free(ob);
        return NULL;
    }
    const char *inject = getenv(PUBLISHER_FATAL_AFTER_ENV);
    if (inject && inject[0]) {
        ob->fatal_after = strtol(inject, NULL, 10);
        log_warn("%s=%ld: a fatal producer error will be injected (a test setting)",
                 PUBLISHER_FATAL_AFTER_ENV, ob->fatal_after);
    }
    return ob; /* rd_kafka_new now owns conf */
}

void publisher_free(publisher *ob)
{
    if (!ob)
        return;
    if (rd_kafka_flush(ob->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("%d messages still unacknowledged at shutdown", rd_kafka_outq_len(ob->rk));
        /* their delivery reports (which free the tags) come from the purge */
        rd_kafka_purge(ob->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(ob->rk, 1000);
    }
    rd_kafka_destroy(ob->rk);
    free(ob);
}

rd_kafka_t *publisher_handle(publisher *ob)
{
    return ob->rk;
}

/* Queues a copy of value; takes hdrs (destroyed if not handed over).
 * Counts the message in t (a failure to queue as a failure). */
static int publisher_produce(publisher *ob, struct publisher_tally *t, enum publisher_kind kind,
                          const char *topic, const void *key, size_t keylen, const void *value,
                          size_t len, rd_kafka_headers_t *hdrs)
{
    struct publisher_tag *tag = malloc(sizeof *tag);
    rd_kafka_resp_err_t err;
    if (!tag) {
        rd_kafka_headers_destroy(hdrs);
        t->failed++;
        log_error("out of memory queueing a message for %s", topic);
        return -1;
    }
    tag->tally = t;
    tag->kind = kind;
    for (;;) {
        err = rd_kafka_producev(ob->rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY((void *)key, keylen),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(ob->rk, 50);
    }
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* not handed over */
        free(tag);
        t->failed++;
        log_error("cannot queue a message for %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    t->in_flight++;
    if (ob->fatal_after > 0 && ++ob->sent == ob->fatal_after)
        rd_kafka_test_fatal_error(ob->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "injected by " PUBLISHER_FATAL_AFTER_ENV);
    return 0; /* rd_kafka_producev now owns hdrs; the delivery report frees tag */
}

int publisher_send(publisher *ob, struct publisher_tally *t, const char *topic, const char *key,
                const char *event, const char *value)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    if (!hdrs) {
        t->failed++;
        return -1;
    }
    rd_kafka_header_add(hdrs, "event", -1, event, -1);
    return publisher_produce(ob, t, PUBLISHER_EVENT, topic, key, strlen(key), value, strlen(value),
                          hdrs);
}

int publisher_send_dlq(publisher *ob, struct publisher_tally *t, const char *dlq_topic,
                    const rd_kafka_message_t *orig, const struct dlq_info *info)
{
    rd_kafka_headers_t *orig_hdrs = NULL, *hdrs;
    char part[16], off[24];

    if (rd_kafka_message_headers(orig, &orig_hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && orig_hdrs)
        hdrs = rd_kafka_headers_copy(orig_hdrs);
    else
        hdrs = rd_kafka_headers_new(6);
    if (!hdrs) {
        t->failed++;
        return -1;
    }
    snprintf(part, sizeof part, "%d", (int)info->src_partition);
    snprintf(off, sizeof off, "%lld", (long long)info->src_offset);
    rd_kafka_header_add(hdrs, "dlq.reason", -1, info->reason, -1);
    rd_kafka_header_add(hdrs, "dlq.source.topic", -1, info->src_topic, -1);
    rd_kafka_header_add(hdrs, "dlq.source.partition", -1, part, -1);
    rd_kafka_header_add(hdrs, "dlq.source.offset", -1, off, -1);
    if (info->checkpoint)
        rd_kafka_header_add(hdrs, "dlq.checkpoint", -1, info->checkpoint, -1);
    if (orig->len > PUBLISHER_DLQ_MAX_BYTES) {
        int rc = publisher_send_cut(ob, t, dlq_topic, orig->key, orig->key_len, orig->payload,
                                 orig->len, hdrs);
        rd_kafka_headers_destroy(hdrs); /* publisher_send_cut copied them */
        return rc;
    }
    return publisher_produce(ob, t, PUBLISHER_DLQ_WHOLE, dlq_topic, orig->key,
                          orig->key ? orig->key_len : 0, orig->payload, orig->len, hdrs);
}

/* Queues the first PUBLISHER_DLQ_CUT_BYTES of a dead letter with a copy of
 * orig_hdrs (borrowed, may be NULL) plus dlq.truncated and
 * dlq.original.bytes. Returns 0 or -1 (not queued; logged). */
static int publisher_send_cut(publisher *ob, struct publisher_tally *t, const char *topic, const void *key,
                           size_t keylen, const void *value, size_t len,
                           const rd_kafka_headers_t *orig_hdrs)
{
    rd_kafka_headers_t *hdrs = orig_hdrs ? rd_kafka_headers_copy(orig_hdrs)
                                         : rd_kafka_headers_new(2);
    char total[24];

    if (!hdrs) {
        log_error("out of memory cutting a dead letter for %s", topic);
        t->failed++;
        return -1;
    }
    snprintf(total, sizeof total, "%zu", len);
    rd_kafka_header_add(hdrs, "dlq.truncated", -1, "true", -1);
    rd_kafka_header_add(hdrs, "dlq.original.bytes", -1, total, -1);
    return publisher_produce(ob, t, PUBLISHER_DLQ_CUT, topic, key, key ? keylen : 0, value,
                          len < PUBLISHER_DLQ_CUT_BYTES ? len : PUBLISHER_DLQ_CUT_BYTES, hdrs);
}

int publisher_check(publisher *ob, struct publisher_tally *t, int timeout_ms, int64_t since)
{
    double deadline = isotime_mono() + timeout_ms / 1000.0;
    for (;;) {
        double left = deadline - isotime_mono();
        rd_kafka_poll(ob->rk, 0);
        if (t->failed > since)
            return -1;
        if (t->in_flight <= 0)
            return 0;
        if (left <= 0)
            return 1;
        rd_kafka_poll(ob->rk, left < 0.005 ? 1 : 5); /* wakes early on a report */
    }
}

void publisher_poll(publisher *ob)
{
    rd_kafka_poll(ob->rk, 0);
}

void publisher_set_wake(publisher *ob, void (*wake)(rd_kafka_t *rk, void *ctx), void *ctx)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(ob->rk);
    if (!q)
        return;
    rd_kafka_queue_cb_event_enable(q, wake, ctx); /* NULL: off */
    rd_kafka_queue_destroy(q);
}
