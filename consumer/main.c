/* backfill-consumer: a worker of the backfill-workers group. It runs up to
 * --jobs jobs at once, each from a different one of its assigned
 * partitions of the jobs topic and each with its own GitHub fetcher
 * thread; this thread owns every job's state and steps each one (see
 * job.h). Each partition is fetched at most one message ahead: that
 * message is held (held.h, the partition paused) until a slot is free and
 * the partition's running job, if any, is done, so the next job starts
 * the moment one ends; the loop keeps polling, so the group never
 * considers the worker dead. A revoke of a job's partition or SIGTERM/SIGINT stops the
 * job at the next chunk boundary — its checkpoint is already committed —
 * and whoever owns the partition next resumes it. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "github.h"
#include "github_policy.h"
#include "isotime.h"
#include "credentials.h"
#include "fetcher.h"
#include "github_pace.h"
#include "held.h"
#include "job.h"
#include "kafka.h"
#include "kafka_group.h"
#include "kafka_health.h"
#include "kafka_lag_metrics.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "publisher.h"
#include "pauses.h"
#include "worker_metrics.h"

enum {
    OPT_GROUP = CLI_OPT_FIRST_FREE,
    OPT_URL,
    OPT_TOKEN_FILE,
    OPT_PAGE_SIZE,
    OPT_CHUNK_PAUSE,
    OPT_RETRIES,
    OPT_RETRY_BASE,
    OPT_HTTP_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_INSTANCE,
    OPT_PRINT_QUERY,
    OPT_RESERVE,
    OPT_SECONDARY_WAIT,
    OPT_JOBS,
    OPT_API_URL,
    OPT_APP_ID,
    OPT_APP_KEY,
    OPT_PACE_POINTS,
    OPT_PACE_CONCURRENCY
};

struct consumer_opts {
    struct cli_common common;
    const char *group;       /* borrowed */
    const char *url;         /* borrowed */
    const char *token_file;  /* borrowed */
    const char *api_url;     /* borrowed, NULL = from url */
    const char *app_id;      /* borrowed, NULL = no App */
    const char *app_key_file; /* borrowed */
    const char *instance_id; /* borrowed, NULL = dynamic membership */
    int page_size, chunk_pause_ms, retries, retry_base_ms, http_timeout_ms, connect_timeout_ms;
    int rate_limit_reserve, secondary_wait_ms, jobs; /* reserve -1: from the concurrency */
    int pace_points, pace_concurrency;
    int print_query; /* --print-query: print the GraphQL document and exit */
    const char *metrics; /* borrowed: --metrics ADDR:PORT, or NULL = no metrics server */
    int healthcheck;     /* --healthcheck: ask /healthz and exit */
};

#define MAX_JOBS 16
#define DEFAULT_JOBS 4
/* GitHub's secondary limits less 10%, for the account's other clients and
 * for the moment of a rebalance */
#define DEFAULT_PACE_POINTS (GH_PACE_POINTS_PER_MINUTE * 9 / 10)
#define DEFAULT_PACE_CONCURRENCY (GH_PACE_CONCURRENCY * 9 / 10)

struct consumer_state {
    struct worker_ctx ctx;
    int njobs;                    /* slots: jobs run at once (--jobs) */
    job_run *jobs[MAX_JOBS];      /* owned: the job in each slot, NULL when free */
    fetcher *fetchers[MAX_JOBS];  /* owned: each slot's GitHub request thread */
    struct publisher_tally tallies[MAX_JOBS]; /* each slot's Kafka deliveries */
    double slot_freed[MAX_JOBS];  /* isotime_mono() when the slot's last job ended, 0 = none yet */
    cancels *ctl;                 /* owned: cancellations from the control topic */
    cred_pool *creds;             /* owned: the GitHub credentials */
    int creds_usable;             /* as last seen: 0 = take no new jobs */
    pauses *pauses;               /* owned: which partitions we paused */
    struct kafka_topic jobs_topic; /* name borrowed; partitions wanted and found */
    const char *brokers;          /* borrowed: for the advice in warnings */
    struct kafka_group_hooks group_hooks; /* what the worker does around a rebalance */
    rd_kafka_queue_t *loop_queue; /* owned handle: the consumer's queue the loop waits on */
    commits *commits;             /* owned: the jobs topic's commits (commits.h) */
    held *held;                   /* owned: job messages ready for the next free slot */
};

#define SHUTDOWN_FINISH_MS 10000 /* to finish the chunk in hand at shutdown or revoke */

/* What /healthz reads from the metrics server's thread: written by the
 * main thread (the rebalance hooks, the loop), hence atomics. */
static atomic_int health_assigned;     /* partitions of the jobs topic we own */
static atomic_int health_joined;       /* an assignment came (even an empty one), not lost since */
static atomic_int health_creds_usable; /* as the loop last saw cred_pool_usable */
static const char *health_group;       /* borrowed, set before the server starts */

