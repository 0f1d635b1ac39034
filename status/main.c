/* backfill-status: prints the backfill_progress_summary view (schemas/
 * migrations/002_status_view.sql) — one row per repository — as a table,
 * or as JSON lines with --json. Reads DATABASE_URL only from the
 * environment and never prints it; passwords are masked in every message.
 *
 * Then checks our topics in Kafka, read-only: a jobs or progress topic
 * with fewer partitions than configured caps how many consumers can work,
 * and says so on stderr.
 *
 * With --lag it asks Kafka instead of Postgres: the worker group's lag on
 * the jobs topic and the sink group's on the progress topic, per
 * partition, as kafka-consumer-groups --describe prints it
 * (common/group_lag, status/lag_table).
 *
 * Exit status: 0 printed (even no rows), 1 database error (unreachable,
 * view missing: the sink creates it) or, with --lag, Kafka unreachable,
 * 2 usage error, 3 (--lag) a group or topic does not exist. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "group_lag.h"
#include "kafka.h"
#include "kafka_health.h"
#include "lag_table.h"
#include "log.h"
#include "pg_conn.h"
#include "text_table.h"

enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_STATUS, OPT_NO_KAFKA, OPT_LAG, OPT_WORKER_GROUP,
       OPT_SINK_GROUP };
enum { EXIT_NO_GROUP = 3 }; /* --lag: a group or topic does not exist */

#define STATUS_KAFKA_WAIT_MS 3000 /* for the topic check; then it is skipped */
enum { COL_REPO, COL_STATUS, COL_EVSTATUS, COL_PROCESSED, COL_TOTAL, COL_PCT, COL_STARTED,
       COL_UPDATED, COL_FINISHED, COL_DURATION, COL_ERROR, COL_CHUNKS, COL_REQUESTS, COL_POINTS,
       COL_BACKFILL, NCOLS };

/* timestamptz as ISO-8601 UTC text, like every timestamp in our events */
#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define SUMMARY_SQL                                                                          \
    "SELECT repository, status, event_status, processed_prs, total_prs, percentage,\n"       \
    "       " ISO("started_at") " AS started_at,\n"                                      \
    "       " ISO("last_update") " AS last_update,\n"                                    \
    "       " ISO("finished_at") " AS finished_at,\n"                                    \
    "       round(extract(epoch FROM duration)::numeric, 1) AS duration_seconds,\n"      \
    "       error, chunks_done,\n"                                                       \
    "       api_requests, api_points, backfill_id\n"                                         \
    "  FROM backfill_progress_summary\n"                                                     \
    " WHERE $1::text IS NULL OR status = ANY (string_to_array($1::text, ','))\n"             \
    " ORDER BY repository"

struct status_opts {
    struct cli_common common;
    int json;
    const char *statuses; /* borrowed: comma list, NULL = all */
    int no_kafka;         /* --no-kafka: skip the topic check */
    int lag;              /* --lag: the groups' lag instead of the view */
    const char *worker_group; /* borrowed: --worker-group, env, default */
    const char *sink_group;   /* borrowed: --sink-group, env, default */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-status [options]\n"
            "\n"
            "Prints the backfill_progress_summary view: one row per repository with the\n"
            "status of its latest backfill, processed/total pull requests, percentage,\n"
            "chunks done, API requests and points, start, last update, duration and error.\n"
            "Then checks the topics in Kafka (read-only): a jobs or progress topic with fewer\n"
            "partitions than --partitions is reported on stderr, since each partition feeds\n"
            "one consumer, with the command that adds partitions.\n"
            "\n"
            "  --json                  one JSON object per row (the view's column names)\n"
            "  --status LIST           only these statuses, comma-separated: active, paused,\n"
            "                          completed, failed (e.g. --status active,paused)\n"
            "  --no-kafka              skip the topic check\n"
            "\n"
            "Consumer lag (asks Kafka only, not Postgres):\n"
            "  --lag                   for the worker group on the jobs topic and the sink group\n"
            "                          on the progress topic, per partition: committed offset,\n"
            "                          log end offset, lag and the member that owns it, as\n"
            "                          kafka-consumer-groups.sh --describe prints them, then the\n"
            "                          group's state and total lag (a partition with no committed\n"
            "                          offset shows lag '-' and counts from its log start);\n"
            "                          with --json one JSON object per group\n"
            "  --worker-group ID       env " CLI_WORKER_GROUP_ENV ", default " CLI_WORKER_GROUP "\n"
            "  --sink-group ID         env " CLI_SINK_GROUP_ENV ", default " CLI_SINK_GROUP "\n"
            PG_CONN_HELP
            "\n"
            "%s"
            "\n"
            "The view is created by backfill-sink's migrations (002_status_view).\n"
            "Exit status: 0 printed (also when there are no rows; Kafka's answer does not\n"
            "change it), 1 database error (--lag: Kafka unreachable or refused), 2 usage\n"
            "error, 3 (--lag) a group or topic does not exist (the others are printed).\n",
            cli_common_help);
}

