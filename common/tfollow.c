/* tfollow: see tfollow.h.
 *
 * librdkafka's simple (legacy) consumer, as kcat uses it without -G: no
 * group.id, so there is no group coordinator, no membership, no rebalance
 * and nothing that could be committed (rd_kafka_assign would need a
 * group). Every partition is started with rd_kafka_consume_start_queue
 * onto one queue, which serves messages and EOF events; rd_kafka_poll on
 * the handle serves error callbacks. */
#include "tfollow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "kafka_health.h"
#include "log.h"

#define TFOLLOW_METADATA_TRIES 20

struct tfollow {
    rd_kafka_t *rk;              /* owned */
    rd_kafka_topic_t *rkt;       /* owned */
    rd_kafka_queue_t *q;         /* owned: every partition's messages */
    int started;                 /* partitions [0, started) were started */
    rd_kafka_message_t *held;    /* owned: the message last handed out */
    const char *topic;           /* borrowed */
    int np;                      /* partitions followed */
    unsigned char *eof_seen;     /* owned, np: EOF reported at least once */
    unsigned char *eof_now;      /* owned, np: no message since the last EOF */
    int seen_count, now_count;
};

static rd_kafka_t *make_consumer(const struct cli_common *c, const char *client_id, char *errstr,
                                 size_t errlen)
{
    const char *const defaults[] = {"client.id", client_id,
                                           "enable.partition.eof", "true",
                                           "enable.auto.commit", "false",
                                           "enable.auto.offset.store", "false",
                                           "auto.offset.reset", "earliest",
                                           NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(c->brokers, defaults, c->props, errstr, errlen);
    rd_kafka_t *rk;
    char err[512];

    if (!conf)
        return NULL;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new failed: still ours */
        snprintf(errstr, errlen, "cannot create the Kafka consumer: %s", err);
        return NULL;
    }
    return rk; /* rd_kafka_new owns conf now */
}

/* 1 when every partition has a leader (a fresh topic's are still being
 * elected for a moment, and reading them would fail). */
static int all_led(const rd_kafka_metadata_topic_t *t)
{
    for (int i = 0; i < t->partition_cnt; i++)
        if (t->partitions[i].err || t->partitions[i].leader < 0)
            return 0;
    return 1;
}

/* Partition count of the topic from metadata, retried while the topic is
 * still unknown (just created). Returns >0, or -1 with a reason. */
