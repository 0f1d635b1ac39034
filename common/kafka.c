/* kafka: see kafka.h. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynbuf.h"
#include "isotime.h"
#include "kafka_health.h"
#include "log.h"

struct kprop {
    char *key;   /* owned */
    char *value; /* owned */
};

struct kprops {
    struct kprop *items; /* owned */
    size_t n, cap;
};

kprops *kprops_new(void)
{
    return calloc(1, sizeof(kprops));
}

void kprops_free(kprops *kp)
{
    if (!kp)
        return;
    for (size_t i = 0; i < kp->n; i++) {
        free(kp->items[i].key);
        free(kp->items[i].value);
    }
    free(kp->items);
    free(kp);
}

int kprops_add(kprops *kp, const char *kv, char *errstr, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    char *k, *v;

    if (!eq || eq == kv) {
        snprintf(errstr, errlen, "expected -X key=value, got '%s'", kv);
        return -1;
    }
    k = strndup(kv, (size_t)(eq - kv));
    v = strdup(eq + 1);
    if (!k || !v || dynbuf_grow_array(&kp->items, &kp->cap, kp->n + 1, sizeof *kp->items)) {
        free(k);
        free(v);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    kp->items[kp->n++] = (struct kprop){k, v};
    return 0;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int ours = level <= 3 ? LOGL_ERROR : level == 4 ? LOGL_WARN : level <= 6 ? LOGL_INFO : LOGL_DEBUG;
    /* A broker connection failing ("FAIL"): kafka_health reports it once
     * per state change instead of once per attempt. */
    if (fac && strcmp(fac, "FAIL") == 0) {
        kafka_health_broker_log(buf);
        ours = LOGL_DEBUG;
    }
    log_msg(ours, "librdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static int kafka_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
                     size_t errlen)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errlen, "Kafka property %s: %s", k, err);
        return -1;
    }
    return 0;
}

/* The group settings the broker decides under the consumer group protocol
 * (KIP-848); librdkafka refuses them there. */
static int kafka_classic_only(const char *key)
{
    return strcmp(key, "session.timeout.ms") == 0 || strcmp(key, "heartbeat.interval.ms") == 0 ||
           strcmp(key, "partition.assignment.strategy") == 0;
}

/* 1 when the defaults or the user (who wins) ask for group.protocol=consumer. */
static int kafka_consumer_protocol(const char *const *defaults, const kprops *user)
{
    const char *p = "classic";
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (strcmp(defaults[i], "group.protocol") == 0)
            p = defaults[i + 1];
    for (size_t i = 0; user && i < user->n; i++)
        if (strcmp(user->items[i].key, "group.protocol") == 0)
            p = user->items[i].value;
    return strcmp(p, "consumer") == 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                const kprops *user, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    int kip848 = kafka_consumer_protocol(defaults, user);
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (!(kip848 && kafka_classic_only(defaults[i])) &&
            kafka_set(conf, defaults[i], defaults[i + 1], errstr, errlen))
            goto fail;
    if (kafka_set(conf, "bootstrap.servers", bootstrap, errstr, errlen))
        goto fail;
    for (size_t i = 0; user && i < user->n; i++)
        if (kafka_set(conf, user->items[i].key, user->items[i].value, errstr, errlen))
            goto fail;
    if (kafka_set(conf, "allow.auto.create.topics", "false", errstr, errlen) ||
        kafka_health_install(conf, errstr, errlen))
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int kafka_check_results(rd_kafka_event_t *ev, char *errstr, size_t errlen)
{
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    const rd_kafka_topic_result_t **tr;
    size_t cnt = 0;

    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errlen, "creating topics: %s", rd_kafka_event_error_string(ev));
        return -1;
    }
    if (!res) {
        snprintf(errstr, errlen, "creating topics: unexpected admin result");
        return -1;
    }
    tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_info("created topic %s", rd_kafka_topic_result_name(tr[i]));
        } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errlen, "creating topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i]));
            return -1;
        }
    }
    return 0;
}

/* Sets each topic's `found` from one metadata request: its partition
 * count, 0 when the cluster does not have it. Returns 0, or -1 when the
 * cluster did not answer in time. The request also teaches the client the
 * topics' leaders. */