static int status_option(int c, const char *arg, void *ctx)
{
    struct status_opts *o = ctx;
    switch (c) {
    case OPT_JSON: o->json = 1; return 0;
    case OPT_STATUS: o->statuses = arg; return 0;
    case OPT_NO_KAFKA: o->no_kafka = 1; return 0;
    case OPT_LAG: o->lag = 1; return 0;
    case OPT_WORKER_GROUP: o->worker_group = arg; return 0;
    case OPT_SINK_GROUP: o->sink_group = arg; return 0;
    default: return -1;
    }
}

/* Returns CLI_RUN, or the exit status (cli_parse). */
static int parse_args(int argc, char **argv, struct status_opts *o)
{
    static const struct option longopts[] = {CLI_LONGOPTS,
                                             {"json", no_argument, 0, OPT_JSON},
                                             {"status", required_argument, 0, OPT_STATUS},
                                             {"no-kafka", no_argument, 0, OPT_NO_KAFKA},
                                             {"lag", no_argument, 0, OPT_LAG},
                                             {"worker-group", required_argument, 0, OPT_WORKER_GROUP},
                                             {"sink-group", required_argument, 0, OPT_SINK_GROUP},
                                             {0, 0, 0, 0}};
    const struct cli_spec spec = {NULL, longopts, status_option, o, usage, 0, NULL};
    glag_default_groups(&o->worker_group, &o->sink_group);
    return cli_parse(&o->common, &spec, argc, argv);
}

/* ---- the topics in Kafka ------------------------------------------------------ */

/* Warns on stderr about each of our topics with fewer partitions than
 * configured, or that Kafka could not be asked. Creates nothing. */
static void check_topics(const struct cli_common *c)
{
    static const char *const defaults[] = {"client.id", "backfill-status", NULL};
    struct kafka_topic topics[CLI_NTOPICS];
    char err[1024];
    rd_kafka_conf_t *conf = kafka_conf_new(c->brokers, defaults, c->props, err, sizeof err);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err) : NULL;

    if (!rk) {
        if (conf)
            rd_kafka_conf_destroy(conf); /* rd_kafka_new failed: still ours */
        log_warn("topic check skipped: %s", err);
        return;
    }
    cli_topics(c, topics);
    for (int i = CLI_TOPIC_JOBS; i <= CLI_TOPIC_PROGRESS; i++) {
        int found = kafka_topic_partitions(rk, topics[i].name, STATUS_KAFKA_WAIT_MS);
        char what[96];
        if (found < 0) {
            if (!kafka_health_unreachable(err, sizeof err))
                snprintf(err, sizeof err, "no answer within %d ms", STATUS_KAFKA_WAIT_MS);
            log_warn("topic check skipped: cannot reach Kafka at %s", err);
            break;
        }
        topics[i].found = found;
        snprintf(what, sizeof what, "at most %d %s can work at once", found,
                 i == CLI_TOPIC_JOBS ? "consumers (workers)" : "sinks");
        if (kafka_topic_shortfall(&topics[i], c->brokers, what, err, sizeof err))
            log_warn("%s", err);
    }
    rd_kafka_destroy(rk);
}