static volatile sig_atomic_t stop_requested; /* first SIGTERM/SIGINT: stop at the chunk boundary */
static atomic_int abort_requested; /* second one: cancel the GitHub request in flight (read by
                                    * the fetcher threads; lock-free, so safe in a handler) */

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested)
        atomic_store(&abort_requested, 1);
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-consumer [options]\n"
            "\n"
            "Runs repository/backfill.initial jobs from the jobs topic as a member of a consumer\n"
            "group: fetches each repository's recent pull requests from GitHub's GraphQL API and\n"
            "publishes them and progress events to the progress topic. Runs until SIGTERM/SIGINT.\n"
            "\n"
            "Worker:\n"
            "  -G, --group ID          consumer group (env " CLI_WORKER_GROUP_ENV ", default " CLI_WORKER_GROUP ")\n"
            "%s"
            "  --instance-id ID        static membership group.instance.id (env BACKFILL_INSTANCE_ID)\n"
            "  -j, --jobs N            jobs run at once, each on its own partition and with its own\n"
            "                          GitHub request in flight, 1..16 (env BACKFILL_JOBS, default 4)\n"            "  --page-size N           pull requests per GraphQL request, 1..100 (default 100)\n"
            "  --chunk-pause-ms N      pause after every chunk (default 0)\n"
            "  --retries N             retries of a failing request before the job fails (default 3)\n"
            "  --retry-base-ms N       first retry backoff, doubled per retry, plus jitter\n"
            "                          (env BACKFILL_RETRY_BASE_MS, default 1000)\n"
            "GitHub:\n"
            "  --github-url URL        GraphQL endpoint (env GITHUB_GRAPHQL_URL, default\n"
            "                          " GH_DEFAULT_URL ")\n"
            "GitHub credentials (README: \"GitHub credentials\"; secrets only from the environment\n"
            "or files, never as arguments):\n"
            "  --token-file PATH       personal tokens, one a line (# comments); re-read when it\n"
            "                          changes (env GITHUB_TOKEN_FILE); otherwise env GITHUB_TOKEN\n"
            "  --app-id ID             a GitHub App's id (env GITHUB_APP_ID) ...\n"
            "  --app-key-file PATH     ... and its PEM private key (env GITHUB_APP_PRIVATE_KEY_FILE);\n"
            "                          each repository goes out on the installation covering its\n"
            "                          owner, with access tokens renewed before they expire\n"
            "  --github-api-url URL    REST base for the App and token calls (env GITHUB_API_URL,\n"
            "                          default: the GraphQL URL without /graphql; .../api/v3 for\n"
            "                          GitHub Enterprise's .../api/graphql)\n"
            "  --http-timeout-ms N     total timeout per request (default 30000); one request is\n"
            "                          in flight per job, --jobs per worker\n"
            "  --connect-timeout-ms N  connect timeout (default 10000)\n"
            "Pace (per GitHub account, for the whole group: each worker takes the share its\n"
            "partitions are of the jobs topic's):\n"
            "  --rate-limit-reserve N  primary budget points left untouched for the requests in\n"
            "                          flight elsewhere: wait for the reset when fewer than cost + N\n"
            "                          remain (env BACKFILL_RATE_LIMIT_RESERVE, default: the\n"
            "                          group's requests in flight on an account, less one)\n"
            "  --pace-points-per-minute N  secondary limit kept to (env\n"
            "                          BACKFILL_PACE_POINTS_PER_MINUTE, default %d; GitHub: %d; 0 off)\n"
            "  --pace-concurrency N    requests in flight kept to (env BACKFILL_PACE_CONCURRENCY,\n"
            "                          default %d; GitHub: %d; 0 off)\n"
            "  --secondary-wait-ms N   wait after a secondary rate limit without retry-after\n"
            "                          (env BACKFILL_SECONDARY_WAIT_MS, default 60000)\n"
            "  --print-query           print the GraphQL document sent to GitHub and exit\n"
            "Metrics (/healthz says ready once the worker is in its group, with Kafka reachable\n"
            "and a usable GitHub credential):\n"
            "%s"
            "\n"
            "%s"
            "\n"
            "SIGTERM/SIGINT: finish the request in flight and its chunk (publish, commit), leave\n"
            "the group and exit 0; a second signal cancels the request in flight.\n"
            "Exit status: 0 after a clean shutdown, 1 on a runtime failure (a fatal Kafka error\n"
            "included: nothing more is committed, the partitions move on), 2 on a usage error.\n",
            cli_group_help, DEFAULT_PACE_POINTS, GH_PACE_POINTS_PER_MINUTE,
            DEFAULT_PACE_CONCURRENCY, GH_PACE_CONCURRENCY, cli_metrics_help, cli_common_help);
}

