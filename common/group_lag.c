/* group_lag: see group_lag.h. */
#define _POSIX_C_SOURCE 200809L
#include "group_lag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "kafka.h"
#include "kafka_health.h"

/* how long one wait for an admin answer lasts before the stop flag is looked at */
#define GLAG_SLICE_MS 200
/* the same for the topic's metadata; each slice is a request of its own */
#define GLAG_META_SLICE_MS 500

/* the four requests of one round, told apart by their opaque */
enum { Q_DESCRIBE, Q_COMMITTED, Q_EARLIEST, Q_LATEST, Q_COUNT };
static char glag_tags[Q_COUNT]; /* their addresses are the opaques */

void glag_default_groups(const char **worker, const char **sink)
{
    if (worker)
        *worker = cli_env(CLI_WORKER_GROUP_ENV, CLI_WORKER_GROUP);
    if (sink)
        *sink = cli_env(CLI_SINK_GROUP_ENV, CLI_SINK_GROUP);
}

void glag_free(struct glag_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->parts && i < r->n; i++) {
        free(r->parts[i].consumer_id);
        free(r->parts[i].host);
        free(r->parts[i].client_id);
    }
    free(r->parts);
    free(r->group);
    free(r->topic);
    free(r->state);
    free(r);
}

/* A report for n partitions with nothing known yet. NULL when out of memory. */
static struct glag_report *glag_report_new(const char *group, const char *topic, size_t n)
{
    struct glag_report *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->group = strdup(group);
    r->topic = strdup(topic);
    r->parts = calloc(n, sizeof *r->parts);
    r->n = n;
    if (!r->group || !r->topic || !r->parts) {
        glag_free(r);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r->parts[i] = (struct glag_partition){(int32_t)i, -1, -1, -1, -1, NULL, NULL, NULL};
    return r;
}

/* A copy of s, or NULL for NULL or "" (shown as "-", as kafka-consumer-groups does). */
static char *glag_dup(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* ---- reading the answers ---------------------------------------------------------- */

/* One round's state while the answers come in. */
struct glag_round {
    struct glag_report *r; /* borrowed */
    int rc;                /* first failure seen, GLAG_OK so far */
    char *errstr;          /* borrowed: the caller's buffer */
    size_t errlen;
};

/* Records a failure unless an earlier one is already recorded (a missing
 * group outranks a failure of another request about it). */
static void glag_fail(struct glag_round *rd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void glag_fail(struct glag_round *rd, int rc, const char *fmt, ...)
{
    va_list ap;
    if (rd->rc != GLAG_OK && !(rc == GLAG_ENOGROUP && rd->rc == GLAG_EKAFKA))
        return;
    rd->rc = rc;
    va_start(ap, fmt);
    vsnprintf(rd->errstr, rd->errlen, fmt, ap);
    va_end(ap);
}

static void glag_no_group(struct glag_round *rd)
{
    glag_fail(rd, GLAG_ENOGROUP,
              "group %s does not exist (no member has joined it and it has no committed offsets)",
              rd->r->group);
}

static void glag_read_describe(struct glag_round *rd, const rd_kafka_event_t *ev)
{
    const rd_kafka_DescribeConsumerGroups_result_t *res =
        rd_kafka_event_DescribeConsumerGroups_result((rd_kafka_event_t *)ev);
    const rd_kafka_ConsumerGroupDescription_t **groups;
    const rd_kafka_error_t *gerr;
    size_t cnt = 0;
    struct glag_report *r = rd->r;

    groups = res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &cnt) : NULL;
    if (cnt != 1) {
        glag_fail(rd, GLAG_EKAFKA, "describing group %s: no answer for it", r->group);
        return;
    }
    if ((gerr = rd_kafka_ConsumerGroupDescription_error(groups[0]))) {
        if (rd_kafka_error_code(gerr) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
            glag_no_group(rd);
        else
            glag_fail(rd, GLAG_EKAFKA, "describing group %s: %s", r->group,
                      rd_kafka_error_string(gerr));
        return;
    }
    rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(groups[0]);
    if (st == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        glag_no_group(rd);
        return;
    }
    if (!(r->state = strdup(rd_kafka_consumer_group_state_name(st)))) {
        glag_fail(rd, GLAG_ENOMEM, "out of memory");
        return;
    }
    r->members = (int)rd_kafka_ConsumerGroupDescription_member_count(groups[0]);
    for (int m = 0; m < r->members; m++) {
        const rd_kafka_MemberDescription_t *mem =
            rd_kafka_ConsumerGroupDescription_member(groups[0], (size_t)m);
        const rd_kafka_MemberAssignment_t *as = rd_kafka_MemberDescription_assignment(mem);
        const rd_kafka_topic_partition_list_t *tp = as ? rd_kafka_MemberAssignment_partitions(as)
                                                       : NULL;
        for (int i = 0; tp && i < tp->cnt; i++) {
            struct glag_partition *p;
            if (strcmp(tp->elems[i].topic, r->topic) != 0 || tp->elems[i].partition < 0 ||
                (size_t)tp->elems[i].partition >= r->n)
                continue;
            p = &r->parts[tp->elems[i].partition];
            if (p->consumer_id)
                continue; /* two owners mid-rebalance: the first one */
            p->consumer_id = glag_dup(rd_kafka_MemberDescription_consumer_id(mem));
            p->host = glag_dup(rd_kafka_MemberDescription_host(mem));
            p->client_id = glag_dup(rd_kafka_MemberDescription_client_id(mem));
        }
    }
}

static void glag_read_committed(struct glag_round *rd, const rd_kafka_event_t *ev)
{
    const rd_kafka_ListConsumerGroupOffsets_result_t *res =
        rd_kafka_event_ListConsumerGroupOffsets_result((rd_kafka_event_t *)ev);
    const rd_kafka_group_result_t **groups;
    const rd_kafka_topic_partition_list_t *tp;
    const rd_kafka_error_t *gerr;
    size_t cnt = 0;
    struct glag_report *r = rd->r;

    groups = res ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &cnt) : NULL;
    if (cnt != 1) {
        glag_fail(rd, GLAG_EKAFKA, "committed offsets of group %s: no answer for it", r->group);
        return;
    }
    if ((gerr = rd_kafka_group_result_error(groups[0]))) {
        if (rd_kafka_error_code(gerr) == RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND)
            glag_no_group(rd);
        else
            glag_fail(rd, GLAG_EKAFKA, "committed offsets of group %s: %s", r->group,
                      rd_kafka_error_string(gerr));
        return;
    }
    tp = rd_kafka_group_result_partitions(groups[0]);
    for (int i = 0; tp && i < tp->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &tp->elems[i];
        if (strcmp(e->topic, r->topic) != 0 || e->partition < 0 || (size_t)e->partition >= r->n)
            continue;
        if (e->err) {
            glag_fail(rd, GLAG_EKAFKA, "committed offsets of group %s: %s", r->group,
                      rd_kafka_err2str(e->err));
            return;
        }
        r->parts[e->partition].committed = e->offset >= 0 ? e->offset : -1;
    }
}

static void glag_read_offsets(struct glag_round *rd, const rd_kafka_event_t *ev, int latest)
{
    const rd_kafka_ListOffsets_result_t *res =
        rd_kafka_event_ListOffsets_result((rd_kafka_event_t *)ev);
    const rd_kafka_ListOffsetsResultInfo_t **infos;
    size_t cnt = 0;
    struct glag_report *r = rd->r;

    infos = res ? rd_kafka_ListOffsets_result_infos(res, &cnt) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        const rd_kafka_topic_partition_t *e = rd_kafka_ListOffsetsResultInfo_topic_partition(infos[i]);
        if (strcmp(e->topic, r->topic) != 0 || e->partition < 0 || (size_t)e->partition >= r->n)
            continue;
        if (e->err) {
            glag_fail(rd, GLAG_EKAFKA, "offsets of topic %s: %s", r->topic,
                      rd_kafka_err2str(e->err));
            return;
        }
        if (latest)
            r->parts[e->partition].end = e->offset;
        else
            r->parts[e->partition].start = e->offset;
    }
}

/* ---- asking ---------------------------------------------------------------------- */

/* partitions 0..n-1 of topic, each with offset `spec`; NULL when out of memory */
static rd_kafka_topic_partition_list_t *glag_partitions(const char *topic, size_t n, int64_t spec)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; l && i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, (int32_t)i)->offset = spec;
    return l;
}

