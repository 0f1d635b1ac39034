/* backfill-web: the bulk-add page and its HTTP API. Queues jobs like
 * backfill-producer (the same list rules, the same job queue), records
 * the repositories in Postgres, reads their state from there, and streams
 * progress to browsers from the progress topic as an observer.
 * Exit 0 after SIGTERM/SIGINT, 1 when it cannot start, 2 usage error. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cli.h"
#include "events.h"
#include "group_lag.h"
#include "group_lag_metrics.h"
#include "health_probe.h"
#include "http.h"
#include "isotime.h"
#include "job_queue.h"
#include "listen_addr.h"
#include "log.h"
#include "metrics_http.h"
#include "pg_conn.h"
#include "store.h"

enum {
    OPT_LISTEN = CLI_OPT_FIRST_FREE,
    OPT_INSECURE,
    OPT_MAX_STREAMS,
    OPT_EVENT_BUFFER,
    OPT_DB_CONNECTIONS,
    OPT_TOKEN_FILE
};

/* How often the main loop checks readiness for the metrics' /healthz. */
#define WEB_HEALTH_EVERY_S 2.0

struct web_opts {
    struct cli_common common;
    const char *listen;     /* borrowed */
    int insecure;
    int max_streams;
    int event_buffer;
    int db_connections;
    const char *token_file; /* borrowed */
    const char *metrics;    /* borrowed: --metrics, or NULL */
    int healthcheck;        /* --healthcheck: ask /healthz and exit */
};

/* Readiness for the --metrics listener's /healthz, checked by the main
 * loop the way GET /healthz decides (Kafka metadata, the progress
 * follower, Postgres with our tables) and read by the metrics server's
 * thread: an atomic and a string under its own lock, never a blocking
 * call in that thread. */
static struct {
    atomic_int ready;
    pthread_mutex_t lock; /* guards why */
    char why[1200];
} web_health = {.lock = PTHREAD_MUTEX_INITIALIZER, .why = "starting"};

static void web_health_set(int ready, const char *why)
{
    pthread_mutex_lock(&web_health.lock);
    snprintf(web_health.why, sizeof web_health.why, "%s", why);
    pthread_mutex_unlock(&web_health.lock);
    atomic_store(&web_health.ready, ready);
}

/* metrics_health_fn */
static int web_health_fn(void *ctx, char *why, size_t whylen)
{
    (void)ctx;
    if (atomic_load(&web_health.ready))
        return 1;
    pthread_mutex_lock(&web_health.lock);
    snprintf(why, whylen, "%s", web_health.why);
    pthread_mutex_unlock(&web_health.lock);
    return 0;
}

/* What GET /healthz answers (api.c), into web_health: Kafka answers
 * metadata and the follower reads, Postgres has the tables. Blocks up to
 * the metadata timeout. */
static void web_health_check(const struct web_app *app)
{
    char kerr[512] = "", perr[512] = "", why[1100];
    int bad = api_ready(app, kerr, sizeof kerr, perr, sizeof perr);
    int kafka_ok = !(bad & 1), pg_ok = !(bad & 2);

    snprintf(why, sizeof why, "%s%s%s%s%s", kafka_ok ? "" : "kafka: ", kafka_ok ? "" : kerr,
             !kafka_ok && !pg_ok ? "; " : "", pg_ok ? "" : "postgres: ", pg_ok ? "" : perr);
    web_health_set(kafka_ok && pg_ok, kafka_ok && pg_ok ? "ok" : why);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-web [options]\n"
            "\n"
            "Serves the bulk-add page (GET /) and its HTTP API: POST /api/bulk-add,\n"
            "GET /api/backfills[/OWNER/NAME], GET /api/events (Server-Sent Events),\n"
            "POST /api/backfills/OWNER/NAME/cancel and /retry, GET /api/estimate, GET /healthz,\n"
            "GET /api/lag (the groups' lag per partition; env BACKFILL_GROUP, BACKFILL_SINK_GROUP).\n"
            "Queues jobs on the jobs topic, records repositories in Postgres (backfill-sink\n"
            "creates the tables) and follows the progress topic without a group.\n"
            "\n"
            "Web:\n"
            "  --listen ADDR:PORT      where to listen (env BACKFILL_WEB_LISTEN, default\n"
            "                          127.0.0.1:8080; [::1]:PORT for IPv6, PORT 0 any free port)\n"
            "  --token-file PATH       the access token POST requests must send as\n"
            "                          'Authorization: Bearer TOKEN' (env BACKFILL_WEB_TOKEN_FILE;\n"
            "                          or the token itself in env BACKFILL_WEB_TOKEN)\n"
            "  --insecure              allow a non-loopback address without a token\n"
            "  --max-streams N         open event streams at most, 1..10000 (env\n"
            "                          BACKFILL_WEB_MAX_STREAMS, default 256); the next gets 503\n"
            "  --event-buffer N        progress updates kept for reconnecting browsers,\n"
            "                          100..1000000 (env BACKFILL_WEB_EVENT_BUFFER, default 10000)\n"
            "  --db-connections N      Postgres connections, 1..16 (env BACKFILL_WEB_DB_CONNECTIONS,\n"
            "                          default 4)\n"
            "%s"
            "                          (a listener of its own; /healthz as GET /healthz decides;\n"
            "                          without --metrics, --healthcheck asks --listen's /healthz)\n"
            "\n"
            "Postgres:\n"
            PG_CONN_HELP
            "\n"
            "%s"
            "\n"
            "Exit status: 0 after SIGTERM/SIGINT, 1 cannot start, 2 usage error.\n",
            cli_metrics_help, cli_common_help);
}