static int consumer_option(int c, const char *arg, void *ctx)
{
    struct consumer_opts *o = ctx;
    switch (c) {
    case 'G': o->group = arg; return 0;
    case OPT_URL: o->url = arg; return 0;
    case OPT_TOKEN_FILE: o->token_file = arg; return 0;
    case OPT_API_URL: o->api_url = arg; return 0;
    case OPT_APP_ID: o->app_id = arg; return 0;
    case OPT_APP_KEY: o->app_key_file = arg; return 0;
    case OPT_PACE_POINTS: return cli_parse_int("--pace-points-per-minute", arg, 0, 1000000, &o->pace_points);
    case OPT_PACE_CONCURRENCY: return cli_parse_int("--pace-concurrency", arg, 0, 100000, &o->pace_concurrency);
    case OPT_INSTANCE: o->instance_id = arg; return 0;
    case OPT_PAGE_SIZE: return cli_parse_int("--page-size", arg, 1, GH_PAGE_MAX, &o->page_size);
    case OPT_CHUNK_PAUSE: return cli_parse_int("--chunk-pause-ms", arg, 0, 3600000, &o->chunk_pause_ms);
    case OPT_RETRIES: return cli_parse_int("--retries", arg, 0, 100, &o->retries);
    case OPT_RETRY_BASE: return cli_parse_int("--retry-base-ms", arg, 1, 3600000, &o->retry_base_ms);
    case OPT_HTTP_TIMEOUT: return cli_parse_int("--http-timeout-ms", arg, 100, 3600000, &o->http_timeout_ms);
    case OPT_CONNECT_TIMEOUT: return cli_parse_int("--connect-timeout-ms", arg, 100, 600000, &o->connect_timeout_ms);
    case OPT_RESERVE: return cli_parse_int("--rate-limit-reserve", arg, 0, 1000000, &o->rate_limit_reserve);
    case 'j': return cli_parse_int("--jobs", arg, 1, MAX_JOBS, &o->jobs);
    case OPT_SECONDARY_WAIT: return cli_parse_int("--secondary-wait-ms", arg, 0, 3600000, &o->secondary_wait_ms);
    case OPT_PRINT_QUERY: o->print_query = 1; return 0;
    case CLI_OPT_METRICS: o->metrics = arg; return 0;
    case CLI_OPT_HEALTHCHECK: o->healthcheck = 1; return 0;
    default: return -1;
    }
}

/* Returns CLI_RUN, or the exit status (cli_parse). */
static int parse_args(int argc, char **argv, struct consumer_opts *o)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS,
        CLI_GROUP_LONGOPTS,
        CLI_METRICS_LONGOPTS,
        {"group", required_argument, 0, 'G'},
        {"github-url", required_argument, 0, OPT_URL},
        {"token-file", required_argument, 0, OPT_TOKEN_FILE},
        {"page-size", required_argument, 0, OPT_PAGE_SIZE},
        {"chunk-pause-ms", required_argument, 0, OPT_CHUNK_PAUSE},
        {"retries", required_argument, 0, OPT_RETRIES},
        {"retry-base-ms", required_argument, 0, OPT_RETRY_BASE},
        {"http-timeout-ms", required_argument, 0, OPT_HTTP_TIMEOUT},
        {"connect-timeout-ms", required_argument, 0, OPT_CONNECT_TIMEOUT},
        {"instance-id", required_argument, 0, OPT_INSTANCE},
        {"print-query", no_argument, 0, OPT_PRINT_QUERY},
        {"rate-limit-reserve", required_argument, 0, OPT_RESERVE},
        {"secondary-wait-ms", required_argument, 0, OPT_SECONDARY_WAIT},
        {"jobs", required_argument, 0, 'j'},
        {"github-api-url", required_argument, 0, OPT_API_URL},
        {"app-id", required_argument, 0, OPT_APP_ID},
        {"app-key-file", required_argument, 0, OPT_APP_KEY},
        {"pace-points-per-minute", required_argument, 0, OPT_PACE_POINTS},
        {"pace-concurrency", required_argument, 0, OPT_PACE_CONCURRENCY},
        {0, 0, 0, 0}};
    const struct cli_spec spec = {"G:j:", longopts, consumer_option, o, usage, 0, NULL};
    int rc;

    o->group = cli_env(CLI_WORKER_GROUP_ENV, CLI_WORKER_GROUP);
    o->url = cli_env("GITHUB_GRAPHQL_URL", GH_DEFAULT_URL);
    o->token_file = cli_env("GITHUB_TOKEN_FILE", NULL);
    o->api_url = cli_env("GITHUB_API_URL", NULL);
    o->app_id = cli_env("GITHUB_APP_ID", NULL);
    o->app_key_file = cli_env("GITHUB_APP_PRIVATE_KEY_FILE", NULL);
    o->instance_id = cli_env("BACKFILL_INSTANCE_ID", NULL);
    if (cli_env_int("BACKFILL_RETRY_BASE_MS", 1, 3600000, &o->retry_base_ms) ||
        cli_env_int("BACKFILL_RATE_LIMIT_RESERVE", 0, 1000000, &o->rate_limit_reserve) ||
        cli_env_int("BACKFILL_SECONDARY_WAIT_MS", 0, 3600000, &o->secondary_wait_ms) ||
        cli_env_int("BACKFILL_JOBS", 1, MAX_JOBS, &o->jobs) ||
        cli_env_int("BACKFILL_PACE_POINTS_PER_MINUTE", 0, 1000000, &o->pace_points) ||
        cli_env_int("BACKFILL_PACE_CONCURRENCY", 0, 100000, &o->pace_concurrency))
        return CLI_EXIT_USAGE;
    if ((rc = cli_parse(&o->common, &spec, argc, argv)) != CLI_RUN)
        return rc;
    if ((rc = cli_metrics_resolve("backfill-consumer", o->metrics, o->healthcheck,
                                  &o->metrics)) != CLI_RUN)
        return rc;
    if (o->print_query) {
        fputs(gh_query_document(), stdout);
        return CLI_EXIT_SUCCESS;
    }
    return CLI_RUN;
}

