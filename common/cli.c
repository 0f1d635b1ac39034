/* cli: see cli.h. */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "cli.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health_probe.h"
#include "listen_addr.h"
#include "log.h"

const char cli_common_help[] =
    "Kafka and logging:\n"
    "  -b BROKERS              bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS, default "
    "localhost:9092)\n"
    "  -X KEY=VALUE            any librdkafka property, repeatable (e.g. -X security.protocol=SSL);\n"
    "                          -X list prints them all\n"
    "  --jobs-topic NAME       env BACKFILL_JOBS_TOPIC, default " CLI_JOBS_TOPIC "\n"
    "  --progress-topic NAME   env BACKFILL_PROGRESS_TOPIC, default " CLI_PROGRESS_TOPIC "\n"
    "  --dlq-topic NAME        env BACKFILL_DLQ_TOPIC, default " CLI_DLQ_TOPIC "\n"
    "  --control-topic NAME    cancellations; env BACKFILL_CONTROL_TOPIC, default " CLI_CONTROL_TOPIC "\n"
    "  --partitions N          partitions of topics created at startup (env BACKFILL_PARTITIONS,\n"
    "                          default 12; existing topics are left alone)\n"
    "  -v, --verbose           more logging (repeat for debug); -q, --quiet: errors only\n"
    "  -h, --help              this help; -V, --version: versions of backfill and librdkafka\n";

const char cli_group_help[] =
    "  --group-protocol P      consumer group protocol: classic, or consumer (KIP-848, Kafka 4+)\n"
    "                          (env BACKFILL_GROUP_PROTOCOL, default classic)\n";

const char cli_metrics_help[] =
    "  --metrics ADDR:PORT     serve Prometheus metrics on /metrics and readiness on\n"
    "                          /healthz (env BACKFILL_METRICS_LISTEN; default off)\n"
    "  --healthcheck           ask that address's /healthz, exit 0 when ready, 1 when\n"
    "                          not (with the reason on stderr); what compose runs\n";

static int cli_group_protocol_ok(const char *p)
{
    return strcmp(p, "classic") == 0 || strcmp(p, "consumer") == 0;
}

const char *cli_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

const char *cli_metrics_listen(const char *flag_value)
{
    return flag_value ? flag_value : cli_env("BACKFILL_METRICS_LISTEN", NULL);
}

int cli_metrics_resolve(const char *program, const char *flag_value, int healthcheck,
                        const char **listen)
{
    struct sockaddr_storage ss;
    char err[256];
    int loopback;
    *listen = cli_metrics_listen(flag_value);
    if (healthcheck)
        return health_probe_main(program, *listen);
    if (!*listen ||
        listen_addr_parse(flag_value ? "--metrics" : "BACKFILL_METRICS_LISTEN", *listen, &ss,
                          NULL, &loopback, err, sizeof err) == 0)
        return CLI_RUN;
    fprintf(stderr, "%s%s\nTry '%s --help'.\n", err,
            strstr(err, "ADDR:PORT") ? "" : " (expected ADDR:PORT, [IPv6]:PORT or :PORT)",
            program);
    return CLI_EXIT_USAGE;
}

int cli_env_int(const char *name, int lo, int hi, int *out)
{
    const char *v = getenv(name);
    return v && v[0] ? cli_parse_int(name, v, lo, hi, out) : 0;
}

static void cli_on_stop_signal(int sig);

void cli_stop_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler ? handler : cli_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The getopt string: the shared short options, then the binary's. */
static char *cli_shortopts(const char *own)
{
    size_t a = strlen(CLI_SHORTOPTS), b = own ? strlen(own) : 0;
    char *s = malloc(a + b + 1);
    if (s) {
        memcpy(s, CLI_SHORTOPTS, a);
        memcpy(s + a, own ? own : "", b + 1);
    }
    return s;
}

static int cli_parse_options(struct cli_common *c, const struct cli_spec *spec, int argc,
                             char **argv)
{
    char *shortopts = cli_shortopts(spec->shortopts);
    int opt, bad = 0;

    if (!shortopts) {
        fprintf(stderr, "out of memory\n");
        return CLI_EXIT_USAGE;
    }
    while ((opt = getopt_long(argc, argv, shortopts, spec->longopts, NULL)) != -1) {
        enum cli_result r = cli_common_option(c, opt, optarg);
        if (r == CLI_EXIT_OK || r == CLI_USAGE_ERROR) {
            free(shortopts);
            return r == CLI_EXIT_OK ? CLI_EXIT_SUCCESS : CLI_EXIT_USAGE;
        }
        if (r == CLI_NOT_MINE && (opt == '?' || !spec->option || spec->option(opt, optarg, spec->ctx)))
            bad = 1; /* go on: every bad option is named, as getopt does */
    }
    free(shortopts);
    if (bad)
        return CLI_EXIT_USAGE;
    if (c->want_help) {
        spec->usage(stdout);
        return CLI_EXIT_SUCCESS;
    }
    if (!spec->operands && optind < argc) {
        fprintf(stderr, "unexpected argument '%s'%s%s\n", argv[optind],
                spec->operand_hint ? " " : "", spec->operand_hint ? spec->operand_hint : "");
        return CLI_EXIT_USAGE;
    }
    return CLI_RUN;
}