static int web_option(int c, const char *arg, void *ctx)
{
    struct web_opts *o = ctx;
    switch (c) {
    case OPT_LISTEN: o->listen = arg; return 0;
    case OPT_INSECURE: o->insecure = 1; return 0;
    case OPT_MAX_STREAMS: return cli_parse_int("--max-streams", arg, 1, 10000, &o->max_streams);
    case OPT_EVENT_BUFFER:
        return cli_parse_int("--event-buffer", arg, 100, 1000000, &o->event_buffer);
    case OPT_DB_CONNECTIONS:
        return cli_parse_int("--db-connections", arg, 1, 16, &o->db_connections);
    case OPT_TOKEN_FILE: o->token_file = arg; return 0;
    case CLI_OPT_METRICS: o->metrics = arg; return 0;
    case CLI_OPT_HEALTHCHECK: o->healthcheck = 1; return 0;
    default: return -1;
    }
}

static int parse_args(int argc, char **argv, struct web_opts *o)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS,
        {"listen", required_argument, 0, OPT_LISTEN},
        {"insecure", no_argument, 0, OPT_INSECURE},
        {"max-streams", required_argument, 0, OPT_MAX_STREAMS},
        {"event-buffer", required_argument, 0, OPT_EVENT_BUFFER},
        {"db-connections", required_argument, 0, OPT_DB_CONNECTIONS},
        {"token-file", required_argument, 0, OPT_TOKEN_FILE},
        CLI_METRICS_LONGOPTS,
        {0, 0, 0, 0}};
    const struct cli_spec spec = {"", longopts, web_option, o, usage, 0, NULL};
    o->listen = cli_env("BACKFILL_WEB_LISTEN", "127.0.0.1:8080");
    o->token_file = cli_env("BACKFILL_WEB_TOKEN_FILE", NULL);
    if (cli_env_int("BACKFILL_WEB_MAX_STREAMS", 1, 10000, &o->max_streams) ||
        cli_env_int("BACKFILL_WEB_EVENT_BUFFER", 100, 1000000, &o->event_buffer) ||
        cli_env_int("BACKFILL_WEB_DB_CONNECTIONS", 1, 16, &o->db_connections))
        return CLI_EXIT_USAGE;
    return cli_parse(&o->common, &spec, argc, argv);
}

/* Waits for Kafka (ours topics made and their leaders known), as long as
 * it takes or until a stop signal: a web server started beside a
 * starting broker comes up when the broker does. */
static int wait_for_kafka(job_queue *jq)
{
    char err[1024], last[1024] = "", why[1100];
    while (!cli_stop_requested) {
        if (jq_prepare(jq, 5000, "fewer consumers can work on it at once", err, sizeof err) == 0)
            return 0;
        snprintf(why, sizeof why, "waiting for Kafka: %s", err);
        web_health_set(0, why);
        if (strcmp(err, last) != 0)
            log_warn("waiting for Kafka: %s", err);
        snprintf(last, sizeof last, "%s", err);
    }
    return -1;
}

/* Both groups' lag into the metrics (group_lag_metrics.h): asked here, so
 * that a group whose members are all gone (a killed sink) still shows. */
static void web_group_lag(const struct web_app *app)
{
    const char *workers, *sink;
    glag_default_groups(&workers, &sink);
    glag_metrics_update(app->lag_client, workers, app->common->jobs_topic);
    glag_metrics_update(app->lag_client, sink, app->common->progress_topic);
}