/* The slot whose job works on topic[partition], or -1. */
static int job_on(const struct consumer_state *cs, const char *topic, int32_t partition)
{
    for (int i = 0; i < cs->njobs; i++)
        if (cs->jobs[i] && job_run_partition(cs->jobs[i]) == partition &&
            strcmp(job_run_topic(cs->jobs[i]), topic) == 0)
            return i;
    return -1;
}

/* A partition is paused while its next job message is held (held.h):
 * for a slot, or until the job of the partition that runs now is done
 * (same repository, same order). So a partition is never more than one
 * message ahead of its jobs, and a job's successor is there the moment
 * it ends. Every partition is paused while no GitHub credential is
 * usable; the rest are resumed. Applied to `parts`, or to the whole
 * assignment when parts is NULL. */
static void update_pauses(struct consumer_state *cs, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_t *rk = cs->ctx.consumer;
    rd_kafka_topic_partition_list_t *a = parts, *pause, *resume;
    int none = !cs->creds_usable;

    if (!a && (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a))
        return;
    pause = rd_kafka_topic_partition_list_new(a->cnt + 1);
    resume = rd_kafka_topic_partition_list_new(a->cnt + 1);
    for (int i = 0; pause && resume && i < a->cnt; i++) {
        int busy = none || held_has(cs->held, a->elems[i].topic, a->elems[i].partition);
        rd_kafka_topic_partition_list_add(busy ? pause : resume, a->elems[i].topic,
                                          a->elems[i].partition);
    }
    if (pause && resume)
        pauses_apply(cs->pauses, rk, pause, resume, a != parts);
    if (pause)
        rd_kafka_topic_partition_list_destroy(pause);
    if (resume)
        rd_kafka_topic_partition_list_destroy(resume);
    if (a != parts)
        rd_kafka_topic_partition_list_destroy(a);
}

/* Stops the running job at a chunk boundary: finishes the chunk in hand
 * (acknowledgements and commit, at most SHUTDOWN_FINISH_MS) unless the
 * partition is already lost, so whoever resumes it refetches nothing. */
static void stop_job(struct consumer_state *cs, int slot, const char *why, int lost)
{
    job_run *jr = cs->jobs[slot]; /* owned by cs until freed here */
    int r = 0;
    if (!job_run_at_boundary(jr) && !lost)
        r = job_run_finish_chunk(jr, SHUTDOWN_FINISH_MS);
    if (r > 0)
        log_info("%s: finished while stopping (%s)", job_run_key(jr), why);
    else if (job_run_at_boundary(jr))
        log_info("%s: stopped at a chunk boundary (%s, %s[%d]); its checkpoint is committed and "
                 "whoever owns the partition next resumes from it", job_run_key(jr), why,
                 job_run_topic(jr), (int)job_run_partition(jr));
    else
        log_warn("%s: stopped mid-chunk (%s, %s[%d]); whoever resumes the job fetches that "
                 "chunk again", job_run_key(jr), why, job_run_topic(jr),
                 (int)job_run_partition(jr));
    job_run_free(jr);
    cs->jobs[slot] = NULL;
    cs->slot_freed[slot] = isotime_mono();
}

/* Says, when the jobs topic has fewer partitions than configured, how
 * few of the group's consumers can work (one partition feeds one member)
 * and how to add partitions. At start and on every assignment, so that
 * whoever reads the log of any member sees it. */
static void warn_jobs_partitions(const struct consumer_state *cs)
{
    char what[96], warning[768];
    const struct kafka_topic *t = &cs->jobs_topic;
    snprintf(what, sizeof what, "at most %d of the consumers in this group can work", t->found);
    if (kafka_topic_shortfall(t, cs->brokers, what, warning, sizeof warning))
        log_warn("jobs %s", warning);
}

