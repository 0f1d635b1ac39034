/* backfill-sink: consumes backfill.progress (group backfill-sink) and
 * writes it to Postgres, one database transaction per batch that also
 * stores the consumed offsets (kafka_offsets). On assignment it seeks to
 * the offsets stored in Postgres, so every event takes effect exactly
 * once even when the sink dies mid-batch; writes are idempotent, so a
 * replayed event changes nothing. When Postgres is unreachable it pauses
 * its partitions (still polling, so it keeps its group membership),
 * reconnects with backoff, seeks back to the stored offsets and goes on.
 * Kafka offsets are committed too, after Postgres, only as a fallback
 * position for when Postgres cannot be read at assignment time. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "isotime.h"
#include "kafka.h"
#include "kafka_lag_metrics.h"
#include "log.h"
#include "metrics_http.h"
#include "pg_conn.h"
#include "pg_writer.h"
#include "sink_batch.h"
#include "sink_metrics.h"

enum { OPT_GROUP = CLI_OPT_FIRST_FREE, OPT_BATCH_SIZE, OPT_BATCH_MS, OPT_BATCH_IDLE_MS };

/* What parse_args fills besides the loop's configuration. */
struct sink_opts {
    struct sink_config *cfg; /* borrowed */
    const char *metrics;     /* borrowed: --metrics, or NULL */
    int healthcheck;         /* --healthcheck: ask /healthz and exit */
};


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-sink [options]\n"
            "\n"
            "Writes the progress topic (pull requests and backfill progress) to Postgres,\n"
            "exactly once: rows and consumed offsets commit in one transaction per batch.\n"
            "Applies the schema migrations at startup. Runs until SIGTERM/SIGINT.\n"
            "\n"
            "Sink:\n"
            "  -G, --group ID          consumer group (env " CLI_SINK_GROUP_ENV ", default " CLI_SINK_GROUP ")\n"
            "%s"
            "  --batch-size N          events per transaction at most (default 50; each holds up to 100 PRs)\n"
            "  --batch-ms N            longest wait to fill a batch (default 200)\n"
            "  --batch-idle-ms N       write the batch once no event came for N ms (default 20;\n"
            "                          0: only --batch-size and --batch-ms close a batch)\n"
            "%s"
            "                          (/healthz: 200 once Kafka answers, the group assigned\n"
            "                          this sink its partitions and Postgres works; else 503)\n"
            "Postgres:\n"
            PG_CONN_HELP
            "\n"
            "%s"
            "\n"
            "Exit status: 0 after a clean shutdown, 1 on a runtime failure (a fatal Kafka error\n"
            "included), 2 on a usage error.\n",
            cli_group_help, cli_metrics_help, cli_common_help);
}

static int sink_option(int opt, const char *arg, void *ctx)
{
    struct sink_opts *o = ctx;
    struct sink_config *cfg = o->cfg;
    switch (opt) {
    case CLI_OPT_METRICS: o->metrics = arg; return 0;
    case CLI_OPT_HEALTHCHECK: o->healthcheck = 1; return 0;
    case 'G': cfg->group = arg; return 0;
    case OPT_BATCH_SIZE: return cli_parse_int("--batch-size", arg, 1, 1000000, &cfg->batch_size);
    case OPT_BATCH_MS: return cli_parse_int("--batch-ms", arg, 0, 60000, &cfg->batch_ms);
    case OPT_BATCH_IDLE_MS: return cli_parse_int("--batch-idle-ms", arg, 0, 60000, &cfg->batch_idle_ms);
    default: return -1;
    }
}

/* Returns CLI_RUN, or the exit status (cli_parse). */
static int parse_args(int argc, char **argv, struct cli_common *c, struct sink_opts *o)
{
    static const struct option longopts[] = {CLI_LONGOPTS,
                                             CLI_GROUP_LONGOPTS,
                                             CLI_METRICS_LONGOPTS,
                                             {"group", required_argument, 0, 'G'},
                                             {"batch-size", required_argument, 0, OPT_BATCH_SIZE},
                                             {"batch-ms", required_argument, 0, OPT_BATCH_MS},
                                             {"batch-idle-ms", required_argument, 0, OPT_BATCH_IDLE_MS},
                                             {0, 0, 0, 0}};
    const struct cli_spec spec = {"G:", longopts, sink_option, o, usage, 0, NULL};
    o->cfg->group = cli_env(CLI_SINK_GROUP_ENV, o->cfg->group);
    return cli_parse(c, &spec, argc, argv);
}

/* Connects and migrates, retrying with backoff until it works or a stop
 * is requested. */
static pgw *connect_db(const char *conninfo)
{
    char err[512];
    int delay_ms = 500;
    while (!cli_stop_requested) {
        pgw *w = pgw_new(conninfo, err, sizeof err);
        if (w && pgw_migrate(w, err, sizeof err) >= 0) {
            sm_set_postgres_ok(1, NULL);
            return w;
        }
        pgw_free(w);
        sm_set_postgres_ok(0, err);
        log_warn("Postgres not ready: %s; retrying in %d ms", err, delay_ms);
        for (int slept = 0; slept < delay_ms && !cli_stop_requested; slept += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct cli_common common;
    struct sink_config cfg = {.group = CLI_SINK_GROUP, .batch_size = 50, .batch_ms = 200,
                              .batch_idle_ms = 20};
    struct sink_opts opts = {&cfg, NULL, 0};
    const char *conninfo = getenv("DATABASE_URL"), *metrics_at;
    struct metrics_http *mh = NULL;
    sink *s = NULL;
    pgw *db;
    char err[512];
    int pr, rc = 1;

    log_init("sink");
    if (cli_common_init(&common))
        return 2;
    if ((pr = parse_args(argc, argv, &common, &opts)) != CLI_RUN) {
        cli_common_free(&common);
        return pr;
    }
    if ((pr = cli_metrics_resolve("backfill-sink", opts.metrics, opts.healthcheck,
                                  &metrics_at)) != CLI_RUN) {
        cli_common_free(&common);
        return pr;
    }
    sm_init();
    kafka_lag_metrics_watch(common.progress_topic);
    if (metrics_at) {
        /* up before Postgres and Kafka: /healthz says what it waits for */
        mh = metrics_http_start(metrics_at, metrics_default(), sm_health, NULL, err, sizeof err);
        if (!mh) {
            log_error("--metrics %s: %s", metrics_at, err);
            cli_common_free(&common);
            return 1;
        }
        log_info("serving metrics on %s (port %d): /metrics and /healthz", metrics_at,
                 metrics_http_port(mh));
    }
    cli_stop_signals(NULL);

    db = connect_db(conninfo ? conninfo : "");
    if (!db) {
        metrics_http_stop(mh);
        cli_common_free(&common);
        return 0; /* stopped while waiting for Postgres */
    }
    cfg.topic = common.progress_topic;
    cfg.stop = &cli_stop_requested;
    err[0] = '\0';
    s = sink_new(&common, &cfg, db, err, sizeof err); /* takes db */
    if (!s) {
        if (err[0])
            log_error("%s", err);
        else
            rc = 0; /* stopped while waiting for Kafka */
        goto done;
    }
    log_info("writing %s to Postgres as group %s", cfg.topic, cfg.group);
    rc = sink_run(s);
    log_info("stopped; leaving group %s", cfg.group);
done:
    sink_free(s);
    metrics_http_stop(mh);
    cli_common_free(&common);
    return rc;
}