rd_kafka_t *glag_client_new(const char *brokers, const kprops *props, const char *client_id,
                            char *errstr, size_t errlen)
{
    const char *const defaults[] = {"client.id", client_id, "group.id", GLAG_CLIENT_GROUP,
                                    "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, defaults, props, errstr, errlen);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen) : NULL;
    if (!rk && conf)
        rd_kafka_conf_destroy(conf); /* rd_kafka_new failed: still ours */
    return rk; /* rd_kafka_new() owns conf now */
}

static int64_t glag_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sends the four requests on q and reads their answers into rd. */
static void glag_round_run(rd_kafka_t *rk, rd_kafka_queue_t *q, struct glag_round *rd,
                           int timeout_ms)
{
    struct glag_report *r = rd->r;
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_topic_partition_list_t *parts = glag_partitions(r->topic, r->n, 0);
    rd_kafka_topic_partition_list_t *early = glag_partitions(r->topic, r->n, RD_KAFKA_OFFSET_SPEC_EARLIEST);
    rd_kafka_topic_partition_list_t *late = glag_partitions(r->topic, r->n, RD_KAFKA_OFFSET_SPEC_LATEST);
    rd_kafka_ListConsumerGroupOffsets_t *lcgo = parts ? rd_kafka_ListConsumerGroupOffsets_new(r->group, parts)
                                                      : NULL;
    const char *groups[1] = {r->group};
    char err[256];
    int pending = 0, got[Q_COUNT] = {0};
    int64_t deadline;

    if (!opt || !parts || !early || !late || !lcgo) {
        glag_fail(rd, GLAG_ENOMEM, "out of memory");
        goto done;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, sizeof err)) {
        glag_fail(rd, GLAG_EKAFKA, "admin request timeout: %s", err);
        goto done;
    }
    /* the options are copied by each call: the opaque tells the answers apart */
    rd_kafka_AdminOptions_set_opaque(opt, &glag_tags[Q_DESCRIBE]);
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, opt, q);
    rd_kafka_AdminOptions_set_opaque(opt, &glag_tags[Q_COMMITTED]);
    rd_kafka_ListConsumerGroupOffsets(rk, &lcgo, 1, opt, q);
    rd_kafka_AdminOptions_set_opaque(opt, &glag_tags[Q_EARLIEST]);
    rd_kafka_ListOffsets(rk, early, opt, q);
    rd_kafka_AdminOptions_set_opaque(opt, &glag_tags[Q_LATEST]);
    rd_kafka_ListOffsets(rk, late, opt, q);
    pending = Q_COUNT;

    /* each request ends by itself after timeout_ms; the margin is for the
     * queue. Waited for in slices, so that a stop signal (a web server
     * asked to stop while Kafka is down) ends the wait within one: the
     * unanswered requests then end on their own, or with the client. */
    deadline = glag_now_ms() + timeout_ms + 2000;
    while (pending > 0) {
        int64_t left = deadline - glag_now_ms();
        rd_kafka_event_t *ev =
            left > 0 ? rd_kafka_queue_poll(q, (int)(left < GLAG_SLICE_MS ? left : GLAG_SLICE_MS))
                     : NULL;
        void *tag;
        int which;
        if (!ev && left > 0 && !cli_stop_requested)
            continue;
        if (!ev) {
            if (cli_stop_requested)
                glag_fail(rd, GLAG_EKAFKA, "stopping");
            else
                glag_fail(rd, GLAG_EKAFKA, "Kafka did not answer about group %s within %d ms",
                          r->group, timeout_ms + 2000);
            break;
        }
        tag = rd_kafka_event_opaque(ev);
        which = tag ? (int)((char *)tag - glag_tags) : -1;
        if (which < 0 || which >= Q_COUNT || got[which]) {
            rd_kafka_event_destroy(ev); /* not ours: cannot happen on a private queue */
            continue;
        }
        got[which] = 1;
        pending--;
        if (rd_kafka_event_error(ev)) {
            /* the request as a whole failed: timed out, broker down, not allowed */
            glag_fail(rd, GLAG_EKAFKA, "%s %s: %s",
                      which == Q_DESCRIBE    ? "describing group"
                      : which == Q_COMMITTED ? "committed offsets of group"
                                             : "offsets of topic",
                      which >= Q_EARLIEST ? r->topic : r->group, rd_kafka_event_error_string(ev));
        } else if (which == Q_DESCRIBE) {
            glag_read_describe(rd, ev);
        } else if (which == Q_COMMITTED) {
            glag_read_committed(rd, ev);
        } else {
            glag_read_offsets(rd, ev, which == Q_LATEST);
        }
        rd_kafka_event_destroy(ev);
    }