int main(int argc, char **argv)
{
    struct web_opts o = {.max_streams = 256, .event_buffer = 10000, .db_connections = 4};
    struct sockaddr_storage addr;
    struct web_app app = {0};
    http_server *http = NULL;
    struct metrics_http *mh = NULL;
    const char *metrics_at;
    char err[1024], *token = NULL;
    int rc = 1, pr, loopback = 0;
    double checked = 0;

    log_init("web");
    if (cli_common_init(&o.common))
        return 2;
    if ((pr = parse_args(argc, argv, &o)) != CLI_RUN) {
        cli_common_free(&o.common);
        return pr;
    }
    if (listen_addr_parse("--listen", o.listen, &addr, NULL, &loopback, err, sizeof err)) {
        fprintf(stderr, "%s\nTry 'backfill-web --help'.\n", err);
        cli_common_free(&o.common);
        return 2;
    }
    /* without a metrics listener, --healthcheck asks --listen's GET /healthz:
     * the same answer (api_ready) */
    if (o.healthcheck && !cli_metrics_listen(o.metrics)) {
        cli_common_free(&o.common);
        return health_probe_main("backfill-web", o.listen);
    }
    if ((pr = cli_metrics_resolve("backfill-web", o.metrics, o.healthcheck, &metrics_at)) !=
        CLI_RUN) {
        cli_common_free(&o.common);
        return pr;
    }
    token = cli_secret(o.token_file, "BACKFILL_WEB_TOKEN", err, sizeof err);
    if (!token && err[0]) {
        log_error("%s", err);
        cli_common_free(&o.common);
        return 2;
    }
    if (!loopback && !token && !o.insecure) {
        log_error("--listen %s reaches beyond this machine: set BACKFILL_WEB_TOKEN (or "
                  "--token-file) so that only holders of the token can queue work, or pass "
                  "--insecure", o.listen);
        cli_common_free(&o.common);
        return 2;
    }
    cli_stop_signals(NULL);
    metrics_build_info(metrics_default(), "backfill-web", BACKFILL_VERSION, rd_kafka_version_str());
    if (metrics_at) {
        /* up before Kafka and Postgres: /healthz says what it waits for */
        if (!(mh = metrics_http_start(metrics_at, metrics_default(), web_health_fn, NULL, err,
                                      sizeof err))) {
            log_error("--metrics %s: %s", metrics_at, err);
            goto done;
        }
        log_info("serving metrics on %s (port %d): /metrics and /healthz", metrics_at,
                 metrics_http_port(mh));
    }
    app.common = &o.common;
    app.token = token;
    if (!(app.lag_client = glag_client_new(o.common.brokers, o.common.props, "backfill-web",
                                           err, sizeof err))) {
        log_error("cannot create the Kafka client for the groups' lag: %s", err);
        goto done;
    }
    if (!(app.db = store_new(getenv("DATABASE_URL"), o.db_connections))) {
        log_error("out of memory");
        goto done;
    }
    if (store_ping(app.db, err, sizeof err))
        log_warn("Postgres: %s (the API answers 503 until it is there)", err);
    if (!(app.jq = jq_new(&o.common, "backfill-web", err, sizeof err))) {
        log_error("cannot create the Kafka producer: %s", err);
        goto done;
    }
    if (wait_for_kafka(app.jq)) {
        rc = 0; /* stopped while waiting */
        goto done;
    }
    if (!(app.hub = hub_new(&o.common, (size_t)o.event_buffer, o.max_streams, err, sizeof err))) {
        log_error("cannot follow %s: %s", o.common.progress_topic, err);
        goto done;
    }
    /* streams, plus room for the page, the API and a health check */
    if (!(http = http_start(&app, (struct sockaddr *)&addr, o.max_streams + 64, err,
                            sizeof err))) {
        log_error("--listen %s: %s", o.listen, err);
        goto done;
    }
    log_info("serving the bulk-add page on http://%s/%s", o.listen,
             token ? " (POST requests need the access token)" : "");
    while (!cli_stop_requested) {
        struct timespec t = {0, 200 * 1000000};
        if (mh && isotime_mono() - checked >= WEB_HEALTH_EVERY_S) {
            /* with Kafka down the health check blocks up to its metadata
             * timeout (3 s); the lag questions end at a stop signal */
            web_health_check(&app);
            if (!cli_stop_requested)
                web_group_lag(&app);
            checked = isotime_mono();
        }
        nanosleep(&t, NULL);
    }
    log_info("stopping");
    rc = 0;
done:
    metrics_http_stop(mh);
    if (app.hub)
        hub_shutdown(app.hub); /* ends the streams, so that their connections close */
    http_stop(http);
    hub_free(app.hub);
    jq_free(app.jq);
    if (app.lag_client)
        rd_kafka_destroy(app.lag_client);
    store_free(app.db);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    cli_common_free(&o.common);
    return rc;
}
