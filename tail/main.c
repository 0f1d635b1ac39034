/* backfill-tail: follows the progress topic as an observer — no consumer
 * group, no commits (tfollow) — folds every event into per-repository
 * state (tview) and shows it: on a terminal a live table redrawn in place
 * (trender); otherwise, or with --json, one JSON line per event on stdout.
 *
 * Exit status: 0 stopped normally (every followed backfill completed with
 * --exit-when-done, end of topic with --exit-at-end, or a signal), 1 with
 * --exit-when-done when a followed backfill failed, 2 usage error, 3 Kafka
 * or output error, 4 with --exit-when-done when stopped (signal or
 * --exit-at-end) before every followed backfill finished. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "isotime.h"
#include "log.h"
#include "tfollow.h"
#include "trender.h"
#include "tview.h"

#define TAIL_MAX_MESSAGE (8 * 1024 * 1024) /* pull_requests parts are < 1 MB */

enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_TABLE, OPT_REPO, OPT_FROM_BEGINNING, OPT_EXIT_DONE,
       OPT_EXIT_END, OPT_ALL, OPT_REFRESH };
enum { RC_OK = 0, RC_FAILED = 1, RC_USAGE = 2, RC_ERROR = 3, RC_UNFINISHED = 4 };

struct tail_opts {
    struct cli_common common;
    int table;          /* 1 table, 0 JSON lines, -1 decide by isatty(stdout) */
    int from_beginning;
    int exit_when_done;
    int exit_at_end;
    int all;
    int refresh_ms;
};

struct tail_screen {
    int prev_lines; /* lines drawn last time, to move back over */
    int color;
    double last_draw;
};


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: backfill-tail [options]\n"
            "\n"
            "Follows the progress topic without joining a consumer group and without\n"
            "committing offsets, and shows every backfill: on a terminal a live table (one\n"
            "line per repository: progress bar, processed/total PRs, status, chunk, rate-limit\n"
            "wait, elapsed since queued) redrawn in place with a totals footer; otherwise one\n"
            "JSON line per event (the event's envelope) on stdout. Logs go to stderr.\n"
            "\n"
            "Tail:\n"
            "  --json                  one JSON line per event (default when stdout is not a\n"
            "                          terminal)\n"
            "  --table                 the live table even when stdout is not a terminal\n"
            "  --repo OWNER/NAME       follow only this repository; repeatable\n"
            "  --from-beginning        read the topic from its start (default: only new events)\n"
            "  --exit-when-done        exit once every followed repository has completed or\n"
            "                          failed: the --repo list, else every repository seen\n"
            "                          (judged only after the events already in the topic were\n"
            "                          read)\n"
            "  --exit-at-end           exit when the end of every partition is reached\n"
            "  --all                   also show backfill/pull_requests payload events (and any\n"
            "                          other event type) in JSON mode\n"
            "  --refresh-ms N          table redraw interval, 50..10000 (default 250)\n"
            "  env NO_COLOR            no colours in the table\n"
            "\n"
            "%s"
            "\n"
            "Exit status: 0 stopped normally (all followed backfills completed, end of topic,\n"
            "or SIGINT/SIGTERM); 1 --exit-when-done and a followed backfill failed; 2 usage\n"
            "error; 3 Kafka or output error; 4 --exit-when-done but stopped (signal or\n"
            "--exit-at-end) before every followed backfill finished.\n",
            cli_common_help);
}

struct tail_parse {
    struct tail_opts *o; /* borrowed */
    tview *tv;           /* borrowed: --repo filters go here */
};

static int tail_option(int c, const char *arg, void *ctx)
{
    struct tail_parse *tp = ctx;
    struct tail_opts *o = tp->o;
    char err[256];
    int fr;
    switch (c) {
    case OPT_JSON: o->table = 0; return 0;
    case OPT_TABLE: o->table = 1; return 0;
    case OPT_REPO:
        if ((fr = tview_follow(tp->tv, arg, err, sizeof err))) {
            fprintf(stderr, "--repo %s: %s\n", arg, fr == TV_NOMEM ? "out of memory" : err);
            return -1;
        }
        return 0;
    case OPT_FROM_BEGINNING: o->from_beginning = 1; return 0;
    case OPT_EXIT_DONE: o->exit_when_done = 1; return 0;
    case OPT_EXIT_END: o->exit_at_end = 1; return 0;
    case OPT_ALL: o->all = 1; return 0;
    case OPT_REFRESH: return cli_parse_int("--refresh-ms", arg, 50, 10000, &o->refresh_ms);
    default: return -1;
    }
}

