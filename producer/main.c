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
#include "job_queue.h"
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

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-producer [options] OWNER/NAME...\n"
            "       backfill-producer [options] --file repos.txt\n"
            "\n"
            "A repository is owner/name or its GitHub address (https://github.com/owner/name,\n"
            "with or without .git or a further path); the same repository twice (in any\n"
            "case) is queued once.\n"
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

static void print_queued(const struct job *job, const struct jq_result *r, int json, int cancel)
{
    if (cancel) {
        if (json)
            printf("{\"status\":\"cancel_requested\",\"repository\":\"%s\"}\n", job->key);
        else
            printf("cancel requested %s/%s\n", job->owner, job->name);
        return;
    }
    if (!json) {
        printf("queued %s/%s id=%s partition=%d offset=%lld\n", job->owner, job->name, job->id,
               (int)r->partition, (long long)r->offset);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:i}", "status", "queued",
                          "repository", job->key, "owner", job->owner, "id", job->id,
                          "partition", (int)r->partition, "offset", (json_int_t)r->offset,
                          "maxPRs", job->max_prs, "sinceDays", job->since_days);
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

/* Queues every job (or cancellation) and prints what became of each.
 * Returns how many were not acknowledged. */
static size_t publish_all(job_queue *q, const struct producer_opts *o,
                          const struct repo_list *list)
{
    struct jq_result *res = calloc(list->n, sizeof *res);
    size_t failed;
    if (!res) {
        log_error("out of memory");
        return list->n;
    }
    failed = jq_send(q, list->jobs, list->n, o->cancel, res);
    for (size_t i = 0; i < list->n; i++) {
        const struct job *job = &list->jobs[i];
        if (res[i].done == 1)
            print_queued(job, &res[i], o->json, o->cancel);
        else
            fprintf(stderr, "%s/%s: not queued: %s\n", job->owner, job->name, res[i].error);
    }
    fflush(stdout);
    free(res);
    return failed;
}

int main(int argc, char **argv)
{
    struct producer_opts o = {.max_prs = JOB_DEFAULT_MAX_PRS,
                              .since_days = JOB_DEFAULT_SINCE_DAYS,
                              .trigger = "bulk_add_cli",
                              .kafka_wait_ms = PRODUCER_KAFKA_WAIT_MS};
    struct repo_list list;
    job_queue *q = NULL;
    int rc = 2, pr;
    size_t failed;
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
    q = jq_new(&o.common, "backfill-producer", err, sizeof err);
    if (!q) {
        log_error("cannot create the Kafka producer: %s", err);
        goto done;
    }
    if (jq_prepare(q, o.kafka_wait_ms, "fewer consumers can work on it at once", err,
                   sizeof err)) {
        log_error("giving up, nothing queued: %s", err);
        goto done;
    }
    failed = publish_all(q, &o, &list);
    log_info("%s %zu of %zu repositories (%zu rejected, %zu not delivered)",
             o.cancel ? "cancelled" : "queued", list.n - failed, list.n + list.rejected,
             list.rejected, failed);
    rc = failed || list.rejected ? 1 : 0;
done:
    jq_free(q);
    repo_list_free(&list);
    cli_common_free(&o.common);
    return rc;
}
