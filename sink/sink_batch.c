/* sink_batch: see sink_batch.h.
 *
 * Exactly once: a batch is one Postgres transaction holding the rows of
 * its events and, per partition, the offset after its last event. A crash
 * anywhere before COMMIT leaves neither; after it, both. The consumer
 * position always comes from Postgres: on assignment, and after every
 * database failure (the outcome of an interrupted COMMIT is unknown, so
 * the stored offsets are read back rather than guessed).
 *
 * Overlap: when a batch is due its writes go out without waiting
 * (pgw_commit_start) and the loop goes on consuming and decoding the next
 * batch; sink_settle learns the outcome (pgw_commit_poll sends COMMIT once
 * every statement worked) before the next batch is sent, before any other
 * use of Postgres, and at shutdown. Only then are the Kafka offsets
 * committed and the batch logged as committed. Events Postgres refuses at
 * commit come back through sink_on_skip, named by partition and offset.
 *
 * Postgres down: the batch is rolled back, every assigned partition is
 * paused (poll goes on, so the group membership stays), and reconnecting
 * is retried with exponential backoff (0.5 s doubling to 5 s). Once
 * connected and the stored offsets are read, the partitions are seeked
 * there and resumed. Messages fetched before the pause are dropped, not
 * applied: the seek brings them back. */
#include "sink_batch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynbuf.h"
#include "isotime.h"
#include "json_clean.h"
#include "kafka.h"
#include "kafka_group.h"
#include "kafka_health.h"
#include "log.h"
#include "sink_metrics.h"

#define SINK_MAX_PARTITIONS 4096
#define SINK_BACKOFF_FIRST_MS 500
#define SINK_BACKOFF_MAX_MS 5000

/* Where an event of the batch came from, to name it when Postgres refuses
 * it at commit. */
struct sink_pos {
    int32_t partition;
    int64_t offset;
    enum sm_type type; /* for the metrics, when Postgres refuses it */
};

struct sink {
    rd_kafka_t *rk;            /* owned */
    pgw *db;                   /* owned */
    struct sink_config cfg;
    int in_batch;              /* a transaction is open */
    int batch_events;
    double batch_started;
    double last_event;         /* isotime_mono() when the last message arrived */
    int64_t next[SINK_MAX_PARTITIONS]; /* per partition: next offset in this batch, -1 none */
    int64_t first[SINK_MAX_PARTITIONS]; /* per partition: first offset in this batch */
    int db_down;               /* waiting for Postgres to come back */
    int backoff_ms;
    double retry_at;
    double down_since;         /* isotime_mono() when Postgres went away */
    int64_t applied, skipped;  /* totals, for the log */
    struct sm_tally tally;     /* the open batch's events by type and outcome (metrics) */
    struct sink_pos *evpos;    /* owned: per pgw_apply call of the batch, where it came from */
    size_t nevpos, evpos_cap;
    /* the batch whose commit is in flight (pgw_commit_start) */
    rd_kafka_topic_partition_list_t *fly_offsets; /* owned: its offsets, for Kafka; or NULL */
    struct sink_pos *fly_evpos; /* owned: evpos of that batch */
    size_t fly_nevpos, fly_evpos_cap;
    int fly_events;
    struct sm_tally fly_tally; /* its events by type and outcome */
    double fly_started;        /* isotime_mono() when its writes were sent */
    char fly_ranges[1024];     /* its offsets, for the debug log */
    int settling;              /* inside pgw_commit_poll: skips are the in-flight batch's */
    struct kafka_group_hooks group_hooks; /* what the sink does around a rebalance */
    int assign_unreadable;     /* the assignment's stored offsets could not be read */
    char assign_error[512];    /* why */
    rd_kafka_topic_partition_list_t *assign_stored; /* owned: the offsets it read, or NULL */
};

static void sink_reset_batch(sink *s)
{
    s->in_batch = 0;
    s->batch_events = 0;
    s->nevpos = 0;
    memset(&s->tally, 0, sizeof s->tally);
    for (int i = 0; i < SINK_MAX_PARTITIONS; i++)
        s->next[i] = -1;
}