/* The worker's share of the group's GitHub pace: its partitions of the
 * jobs topic over all of them (github_pace.h). */
static void update_share(struct consumer_state *cs, rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    int mine = 0;
    if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return;
    for (int i = 0; i < a->cnt; i++)
        mine += strcmp(a->elems[i].topic, cs->jobs_topic.name) == 0;
    rd_kafka_topic_partition_list_destroy(a);
    atomic_store(&health_assigned, mine);
    cred_pool_set_share(cs->creds, cs->jobs_topic.found > 0 ? (double)mine / cs->jobs_topic.found
                                                            : 0, cs->njobs);
}

/* kafka_group hooks: a new assignment may come with a changed partition
 * count (someone added partitions) and keeps no pause flag of ours. */
static void after_assign(void *ctx, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    struct consumer_state *cs = ctx; /* borrowed */
    int found = kafka_topic_partitions(rk, cs->jobs_topic.name, 2000);
    atomic_store(&health_joined, 1);
    if (found > 0)
        cs->jobs_topic.found = found;
    warn_jobs_partitions(cs);
    update_share(cs, rk);
    /* librdkafka keeps a partition's pause flag across unassign and
     * assign: set it explicitly either way. */
    update_pauses(cs, (rd_kafka_topic_partition_list_t *)parts);
}

/* A job on a revoked partition stops at its chunk boundary (finishing the
 * chunk in hand unless the partition is already lost). */
static void before_revoke(void *ctx, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                          int lost)
{
    struct consumer_state *cs = ctx; /* borrowed */
    if (lost)
        atomic_store(&health_joined, 0); /* out of the group until the next assignment */
    for (int i = 0; i < parts->cnt; i++) {
        int slot = job_on(cs, parts->elems[i].topic, parts->elems[i].partition);
        if (slot >= 0)
            stop_job(cs, slot, lost ? "partition lost" : "partition revoked", lost);
    }
    held_drop(cs->held, parts); /* the next owner reads them again */
    if (cs->commits) {
        /* the final commits of finished jobs land before the next owner
         * reads the committed offsets */
        if (!lost && commits_flush(cs->commits, parts, SHUTDOWN_FINISH_MS) != 0)
            log_warn("commits of revoked partitions still unanswered after %d ms; whoever owns "
                     "them next may run their last job again", SHUTDOWN_FINISH_MS);
        commits_forget(cs->commits, parts);
    }
    rd_kafka_resume_partitions(rk, parts); /* don't leave a pause behind (see after_assign) */
}

static void after_revoke(void *ctx, rd_kafka_t *rk)
{
    update_share(ctx, rk);
    update_pauses(ctx, NULL);
}

