/* backfill-consumer: a worker of the backfill-workers group. It takes one
 * job at a time from its assigned partitions of the jobs topic, pauses its
 * partitions while the job runs (still polling, so the group never
 * considers it dead) and runs the job step by step (see job.h). A revoke
 * of the job's partition or SIGTERM/SIGINT stops the job at the next chunk
 * boundary — its checkpoint is already committed — and whoever owns the
 * partition next resumes it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "github.h"
#include "isotime.h"
#include "job.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"

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
    OPT_PRINT_QUERY
};

struct consumer_opts {
    struct cli_common common;
    const char *group;       /* borrowed */
    const char *url;         /* borrowed */
    const char *token_file;  /* borrowed */
    const char *instance_id; /* borrowed, NULL = dynamic membership */
    int page_size, chunk_pause_ms, retries, retry_base_ms, http_timeout_ms, connect_timeout_ms;
};

struct consumer_state {
    struct worker_ctx ctx;
    job_run *job; /* owned: the running job, NULL when idle */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
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
            "  -G, --group ID          consumer group (env BACKFILL_GROUP, default backfill-workers)\n"
            "  --instance-id ID        static membership group.instance.id (env BACKFILL_INSTANCE_ID)\n"
            "  --page-size N           pull requests per GraphQL request, 1..100 (default 100)\n"
            "  --chunk-pause-ms N      pause after every chunk (default 0)\n"
            "  --retries N             retries of a failing request before the job fails (default 3)\n"
            "  --retry-base-ms N       first retry backoff, doubled per retry, plus jitter\n"
            "                          (env BACKFILL_RETRY_BASE_MS, default 1000)\n"
            "GitHub:\n"
            "  --github-url URL        GraphQL endpoint (env GITHUB_GRAPHQL_URL, default\n"
            "                          " GH_DEFAULT_URL ")\n"
            "  --token-file PATH       read the token from PATH (env GITHUB_TOKEN_FILE); otherwise\n"
            "                          env GITHUB_TOKEN. Never pass the token itself as an argument.\n"
            "  --http-timeout-ms N     total timeout per request (default 30000)\n"
            "  --connect-timeout-ms N  connect timeout (default 10000)\n"
            "  --print-query           print the GraphQL document sent to GitHub and exit\n"
            "\n"
            "%s"
            "\n"
            "Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a usage error.\n",
            cli_common_help);
}

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: expected a number in %d..%d, got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* Returns 0 to run, 1 to exit 0, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct consumer_opts *o)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS,
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
        {0, 0, 0, 0}};
    int c, bad = 0;

    o->group = env_or("BACKFILL_GROUP", "backfill-workers");
    o->url = env_or("GITHUB_GRAPHQL_URL", GH_DEFAULT_URL);
    o->token_file = env_or("GITHUB_TOKEN_FILE", NULL);
    o->instance_id = env_or("BACKFILL_INSTANCE_ID", NULL);
    if (getenv("BACKFILL_RETRY_BASE_MS") &&
        parse_int("BACKFILL_RETRY_BASE_MS", getenv("BACKFILL_RETRY_BASE_MS"), 1, 3600000,
                  &o->retry_base_ms))
        return -1;
    while ((c = getopt_long(argc, argv, CLI_SHORTOPTS "G:", longopts, NULL)) != -1) {
        enum cli_result r = cli_common_option(&o->common, c, optarg);
        if (r == CLI_EXIT_OK)
            return 1;
        if (r == CLI_USAGE_ERROR)
            return -1;
        if (r == CLI_HANDLED)
            continue;
        switch (c) {
        case 'G': o->group = optarg; break;
        case OPT_URL: o->url = optarg; break;
        case OPT_TOKEN_FILE: o->token_file = optarg; break;
        case OPT_INSTANCE: o->instance_id = optarg; break;
        case OPT_PAGE_SIZE: bad |= parse_int("--page-size", optarg, 1, GH_PAGE_MAX, &o->page_size); break;
        case OPT_CHUNK_PAUSE: bad |= parse_int("--chunk-pause-ms", optarg, 0, 3600000, &o->chunk_pause_ms); break;
        case OPT_RETRIES: bad |= parse_int("--retries", optarg, 0, 100, &o->retries); break;
        case OPT_RETRY_BASE: bad |= parse_int("--retry-base-ms", optarg, 1, 3600000, &o->retry_base_ms); break;
        case OPT_HTTP_TIMEOUT: bad |= parse_int("--http-timeout-ms", optarg, 100, 3600000, &o->http_timeout_ms); break;
        case OPT_CONNECT_TIMEOUT: bad |= parse_int("--connect-timeout-ms", optarg, 100, 600000, &o->connect_timeout_ms); break;
        case OPT_PRINT_QUERY: fputs(gh_query_document(), stdout); return 1;
        default: return -1;
        }
    }
    if (bad)
        return -1;
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