int cli_parse(struct cli_common *c, const struct cli_spec *spec, int argc, char **argv)
{
    int rc = cli_parse_options(c, spec, argc, argv);
    if (rc == CLI_EXIT_USAGE)
        fprintf(stderr, "Try '%s --help'.\n", program_invocation_short_name);
    if (rc == CLI_RUN)
        cli_common_apply(c);
    return rc;
}

volatile sig_atomic_t cli_stop_requested;

static void cli_on_stop_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

int cli_parse_int(const char *what, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: expected a number in %d..%d, got '%s'\n", what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_common_init(struct cli_common *c)
{
    memset(c, 0, sizeof *c);
    c->brokers = cli_env("KAFKA_BOOTSTRAP_SERVERS", KAFKA_DEFAULT_BOOTSTRAP);
    c->jobs_topic = cli_env("BACKFILL_JOBS_TOPIC", CLI_JOBS_TOPIC);
    c->progress_topic = cli_env("BACKFILL_PROGRESS_TOPIC", CLI_PROGRESS_TOPIC);
    c->dlq_topic = cli_env("BACKFILL_DLQ_TOPIC", CLI_DLQ_TOPIC);
    c->control_topic = cli_env("BACKFILL_CONTROL_TOPIC", CLI_CONTROL_TOPIC);
    c->group_protocol = cli_env("BACKFILL_GROUP_PROTOCOL", "classic");
    if (!cli_group_protocol_ok(c->group_protocol)) {
        fprintf(stderr, "BACKFILL_GROUP_PROTOCOL: expected classic or consumer, got '%s'; "
                        "using classic\n", c->group_protocol);
        c->group_protocol = "classic";
    }
    c->partitions = CLI_PARTITIONS;
    if (getenv("BACKFILL_PARTITIONS") &&
        cli_parse_int("BACKFILL_PARTITIONS", getenv("BACKFILL_PARTITIONS"), 1, 10000, &c->partitions))
        fprintf(stderr, "ignoring BACKFILL_PARTITIONS\n");
    c->props = kprops_new();
    return c->props ? 0 : -1;
}

enum cli_result cli_common_option(struct cli_common *c, int opt, const char *arg)
{
    char err[256];
    switch (opt) {
    case 'b':
        c->brokers = arg;
        return CLI_HANDLED;
    case 'X':
        if (strcmp(arg, "list") == 0) {
            rd_kafka_conf_properties_show(stdout);
            return CLI_EXIT_OK;
        }
        if (kprops_add(c->props, arg, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return CLI_USAGE_ERROR;
        }
        return CLI_HANDLED;
    case 'v':
        c->verbosity++;
        return CLI_HANDLED;
    case 'q':
        c->verbosity = -2;
        return CLI_HANDLED;
    case 'h':
        c->want_help = 1;
        return CLI_HANDLED;
    case 'V':
        cli_print_version();
        return CLI_EXIT_OK;
    case CLI_OPT_JOBS_TOPIC:
        c->jobs_topic = arg;
        return CLI_HANDLED;
    case CLI_OPT_PROGRESS_TOPIC:
        c->progress_topic = arg;
        return CLI_HANDLED;
    case CLI_OPT_DLQ_TOPIC:
        c->dlq_topic = arg;
        return CLI_HANDLED;
    case CLI_OPT_CONTROL_TOPIC:
        c->control_topic = arg;
        return CLI_HANDLED;
    case CLI_OPT_GROUP_PROTOCOL:
        if (!cli_group_protocol_ok(arg)) {
            fprintf(stderr, "--group-protocol: expected classic or consumer, got '%s'\n", arg);
            return CLI_USAGE_ERROR;
        }
        c->group_protocol = arg;
        return CLI_HANDLED;
    case CLI_OPT_PARTITIONS:
        if (cli_parse_int("--partitions", arg, 1, 10000, &c->partitions))
            return CLI_USAGE_ERROR;
        return CLI_HANDLED;
    default:
        return CLI_NOT_MINE;
    }
}

size_t cli_topics(const struct cli_common *c, struct kafka_topic out[CLI_NTOPICS])
{
    out[CLI_TOPIC_JOBS] = (struct kafka_topic){c->jobs_topic, c->partitions, 0};
    out[CLI_TOPIC_PROGRESS] = (struct kafka_topic){c->progress_topic, c->partitions, 0};
    out[CLI_TOPIC_DLQ] = (struct kafka_topic){c->dlq_topic, 1, 0};
    out[CLI_TOPIC_CONTROL] = (struct kafka_topic){c->control_topic, 1, 0};
    return CLI_NTOPICS;
}

void cli_print_version(void)
{
    printf("%s %s (librdkafka %s)\n", program_invocation_short_name, BACKFILL_VERSION,
           rd_kafka_version_str());
}

void cli_common_apply(const struct cli_common *c)
{
    log_set_level(LOGL_INFO + c->verbosity);
}

void cli_common_free(struct cli_common *c)
{
    kprops_free(c->props);
    c->props = NULL;
}

char *cli_read_secret_file(const char *path, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;
    if (!f) {
        snprintf(errstr, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0) {
        snprintf(errstr, errlen, "%s is empty", path);
        return NULL;
    }
    return strdup(buf);
}

char *cli_secret(const char *file, const char *env, char *errstr, size_t errlen)
{
    const char *v = getenv(env);
    errstr[0] = '\0';
    if (file)
        return cli_read_secret_file(file, errstr, errlen);
    return v && v[0] ? strdup(v) : NULL;
}