static rd_kafka_t *consumer_new(const struct consumer_opts *o, struct consumer_state *cs)
{
    const char *defaults[] = {"group.id", o->group, "client.id", "backfill-consumer",
                              "enable.auto.commit", "false", "enable.auto.offset.store", "false",
                              "auto.offset.reset", "earliest",
                              "partition.assignment.strategy", "cooperative-sticky",
                              "session.timeout.ms", "10000", "heartbeat.interval.ms", "1000",
                              "max.poll.interval.ms", "300000", "fetch.wait.max.ms", "10",
                              "group.protocol", o->common.group_protocol,
                              "group.instance.id", o->instance_id, NULL};
    char err[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;

    if (!o->instance_id)
        defaults[sizeof defaults / sizeof defaults[0] - 3] = NULL; /* no static membership */
    conf = kafka_conf_new(o->common.brokers, defaults, o->common.props, err, sizeof err);
    if (!conf) {
        log_error("%s", err);
        return NULL;
    }
    cs->group_hooks = (struct kafka_group_hooks){NULL, after_assign, before_revoke, after_revoke, cs};
    kafka_group_install(conf, &cs->group_hooks);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        log_error("cannot create the Kafka consumer: %s", err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk); /* rd_kafka_new owns conf */
    return rk;
}

/* A message that arrived while a job runs: put it back by seeking. */
static void give_back(rd_kafka_t *rk, rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *e;
    if (l) {
        rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
            msg->offset;
        e = rd_kafka_seek_partitions(rk, l, 5000);
        if (e)
            rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(l);
    }
    rd_kafka_message_destroy(msg);
}

/* Starts a job of msg (taken) in the free slot. */
static void start_job(struct consumer_state *cs, int slot, rd_kafka_message_t *msg)
{
    cs->jobs[slot] = job_run_start(&cs->ctx, msg, cs->fetchers[slot], &cs->tallies[slot],
                                   cs->slot_freed[slot] > 0 ? isotime_mono() - cs->slot_freed[slot]
                                                            : -1);
}

static int free_slot(const struct consumer_state *cs)
{
    for (int i = 0; i < cs->njobs; i++)
        if (!cs->jobs[i])
            return i;
    return -1;
}

static int partition_busy(void *ctx, const char *topic, int32_t partition)
{
    return job_on(ctx, topic, partition) >= 0;
}

/* Fills free slots with held messages whose partitions have no job. */
static void start_held(struct consumer_state *cs)
{
    int slot, started = 0;
    rd_kafka_message_t *msg;
    while (cs->creds_usable && (slot = free_slot(cs)) >= 0 &&
           (msg = held_take(cs->held, partition_busy, cs))) {
        start_job(cs, slot, msg);
        started = 1;
    }
    if (started)
        update_pauses(cs, NULL);
}

/* A job message: its job starts in a free slot, or it waits in `held`
 * (its partition paused) until its partition's job is done or a slot is
 * free. */
static void handle_message(struct consumer_state *cs, rd_kafka_message_t *msg)
{
    rd_kafka_t *rk = cs->ctx.consumer;
    const char *topic;
    int slot;
    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("consumer: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        return;
    }
    topic = rd_kafka_topic_name(msg->rkt);
    slot = free_slot(cs);
    if (slot >= 0 && cs->creds_usable && job_on(cs, topic, msg->partition) < 0 &&
        !held_has(cs->held, topic, msg->partition)) {
        start_job(cs, slot, msg); /* takes msg */
        update_pauses(cs, NULL);
    } else if (held_put(cs->held, msg) == 0) {
        update_pauses(cs, NULL);
    } else {
        give_back(rk, msg); /* a second one, fetched before the pause took effect */
    }
}

/* Runs each job's next step if due; returns how long the loop may block. */
static int run_jobs(struct consumer_state *cs)
{
    double next = 0.2, now = (double)isotime_now_ms() / 1000.0;
    for (int i = 0; i < cs->njobs; i++) {
        double wait;
        if (!cs->jobs[i])
            continue;
        wait = job_run_not_before(cs->jobs[i]) - now;
        if (wait <= 0) {
            if (job_run_step(cs->jobs[i]) == JOB_STEP_DONE) {
                job_run_free(cs->jobs[i]);
                cs->jobs[i] = NULL;
                cs->slot_freed[i] = isotime_mono();
                start_held(cs); /* the next job starts at once */
                update_pauses(cs, NULL);
            }
            wait = 0;
        }
        if (wait < next)
            next = wait;
    }
    return next <= 0 ? 0 : (int)(next * 1000) + 1;
}

/* Wakes the loop out of its wait in rd_kafka_consumer_poll (any thread):
 * an answer from GitHub or a delivery report is there to act on. */
static void wake_loop(void *queue)
{
    rd_kafka_queue_yield(queue);
}

static void wake_loop_kafka(rd_kafka_t *rk, void *queue)
{
    (void)rk;
    rd_kafka_queue_yield(queue);
}

/* Turns the wake-ups on (queue = the loop's) or off (NULL). */
static void set_wakes(struct consumer_state *cs, rd_kafka_queue_t *queue)
{
    for (int i = 0; i < cs->njobs; i++)
        fetcher_set_wake(cs->fetchers[i], queue ? wake_loop : NULL, queue);
    publisher_set_wake(cs->ctx.ob, queue ? wake_loop_kafka : NULL, queue);
    commits_set_wake(cs->commits, queue ? wake_loop_kafka : NULL, queue);
}

/* Runs until SIGTERM/SIGINT (returns 0) or a fatal Kafka error (returns 1:
 * the running jobs stop where their last committed checkpoint is, nothing
 * more is committed, and whoever owns their partitions next resumes them). */
static int run(struct consumer_state *cs)
{
    rd_kafka_t *rk = cs->ctx.consumer;
    int fatal = 0;
    char why[256];
    while (!stop_requested && !(fatal = kafka_health_fatal(why, sizeof why))) {
        int timeout = run_jobs(cs);
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, timeout);
        if (msg)
            handle_message(cs, msg);
        publisher_poll(cs->ctx.ob);
        commits_poll(cs->commits);
        cancels_poll(cs->ctl);
        if (cred_pool_usable(cs->creds) != cs->creds_usable) {
            cs->creds_usable = !cs->creds_usable; /* none left: pause all; back: resume */
            atomic_store(&health_creds_usable, cs->creds_usable);
            update_pauses(cs, NULL);
            for (int i = 0; cs->creds_usable && i < cs->njobs; i++)
                if (cs->jobs[i])
                    job_run_wake(cs->jobs[i]);
            start_held(cs);
        }
    }
    if (fatal)
        log_error("stopping after a fatal Kafka error (%s): committing nothing more, exiting 1 "
                  "so that the partitions move on", why);
    for (int i = 0; i < cs->njobs; i++)
        if (cs->jobs[i])
            stop_job(cs, i, fatal ? "fatal Kafka error" : "shutting down", fatal);
    held_drop(cs->held, NULL);
    if (!fatal && commits_flush(cs->commits, NULL, SHUTDOWN_FINISH_MS) != 0)
        log_warn("commits still unanswered after %d ms at shutdown; whoever owns their "
                 "partitions next may run their last job again", SHUTDOWN_FINISH_MS);
    return fatal ? 1 : 0;
}