done:
    if (lcgo)
        rd_kafka_ListConsumerGroupOffsets_destroy(lcgo);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (early)
        rd_kafka_topic_partition_list_destroy(early);
    if (late)
        rd_kafka_topic_partition_list_destroy(late);
    if (opt)
        rd_kafka_AdminOptions_destroy(opt);
}

/* Lag and totals from what the round learned. */
static void glag_sum(struct glag_report *r)
{
    r->total_lag = 0;
    r->uncommitted = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct glag_partition *p = &r->parts[i];
        if (p->committed >= 0) {
            /* a commit past the end (a truncated topic) is no negative lag */
            p->lag = p->end > p->committed ? p->end - p->committed : 0;
            r->total_lag += p->lag;
        } else {
            p->lag = -1;
            r->uncommitted++;
            if (p->end > p->start && p->start >= 0)
                r->total_lag += p->end - p->start;
        }
    }
}

/* The topic's partition count (kafka_topic_partitions), asked in slices
 * until timeout_ms or a stop signal: with Kafka down one question would
 * otherwise hold a stopping web server for all of timeout_ms. */
static int glag_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    int64_t deadline = glag_now_ms() + timeout_ms;
    for (;;) {
        int64_t t0 = glag_now_ms(), left = deadline - t0, slice;
        int n = kafka_topic_partitions(rk, topic, (int)(left < GLAG_META_SLICE_MS ? left
                                                                               : GLAG_META_SLICE_MS));
        if (n >= 0 || cli_stop_requested || glag_now_ms() >= deadline)
            return n;
        slice = GLAG_META_SLICE_MS - (glag_now_ms() - t0); /* a quick refusal: no busy loop */
        if (slice > 0) {
            struct timespec t = {0, (long)slice * 1000000};
            nanosleep(&t, NULL);
        }
    }
}

