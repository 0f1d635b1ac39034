/* outbox: see outbox.h. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct outbox {
    rd_kafka_t *rk;     /* owned */
    int64_t failures;   /* deliveries failed since the last outbox_wait */
};

static void outbox_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    outbox *ob = opaque; /* borrowed */
    (void)rk;
    if (m->err) {
        ob->failures++;
        log_warn("delivery to %s failed: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }
}

outbox *outbox_new(const struct cli_common *c, char *errstr, size_t errlen)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "2",
        "message.max.bytes", "2000000", "compression.type", "lz4",
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

static int outbox_produce(outbox *ob, const char *topic, const char *key, size_t keylen,
                          const void *value, size_t len, rd_kafka_headers_t *hdrs)
{
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(ob->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
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
    return outbox_produce(ob, topic, key, strlen(key), value, strlen(value), hdrs);
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
    return outbox_produce(ob, dlq_topic, orig->key ? orig->key : "", orig->key ? orig->key_len : 0,
                          orig->payload, orig->len, hdrs);
}

int outbox_wait(outbox *ob, int timeout_ms)
{
    int rc;
    if (rd_kafka_flush(ob->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("%d messages not acknowledged within %d ms", rd_kafka_outq_len(ob->rk), timeout_ms);
        ob->failures++;
    }
    rc = ob->failures ? -1 : 0;
    ob->failures = 0;
    return rc;
}

void outbox_poll(outbox *ob)
{
    rd_kafka_poll(ob->rk, 0);
}
