/* cli: the options every binary shares, kcat style, and where their
 * defaults come from (flag, then environment, then default):
 *
 *   -b brokers        KAFKA_BOOTSTRAP_SERVERS    localhost:9092
 *   -X key=value      librdkafka property, repeatable; -X list shows them
 *   --jobs-topic      BACKFILL_JOBS_TOPIC        repository.backfill.initial
 *   --progress-topic  BACKFILL_PROGRESS_TOPIC    backfill.progress
 *   --dlq-topic       BACKFILL_DLQ_TOPIC         repository.backfill.initial.dlq
 *   --control-topic   BACKFILL_CONTROL_TOPIC     backfill.control (cancellations)
 *   --partitions      BACKFILL_PARTITIONS        12 (for topics this binary creates)
 *   --group-protocol  BACKFILL_GROUP_PROTOCOL    classic (worker and sink only)
 *   --metrics         BACKFILL_METRICS_LISTEN    off (the long-running binaries)
 *   -v / -q           more / less logging
 *   -h / --help
 *   -V / --version    ours and librdkafka's
 */
#ifndef BACKFILL_CLI_H
#define BACKFILL_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "kafka.h"

#define CLI_JOBS_TOPIC "repository.backfill.initial"
#define CLI_PROGRESS_TOPIC "backfill.progress"
#define CLI_DLQ_TOPIC "repository.backfill.initial.dlq"
#define CLI_CONTROL_TOPIC "backfill.control"
#define CLI_PARTITIONS 12
/* the consumer groups' default ids, and the environment variables that
 * override them (backfill-consumer's and backfill-sink's -G; the lag views) */
#define CLI_WORKER_GROUP "backfill-workers"
#define CLI_WORKER_GROUP_ENV "BACKFILL_GROUP"
#define CLI_SINK_GROUP "backfill-sink"
#define CLI_SINK_GROUP_ENV "BACKFILL_SINK_GROUP"

enum cli_opt_id {
    CLI_OPT_JOBS_TOPIC = 1000,
    CLI_OPT_PROGRESS_TOPIC,
    CLI_OPT_DLQ_TOPIC,
    CLI_OPT_PARTITIONS,
    CLI_OPT_CONTROL_TOPIC,
    CLI_OPT_GROUP_PROTOCOL,
    CLI_OPT_METRICS,
    CLI_OPT_HEALTHCHECK,
    CLI_OPT_FIRST_FREE = 1100 /* binaries number their own long options from here */
};

#define CLI_SHORTOPTS "b:X:vqhV"
#define CLI_LONGOPTS                                                                    \
    {"jobs-topic", required_argument, 0, CLI_OPT_JOBS_TOPIC},                           \
        {"progress-topic", required_argument, 0, CLI_OPT_PROGRESS_TOPIC},               \
        {"dlq-topic", required_argument, 0, CLI_OPT_DLQ_TOPIC},                         \
        {"control-topic", required_argument, 0, CLI_OPT_CONTROL_TOPIC},                 \
        {"partitions", required_argument, 0, CLI_OPT_PARTITIONS},                       \
        {"help", no_argument, 0, 'h'}, {"verbose", no_argument, 0, 'v'},                \
        {"quiet", no_argument, 0, 'q'}, {"version", no_argument, 0, 'V'}

/* For the binaries that join a consumer group (worker, sink): the group
 * protocol, classic or consumer (KIP-848). */
#define CLI_GROUP_LONGOPTS {"group-protocol", required_argument, 0, CLI_OPT_GROUP_PROTOCOL}

/* For the binaries that serve Prometheus metrics (metrics_http.h): the
 * address, ADDR:PORT. The binary handles CLI_OPT_METRICS itself and reads
 * the value through cli_metrics_listen(). */
#define CLI_METRICS_LONGOPTS                                                            \
    {"metrics", required_argument, 0, CLI_OPT_METRICS},                                 \
        {"healthcheck", no_argument, 0, CLI_OPT_HEALTHCHECK}

/* Help text for the shared options, for each binary's --help; for the
 * group options, for the binaries that list CLI_GROUP_LONGOPTS; for
 * --metrics, for those that list CLI_METRICS_LONGOPTS. */
extern const char cli_common_help[];
extern const char cli_group_help[];
extern const char cli_metrics_help[];

/* Where to serve metrics: flag_value (the --metrics argument) when not
 * NULL, else environment variable BACKFILL_METRICS_LISTEN when set and not
 * empty, else NULL (serve none). Borrowed from argv or environ. */
const char *cli_metrics_listen(const char *flag_value);

/* After option parsing, for the binaries that list CLI_METRICS_LONGOPTS:
 * resolves the metrics address (cli_metrics_listen) into *listen (NULL:
 * none) and checks its form; with --healthcheck (healthcheck != 0) asks
 * that address's /healthz instead of running (what compose's health checks
 * do). Returns CLI_RUN to go on; else the exit status: CLI_EXIT_USAGE after
 * printing why the address is bad, or the health check's own (0 ready, 1
 * not, 2 no address to ask). */