/* Sets each partition's offset in parts to the position stored in
 * Postgres; a partition Postgres has no row for keeps the offset it has.
 * Each offset set is also added to stored, unless that is NULL.
 * Returns 0, or -1 if Postgres could not be read (the offsets read so far
 * are set, the rest untouched; err says why). */
static int sink_offsets_from_db(sink *s, rd_kafka_topic_partition_list_t *parts,
                                rd_kafka_topic_partition_list_t *stored, char *err, size_t errlen)
{
    for (int i = 0; i < parts->cnt; i++) {
        int64_t next;
        int r = pgw_load_offsets(s->db, s->cfg.group, parts->elems[i].topic,
                                 parts->elems[i].partition, &next, err, errlen);
        if (r < 0)
            return -1;
        if (r == 0) {
            parts->elems[i].offset = next;
            if (stored)
                rd_kafka_topic_partition_list_add(stored, parts->elems[i].topic,
                                                  parts->elems[i].partition)->offset = next;
            log_debug("%s[%d]: resuming at offset %lld stored in Postgres", parts->elems[i].topic,
                      (int)parts->elems[i].partition, (long long)next);
        }
    }
    return 0;
}

/* Appends " [p] first..last" for every partition of the batch to buf. */
static void sink_describe_batch(const sink *s, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int p = 0; p < SINK_MAX_PARTITIONS && used + 1 < len; p++) {
        int n;
        if (s->next[p] < 0)
            continue;
        n = snprintf(buf + used, len - used, " [%d] %lld..%lld", p, (long long)s->first[p],
                     (long long)s->next[p] - 1);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The in-flight batch is gone (committed or not): forget it. */
static void sink_forget_fly(sink *s)
{
    if (s->fly_offsets)
        rd_kafka_topic_partition_list_destroy(s->fly_offsets);
    s->fly_offsets = NULL;
    s->fly_nevpos = 0;
    memset(&s->fly_tally, 0, sizeof s->fly_tally);
}

/* Waits (or, !wait, looks) for the outcome of the commit in flight, if
 * any. Committed: the Kafka offsets follow (a fallback position only;
 * Postgres is the truth). Returns 0 (done or nothing in flight), 1 (still
 * in flight) or PGW_EDB (not committed: the open batch is lost too). */
static int sink_settle(sink *s, int wait)
{
    char err[512];
    int rc;

    if (!pgw_commit_pending(s->db))
        return 0;
    s->settling = 1;
    rc = pgw_commit_poll(s->db, wait, err, sizeof err);
    s->settling = 0;
    if (rc == 1)
        return 1;
    if (rc == PGW_OK) {
        int64_t rows[PGW_NTABLES];
        pgw_committed_rows(s->db, rows);
        sm_batch_committed(&s->fly_tally, s->fly_events, isotime_mono() - s->fly_started, rows);
        sm_set_postgres_ok(1, NULL);
        log_debug("committed a batch of %d events: offsets%s", s->fly_events, s->fly_ranges);
        if (s->fly_offsets && s->fly_offsets->cnt > 0)
            rd_kafka_commit(s->rk, s->fly_offsets, 1);
    } else {
        log_warn("batch of %d events not committed: %s", s->fly_events, err);
    }
    sink_forget_fly(s);
    return rc;
}

/* The open batch's event positions become the in-flight batch's. */
static void sink_evpos_to_fly(sink *s)
{
    struct sink_pos *t = s->fly_evpos;
    size_t cap = s->fly_evpos_cap;

    s->fly_evpos = s->evpos;
    s->fly_evpos_cap = s->evpos_cap;
    s->fly_nevpos = s->nevpos;
    s->evpos = t;
    s->evpos_cap = cap;
    s->nevpos = 0;
    s->fly_tally = s->tally;
}

/* Sends the open batch's writes and offsets (pgw_commit_start) and moves
 * it in flight; sink_settle learns the outcome. Returns 0 or PGW_EDB. */
static int sink_commit_start(sink *s)
{
    char err[512];
    int rc = PGW_OK;

    if (!s->in_batch)
        return 0;
    if (sink_settle(s, 1) != 0)
        return PGW_EDB;
    s->fly_offsets = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < SINK_MAX_PARTITIONS && rc == PGW_OK; p++) {
        if (s->next[p] < 0)
            continue;
        rc = pgw_set_offset(s->db, s->cfg.group, s->cfg.topic, p, s->next[p], err, sizeof err);
        if (s->fly_offsets)
            rd_kafka_topic_partition_list_add(s->fly_offsets, s->cfg.topic, p)->offset =
                s->next[p];
    }
    if (log_get_level() >= LOGL_DEBUG)
        sink_describe_batch(s, s->fly_ranges, sizeof s->fly_ranges);
    if (rc == PGW_OK)
        rc = pgw_commit_start(s->db, err, sizeof err);
    s->fly_events = s->batch_events;
    s->fly_started = isotime_mono();
    if (rc != PGW_OK) {
        log_warn("batch of %d events not committed: %s", s->batch_events, err);
        pgw_rollback(s->db);
        sink_forget_fly(s);
    } else {
        sink_evpos_to_fly(s);
    }
    sink_reset_batch(s);
    return rc;
}