/* /healthz (metrics_http.h; runs in the server's thread, reads atomics
 * and kafka_health's own locked state only). Ready when no fatal Kafka
 * error happened, no broker is known unreachable, a GitHub credential is
 * usable, and the worker is in its group: owning a partition of the jobs
 * topic, or joined without one (a sixth worker on five partitions is
 * healthy and idle: restarting it would change nothing). */
static int consumer_health(void *ctx, char *why, size_t len)
{
    (void)ctx;
    if (!kafka_health_ready(why, len))
        return 0;
    if (!atomic_load(&health_creds_usable)) {
        snprintf(why, len, "no valid GitHub credential");
        return 0;
    }
    if (atomic_load(&health_assigned) == 0 && !atomic_load(&health_joined) &&
        !kafka_lag_metrics_group_joined()) {
        snprintf(why, len, "not yet a member of group %s", health_group);
        return 0;
    }
    return 1;
}

/* Registers what the worker reports and starts the metrics server when
 * --metrics asked for one. 0, or -1 after logging why (a port in use). */
static int start_metrics(const struct consumer_opts *o, struct metrics_http **server)
{
    char err[512];
    *server = NULL;
    if (wm_init() == 0)
        metrics_build_info(metrics_default(), "backfill-consumer", BACKFILL_VERSION,
                           rd_kafka_version_str());
    kafka_lag_metrics_watch(o->common.jobs_topic);
    if (!o->metrics)
        return 0;
    health_group = o->group;
    *server = metrics_http_start(o->metrics, metrics_default(), consumer_health, NULL, err,
                                 sizeof err);
    if (!*server) {
        log_error("cannot serve metrics on %s: %s", o->metrics, err);
        return -1;
    }
    log_info("serving metrics on http://%s/metrics (port %d)", o->metrics,
             metrics_http_port(*server));
    return 0;
}

/* glibc gives each thread that allocates its own arena; with a fetcher
 * thread per slot parsing ~330 KB pages, peak RSS with --jobs 4 was
 * 24.1 MB, 19.3 MB with one arena (8 jobs of 2 pages each). The threads
 * mostly wait on the network, so the shared lock costs nothing visible. */
static void limit_malloc_arenas(void)
{
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 1);
#endif
}

/* The credentials from the options; NULL after logging why. */
static cred_pool *load_credentials(const struct consumer_opts *o)
{
    struct cred_conf c = {.graphql_url = o->url, .rest_url = o->api_url,
                          .token_file = o->token_file,
                          .token = o->token_file ? NULL : getenv("GITHUB_TOKEN"),
                          .app_id = o->app_id, .app_key_file = o->app_key_file,
                          .connect_timeout_ms = o->connect_timeout_ms,
                          .http_timeout_ms = o->http_timeout_ms,
                          .reserve = o->rate_limit_reserve, .points_per_minute = o->pace_points,
                          .concurrency = o->pace_concurrency};
    char err[512];
    cred_pool *p = cred_pool_new(&c, err, sizeof err);
    if (!p)
        log_error("%s", err);
    return p;
}