static int parse_args(int argc, char **argv, struct tail_opts *o, tview *tv)
{
    static const struct option longopts[] = {
        CLI_LONGOPTS,
        {"json", no_argument, 0, OPT_JSON},
        {"table", no_argument, 0, OPT_TABLE},
        {"repo", required_argument, 0, OPT_REPO},
        {"from-beginning", no_argument, 0, OPT_FROM_BEGINNING},
        {"exit-when-done", no_argument, 0, OPT_EXIT_DONE},
        {"exit-at-end", no_argument, 0, OPT_EXIT_END},
        {"all", no_argument, 0, OPT_ALL},
        {"refresh-ms", required_argument, 0, OPT_REFRESH},
        {0, 0, 0, 0}};
    const struct cli_spec spec = {NULL, longopts, tail_option, &(struct tail_parse){o, tv}, usage,
                                  0, "(repositories go after --repo)"};
    return cli_parse(&o->common, &spec, argc, argv);
}

/* ---- output --------------------------------------------------------------- */

/* Prints the envelope as one compact JSON line. Returns 0 or -1 (errno). */
static int print_json(json_t *env)
{
    if (json_dumpf(env, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF || fflush(stdout))
        return -1;
    return 0;
}

static void draw(const tview *tv, struct tail_screen *s)
{
    struct winsize ws;
    struct trender_opts o = {.width = 120, .max_lines = 0, .color = s->color,
                             .now_ms = isotime_now_ms()};
    int n = 0;
    char *text, *line, *nl;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        o.width = ws.ws_col - 1; /* never touch the last column: no pending wrap */
        o.max_lines = ws.ws_row > 1 ? ws.ws_row - 1 : 1;
    }
    if (!(text = trender_table(tv, &o, &n)))
        return; /* out of memory: keep the old picture, try again next time */
    if (s->prev_lines > 0)
        printf("\033[%dF", s->prev_lines); /* to column 1, prev_lines lines up */
    for (line = text; (nl = strchr(line, '\n')); line = nl + 1)
        printf("%.*s\033[K\n", (int)(nl - line), line);
    fputs("\033[J", stdout);
    fflush(stdout);
    free(text);
    s->prev_lines = n;
    s->last_draw = isotime_mono();
}

/* ---- the loop ----------------------------------------------------------------- */

/* The repository of an event: the Kafka key, else data.repository. */
static const char *event_repo(const struct tfollow_msg *m, json_t *env, char *buf, size_t buflen)
{
    if (m->key && m->key_len > 0 && m->key_len < buflen) {
        memcpy(buf, m->key, m->key_len);
        buf[m->key_len] = '\0';
        return buf;
    }
    return json_string_value(json_object_get(json_object_get(env, "data"), "repository"));
}

