/* kafka: see kafka.h. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct kprops {
    char **keys;   /* owned */
    char **values; /* owned */
    size_t n;
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
        free(kp->keys[i]);
        free(kp->values[i]);
    }
    free(kp->keys);
    free(kp->values);
    free(kp);
}

int kprops_add(kprops *kp, const char *kv, char *errstr, size_t errlen)
{
    const char *eq = strchr(kv, '=');
    char **keys, **values, *k, *v;

    if (!eq || eq == kv) {
        snprintf(errstr, errlen, "expected -X key=value, got '%s'", kv);
        return -1;
    }
    keys = realloc(kp->keys, (kp->n + 1) * sizeof *keys);
    if (keys)
        kp->keys = keys;
    values = keys ? realloc(kp->values, (kp->n + 1) * sizeof *values) : NULL;
    if (values)
        kp->values = values;
    k = strndup(kv, (size_t)(eq - kv));
    v = strdup(eq + 1);
    if (!keys || !values || !k || !v) {
        free(k);
        free(v);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    kp->keys[kp->n] = k;
    kp->values[kp->n] = v;
    kp->n++;
    return 0;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int ours = level <= 3 ? LOGL_ERROR : level == 4 ? LOGL_WARN : level <= 6 ? LOGL_INFO : LOGL_DEBUG;
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

rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                const kprops *user, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (kafka_set(conf, defaults[i], defaults[i + 1], errstr, errlen))
            goto fail;
    if (kafka_set(conf, "bootstrap.servers", bootstrap, errstr, errlen))
        goto fail;
    for (size_t i = 0; user && i < user->n; i++)
        if (kafka_set(conf, user->keys[i], user->values[i], errstr, errlen))
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

/* 1 if the cluster's metadata lists every topic with its partitions, so
 * there is nothing to create (one metadata request instead of a
 * CreateTopics round trip through the controller); 0 otherwise. The
 * request also teaches the client the topics' leaders. */
static int kafka_topics_exist(rd_kafka_t *rk, const struct kafka_topic *topics, size_t n,
                              int timeout_ms)
{
    rd_kafka_topic_t **rkt = calloc(n, sizeof *rkt);
    const struct rd_kafka_metadata *md = NULL;
    size_t found = 0;

    for (size_t i = 0; rkt && i < n; i++)
        if (!(rkt[i] = rd_kafka_topic_new(rk, topics[i].name, NULL)))
            goto done;
    /* all_topics=0 and no topic: the topics this client knows, i.e. these */
    if (!rkt || rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto done;
    for (size_t i = 0; i < n; i++)
        for (int t = 0; t < md->topic_cnt; t++)
            if (strcmp(md->topics[t].topic, topics[i].name) == 0 && !md->topics[t].err &&
                md->topics[t].partition_cnt > 0) {
                found++;
                break;
            }
done:
    if (md)
        rd_kafka_metadata_destroy(md);
    for (size_t i = 0; rkt && i < n; i++)
        if (rkt[i])
            rd_kafka_topic_destroy(rkt[i]);
    free(rkt);
    return found == n;
}

int kafka_ensure_topics(rd_kafka_t *rk, const struct kafka_topic *topics, size_t n, int timeout_ms,
                        char *errstr, size_t errlen)
{
    rd_kafka_NewTopic_t **nt = calloc(n, sizeof *nt);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    char err[512];
    int rc = -1;

    if (!nt || !q || !opts) {
        snprintf(errstr, errlen, "out of memory");
        goto done;
    }
    if (kafka_topics_exist(rk, topics, n, timeout_ms)) {
        rc = 0;
        goto done;
    }
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof err);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof err);
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions, -1, err, sizeof err);
        if (!nt[i]) {
            snprintf(errstr, errlen, "topic %s: %s", topics[i].name, err);
            goto done;
        }
    }
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
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
    for (size_t i = 0; nt && i < n; i++)
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
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