/* Commits the open batch and waits for it. Returns 0 or PGW_EDB. */
static int sink_commit_batch(sink *s)
{
    int rc = sink_commit_start(s);

    return rc ? rc : sink_settle(s, 1);
}

static void sink_set_paused(sink *s, int pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(s->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a && a->cnt > 0)
        pause ? rd_kafka_pause_partitions(s->rk, a) : rd_kafka_resume_partitions(s->rk, a);
    if (a)
        rd_kafka_topic_partition_list_destroy(a);
}

/* Postgres failed: drop the batch, stop consuming until it is back. */
static void sink_db_failed(sink *s)
{
    pgw_rollback(s->db); /* also abandons a commit in flight */
    sink_reset_batch(s);
    sink_forget_fly(s);
    if (!s->db_down) {
        s->db_down = 1;
        s->down_since = isotime_mono();
        s->backoff_ms = SINK_BACKOFF_FIRST_MS;
        sm_set_postgres_ok(0, "a database error; consumption paused, reconnecting");
        sink_set_paused(s, 1);
        log_warn("Postgres unavailable: paused consumption, uncommitted batch rolled back; "
                 "reconnecting with backoff");
    }
    s->retry_at = isotime_mono() + s->backoff_ms / 1000.0;
}

static void sink_backoff(sink *s, const char *err)
{
    s->backoff_ms = s->backoff_ms * 2 > SINK_BACKOFF_MAX_MS ? SINK_BACKOFF_MAX_MS
                                                           : s->backoff_ms * 2;
    s->retry_at = isotime_mono() + s->backoff_ms / 1000.0;
    sm_set_postgres_ok(0, err);
    log_info("Postgres still unavailable (%s); next attempt in %d ms", err, s->backoff_ms);
}

/* Tries to reconnect; on success seeks every assigned partition back to
 * the offsets stored in Postgres and resumes. */
