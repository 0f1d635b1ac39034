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
#include "log.h"
#include "pg_writer.h"
#include "sink_batch.h"

enum { OPT_GROUP = CLI_OPT_FIRST_FREE, OPT_BATCH_SIZE, OPT_BATCH_MS, OPT_BATCH_IDLE_MS };

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

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
            "  -G, --group ID          consumer group (env BACKFILL_SINK_GROUP, default backfill-sink)\n"
            "%s"
            "  --batch-size N          events per transaction at most (default 50; each holds up to 100 PRs)\n"
            "  --batch-ms N            longest wait to fill a batch (default 200)\n"
            "  --batch-idle-ms N       write the batch once no event came for N ms (default 20;\n"
            "                          0: only --batch-size and --batch-ms close a batch)\n"
            "Postgres:\n"
            "  env DATABASE_URL        libpq connection string or URI (may hold a password; it is\n"
            "                          never logged). Unset: libpq defaults (PGHOST, PGUSER, ...).\n"
            "\n"
            "%s"
            "\n"
            "Exit status: 0 after a clean shutdown, 1 on a runtime failure (a fatal Kafka error\n"
            "included), 2 on a usage error.\n",
            cli_group_help, cli_common_help);
}

static int parse_args(int argc, char **argv, struct cli_common *c, struct sink_config *cfg)
{
    static const struct option longopts[] = {CLI_LONGOPTS,
                                             CLI_GROUP_LONGOPTS,
                                             {"group", required_argument, 0, 'G'},
                                             {"batch-size", required_argument, 0, OPT_BATCH_SIZE},
                                             {"batch-ms", required_argument, 0, OPT_BATCH_MS},
                                             {"batch-idle-ms", required_argument, 0, OPT_BATCH_IDLE_MS},
                                             {0, 0, 0, 0}};
    int opt, bad = 0;
    const char *g = getenv("BACKFILL_SINK_GROUP");
    if (g && g[0])
        cfg->group = g;
    while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "G:", longopts, NULL)) != -1) {
        enum cli_result r = cli_common_option(c, opt, optarg);
        if (r == CLI_EXIT_OK)
            return 1;
        if (r == CLI_USAGE_ERROR)
            return -1;
        if (r == CLI_HANDLED)
            continue;
        if (opt == 'G')
            cfg->group = optarg;
        else if (opt == OPT_BATCH_SIZE)
            bad |= cli_parse_int("--batch-size", optarg, 1, 1000000, &cfg->batch_size);
        else if (opt == OPT_BATCH_MS)
            bad |= cli_parse_int("--batch-ms", optarg, 0, 60000, &cfg->batch_ms);
        else if (opt == OPT_BATCH_IDLE_MS)
            bad |= cli_parse_int("--batch-idle-ms", optarg, 0, 60000, &cfg->batch_idle_ms);
        else
            return -1;
    }
    if (bad)
        return -1;
    if (c->want_help) {
        usage(stdout);
        return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Connects and migrates, retrying with backoff until it works or a stop
 * is requested. */
static pgw *connect_db(const char *conninfo)
{
    char err[512];
    int delay_ms = 500;
    while (!stop_requested) {
        pgw *w = pgw_new(conninfo, err, sizeof err);
        if (w && pgw_migrate(w, err, sizeof err) >= 0)
            return w;
        pgw_free(w);
        log_warn("Postgres not ready: %s; retrying in %d ms", err, delay_ms);
        for (int slept = 0; slept < delay_ms && !stop_requested; slept += 100) {
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
    struct sink_config cfg = {.group = "backfill-sink", .batch_size = 50, .batch_ms = 200,
                              .batch_idle_ms = 20};
    struct sigaction sa;
    const char *conninfo = getenv("DATABASE_URL");
    sink *s = NULL;
    pgw *db;
    char err[512];
    int pr, rc = 1;

    log_init("sink");
    if (cli_common_init(&common))
        return 2;
    pr = parse_args(argc, argv, &common, &cfg);
    if (pr != 0) {
        if (pr < 0)
            fprintf(stderr, "Try 'backfill-sink --help'.\n");
        cli_common_free(&common);
        return pr > 0 ? 0 : 2;
    }
    cli_common_apply(&common);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    db = connect_db(conninfo ? conninfo : "");
    if (!db) {
        cli_common_free(&common);
        return 0; /* stopped while waiting for Postgres */
    }
    cfg.topic = common.progress_topic;
    cfg.stop = &stop_requested;
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
    cli_common_free(&common);
    return rc;
}
