/* backfill-status: prints the backfill_progress_summary view (schemas/
 * migrations/002_status_view.sql) — one row per repository — as a table,
 * or as JSON lines with --json. Reads DATABASE_URL only from the
 * environment and never prints it; passwords are masked in every message.
 *
 * Then checks our topics in Kafka, read-only: a jobs or progress topic
 * with fewer partitions than configured caps how many consumers can work,
 * and says so on stderr.
 *
 * Exit status: 0 printed (even no rows), 1 database error (unreachable,
 * view missing: the sink creates it), 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kafka.h"
#include "kafka_health.h"
#include "log.h"
#include "stable.h"

enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_STATUS, OPT_NO_KAFKA };

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
            "  env DATABASE_URL        libpq connection string or URI (may hold a password; it\n"
            "                          is never printed). Unset: libpq defaults (PGHOST, ...).\n"
            "\n"
            "%s"
            "\n"
            "The view is created by backfill-sink's migrations (002_status_view).\n"
            "Exit status: 0 printed (also when there are no rows; Kafka's answer does not\n"
            "change it), 1 database error, 2 usage error.\n",
            cli_common_help);
}

static int parse_args(int argc, char **argv, struct status_opts *o)
{
    static const struct option longopts[] = {CLI_LONGOPTS,
                                             {"json", no_argument, 0, OPT_JSON},
                                             {"status", required_argument, 0, OPT_STATUS},
                                             {"no-kafka", no_argument, 0, OPT_NO_KAFKA},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
        enum cli_result r = cli_common_option(&o->common, c, optarg);
        if (r == CLI_EXIT_OK)
            return 1;
        if (r == CLI_USAGE_ERROR)
            return -1;
        if (r == CLI_HANDLED)
            continue;
        if (c == OPT_JSON)
            o->json = 1;
        else if (c == OPT_STATUS)
            o->statuses = optarg;
        else if (c == OPT_NO_KAFKA)
            o->no_kafka = 1;
        else
            return -1;
    }
    if (o->common.want_help) {
        usage(stdout);
        return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
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

/* ---- connection, secrets masked ------------------------------------------ */

/* Overwrites every occurrence of secret in msg with '*'. */
static void mask(char *msg, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (!n)
        return;
    for (char *p = strstr(msg, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

/* The password inside a conninfo string or URI (malloc'd), or NULL. */
static char *conninfo_password(const char *conninfo)
{
    PQconninfoOption *opts, *o;
    char *pw = NULL, *err = NULL;
    if (!strchr(conninfo, '=') && strncmp(conninfo, "postgres", 8))
        return NULL; /* a bare database name */
    if (!(opts = PQconninfoParse(conninfo, &err))) {
        PQfreemem(err); /* may quote the string: never shown */
        return NULL;
    }
    for (o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && o->val[0])
            pw = strdup(o->val);
    PQconninfoFree(opts);
    return pw;
}

static void log_pg_error(const char *what, const char *pgmsg, const char *pw)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", pgmsg ? pgmsg : "unknown error");
    mask(msg, pw);
    mask(msg, getenv("PGPASSWORD"));
    log_error("%s: %s", what, msg);
}

static PGconn *connect_db(void)
{
    const char *url = getenv("DATABASE_URL");
    /* dbname last: the values inside DATABASE_URL win over these defaults */
    const char *keys[] = {"connect_timeout", "client_encoding", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "UTF8", "backfill-status", url, NULL};
    char *pw = url ? conninfo_password(url) : NULL;
    PGconn *conn;

    if (!url || !url[0]) /* libpq defaults (PGHOST, PGDATABASE, ...) */
        keys[3] = vals[3] = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        log_pg_error("cannot connect to Postgres (DATABASE_URL)",
                     conn ? PQerrorMessage(conn) : "out of memory", pw);
        PQfinish(conn);
        conn = NULL;
    }
    free(pw);
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
    stable *t = stable_new(10, titles);
    long long prs = 0, req = 0, pts = 0, n = PQntuples(r);
    char *text = NULL;
    int rc = -1;

    if (!t)
        return -1;
    stable_align_right(t, 2);
    stable_align_right(t, 3);
    stable_align_right(t, 4);
    stable_align_right(t, 5);
    stable_align_right(t, 8);
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
        if (stable_add(t, row))
            goto done;
        prs += strtoll(cell(r, i, COL_PROCESSED), NULL, 10);
        req += rq ? strtoll(rq, NULL, 10) : 0;
        pts += pt ? strtoll(pt, NULL, 10) : 0;
    }
    if (!(text = stable_render(t)))
        goto done;
    if (fputs(text, stdout) == EOF ||
        printf("%lld repositories, %lld pull requests, %lld API requests (%lld points)\n", n, prs,
               req, pts) < 0)
        goto done;
    rc = 0;
done:
    free(text);
    stable_free(t);
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
    if ((pr = parse_args(argc, argv, &o)) != 0) {
        if (pr < 0)
            fprintf(stderr, "Try 'backfill-status --help'.\n");
        cli_common_free(&o.common);
        return pr > 0 ? 0 : 2;
    }
    cli_common_apply(&o.common);
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
