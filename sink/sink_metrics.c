/* sink_metrics: see sink_metrics.h. The series pointers are looked up once
 * in sm_init (every label value is known in advance), so updates are
 * lock-free atomics; nothing here calls back into the loop. */
#include "sink_metrics.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "kafka_health.h"
#include "metrics.h"

static const char *const sm_type_names[SM_NTYPES] = {EVENT_PULL_REQUESTS, EVENT_PROGRESS,
                                                     EVENT_JOB, "unknown"};
static const char *const sm_outcome_names[SM_NOUTCOMES] = {"applied", "invalid", "refused",
                                                           "ignored"};

/* Events per batch: --batch-size is 50 by default, up to 1000000. */
static const double sm_batch_buckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

static struct {
    struct metric *events[SM_NTYPES][SM_NOUTCOMES]; /* borrowed from the registry */
    struct metric *rows[PGW_NTABLES];
    struct metric *batch_size;
    struct metric *commit_seconds;
    struct metric *reconnects;
    struct metric *pg_up;
} sm;

static atomic_int sm_ready_init;   /* sm_init ran */
static atomic_int sm_pg_ok;        /* the last use of Postgres worked */
static atomic_int sm_pg_known;     /* Postgres was tried at least once */
static atomic_int sm_joined;       /* the group assigned us our share */
static pthread_mutex_t sm_lock = PTHREAD_MUTEX_INITIALIZER; /* guards sm_pg_why */
static char sm_pg_why[256];        /* why Postgres failed last (password-free) */

void sm_init(void)
{
    struct metrics *m = metrics_default();
    struct metric_family *ev, *rows, *bs, *cd, *rc, *up;

    ev = metrics_family(m, METRIC_COUNTER, "backfill_sink_events_total",
                        "Events of the progress topic whose batch committed, by type and "
                        "outcome (applied, invalid, refused, ignored).",
                        "type,outcome", NULL, 0);
    rows = metrics_family(m, METRIC_COUNTER, "backfill_sink_rows_written_total",
                          "Rows the sink inserted or changed, by table (an upsert that finds "
                          "the row as it was counts nothing).",
                          "table", NULL, 0);
    bs = metrics_family(m, METRIC_HISTOGRAM, "backfill_sink_batch_size",
                        "Events per committed batch (one Postgres transaction).", NULL,
                        sm_batch_buckets, (int)(sizeof sm_batch_buckets / sizeof *sm_batch_buckets));
    cd = metrics_family(m, METRIC_HISTOGRAM, "backfill_sink_commit_duration_seconds",
                        "Time from sending a batch's writes to Postgres to its COMMIT.", NULL,
                        METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
    rc = metrics_family(m, METRIC_COUNTER, "backfill_sink_postgres_reconnects_total",
                        "Reconnections to Postgres after it failed.", NULL, NULL, 0);
    up = metrics_family(m, METRIC_GAUGE, "backfill_sink_postgres_up",
                        "1 when the sink's last use of Postgres worked, else 0.", NULL, NULL, 0);
    for (int t = 0; t < SM_NTYPES; t++)
        for (int o = 0; o < SM_NOUTCOMES; o++)
            sm.events[t][o] = metrics_series2(ev, sm_type_names[t], sm_outcome_names[o]);
    for (int t = 0; t < PGW_NTABLES; t++)
        sm.rows[t] = metrics_series1(rows, pgw_table_name(t));
    sm.batch_size = metrics_series0(bs);
    sm.commit_seconds = metrics_series0(cd);
    sm.reconnects = metrics_series0(rc);
    sm.pg_up = metrics_series0(up);
    metrics_build_info(m, "backfill-sink", BACKFILL_VERSION, rd_kafka_version_str());
    atomic_store(&sm_ready_init, 1);
}

enum sm_type sm_type_of(const char *name)
{
    for (int t = 0; name && t < SM_TYPE_UNKNOWN; t++)
        if (strcmp(name, sm_type_names[t]) == 0)
            return (enum sm_type)t;
    return SM_TYPE_UNKNOWN;
}

void sm_batch_committed(const struct sm_tally *t, int n, double seconds,
                        const int64_t rows[PGW_NTABLES])
{
    if (!atomic_load(&sm_ready_init))
        return;
    for (int ty = 0; ty < SM_NTYPES; ty++)
        for (int o = 0; o < SM_NOUTCOMES; o++)
            if (t->n[ty][o] > 0)
                metric_add(sm.events[ty][o], (double)t->n[ty][o]);
    for (int i = 0; i < PGW_NTABLES; i++)
        if (rows[i] > 0)
            metric_add(sm.rows[i], (double)rows[i]);
    if (n > 0) {
        metric_observe(sm.batch_size, n);
        metric_observe(sm.commit_seconds, seconds);
    }
}

void sm_postgres_reconnected(void)
{
    metric_add(sm.reconnects, 1);
}

void sm_set_postgres_ok(int ok, const char *why)
{
    if (!ok) {
        pthread_mutex_lock(&sm_lock);
        snprintf(sm_pg_why, sizeof sm_pg_why, "%s", why && why[0] ? why : "connection lost");
        pthread_mutex_unlock(&sm_lock);
    }
    atomic_store(&sm_pg_known, 1);
    atomic_store(&sm_pg_ok, ok ? 1 : 0);
    metric_set(sm.pg_up, ok ? 1 : 0);
}

void sm_set_group_joined(int joined)
{
    atomic_store(&sm_joined, joined ? 1 : 0);
}

int sm_health(void *ctx, char *why, size_t whylen)
{
    (void)ctx;

    if (!kafka_health_ready(why, whylen))
        return 0;
    if (!atomic_load(&sm_pg_known)) {
        snprintf(why, whylen, "not connected to Postgres yet");
        return 0;
    }
    if (!atomic_load(&sm_pg_ok)) {
        pthread_mutex_lock(&sm_lock);
        snprintf(why, whylen, "Postgres unreachable: %s", sm_pg_why);
        pthread_mutex_unlock(&sm_lock);
        return 0;
    }
    if (!atomic_load(&sm_joined)) {
        snprintf(why, whylen, "no partitions assigned by the consumer group yet");
        return 0;
    }
    return 1;
}