/* ---- consumer lag (--lag) ------------------------------------------------------ */

/* Prints one group's lag on stdout: the table and its totals, or one JSON
 * line. Returns 0, EXIT_NO_GROUP, or 1 (Kafka failed; *unreachable set
 * when no broker answers, so that the next group is not asked). */
static int print_group_lag(rd_kafka_t *rk, const char *group, const char *topic, int json,
                           int first, int *unreachable)
{
    struct glag_report *r = NULL;
    char err[1024], *text = NULL;
    json_t *o = NULL;
    int rc = glag_query(rk, group, topic, GLAG_TIMEOUT_MS, &r, err, sizeof err), out = 0;

    if (rc != GLAG_OK) {
        log_error("lag of group %s on %s: %s", group, topic, err);
        *unreachable = rc == GLAG_EKAFKA && kafka_health_unreachable(NULL, 0);
        if (json && (o = glag_json_error(group, topic, rc, err)))
            out = json_dumpf(o, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF;
        json_decref(o);
        return out ? 1 : rc == GLAG_ENOGROUP || rc == GLAG_ENOTOPIC ? EXIT_NO_GROUP : 1;
    }
    if (json) {
        o = glag_json(r);
        out = !o || json_dumpf(o, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF;
        json_decref(o);
    } else {
        text = lagt_render(r);
        out = !text || (!first && fputc('\n', stdout) == EOF) || fputs(text, stdout) == EOF;
        free(text);
    }
    glag_free(r);
    if (out)
        log_error("writing to stdout: %s", errno ? strerror(errno) : "out of memory");
    return out ? 1 : 0;
}

/* --lag: both groups. Returns the exit status. */
static int run_lag(const struct status_opts *o)
{
    char err[1024];
    rd_kafka_t *rk = glag_client_new(o->common.brokers, o->common.props, "backfill-status", err,
                                     sizeof err);
    int rc = 0, r, unreachable = 0;

    if (!rk) {
        log_error("cannot create a Kafka client: %s", err);
        return 1;
    }
    r = print_group_lag(rk, o->worker_group, o->common.jobs_topic, o->json, 1, &unreachable);
    rc = r;
    if (!unreachable) {
        r = print_group_lag(rk, o->sink_group, o->common.progress_topic, o->json, r != 0,
                            &unreachable);
        rc = rc == 1 || r == 1 ? 1 : rc ? rc : r;
    }
    if (fflush(stdout)) {
        log_error("writing to stdout: %s", strerror(errno));
        rc = 1;
    }
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- connection, secrets masked (common/pg_conn) ------------------------ */

/* Logs "what: pgmsg" with the password of conn (may be NULL) and
 * PGPASSWORD masked. */
static void log_pg_error(const char *what, const char *pgmsg, const PGconn *conn)
{
    char msg[1024];
    pg_conn_msg(conn, what, pgmsg ? pgmsg : "unknown error", msg, sizeof msg);
    log_error("%s", msg);
}

/* The connection DATABASE_URL names (libpq defaults if unset), or NULL
 * after logging why. */
static PGconn *connect_db(void)
{
    char err[512];
    PGconn *conn = pg_conn_open(getenv("DATABASE_URL"), "backfill-status", err, sizeof err);
    if (!conn)
        log_error("%s (DATABASE_URL)", err);
    return conn;
}

/* ---- output --------------------------------------------------------------------- */

static const char *cell(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* A JSON value for one cell: numbers for numeric columns, else strings. */
static json_t *json_cell(PGresult *r, int row, int col)
{
    const char *s = cell(r, row, col);
    if (!s)
        return json_null();
    switch (col) {
    case COL_PROCESSED:
    case COL_TOTAL:
    case COL_CHUNKS:
    case COL_REQUESTS:
    case COL_POINTS:
        return json_integer(strtoll(s, NULL, 10));
    case COL_PCT:
    case COL_DURATION:
        return json_real(strtod(s, NULL));
    default:
        return json_string(s);
    }
}

static int print_json(PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        int bad = !o;
        for (int c = 0; o && c < NCOLS; c++)
            bad |= json_object_set_new(o, PQfname(r, c), json_cell(r, i, c));
        if (bad || json_dumpf(o, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF) {
            json_decref(o);
            return -1;
        }
        json_decref(o);
    }
    return 0;
}

static int print_table(PGresult *r)
{
    static const char *const titles[] = {"REPOSITORY", "STATUS", "PRS",     "%",
                                         "CHUNKS",     "API",    "STARTED", "LAST UPDATE",
                                         "DURATION",   "ERROR"};
    ttable *t = ttable_new(10, titles);
    long long prs = 0, req = 0, pts = 0, n = PQntuples(r);
    char *text = NULL;
    int rc = -1;

    if (!t)
        return -1;
    ttable_align_right(t, 2);
    ttable_align_right(t, 3);
    ttable_align_right(t, 4);
    ttable_align_right(t, 5);
    ttable_align_right(t, 8);
    for (int i = 0; i < n; i++) {
        char p[48], api[48], dur[32];
        const char *rq = cell(r, i, COL_REQUESTS), *pt = cell(r, i, COL_POINTS);
        snprintf(p, sizeof p, "%s/%s", cell(r, i, COL_PROCESSED), cell(r, i, COL_TOTAL));
        snprintf(api, sizeof api, "%s req, %s pts", rq ? rq : "?", pt ? pt : "?");
        snprintf(dur, sizeof dur, "%ss", cell(r, i, COL_DURATION) ? cell(r, i, COL_DURATION) : "?");
        const char *row[] = {cell(r, i, COL_REPO),    cell(r, i, COL_STATUS),  p,
                             cell(r, i, COL_PCT),     cell(r, i, COL_CHUNKS),  api,
                             cell(r, i, COL_STARTED), cell(r, i, COL_UPDATED), dur,
                             cell(r, i, COL_ERROR)};
        if (ttable_add(t, row))
            goto done;
        prs += strtoll(cell(r, i, COL_PROCESSED), NULL, 10);
        req += rq ? strtoll(rq, NULL, 10) : 0;
        pts += pt ? strtoll(pt, NULL, 10) : 0;
    }
    if (!(text = ttable_render(t)))
        goto done;
    if (fputs(text, stdout) == EOF ||
        printf("%lld repositories, %lld pull requests, %lld API requests (%lld points)\n", n, prs,
               req, pts) < 0)
        goto done;
    rc = 0;
done:
    free(text);
    ttable_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    struct status_opts o = {.json = 0};
    PGconn *conn = NULL;
    PGresult *r = NULL;
    const char *params[1];
    int rc, pr;

    log_init("status");
    if (cli_common_init(&o.common))
        return 2;
    if ((pr = parse_args(argc, argv, &o)) != CLI_RUN) {
        cli_common_free(&o.common);
        return pr;
    }
    if (o.lag) {
        rc = run_lag(&o);
        cli_common_free(&o.common);
        return rc;
    }
    params[0] = o.statuses;
    if (!(conn = connect_db())) {
        rc = 1;
    } else if (r = PQexecParams(conn, SUMMARY_SQL, 1, NULL, params, NULL, NULL, 0),
               PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != NCOLS) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && !strcmp(state, "42P01"))
            log_error("backfill_progress_summary does not exist yet: start backfill-sink once "
                      "against this database (it applies the migrations)");
        else
            log_pg_error("reading backfill_progress_summary", PQresultErrorMessage(r), NULL);
        rc = 1;
    } else {
        rc = (o.json ? print_json(r) : print_table(r)) || fflush(stdout) ? 1 : 0;
        if (rc)
            log_error("writing to stdout: %s", strerror(errno));
    }
    PQclear(r);
    PQfinish(conn);
    if (!o.no_kafka)
        check_topics(&o.common);
    cli_common_free(&o.common);
    return rc;
}