int main(int argc, char **argv)
{
    struct consumer_opts o = {.page_size = GH_PAGE_MAX, .retries = 3, .retry_base_ms = 1000,
                              .http_timeout_ms = 30000, .connect_timeout_ms = 10000,
                              .rate_limit_reserve = -1, .secondary_wait_ms = 60000,
                              .jobs = DEFAULT_JOBS, .pace_points = DEFAULT_PACE_POINTS,
                              .pace_concurrency = DEFAULT_PACE_CONCURRENCY};
    struct consumer_state cs;
    struct metrics_http *server = NULL; /* owned */
    char err[1024];
    int rc = 1, pr;

    memset(&cs, 0, sizeof cs);
    log_init("consumer");
    limit_malloc_arenas();
    if (cli_common_init(&o.common))
        return 2;
    if ((pr = parse_args(argc, argv, &o)) != CLI_RUN) {
        cli_common_free(&o.common);
        return pr;
    }
    srand((unsigned)(isotime_now_ms() ^ getpid()));
    atomic_store(&health_creds_usable, 1);
    if (start_metrics(&o, &server)) { /* before any thread that counts */
        cli_common_free(&o.common);
        return 1;
    }
    cs.creds = load_credentials(&o);
    if (!cs.creds) {
        metrics_http_stop(server);
        cli_common_free(&o.common);
        return 2;
    }
    cs.creds_usable = 1;
    cred_pool_set_share(cs.creds, 0, o.jobs); /* nothing goes out before an assignment */
    cli_stop_signals(on_signal);

    cs.ctx = (struct worker_ctx){.progress_topic = o.common.progress_topic,
                                 .dlq_topic = o.common.dlq_topic,
                                 .page_size = o.page_size,
                                 .chunk_pause_ms = o.chunk_pause_ms,
                                 .max_retries = o.retries,
                                 .retry_base_ms = o.retry_base_ms,
                                 .secondary_wait_ms = o.secondary_wait_ms,
                                 .ack_timeout_ms = 30000};
    cs.ctx.creds = cs.creds;
    cs.njobs = o.jobs;
    cs.brokers = o.common.brokers;
    for (int i = 0; i < cs.njobs; i++) {
        gh_client *gh = gh_new(o.url, o.connect_timeout_ms, o.http_timeout_ms, err, sizeof err);
        if (gh)
            gh_set_cancel_flag(gh, &abort_requested);
        cs.fetchers[i] = gh ? fetcher_new(gh, err, sizeof err) : NULL; /* takes gh */
        if (!cs.fetchers[i])
            break;
    }
    if (!cs.fetchers[cs.njobs - 1]) {
        log_error("%s", err);
        goto done;
    }
    cs.ctx.ob = publisher_new(&o.common, err, sizeof err);
    if (!cs.ctx.ob) {
        log_error("cannot create the Kafka producer: %s", err);
        goto done;
    }
    struct kafka_topic topics[CLI_NTOPICS];
    int er = kafka_ensure_topics_wait(publisher_handle(cs.ctx.ob), topics,
                                      cli_topics(&o.common, topics), &stop_requested, err,
                                      sizeof err);
    if (er) {
        if (er < 0)
            log_error("%s", err);
        rc = er < 0 ? 1 : 0;
        goto done;
    }
    cs.jobs_topic = topics[CLI_TOPIC_JOBS];
    warn_jobs_partitions(&cs);
    if (kafka_topic_shortfall(&topics[CLI_TOPIC_PROGRESS], o.common.brokers,
                              "fewer sink consumers can share the work", err, sizeof err))
        log_warn("progress %s", err);
    /* without this the first job's first publish waits for librdkafka's
     * 1 s metadata scan to learn the progress topic's partitions */
    kafka_warm_topic(publisher_handle(cs.ctx.ob), o.common.progress_topic, 5000);
    if (!(cs.pauses = pauses_new())) {
        log_error("out of memory");
        goto done;
    }
    cs.ctl = cancels_new(&o.common, 10000, err, sizeof err);
    if (!cs.ctl) {
        log_error("%s", err);
        goto done;
    }
    cs.ctx.cancels = cs.ctl;
    if (!(cs.held = held_new())) {
        log_error("out of memory");
        goto done;
    }
    cs.ctx.consumer = consumer_new(&o, &cs);
    if (!cs.ctx.consumer)
        goto done;
    if (!(cs.commits = commits_new(cs.ctx.consumer))) {
        log_error("out of memory");
        goto done;
    }
    cs.ctx.commits = cs.commits;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, o.common.jobs_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(cs.ctx.consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        log_error("cannot subscribe to %s: %s", o.common.jobs_topic, rd_kafka_err2str(serr));
        goto done;
    }
    log_info("consuming %s as group %s, publishing to %s", o.common.jobs_topic, o.group,
             o.common.progress_topic);
    cs.loop_queue = rd_kafka_queue_get_consumer(cs.ctx.consumer);
    if (cs.loop_queue)
        set_wakes(&cs, cs.loop_queue);
    rc = run(&cs);
    log_info("leaving group %s", o.group);
done:
    if (cs.loop_queue) {
        set_wakes(&cs, NULL); /* nothing may yield the queue once it is gone */
        rd_kafka_queue_destroy(cs.loop_queue);
    }
    /* its queue must go before the consumer; the revoke at close finds
     * no job and nothing held any more */
    commits_free(cs.commits);
    cs.commits = NULL;
    held_drop(cs.held, NULL);
    metrics_http_stop(server); /* its health callback reads only atomics and kafka_health */
    if (cs.ctx.consumer) {
        if (kafka_group_close(cs.ctx.consumer, GROUP_CLOSE_MS))
            rd_kafka_destroy_flags(cs.ctx.consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        else
            rd_kafka_destroy(cs.ctx.consumer);
    }
    publisher_free(cs.ctx.ob);
    cancels_free(cs.ctl);
    pauses_free(cs.pauses);
    held_free(cs.held);
    for (int i = 0; i < cs.njobs; i++)
        fetcher_free(cs.fetchers[i]);
    cred_pool_free(cs.creds);
    cli_common_free(&o.common);
    return rc;
}