int glag_query(rd_kafka_t *rk, const char *group, const char *topic, int timeout_ms,
               struct glag_report **out, char *errstr, size_t errlen)
{
    struct glag_round rd = {NULL, GLAG_OK, errstr, errlen};
    rd_kafka_queue_t *q = NULL;
    char why[512];
    int n;

    *out = NULL;
    errstr[0] = '\0';
    n = glag_partition_count(rk, topic, timeout_ms);
    if (n < 0 && cli_stop_requested) {
        snprintf(errstr, errlen, "stopping");
        return GLAG_EKAFKA;
    }
    if (n < 0) {
        if (kafka_health_unreachable(why, sizeof why))
            snprintf(errstr, errlen, "cannot reach Kafka at %s", why);
        else
            snprintf(errstr, errlen, "Kafka did not answer within %d ms", timeout_ms);
        return GLAG_EKAFKA;
    }
    if (n == 0) {
        snprintf(errstr, errlen, "topic %s does not exist", topic);
        return GLAG_ENOTOPIC;
    }
    if (!(rd.r = glag_report_new(group, topic, (size_t)n)) || !(q = rd_kafka_queue_new(rk))) {
        glag_free(rd.r);
        snprintf(errstr, errlen, "out of memory");
        return GLAG_ENOMEM;
    }
    glag_round_run(rk, q, &rd, timeout_ms);
    rd_kafka_queue_destroy(q);
    if (rd.rc == GLAG_OK && !rd.r->state)
        glag_fail(&rd, GLAG_EKAFKA, "describing group %s: no answer", group);
    if (rd.rc != GLAG_OK) {
        glag_free(rd.r);
        return rd.rc;
    }
    glag_sum(rd.r);
    *out = rd.r;
    return GLAG_OK;
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *glag_json_offset(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *glag_json_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *glag_json(const struct glag_report *r)
{
    json_t *o = json_object(), *parts = json_array();
    int bad = !o || !parts;

    for (size_t i = 0; !bad && i < r->n; i++) {
        const struct glag_partition *p = &r->parts[i];
        json_t *e = json_object();
        bad |= !e;
        bad |= json_object_set_new(e, "partition", json_integer(p->partition));
        bad |= json_object_set_new(e, "currentOffset", glag_json_offset(p->committed));
        bad |= json_object_set_new(e, "logStartOffset", glag_json_offset(p->start));
        bad |= json_object_set_new(e, "logEndOffset", glag_json_offset(p->end));
        bad |= json_object_set_new(e, "lag", glag_json_offset(p->lag));
        bad |= json_object_set_new(e, "consumerId", glag_json_str(p->consumer_id));
        bad |= json_object_set_new(e, "host", glag_json_str(p->host));
        bad |= json_object_set_new(e, "clientId", glag_json_str(p->client_id));
        bad |= json_array_append_new(parts, e); /* steals e, NULL-safe */
    }
    if (!bad) {
        bad |= json_object_set_new(o, "group", json_string(r->group));
        bad |= json_object_set_new(o, "topic", json_string(r->topic));
        bad |= json_object_set_new(o, "state", glag_json_str(r->state));
        bad |= json_object_set_new(o, "members", json_integer(r->members));
        bad |= json_object_set_new(o, "totalLag", json_integer((json_int_t)r->total_lag));
        bad |= json_object_set_new(o, "uncommittedPartitions",
                                   json_integer((json_int_t)r->uncommitted));
        bad |= json_object_set_new(o, "partitions", parts);
        parts = NULL; /* o owns it now, even when the set failed */
    }
    json_decref(parts);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *glag_json_error(const char *group, const char *topic, int rc, const char *errstr)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "group", group, "topic", topic, "error", errstr);
    if (o && rc == GLAG_ENOGROUP && json_object_set_new(o, "exists", json_false())) {
        json_decref(o);
        return NULL;
    }
    return o;
}