/* Handles one message. Returns 0, or -1 when stdout failed. */
static int handle(const struct tail_opts *o, tview *tv, const struct tfollow_msg *m, int *dirty)
{
    json_error_t jerr;
    json_t *env;
    char err[256], keybuf[REPO_FULL_MAX + 2];
    const char *name, *repo;
    enum tview_result r;
    int rc = 0;

    if (m->len > TAIL_MAX_MESSAGE) {
        log_warn("skipping message at %d/%lld: %zu bytes is over the %d byte cap",
                 (int)m->partition,
                 (long long)m->offset, m->len, TAIL_MAX_MESSAGE);
        return 0;
    }
    if (!(env = json_loadb(m->value ? m->value : "", m->len, 0, &jerr)) || !json_is_object(env)) {
        log_warn("skipping message at %d/%lld: not a JSON object (%s)", (int)m->partition,
                 (long long)m->offset, env ? "other JSON value" : jerr.text);
        json_decref(env);
        return 0;
    }
    r = tview_apply(tv, env, err, sizeof err);
    if (r == TV_BAD)
        log_warn("skipping event at %d/%lld: %s", (int)m->partition, (long long)m->offset, err);
    else if (r == TV_NOMEM)
        log_error("out of memory: event at %d/%lld not shown", (int)m->partition,
                  (long long)m->offset);
    else if (r == TV_APPLIED)
        *dirty = 1;
    name = json_string_value(json_object_get(env, "name"));
    repo = event_repo(m, env, keybuf, sizeof keybuf);
    if (!o->table && r != TV_BAD && (!repo || tview_wants(tv, repo)) &&
        (o->all || (name && !strcmp(name, "backfill/progress.update"))))
        rc = print_json(env);
    json_decref(env);
    return rc;
}

static int run(const struct tail_opts *o, tview *tv, tfollow *f)
{
    struct tail_screen scr = {0, 0, 0.0};
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    int dirty = 1, rc = RC_OK, finished = 0;
    char err[512];

    scr.color = o->table && isatty(STDOUT_FILENO) && !(nc && nc[0]) &&
                !(term && !strcmp(term, "dumb"));
    if (o->table)
        fputs("\033[?25l", stdout); /* hide the cursor while redrawing */
    while (!cli_stop_requested) {
        struct tfollow_msg m;
        enum tfollow_result r = tfollow_next(f, 100, &m, err, sizeof err);
        if (r == TF_FATAL) {
            log_error("%s; stopping", err);
            rc = RC_ERROR;
            break;
        }
        if (r == TF_MSG && handle(o, tv, &m, &dirty)) {
            if (errno != EPIPE) {
                log_error("writing to stdout: %s", strerror(errno));
                rc = RC_ERROR;
            }
            break;
        }
        if (o->table && (dirty || isotime_mono() - scr.last_draw >= 1.0) &&
            isotime_mono() - scr.last_draw >= o->refresh_ms / 1000.0) {
            draw(tv, &scr);
            dirty = 0;
        }
        if (o->exit_when_done && tfollow_caught_up(f) && tview_done(tv)) {
            finished = 1;
            break;
        }
        if (o->exit_at_end && tfollow_at_end(f))
            break;
    }
    if (o->table) {
        draw(tv, &scr);
        fputs("\033[?25h", stdout);
        fflush(stdout);
    }
    if (rc == RC_OK && o->exit_when_done)
        rc = !finished ? RC_UNFINISHED : tview_any_failed(tv) ? RC_FAILED : RC_OK;
    return rc;
}

int main(int argc, char **argv)
{
    struct tail_opts o = {.table = -1, .refresh_ms = 250};
    tview *tv = tview_new();
    tfollow *f = NULL;
    char err[512];
    int rc = RC_USAGE, pr;

    log_init("tail");
    if (!tv || cli_common_init(&o.common)) {
        fprintf(stderr, "out of memory\n");
        tview_free(tv);
        return RC_ERROR;
    }
    if ((pr = parse_args(argc, argv, &o, tv)) != CLI_RUN) {
        rc = pr == CLI_EXIT_SUCCESS ? RC_OK : RC_USAGE;
        goto done;
    }
    if (o.table < 0)
        o.table = isatty(STDOUT_FILENO);
    /* log lines would tear the table apart: on a shared terminal only errors */
    if (o.table && o.common.verbosity == 0 && isatty(STDERR_FILENO))
        log_set_level(LOGL_ERROR);
    cli_stop_signals(NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct tfollow_spec follow = {o.common.progress_topic, o.common.partitions,
                                        "backfill-tail", o.from_beginning};
    if (!(f = tfollow_new(&o.common, &follow, err, sizeof err))) {
        log_error("%s", err);
        rc = RC_ERROR;
        goto done;
    }
    rc = run(&o, tv, f);
done:
    tfollow_free(f);
    tview_free(tv);
    cli_common_free(&o.common);
    return rc;
}
