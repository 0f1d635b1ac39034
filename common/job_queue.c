/* job_queue: see job_queue.h. */
#include "job_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"

#define JQ_DELIVERY_TIMEOUT_MS_STR "60000" /* see JQ_DELIVERY_TIMEOUT_MS */

struct job_queue {
    rd_kafka_t *rk;
    rd_kafka_topic_t *targets[2]; /* jobs, control: held so librdkafka keeps their leaders */
    const struct cli_common *c;   /* borrowed */
    pthread_t poller;
    int poller_started;
    volatile int stopping;        /* under lock */
    pthread_mutex_t lock;         /* guards every jq_result and `stopping` */
    pthread_cond_t answered;
};

/* One jq_send call's messages: the delivery callback counts down. */
struct jq_batch {
    job_queue *q;            /* borrowed */
    struct jq_result *res;   /* borrowed */
    size_t pending;
};

struct jq_msg {
    struct jq_batch *batch; /* borrowed */
    size_t i;
};

static void jq_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct jq_msg *msg = m->_private; /* owned by the sender until pending hits 0 */
    struct jq_batch *b = msg->batch;
    struct jq_result *r = &b->res[msg->i];
    (void)rk;
    (void)opaque;
    pthread_mutex_lock(&b->q->lock);
    if (m->err) {
        r->done = -1;
        r->error = rd_kafka_err2str(m->err);
    } else {
        r->done = 1;
        r->partition = m->partition;
        r->offset = m->offset;
    }
    b->pending--;
    pthread_cond_broadcast(&b->q->answered);
    pthread_mutex_unlock(&b->q->lock);
}

static void *jq_poll_loop(void *arg)
{
    job_queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        int stop = q->stopping;
        pthread_mutex_unlock(&q->lock);
        if (stop)
            return NULL;
        rd_kafka_poll(q->rk, 100);
    }
}

job_queue *jq_new(const struct cli_common *c, const char *client_id, char *errstr, size_t errlen)
{
    const char *defaults[] = {"enable.idempotence", "true", "acks", "all", "linger.ms", "5",
                              "message.timeout.ms", JQ_DELIVERY_TIMEOUT_MS_STR,
                              "client.id", client_id, NULL};
    job_queue *q = calloc(1, sizeof *q);
    rd_kafka_conf_t *conf;
    if (!q) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    q->c = c;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->answered, NULL);
    conf = kafka_conf_new(c->brokers, defaults, c->props, errstr, errlen);
    if (!conf) {
        jq_free(q);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, jq_on_delivery);
    q->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen);
    if (!q->rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new failed: still ours */
        jq_free(q);
        return NULL;
    }
    if (pthread_create(&q->poller, NULL, jq_poll_loop, q) != 0) {
        snprintf(errstr, errlen, "cannot start the delivery thread: %s", strerror(errno));
        jq_free(q);
        return NULL;
    }
    q->poller_started = 1;
    return q;
}

void jq_free(job_queue *q)
{
    if (!q)
        return;
    if (q->rk && rd_kafka_flush(q->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("%d messages still unacknowledged at shutdown", rd_kafka_outq_len(q->rk));
    if (q->poller_started) {
        pthread_mutex_lock(&q->lock);
        q->stopping = 1;
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->poller, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (q->targets[i])
            rd_kafka_topic_destroy(q->targets[i]);
    if (q->rk)
        rd_kafka_destroy(q->rk);
    pthread_cond_destroy(&q->answered);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int jq_prepare(job_queue *q, int timeout_ms, const char *consequence, char *errstr,
               size_t errlen)
{
    struct kafka_topic topics[CLI_NTOPICS];
    char warning[768];
    if (kafka_ensure_topics(q->rk, topics, cli_topics(q->c, topics), timeout_ms, errstr, errlen))
        return -1;
    for (size_t i = 0; i < CLI_NTOPICS; i++)
        if (kafka_topic_shortfall(&topics[i], q->c->brokers, consequence, warning, sizeof warning))
            log_warn("%s", warning);
    /* a topic handle dropped right away makes librdkafka forget the
     * leaders, and the first messages queue unpartitioned */
    q->targets[0] = rd_kafka_topic_new(q->rk, q->c->jobs_topic, NULL);
    q->targets[1] = rd_kafka_topic_new(q->rk, q->c->control_topic, NULL);
    kafka_warm_topic(q->rk, q->c->jobs_topic, 5000);
    kafka_warm_topic(q->rk, q->c->control_topic, 5000);
    return 0;
}

rd_kafka_t *jq_handle(job_queue *q)
{
    return q->rk;
}

size_t jq_send(job_queue *q, const struct job *jobs, size_t n, int cancel,
               struct jq_result *res)
{
    struct jq_batch b = {q, res, 0};
    struct jq_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    const char *topic = cancel ? q->c->control_topic : q->c->jobs_topic;
    /* a variable, not the ?: itself: RD_KAFKA_V_HEADER casts its argument
     * unparenthesised, and the cast would bind to `cancel` alone */
    const char *event = cancel ? EVENT_CANCEL : EVENT_JOB;
    size_t failed = 0;

    memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++) {
        char *value = !msgs ? NULL
                      : cancel ? cancel_encode(jobs[i].owner, jobs[i].name)
                               : job_encode(&jobs[i]);
        rd_kafka_resp_err_t err;
        if (!value) {
            res[i].done = -1;
            res[i].error = "out of memory";
            continue;
        }
        msgs[i] = (struct jq_msg){&b, i};
        pthread_mutex_lock(&q->lock);
        b.pending++; /* before producev: the report may come before it returns */
        pthread_mutex_unlock(&q->lock);
        do {
            err = rd_kafka_producev(
                q->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(jobs[i].key, strlen(jobs[i].key)),
                RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_HEADER("event", event, -1),
                RD_KAFKA_V_OPAQUE(&msgs[i]), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                struct timespec pause = {0, 20 * 1000000}; /* the poller drains it */
                nanosleep(&pause, NULL);
            }
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
            free(value); /* not enqueued: still ours */
            pthread_mutex_lock(&q->lock);
            b.pending--;
            res[i].done = -1;
            res[i].error = rd_kafka_err2str(err);
            pthread_mutex_unlock(&q->lock);
        }
    }
    pthread_mutex_lock(&q->lock);
    while (b.pending > 0) /* bounded by message.timeout.ms */
        pthread_cond_wait(&q->answered, &q->lock);
    for (size_t i = 0; i < n; i++)
        failed += res[i].done != 1;
    pthread_mutex_unlock(&q->lock);
    free(msgs);
    return failed;
}
