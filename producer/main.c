/* backfill-producer: bulk-add repositories — validate, de-duplicate and
 * publish one repository/backfill.initial job per repository, keyed by the
 * lower-cased owner/name, then wait for every delivery acknowledgement
 * (idempotent producer, acks=all). Exit 0: all queued; 1: any entry
 * rejected or any delivery failed; 2: usage error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "kafka.h"
#include "log.h"
#include "repo_list.h"

enum {
    OPT_FILE = CLI_OPT_FIRST_FREE,
    OPT_MAX_PRS,
    OPT_SINCE_DAYS,
    OPT_JSON,
    OPT_TRIGGER,
    OPT_CANCEL,
    OPT_KAFKA_WAIT
};

/* How long to wait for Kafka to answer before giving up, by default (a
 * broker that is up answers in milliseconds; --kafka-wait-ms lets a script
 * that starts the producer beside a starting broker wait longer). */
#define PRODUCER_KAFKA_WAIT_MS 10000

struct producer_opts {
    struct cli_common common;
    int max_prs;
    int since_days;
    int json;
    const char *trigger; /* borrowed */
    int cancel;          /* --cancel: publish cancellations instead of jobs */
    int kafka_wait_ms;   /* --kafka-wait-ms: give up when Kafka does not answer by then */
};

struct delivery {
    const struct job *job; /* borrowed from the repo list */
    int done;              /* 1 delivered, -1 failed */
    int32_t partition;
    int64_t offset;
    const char *error;     /* static text when done == -1 */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-producer [options] OWNER/NAME...\n"
            "       backfill-producer [options] --file repos.txt\n"
            "\n"
            "Queues one repository/backfill.initial job per repository on the jobs topic and\n"
            "waits until Kafka acknowledged each. Prints one line per queued repository on\n"
            "stdout; rejected entries go to stderr with the reason.\n"
            "\n"
            "Jobs:\n"
            "  -f, --file PATH         read repositories from PATH ('-' = stdin), one per line;\n"
            "                          blank lines and # comments ignored; repeatable\n"
            "  --max-prs N             pull requests per repository, 1..1000 (default 200)\n"
            "  --since-days N          window in days, 1..365 (default 30)\n"
            "  --triggered-from TEXT   recorded in each job (default bulk_add_cli)\n"
            "  --json                  print JSON lines instead of text\n"
            "  --cancel                cancel the backfills of the given repositories instead:\n"
            "                          a running one stops at its next chunk boundary, a queued\n"
            "                          one never starts; both end 'failed' with error 'cancelled'.\n"
            "                          Jobs queued after the cancel run normally.\n"
            "  --kafka-wait-ms N       give up (exit 1, nothing queued) when Kafka does not answer\n"
            "                          within N ms (env BACKFILL_KAFKA_WAIT_MS, default 10000)\n"
            "\n"
            "%s"
            "\n"
            "Exit status: 0 all queued, 1 an entry was rejected or a delivery failed,\n"
            "2 usage error.\n",
            cli_common_help);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct delivery *d = m->_private; /* borrowed: per-message opaque */
    (void)rk;
    (void)opaque;
    if (m->err) {
        d->done = -1;
        d->error = rd_kafka_err2str(m->err);
    } else {
        d->done = 1;
        d->partition = m->partition;
        d->offset = m->offset;
    }
}

static void print_queued(const struct delivery *d, int json, int cancel)
{
    if (cancel) {
        if (json)
            printf("{\"status\":\"cancel_requested\",\"repository\":\"%s\"}\n", d->job->key);
        else
            printf("cancel requested %s/%s\n", d->job->owner, d->job->name);
        return;
    }
    if (!json) {
        printf("queued %s/%s id=%s partition=%d offset=%lld\n", d->job->owner, d->job->name,
               d->job->id, (int)d->partition, (long long)d->offset);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:i}", "status", "queued",
                          "repository", d->job->key, "owner", d->job->owner, "id", d->job->id,
                          "partition", (int)d->partition, "offset", (json_int_t)d->offset,
                          "maxPRs", d->job->max_prs, "sinceDays", d->job->since_days);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* The producer's own options; files collects --file paths. */
struct producer_parse {
    struct producer_opts *o; /* borrowed */
    const char *files[64];   /* borrowed from argv */
    int nfiles;
};

static int producer_option(int c, const char *arg, void *ctx)
{
    struct producer_parse *pp = ctx;
    struct producer_opts *o = pp->o;
    switch (c) {
    case 'f':
        if (pp->nfiles == 64) {
            fprintf(stderr, "--file: at most 64 files\n");
            return -1;
        }
        pp->files[pp->nfiles++] = arg;
        return 0;
    case OPT_MAX_PRS: return cli_parse_int("--max-prs", arg, 1, 1000, &o->max_prs);
    case OPT_SINCE_DAYS: return cli_parse_int("--since-days", arg, 1, 365, &o->since_days);
    case OPT_JSON: o->json = 1; return 0;
    case OPT_TRIGGER: o->trigger = arg; return 0;
    case OPT_CANCEL: o->cancel = 1; return 0;
    case OPT_KAFKA_WAIT:
        return cli_parse_int("--kafka-wait-ms", arg, 100, 3600000, &o->kafka_wait_ms);
    default: return -1;
    }
}