/* Pauses (pause=1) or resumes every assigned partition. */
static void set_paused(rd_kafka_t *rk, int pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return;
    if (a->cnt > 0)
        pause ? rd_kafka_pause_partitions(rk, a) : rd_kafka_resume_partitions(rk, a);
    rd_kafka_topic_partition_list_destroy(a);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer_state *cs = opaque; /* borrowed */
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_info("assigned %d partitions", parts->cnt);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (cs->job)
            rd_kafka_pause_partitions(rk, parts);
    } else {
        if (cs->job && rd_kafka_topic_partition_list_find(parts, job_run_topic(cs->job),
                                                          job_run_partition(cs->job))) {
            log_info("partition %d of %s revoked while running %s: stopping at this chunk "
                     "boundary; its checkpoint is committed",
                     (int)job_run_partition(cs->job), job_run_topic(cs->job), job_run_key(cs->job));
            job_run_free(cs->job);
            cs->job = NULL;
        }
        log_info("revoked %d partitions%s", parts->cnt,
                 rd_kafka_assignment_lost(rk) ? " (assignment lost)" : "");
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        if (!cs->job)
            set_paused(rk, 0);
    }
    if (error) {
        log_error("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static rd_kafka_t *consumer_new(const struct consumer_opts *o, struct consumer_state *cs)
{
    const char *defaults[] = {"group.id", o->group, "client.id", "backfill-consumer",
                              "enable.auto.commit", "false", "enable.auto.offset.store", "false",
                              "auto.offset.reset", "earliest",
                              "partition.assignment.strategy", "cooperative-sticky",
                              "session.timeout.ms", "10000", "heartbeat.interval.ms", "1000",
                              "max.poll.interval.ms", "300000", "fetch.wait.max.ms", "100",
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
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, cs);
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

static void handle_message(struct consumer_state *cs, rd_kafka_message_t *msg)
{
    rd_kafka_t *rk = cs->ctx.consumer;
    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("consumer: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        return;
    }
    if (cs->job) {
        give_back(rk, msg);
        return;
    }
    cs->job = job_run_start(&cs->ctx, msg); /* takes msg */
    if (cs->job)
        set_paused(rk, 1);
}

/* Runs the job's next step if due; returns how long the loop may block. */
static int run_job(struct consumer_state *cs)
{
    double wait;
    if (!cs->job)
        return 200;
    wait = job_run_not_before(cs->job) - (double)isotime_now_ms() / 1000.0;
    if (wait > 0)
        return wait > 0.2 ? 200 : (int)(wait * 1000) + 1;
    if (job_run_step(cs->job) == JOB_STEP_DONE) {
        job_run_free(cs->job);
        cs->job = NULL;
        set_paused(cs->ctx.consumer, 0);
    }
    return 0;
}

static int run(struct consumer_state *cs)
{
    rd_kafka_t *rk = cs->ctx.consumer;
    while (!stop_requested) {
        int timeout = run_job(cs);
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, timeout);
        if (msg)
            handle_message(cs, msg);
        outbox_poll(cs->ctx.ob);
    }
    if (cs->job) {
        log_info("shutting down: %s stops at this chunk boundary; its checkpoint is committed",
                 job_run_key(cs->job));
        job_run_free(cs->job);
        cs->job = NULL;
    }
    return 0;
}

static char *load_token(const struct consumer_opts *o, char *err, size_t errlen)
{
    const char *t = getenv("GITHUB_TOKEN");
    if (o->token_file)
        return cli_read_secret_file(o->token_file, err, errlen);
    if (t && t[0])
        return strdup(t);
    snprintf(err, errlen, "no GitHub token: set GITHUB_TOKEN or GITHUB_TOKEN_FILE (or --token-file)");
    return NULL;
}

int main(int argc, char **argv)
{
    struct consumer_opts o = {.page_size = GH_PAGE_MAX, .retries = 3, .retry_base_ms = 1000,
                              .http_timeout_ms = 30000, .connect_timeout_ms = 10000};
    struct consumer_state cs;
    struct sigaction sa;
    char err[512], *token = NULL;
    int rc = 1, pr;

    memset(&cs, 0, sizeof cs);
    log_init("consumer");
    if (cli_common_init(&o.common))
        return 2;
    pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        if (pr < 0)
            fprintf(stderr, "Try 'backfill-consumer --help'.\n");
        cli_common_free(&o.common);
        return pr > 0 ? 0 : 2;
    }
    cli_common_apply(&o.common);
    srand((unsigned)(isotime_now_ms() ^ getpid()));
    token = load_token(&o, err, sizeof err);
    if (!token) {
        log_error("%s", err);
        cli_common_free(&o.common);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cs.ctx = (struct worker_ctx){.progress_topic = o.common.progress_topic,
                                 .dlq_topic = o.common.dlq_topic,
                                 .page_size = o.page_size,
                                 .chunk_pause_ms = o.chunk_pause_ms,
                                 .max_retries = o.retries,
                                 .retry_base_ms = o.retry_base_ms,
                                 .ack_timeout_ms = 30000,
                                 .budget_remaining = -1};
    cs.ctx.gh = gh_new(o.url, token, o.connect_timeout_ms, o.http_timeout_ms, err, sizeof err);
    memset(token, 0, strlen(token));
    free(token);
    if (!cs.ctx.gh) {
        log_error("%s", err);
        goto done;
    }
    cs.ctx.ob = outbox_new(&o.common, err, sizeof err);
    if (!cs.ctx.ob) {
        log_error("cannot create the Kafka producer: %s", err);
        goto done;
    }
    struct kafka_topic topics[] = {{o.common.jobs_topic, o.common.partitions},
                                   {o.common.progress_topic, o.common.partitions},
                                   {o.common.dlq_topic, 1}};
    if (kafka_ensure_topics(outbox_handle(cs.ctx.ob), topics, 3, 15000, err, sizeof err)) {
        log_error("%s", err);
        goto done;
    }
    cs.ctx.consumer = consumer_new(&o, &cs);
    if (!cs.ctx.consumer)
        goto done;
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
    rc = run(&cs);
    log_info("leaving group %s", o.group);
done:
    if (cs.ctx.consumer) {
        rd_kafka_consumer_close(cs.ctx.consumer);
        rd_kafka_destroy(cs.ctx.consumer);
    }
    outbox_free(cs.ctx.ob);
    gh_free(cs.ctx.gh);
    cli_common_free(&o.common);
    return rc;
}