int cli_metrics_resolve(const char *program, const char *flag_value, int healthcheck,
                        const char **listen);

struct cli_common {
    const char *brokers;        /* borrowed from argv or environ */
    kprops *props;              /* owned */
    const char *jobs_topic;     /* borrowed */
    const char *progress_topic; /* borrowed */
    const char *dlq_topic;      /* borrowed */
    const char *control_topic;  /* borrowed */
    const char *group_protocol; /* borrowed: "classic" or "consumer" */
    int partitions;
    int verbosity;
    int want_help;
};

enum cli_result { CLI_NOT_MINE = 0, CLI_HANDLED = 1, CLI_EXIT_OK = 2, CLI_USAGE_ERROR = -1 };

/* A binary's own options, for cli_parse: called for each option that is
 * not a shared one. Returns 0 when taken, -1 after printing a usage error
 * (or for an option it does not know). */
typedef int (*cli_option_fn)(int opt, const char *arg, void *ctx);

struct cli_spec {
    const char *shortopts;         /* the binary's own, after CLI_SHORTOPTS ("G:j:") */
    const struct option *longopts; /* every long option, CLI_LONGOPTS included */
    cli_option_fn option;          /* the binary's own options; NULL: none */
    void *ctx;                     /* handed to option */
    void (*usage)(FILE *f);        /* the --help text */
    int operands;                  /* 1: arguments after the options are allowed */
    const char *operand_hint;      /* added to "unexpected argument" when not, or NULL */
};

/* The process exit status for a parse that says "do not run" */
enum { CLI_RUN = -1, CLI_EXIT_SUCCESS = 0, CLI_EXIT_USAGE = 2 };

/* Parses argv the same way for every binary: the shared options into c,
 * the others through spec->option; --help prints spec->usage. Returns
 * CLI_RUN to go on (optind at the first operand; -v/-q applied to the
 * logger), CLI_EXIT_SUCCESS after
 * --help, --version or -X list, CLI_EXIT_USAGE after a usage error (the
 * reason and "Try 'PROGRAM --help'." on stderr). */
int cli_parse(struct cli_common *c, const struct cli_spec *spec, int argc, char **argv);

/* The value of environment variable `name`, or dflt when unset or empty. */
const char *cli_env(const char *name, const char *dflt);

/* Reads integer environment variable `name` into *out when it is set and
 * not empty (else leaves *out alone). Returns 0, or -1 after printing a
 * usage error when it is not a number in [lo, hi]. */
int cli_env_int(const char *name, int lo, int hi, int *out);

/* Makes SIGINT and SIGTERM call handler (sigaction, no SA_RESTART, so a
 * blocking call returns EINTR); NULL: the handler that sets
 * cli_stop_requested. A handler should only set a flag. */
void cli_stop_signals(void (*handler)(int));
extern volatile sig_atomic_t cli_stop_requested;

/* Fills defaults from the environment. Returns 0, -1 on allocation failure. */
int cli_common_init(struct cli_common *c);

/* Handles one getopt result if it is a shared option. Prints usage errors
 * to stderr itself. `-X list` prints librdkafka's properties: CLI_EXIT_OK. */
enum cli_result cli_common_option(struct cli_common *c, int opt, const char *arg);

/* Our topics with the partition counts they are created with: jobs and
 * progress --partitions, the DLQ and control topics 1. Fills out[] (names
 * borrowed from c) and returns CLI_NTOPICS. */
#define CLI_NTOPICS 4
enum { CLI_TOPIC_JOBS, CLI_TOPIC_PROGRESS, CLI_TOPIC_DLQ, CLI_TOPIC_CONTROL };
size_t cli_topics(const struct cli_common *c, struct kafka_topic out[CLI_NTOPICS]);

/* Prints "PROGRAM VERSION (librdkafka X.Y.Z)" on stdout: -V, --version. */
void cli_print_version(void);

/* Applies -v/-q to the logger. */
void cli_common_apply(const struct cli_common *c);

void cli_common_free(struct cli_common *c);

/* Parses a decimal integer in [lo, hi] given for `what` (a flag or an
 * environment variable name). Returns 0 and sets *out, or -1 after
 * printing a usage error to stderr (*out untouched). */
int cli_parse_int(const char *what, const char *s, int lo, int hi, int *out);

/* Reads a whole small file (a secret) into a malloc'd string without the
 * trailing newline; NULL with a reason on failure. */
char *cli_read_secret_file(const char *path, char *errstr, size_t errlen);

/* A secret from `file` when given, else from environment variable `env`:
 * a malloc'd string, or NULL — with a reason in errstr when the file
 * cannot be read, with errstr "" when neither is set. */
char *cli_secret(const char *file, const char *env, char *errstr, size_t errlen);

#endif