/* Returns CLI_RUN with the list filled, or the exit status (cli_parse). */
static int parse_args(int argc, char **argv, struct producer_opts *o, struct repo_list *list)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS,
        {"file", required_argument, 0, 'f'},
        {"max-prs", required_argument, 0, OPT_MAX_PRS},
        {"since-days", required_argument, 0, OPT_SINCE_DAYS},
        {"json", no_argument, 0, OPT_JSON},
        {"triggered-from", required_argument, 0, OPT_TRIGGER},
        {"cancel", no_argument, 0, OPT_CANCEL},
        {"kafka-wait-ms", required_argument, 0, OPT_KAFKA_WAIT},
        {0, 0, 0, 0}};
    struct producer_parse pp = {.o = o};
    const struct cli_spec spec = {"f:", longopts, producer_option, &pp, usage, 1, NULL};
    int rc;

    if (cli_env_int("BACKFILL_KAFKA_WAIT_MS", 100, 3600000, &o->kafka_wait_ms))
        return CLI_EXIT_USAGE;
    if ((rc = cli_parse(&o->common, &spec, argc, argv)) != CLI_RUN)
        return rc;
    list->max_prs = o->max_prs;
    list->since_days = o->since_days;
    list->trigger = o->trigger;
    for (int i = optind; i < argc; i++)
        repo_list_add(list, argv[i], "argument");
    for (int i = 0; i < pp.nfiles; i++)
        if (repo_list_add_file(list, pp.files[i]))
            return CLI_EXIT_USAGE;
    if (list->n == 0 && list->rejected == 0) {
        fprintf(stderr, "no repositories given\nTry 'backfill-producer --help'.\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_RUN;
}

static rd_kafka_t *producer_new(const struct cli_common *c)
{
    static const char *const defaults[] = {"enable.idempotence", "true", "acks", "all",
                                           "linger.ms", "5", "client.id", "backfill-producer",
                                           NULL};
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(c->brokers, defaults, c->props, err, sizeof err);
    rd_kafka_t *rk;
    if (!conf) {
        log_error("%s", err);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new failed: we still own conf */
        log_error("cannot create the Kafka producer: %s", err);
    }
    return rk; /* on success rd_kafka_new owns conf */
}

static int publish_all(rd_kafka_t *rk, const struct producer_opts *o, const struct repo_list *list,
                       struct delivery *dl)
{
    int failed = 0;
    for (size_t i = 0; i < list->n; i++) {
        const struct job *job = &list->jobs[i];
        char *value = o->cancel ? cancel_encode(job->owner, job->name) : job_encode(job);
        rd_kafka_resp_err_t err;
        dl[i].job = job;
        if (!value) {
            dl[i].done = -1;
            dl[i].error = "out of memory";
            continue;
        }
        do {
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->cancel ? o->common.control_topic : o->common.jobs_topic),
                RD_KAFKA_V_KEY(job->key, strlen(job->key)),
                RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_HEADER("event", o->cancel ? EVENT_CANCEL : EVENT_JOB, -1),
                RD_KAFKA_V_OPAQUE(&dl[i]),
                RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err) {
            free(value); /* not enqueued: still ours */
            dl[i].done = -1;
            dl[i].error = rd_kafka_err2str(err);
        }
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_error("some jobs were not acknowledged within 60 s");
    for (size_t i = 0; i < list->n; i++) {
        if (dl[i].done == 1) {
            print_queued(&dl[i], o->json, o->cancel);
        } else {
            failed++;
            fprintf(stderr, "%s/%s: not queued: %s\n", dl[i].job->owner, dl[i].job->name,
                    dl[i].done == -1 ? dl[i].error : "delivery not acknowledged");
        }
    }
    fflush(stdout);
    return failed;
}

int main(int argc, char **argv)
{
    struct producer_opts o = {.max_prs = JOB_DEFAULT_MAX_PRS,
                              .since_days = JOB_DEFAULT_SINCE_DAYS,
                              .trigger = "bulk_add_cli",
                              .kafka_wait_ms = PRODUCER_KAFKA_WAIT_MS};
    struct repo_list list;
    struct delivery *dl = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int rc = 2, pr, failed;
    char err[1024];

    log_init("producer");
    repo_list_init(&list);
    if (cli_common_init(&o.common)) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    if ((pr = parse_args(argc, argv, &o, &list)) != CLI_RUN) {
        rc = pr;
        goto done;
    }
    rc = 1;
    if (list.n == 0)
        goto done;
    dl = calloc(list.n, sizeof *dl);
    rk = dl ? producer_new(&o.common) : NULL;
    if (!rk)
        goto done;
    const char *target = o.cancel ? o.common.control_topic : o.common.jobs_topic;
    struct kafka_topic topics[CLI_NTOPICS];
    if (kafka_ensure_topics(rk, topics, cli_topics(&o.common, topics), o.kafka_wait_ms, err,
                            sizeof err)) {
        log_error("giving up, nothing queued: %s", err);
        goto done;
    }
    for (size_t i = 0; i < CLI_NTOPICS; i++)
        if (kafka_topic_shortfall(&topics[i], o.common.brokers,
                                  "fewer consumers can work on it at once", err, sizeof err))
            log_warn("%s", err);
    /* held until the end: a topic handle dropped here makes librdkafka
     * forget the leaders, and the first 10,000 messages queue unpartitioned */
    rkt = rd_kafka_topic_new(rk, target, NULL);
    kafka_warm_topic(rk, target, 5000);
    failed = publish_all(rk, &o, &list, dl);
    log_info("%s %zu of %zu repositories (%zu rejected, %d not delivered)",
             o.cancel ? "cancelled" : "queued", list.n - (size_t)failed,
             list.n + list.rejected, list.rejected, failed);
    rc = failed || list.rejected ? 1 : 0;
done:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rk)
        rd_kafka_destroy(rk);
    free(dl);
    repo_list_free(&list);
    cli_common_free(&o.common);
    return rc;
}