static int partition_count(rd_kafka_t *rk, const char *topic, char *errstr, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int n = -1;

    if (!rkt) {
        snprintf(errstr, errlen, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    for (int i = 0; i < TFOLLOW_METADATA_TRIES && n < 0; i++) {
        err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0 &&
            all_led(&md->topics[0]))
            n = md->topics[0].partition_cnt;
        else if (!err)
            err = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                  : md->topics[0].err ? md->topics[0].err
                                      : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
        if (md)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        if (n < 0 && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
            err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE && err != RD_KAFKA_RESP_ERR__TRANSPORT &&
            err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            break;
        if (n < 0)
            rd_kafka_poll(rk, 250);
    }
    rd_kafka_topic_destroy(rkt);
    if (n < 0)
        snprintf(errstr, errlen, "no metadata for topic %s: %s", topic, rd_kafka_err2str(err));
    return n;
}

/* The end offset of every partition, in one ListOffsets round (timestamp
 * -1 asks for the latest offset), retried while a fresh topic's leaders
 * settle. Fills ends[0..np). */
static rd_kafka_resp_err_t end_offsets(tfollow *f, int64_t *ends)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__NO_OFFSET;
    for (int i = 0; i < 60 && err; i++) {
        rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(f->np);
        if (!tp)
            return RD_KAFKA_RESP_ERR__FAIL; /* out of memory */
        for (int p = 0; p < f->np; p++)
            rd_kafka_topic_partition_list_add(tp, f->topic, p)->offset = -1;
        err = rd_kafka_offsets_for_times(f->rk, tp, 5000);
        for (int p = 0; !err && p < tp->cnt; p++) {
            const rd_kafka_topic_partition_t *e = &tp->elems[p];
            if (e->err)
                err = e->err;
            else if (e->partition >= 0 && e->partition < f->np && e->offset >= 0)
                ends[e->partition] = e->offset;
            else
                err = RD_KAFKA_RESP_ERR__NO_OFFSET;
        }
        rd_kafka_topic_partition_list_destroy(tp);
        if (err) {
            log_debug("end offsets of %s: %s; retrying", f->topic, rd_kafka_err2str(err));
            rd_kafka_poll(f->rk, 250);
        }
    }
    return err;
}

static int start_all(tfollow *f, int from_beginning, char *errstr, size_t errlen)
{
    int64_t *ends = calloc((size_t)f->np, sizeof *ends); /* owned */
    rd_kafka_resp_err_t err;
    int rc = -1;

    if (!ends) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    f->rkt = rd_kafka_topic_new(f->rk, f->topic, NULL);
    f->q = f->rkt ? rd_kafka_queue_new(f->rk) : NULL;
    if (!f->rkt || !f->q) {
        snprintf(errstr, errlen, "topic %s: %s", f->topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto done;
    }
    /* "From the end" means after what the topic holds now: resolve it
     * before returning, or events produced right after the start could
     * land before a lazily resolved logical END and be skipped. */
    if (!from_beginning && (err = end_offsets(f, ends))) {
        snprintf(errstr, errlen, "end offsets of %s: %s", f->topic, rd_kafka_err2str(err));
        goto done;
    }
    for (; f->started < f->np; f->started++) {
        int64_t offset = from_beginning ? RD_KAFKA_OFFSET_BEGINNING : ends[f->started];
        if (rd_kafka_consume_start_queue(f->rkt, f->started, offset, f->q) == -1) {
            snprintf(errstr, errlen, "reading %s [%d]: %s", f->topic, f->started,
                     rd_kafka_err2str(rd_kafka_last_error()));
            goto done;
        }
    }
    rc = 0;
done:
    free(ends);
    return rc;
}

tfollow *tfollow_new(const struct cli_common *c, const struct tfollow_spec *spec, char *errstr,
                     size_t errlen)
{
    tfollow *f = calloc(1, sizeof *f);
    const char *topic = spec->topic;
    int from_beginning = spec->from_beginning;
    struct kafka_topic want = {topic, spec->partitions, 0};
    char err[512];

    if (!f) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    f->topic = topic;
    if (!(f->rk = make_consumer(c, spec->client_id, errstr, errlen)))
        goto fail;
    if (kafka_ensure_topics(f->rk, &want, 1, 10000, err, sizeof err)) {
        if (kafka_health_unreachable(NULL, 0)) {
            snprintf(errstr, errlen, "%s", err);
            goto fail;
        }
        log_warn("%s; reading the topic anyway", err);
    }
    if ((f->np = partition_count(f->rk, topic, errstr, errlen)) < 0)
        goto fail;
    f->eof_seen = calloc((size_t)f->np, 1);
    f->eof_now = calloc((size_t)f->np, 1);
    if (!f->eof_seen || !f->eof_now) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    if (start_all(f, from_beginning, errstr, errlen))
        goto fail;
    log_info("following %s: %d partitions from the %s, no consumer group", topic, f->np,
             from_beginning ? "beginning" : "end");
    return f;
fail:
    tfollow_free(f);
    return NULL;
}

static void mark_eof(tfollow *f, int32_t p, int at_end)
{
    if (p < 0 || p >= f->np)
        return;
    if (at_end && !f->eof_seen[p]) {
        f->eof_seen[p] = 1;
        f->seen_count++;
    }
    if (at_end != f->eof_now[p]) {
        f->eof_now[p] = (unsigned char)at_end;
        f->now_count += at_end ? 1 : -1;
    }
}

enum tfollow_result tfollow_next(tfollow *f, int timeout_ms, struct tfollow_msg *m, char *errstr,
                                 size_t errlen)
{
    rd_kafka_message_t *rkm;
    rd_kafka_timestamp_type_t tstype;

    if (f->held) {
        rd_kafka_message_destroy(f->held);
        f->held = NULL;
    }
    rd_kafka_poll(f->rk, 0); /* error and statistics callbacks */
    if (!(rkm = rd_kafka_consume_queue(f->q, timeout_ms)))
        return TF_IDLE;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        mark_eof(f, rkm->partition, 1);
        rd_kafka_message_destroy(rkm);
        return TF_EOF;
    }
    if (rkm->err) {
        enum tfollow_result r = TF_IDLE;
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            char reason[512];
            rd_kafka_fatal_error(f->rk, reason, sizeof reason);
            snprintf(errstr, errlen, "fatal Kafka error: %s", reason);
            r = TF_FATAL;
        } else {
            log_warn("reading %s: %s; retrying", f->topic, rd_kafka_message_errstr(rkm));
        }
        rd_kafka_message_destroy(rkm);
        return r;
    }
    mark_eof(f, rkm->partition, 0);
    f->held = rkm;
    m->value = rkm->payload;
    m->len = rkm->payload ? rkm->len : 0;
    m->key = rkm->key;
    m->key_len = rkm->key ? rkm->key_len : 0;
    if (kafka_header_get(rkm, "event", m->event, sizeof m->event))
        m->event[0] = '\0';
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    return TF_MSG;
}

int tfollow_caught_up(const tfollow *f)
{
    return f->seen_count == f->np;
}

int tfollow_at_end(const tfollow *f)
{
    return f->now_count == f->np;
}

int tfollow_partitions(const tfollow *f)
{
    return f->np;
}

void tfollow_free(tfollow *f)
{
    if (!f)
        return;
    if (f->held)
        rd_kafka_message_destroy(f->held);
    while (f->started > 0)
        rd_kafka_consume_stop(f->rkt, --f->started);
    if (f->q)
        rd_kafka_queue_destroy(f->q);
    if (f->rkt)
        rd_kafka_topic_destroy(f->rkt);
    if (f->rk)
        rd_kafka_destroy(f->rk);
    free(f->eof_seen);
    free(f->eof_now);
    free(f);
}
