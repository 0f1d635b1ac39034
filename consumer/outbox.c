/* outbox: see outbox.h.
 *
 * Dead letters keep the original bytes when they can: the producer takes
 * messages up to OUTBOX_MAX_MESSAGE. A dead letter larger than
 * OUTBOX_DLQ_MAX_BYTES, or one the DLQ topic refuses as too large (its
 * max.message.bytes is smaller than the jobs topic's), is sent again as
 * its first OUTBOX_DLQ_CUT_BYTES with headers dlq.truncated=true and
 * dlq.original.bytes, so a huge message can never block a partition. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define OUTBOX_MAX_MESSAGE "17825792"     /* 17 MiB: a full dead letter plus headers */
#define OUTBOX_DLQ_MAX_BYTES (16u << 20)  /* larger originals are cut */
#define OUTBOX_DLQ_CUT_BYTES (512u << 10) /* what is left of a cut one: fits any topic */

/* msg_opaque of a dead letter carrying the whole original (may be cut
 * and re-sent if refused), and of one already cut. */
static char outbox_dlq_whole, outbox_dlq_cut;

struct outbox {
    rd_kafka_t *rk;     /* owned */
    int64_t failures;   /* deliveries failed so far (only grows: callers compare marks) */
};

static int outbox_send_cut(outbox *ob, const char *topic, const void *key, size_t keylen,
                           const void *value, size_t len, const rd_kafka_headers_t *orig_hdrs);

static int outbox_too_large(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

static void outbox_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    outbox *ob = opaque; /* borrowed */
    rd_kafka_headers_t *hdrs = NULL; /* borrowed from m */
    (void)rk;
    if (!m->err)
        return;
    if (m->_private == &outbox_dlq_whole && outbox_too_large(m->err)) {
        /* Producing from a delivery report is allowed; flush waits for it too. */
        log_warn("dead letter of %zu bytes refused by %s (%s); sending its first %u bytes "
                 "instead, marked dlq.truncated",
                 m->len, rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
                 OUTBOX_DLQ_CUT_BYTES);
        if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = NULL;
        if (outbox_send_cut(ob, rd_kafka_topic_name(m->rkt), m->key, m->key_len, m->payload,
                            m->len, hdrs) == 0)
            return;
    }
    ob->failures++;
    log_warn("delivery to %s failed: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
}

outbox *outbox_new(const struct cli_common *c, char *errstr, size_t errlen)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "2",
        "message.max.bytes", OUTBOX_MAX_MESSAGE, "compression.type", "lz4",
        "client.id", "backfill-consumer", NULL};
    outbox *ob = calloc(1, sizeof *ob);
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
    rd_kafka_conf_set_dr_msg_cb(conf, outbox_on_delivery);
    rd_kafka_conf_set_opaque(conf, ob);
    ob->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (!ob->rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        free(ob);
        return NULL;
    }
    return ob; /* rd_kafka_new now owns conf */
}

void outbox_free(outbox *ob)
{
    if (!ob)
        return;
    if (rd_kafka_flush(ob->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("%d messages still unacknowledged at shutdown", rd_kafka_outq_len(ob->rk));
    rd_kafka_destroy(ob->rk);
    free(ob);
}

rd_kafka_t *outbox_handle(outbox *ob)
{
    return ob->rk;
}

/* Queues a copy of value; takes hdrs (destroyed if not handed over).
 * tag becomes the message's msg_opaque. */
static int outbox_produce(outbox *ob, const char *topic, const void *key, size_t keylen,
                          const void *value, size_t len, rd_kafka_headers_t *hdrs, void *tag)
{
    rd_kafka_resp_err_t err;
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
        ob->failures++;
        log_error("cannot queue a message for %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0; /* rd_kafka_producev now owns hdrs */
}

int outbox_send(outbox *ob, const char *topic, const char *key, const char *event,
                const char *value)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    if (!hdrs) {
        ob->failures++;
        return -1;
    }
    rd_kafka_header_add(hdrs, "event", -1, event, -1);
    return outbox_produce(ob, topic, key, strlen(key), value, strlen(value), hdrs, NULL);
}

int outbox_send_dlq(outbox *ob, const char *dlq_topic, const rd_kafka_message_t *orig,
                    const struct dlq_info *info)
{
    rd_kafka_headers_t *orig_hdrs = NULL, *hdrs;
    char part[16], off[24];

    if (rd_kafka_message_headers(orig, &orig_hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && orig_hdrs)
        hdrs = rd_kafka_headers_copy(orig_hdrs);
    else
        hdrs = rd_kafka_headers_new(6);
    if (!hdrs) {
        ob->failures++;
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
    if (orig->len > OUTBOX_DLQ_MAX_BYTES) {
        int rc = outbox_send_cut(ob, dlq_topic, orig->key, orig->key_len, orig->payload,
                                 orig->len, hdrs);
        rd_kafka_headers_destroy(hdrs); /* outbox_send_cut copied them */
        return rc;
    }
    return outbox_produce(ob, dlq_topic, orig->key, orig->key ? orig->key_len : 0, orig->payload,
                          orig->len, hdrs, &outbox_dlq_whole);
}

/* Queues the first OUTBOX_DLQ_CUT_BYTES of a dead letter with a copy of
 * orig_hdrs (borrowed, may be NULL) plus dlq.truncated and
 * dlq.original.bytes. Returns 0 or -1 (not queued; logged). */
static int outbox_send_cut(outbox *ob, const char *topic, const void *key, size_t keylen,
                           const void *value, size_t len, const rd_kafka_headers_t *orig_hdrs)
{
    rd_kafka_headers_t *hdrs = orig_hdrs ? rd_kafka_headers_copy(orig_hdrs)
                                         : rd_kafka_headers_new(2);
    char total[24];

    if (!hdrs) {
        log_error("out of memory cutting a dead letter for %s", topic);
        return -1;
    }
    snprintf(total, sizeof total, "%zu", len);
    rd_kafka_header_add(hdrs, "dlq.truncated", -1, "true", -1);
    rd_kafka_header_add(hdrs, "dlq.original.bytes", -1, total, -1);
    return outbox_produce(ob, topic, key, key ? keylen : 0, value,
                          len < OUTBOX_DLQ_CUT_BYTES ? len : OUTBOX_DLQ_CUT_BYTES, hdrs,
                          &outbox_dlq_cut);
}

int64_t outbox_failures(const outbox *ob)
{
    return ob->failures;
}

int outbox_wait(outbox *ob, int timeout_ms, int64_t since)
{
    if (rd_kafka_flush(ob->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("%d messages not acknowledged within %d ms", rd_kafka_outq_len(ob->rk), timeout_ms);
        return -1;
    }
    return ob->failures > since ? -1 : 0;
}

int outbox_check(outbox *ob, int timeout_ms, int64_t since)
{
    int in_flight = rd_kafka_flush(ob->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ob->failures > since)
        return -1;
    return in_flight ? 1 : 0;
}

void outbox_poll(outbox *ob)
{
    rd_kafka_poll(ob->rk, 0);
}