static void sink_try_recover(sink *s)
{
    char err[512];
    rd_kafka_topic_partition_list_t *a = NULL; /* owned */
    rd_kafka_resp_err_t kerr;
    rd_kafka_error_t *e;

    if (isotime_mono() < s->retry_at)
        return;
    if (!pgw_ok(s->db)) {
        if (pgw_reconnect(s->db, err, sizeof err) != PGW_OK) {
            sink_backoff(s, err);
            return;
        }
        sm_postgres_reconnected();
    }
    kerr = rd_kafka_assignment(s->rk, &a);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sink_backoff(s, rd_kafka_err2str(kerr));
        return;
    }
    /* no stored row: nothing of that partition ever committed */
    for (int i = 0; i < a->cnt; i++)
        a->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    if (sink_offsets_from_db(s, a, NULL, err, sizeof err) < 0) {
        rd_kafka_topic_partition_list_destroy(a);
        sink_backoff(s, err);
        return;
    }
    e = a->cnt ? rd_kafka_seek_partitions(s->rk, a, 10000) : NULL;
    if (e) {
        log_warn("seek after reconnect: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(a);
    s->db_down = 0;
    sm_set_postgres_ok(1, NULL);
    sink_set_paused(s, 0);
    log_info("Postgres is back after %.1f s: resumed consumption from the offsets stored there",
             isotime_mono() - s->down_since);
}

/* kafka_group hooks. Before an assignment: each partition starts at the
 * offset stored in Postgres with the rows (the exactly-once position). */
static void sink_before_assign(void *ctx, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    sink *s = ctx; /* borrowed */
    (void)rk;
    snprintf(s->assign_error, sizeof s->assign_error, "the commit in flight failed");
    if (s->assign_stored)
        rd_kafka_topic_partition_list_destroy(s->assign_stored);
    s->assign_stored = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    s->assign_unreadable = !s->db_down &&
                           (sink_settle(s, 1) != 0 ||
                            sink_offsets_from_db(s, parts, s->assign_stored, s->assign_error,
                                                 sizeof s->assign_error) < 0);
}

static void sink_after_assign(void *ctx, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    sink *s = ctx; /* borrowed */
    sm_set_group_joined(1);
    if (s->assign_unreadable) {
        /* Recovery seeks every assigned partition to the stored offsets. */
        log_warn("cannot read stored offsets from Postgres: %s", s->assign_error);
        sink_db_failed(s);
    } else if (s->assign_stored && s->assign_stored->cnt > 0) {
        /* The group's committed offsets catch up with Postgres's: a sink
         * killed between its COMMIT and its Kafka commit left them behind,
         * and a partition that gets no new event would show that lag for
         * ever. Kafka's offsets are only a view here; a failure is harmless. */
        rd_kafka_commit(rk, s->assign_stored, 1);
    }
    if (s->assign_stored)
        rd_kafka_topic_partition_list_destroy(s->assign_stored);
    s->assign_stored = NULL;
    if (s->db_down)
        rd_kafka_pause_partitions(rk, (rd_kafka_topic_partition_list_t *)parts);
}

/* Before a revocation: the open batch commits while its offsets are ours. */
static void sink_before_revoke(void *ctx, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                               int lost)
{
    sink *s = ctx; /* borrowed */
    (void)rk, (void)parts;
    if (lost)
        sm_set_group_joined(0); /* until the group assigns partitions again */
    if (!s->db_down && sink_commit_batch(s) != PGW_OK)
        sink_db_failed(s);
}

/* pgw_skip_fn: Postgres refused an event of the batch being committed. */
static void sink_on_skip(void *ctx, size_t event, const char *why)
{
    sink *s = ctx; /* borrowed */
    const struct sink_pos *pos = s->settling ? s->fly_evpos : s->evpos;
    size_t n = s->settling ? s->fly_nevpos : s->nevpos;
    const struct sink_pos *at = event < n ? &pos[event] : NULL;
    struct sm_tally *t = s->settling ? &s->fly_tally : &s->tally;

    s->skipped++;
    s->applied--;
    if (at) {
        t->n[at->type][SM_APPLIED]--;
        t->n[at->type][SM_REFUSED]++;
    }
    log_warn("skipping bad event at %s[%d]@%lld: %s", s->cfg.topic, at ? (int)at->partition : -1,
             at ? (long long)at->offset : -1LL, why);
}

/* Notes where the next pgw_apply call's event came from. -1 if out of
 * memory. */
static int sink_note_pos(sink *s, const rd_kafka_message_t *m, enum sm_type type)
{
    if (dynbuf_grow_array(&s->evpos, &s->evpos_cap, s->nevpos + 1, sizeof *s->evpos))
        return -1;
    s->evpos[s->nevpos].type = type;
    s->evpos[s->nevpos].partition = m->partition;
    s->evpos[s->nevpos++].offset = m->offset;
    return 0;
}

/* Applies one message inside the batch. Garbage is logged and skipped;
 * returns PGW_EDB only when the database failed. */
static int sink_apply_message(sink *s, const rd_kafka_message_t *m)
{
    json_error_t jerr;
    json_t *root = NULL, *name, *data;
    char err[512];
    int rc = PGW_OK;
    enum sm_type type = SM_TYPE_UNKNOWN;

    if (m->partition < 0 || m->partition >= SINK_MAX_PARTITIONS) {
        log_error("partition %d beyond what the sink tracks; skipping", (int)m->partition);
        return PGW_OK;
    }
    if (!s->in_batch) {
        if (pgw_begin(s->db, err, sizeof err) != PGW_OK) {
            log_warn("cannot start a transaction: %s", err);
            return PGW_EDB;
        }
        s->in_batch = 1;
        s->batch_started = isotime_mono();
    }
    if (m->len > SINK_EVENT_MAX_BYTES) {
        snprintf(err, sizeof err, "message of %zu bytes is over the cap", m->len);
    } else {
        char *clean = NULL; /* owned */
        size_t clean_len = 0;
        int repaired = json_clean_text(m->payload, m->len, &clean, &clean_len);
        if (repaired > 0)
            log_info("%s[%d]@%lld: %d invalid characters (lone surrogates, bad UTF-8) replaced "
                     "by U+FFFD",
                     s->cfg.topic, (int)m->partition, (long long)m->offset, repaired);
        root = json_loadb(repaired > 0 ? clean : m->payload, repaired > 0 ? clean_len : m->len,
                          JSON_ALLOW_NUL, &jerr);
        free(clean);
    }
    name = json_object_get(root, "name");
    data = json_object_get(root, "data");
    type = sm_type_of(json_string_value(name));
    if (!json_is_string(name) || !json_is_object(data)) {
        if (m->len <= SINK_EVENT_MAX_BYTES)
            snprintf(err, sizeof err, "not an event envelope%s%s", root ? "" : ": ",
                     root ? "" : jerr.text);
        rc = PGW_EBADEVENT;
    } else if (sink_note_pos(s, m, type) < 0) {
        snprintf(err, sizeof err, "out of memory");
        rc = PGW_EDB;
    } else {
        rc = pgw_apply(s->db, json_string_value(name), data, err, sizeof err);
    }
    json_decref(root);
    if (rc == PGW_EDB) {
        log_warn("database error at %s[%d]@%lld: %s", s->cfg.topic, (int)m->partition,
                 (long long)m->offset, err);
        return PGW_EDB;
    }
    if (rc == PGW_EBADEVENT) {
        s->tally.n[type][SM_INVALID]++;
        s->skipped++;
        log_warn("skipping bad event at %s[%d]@%lld: %s", s->cfg.topic, (int)m->partition,
                 (long long)m->offset, err);
    } else {
        /* pgw_apply writes these two and ignores any other name */
        s->tally.n[type][type == SM_TYPE_PULL_REQUESTS || type == SM_TYPE_PROGRESS ? SM_APPLIED
                                                                                  : SM_IGNORED]++;
        s->applied++;
    }
    if (s->next[m->partition] < 0)
        s->first[m->partition] = m->offset;
    s->next[m->partition] = m->offset + 1;
    s->batch_events++;
    return PGW_OK;
}

/* A batch is written when it is full, when it is batch_ms old, or once no
 * event came for batch_idle_ms and no earlier batch is still committing:
 * under load batches fill up; a trickle of live events is written within
 * batch_idle_ms instead of batch_ms later. */
static int sink_batch_due(const sink *s)
{
    double now = isotime_mono();
    return s->in_batch &&
           (s->batch_events >= s->cfg.batch_size ||
            (now - s->batch_started) * 1000.0 >= s->cfg.batch_ms ||
            (s->cfg.batch_idle_ms > 0 && (now - s->last_event) * 1000.0 >= s->cfg.batch_idle_ms &&
             !pgw_commit_pending(s->db)));
}

int sink_run(sink *s)
{
    char fatal[256];
    while (!*s->cfg.stop) {
        if (kafka_health_fatal(fatal, sizeof fatal)) {
            /* the batch in hand is not written: consumed again after a restart */
            log_error("stopping after a fatal Kafka error (%s); exiting 1", fatal);
            return 1;
        }
        rd_kafka_message_t *m;
        if (s->db_down)
            sink_try_recover(s);
        m = rd_kafka_consumer_poll(s->rk, s->in_batch || pgw_commit_pending(s->db) ? 10 : 200);
        if (m)
            s->last_event = isotime_mono();
        if (m && m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consumer: %s", rd_kafka_message_errstr(m));
        } else if (m && !s->db_down) {
            if (sink_apply_message(s, m) != PGW_OK)
                sink_db_failed(s);
        }
        if (m)
            rd_kafka_message_destroy(m);
        if (!s->db_down && sink_settle(s, 0) < 0)
            sink_db_failed(s);
        /* the next batch fills while the server commits this one */
        if (!s->db_down && sink_batch_due(s) && sink_commit_start(s) != PGW_OK)
            sink_db_failed(s);
    }
    if (!s->db_down && sink_commit_batch(s) != PGW_OK)
        log_warn("last batch not committed; it will be consumed again after a restart");
    log_info("%lld events applied, %lld skipped", (long long)s->applied, (long long)s->skipped);
    return 0;
}

sink *sink_new(const struct cli_common *common, const struct sink_config *cfg, pgw *db,
               char *errstr, size_t errlen)
{
    const char *defaults[] = {"group.id", cfg->group, "client.id", "backfill-sink",
                              "enable.auto.commit", "false", "enable.auto.offset.store", "false",
                              "auto.offset.reset", "earliest",
                              "partition.assignment.strategy", "cooperative-sticky",
                              "session.timeout.ms", "10000", "heartbeat.interval.ms", "1000",
                              "fetch.wait.max.ms", "50",
                              "group.protocol", common->group_protocol, NULL};
    sink *s = calloc(1, sizeof *s);
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err;
    char errbuf[768];

    if (!s) {
        snprintf(errstr, errlen, "out of memory");
        pgw_free(db);
        return NULL;
    }
    s->db = db;
    s->cfg = *cfg;
    sink_reset_batch(s);
    pgw_on_skip(db, sink_on_skip, s); /* Postgres's verdict on an event comes at commit */
    conf = kafka_conf_new(common->brokers, defaults, common->props, errstr, errlen);
    if (!conf)
        goto fail;
    s->group_hooks = (struct kafka_group_hooks){sink_before_assign, sink_after_assign,
                                                sink_before_revoke, NULL, s};
    kafka_group_install(conf, &s->group_hooks);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        goto fail;
    }
    rd_kafka_poll_set_consumer(s->rk); /* rd_kafka_new owns conf */
    struct kafka_topic topic = {cfg->topic, common->partitions, 0};
    if (kafka_ensure_topics_wait(s->rk, &topic, 1, cfg->stop, errstr, errlen)) {
        if (*cfg->stop)
            errstr[0] = '\0'; /* stopped while waiting for Kafka: not an error */
        goto fail;
    }
    if (kafka_topic_shortfall(&topic, common->brokers, "fewer sinks in the group can share the work",
                              errbuf, sizeof errbuf))
        log_warn("progress %s", errbuf);
    sub = rd_kafka_topic_partition_list_new(1);
    if (!sub)
        goto fail;
    rd_kafka_topic_partition_list_add(sub, cfg->topic, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(s->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        snprintf(errstr, errlen, "cannot subscribe to %s: %s", cfg->topic, rd_kafka_err2str(err));
        goto fail;
    }
    return s;
fail:
    sink_free(s);
    return NULL;
}

void sink_free(sink *s)
{
    if (!s)
        return;
    if (s->rk) {
        if (kafka_group_close(s->rk, GROUP_CLOSE_MS))
            rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        else
            rd_kafka_destroy(s->rk);
    }
    pgw_free(s->db);
    sink_forget_fly(s);
    if (s->assign_stored)
        rd_kafka_topic_partition_list_destroy(s->assign_stored);
    free(s->evpos);
    free(s->fly_evpos);
    free(s);
}