static int kafka_topics_found(rd_kafka_t *rk, struct kafka_topic *topics, size_t n, int timeout_ms)
{
    rd_kafka_topic_t **rkt = calloc(n, sizeof *rkt);
    const struct rd_kafka_metadata *md = NULL;
    int rc = -1;

    for (size_t i = 0; rkt && i < n; i++)
        if (!(rkt[i] = rd_kafka_topic_new(rk, topics[i].name, NULL)))
            goto done;
    /* all_topics=0 and no topic: the topics this client knows, i.e. these
     * (allow.auto.create.topics=false: asking never creates one) */
    if (!rkt || rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto done;
    for (size_t i = 0; i < n; i++) {
        topics[i].found = 0;
        for (int t = 0; t < md->topic_cnt; t++)
            if (strcmp(md->topics[t].topic, topics[i].name) == 0 && !md->topics[t].err)
                topics[i].found = md->topics[t].partition_cnt;
    }
    rc = 0;
done:
    if (md)
        rd_kafka_metadata_destroy(md);
    for (size_t i = 0; rkt && i < n; i++)
        if (rkt[i])
            rd_kafka_topic_destroy(rkt[i]);
    free(rkt);
    return rc;
}

/* Sends CreateTopics for the topics with found == 0. 0, or -1 + errstr. */
static int kafka_create_missing(rd_kafka_t *rk, const struct kafka_topic *topics, size_t n,
                                int timeout_ms, char *errstr, size_t errlen)
{
    rd_kafka_NewTopic_t **nt = calloc(n, sizeof *nt);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    size_t cnt = 0;
    char err[512];
    int rc = -1;

    if (!nt || !q || !opts) {
        snprintf(errstr, errlen, "out of memory");
        goto done;
    }
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof err);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof err);
    for (size_t i = 0; i < n; i++) {
        if (topics[i].found > 0)
            continue;
        nt[cnt] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions, -1, err, sizeof err);
        if (!nt[cnt]) {
            snprintf(errstr, errlen, "topic %s: %s", topics[i].name, err);
            goto done;
        }
        cnt++;
    }
    rd_kafka_CreateTopics(rk, nt, cnt, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errlen, "creating topics: no answer from the cluster within %d ms",
                 timeout_ms);
        goto done;
    }
    rc = kafka_check_results(ev, errstr, errlen);
done:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < cnt; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}

#define KAFKA_NO_ANSWER (-2) /* kafka_ensure_topics: the cluster did not answer */

static void kafka_no_answer(int timeout_ms, char *errstr, size_t errlen)
{
    char why[320];
    if (kafka_health_unreachable(why, sizeof why))
        snprintf(errstr, errlen, "cannot reach Kafka at %s", why);
    else
        snprintf(errstr, errlen, "Kafka did not answer within %d ms", timeout_ms);
}

int kafka_ensure_topics(rd_kafka_t *rk, struct kafka_topic *topics, size_t n, int timeout_ms,
                        char *errstr, size_t errlen)
{
    double deadline = isotime_mono() + timeout_ms / 1000.0;
    size_t missing = 0;

    if (kafka_topics_found(rk, topics, n, timeout_ms)) {
        kafka_no_answer(timeout_ms, errstr, errlen);
        return KAFKA_NO_ANSWER;
    }
    for (size_t i = 0; i < n; i++)
        missing += topics[i].found == 0;
    if (missing == 0)
        return 0;
    if (kafka_create_missing(rk, topics, n, timeout_ms, errstr, errlen))
        return -1;
    /* A topic just created reaches every broker's metadata a moment later. */
    for (;;) {
        int left_ms = (int)((deadline - isotime_mono()) * 1000);
        if (kafka_topics_found(rk, topics, n, left_ms > 1000 ? left_ms : 1000) == 0) {
            missing = 0;
            for (size_t i = 0; i < n; i++)
                if (topics[i].found == 0)
                    missing++;
            if (missing == 0)
                return 0;
        }
        if (isotime_mono() >= deadline)
            break;
        usleep(100 * 1000);
    }
    for (size_t i = 0; i < n; i++)
        if (topics[i].found == 0) {
            snprintf(errstr, errlen, "topic %s was created but is not in the cluster's metadata "
                     "after %d ms", topics[i].name, timeout_ms);
            break;
        }
    /* not a refusal: a busy cluster is slow to spread it; waiting callers
     * ask again (and find it, or create what is still missing) */
    return KAFKA_NO_ANSWER;
}

int kafka_ensure_topics_wait(rd_kafka_t *rk, struct kafka_topic *topics, size_t n,
                             const volatile sig_atomic_t *stop, char *errstr, size_t errlen)
{
    int said = 0, rc;
    while (!*stop) {
        rc = kafka_ensure_topics(rk, topics, n, 2000, errstr, errlen);
        if (rc != KAFKA_NO_ANSWER)
            return rc;
        if (!said++ && !kafka_health_unreachable(NULL, 0))
            log_info("waiting for Kafka: %s", errstr); /* else kafka_health said why */
    }
    return 1;
}

int kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    struct kafka_topic t = {topic, 0, 0};
    return kafka_topics_found(rk, &t, 1, timeout_ms) ? -1 : t.found;
}

int kafka_topic_shortfall(const struct kafka_topic *t, const char *bootstrap,
                          const char *consequence, char *buf, size_t buflen)
{
    if (t->found <= 0 || t->found >= t->partitions)
        return 0;
    snprintf(buf, buflen,
             "topic %s has %d partition%s, fewer than the %d configured: %s. To add partitions, "
             "while no backfill runs (a repository may then map to another partition): "
             "kafka-topics.sh --bootstrap-server %s --alter --topic %s --partitions %d",
             t->name, t->found, t->found == 1 ? "" : "s", t->partitions, consequence, bootstrap,
             t->name, t->partitions);
    return 1;
}

int kafka_warm_topic(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    if (!rkt)
        return -1;
    err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err ? -1 : 0;
}

int kafka_header_get(const rd_kafka_message_t *msg, const char *name, char *buf, size_t buflen)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t len;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !val)
        return -1;
    if (len >= buflen)
        len = buflen - 1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return 0;
}
