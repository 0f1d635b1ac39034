/* trender: see trender.h. Lines are built one at a time in a fixed buffer
 * (a row is at most a few hundred bytes: repository <= 140, error <= 200),
 * clipped to the width, and appended to a growing output buffer. */
#include "trender.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"

#define LINE_MAX_BYTES 1024
#define REPO_COL_MIN 10
#define REPO_COL_MAX 40
#define BAR_MIN 10
#define BAR_MAX 30
/* everything on a row but the repository and the bar:
 * "  [" "]" " 100%" "  1000/1000" "  rate limited" "  chunk" "  wait   " "  elapsed" */
#define ROW_FIXED 59

struct out {
    struct dynbuf text; /* the frame being drawn */
    int oom;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (!o->oom && dynbuf_add(&o->text, s, n))
        o->oom = 1;
}

/* Appends printf output to a fixed line buffer, silently truncating. */
static void line_add(char *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(char *line, const char *fmt, ...)
{
    size_t len = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + len, LINE_MAX_BYTES - len, fmt, ap);
    va_end(ap);
}

/* Appends `line` clipped to `width` visible columns (UTF-8 code points;
 * ESC [ ... m sequences are kept and not counted) plus '\n'. */
static void out_line(struct out *o, const char *line, int width, int color)
{
    int cols = 0, clipped = 0;
    size_t i = 0;
    while (line[i]) {
        if (line[i] == '\033') {
            size_t j = i + 1;
            while (line[j] && !(line[j] >= '@' && line[j] <= '~' && line[j] != '['))
                j++;
            i = line[j] ? j + 1 : j;
            continue;
        }
        if (((unsigned char)line[i] & 0xC0) != 0x80) { /* start of a code point */
            if (cols == width) {
                clipped = 1;
                break;
            }
            cols++;
        }
        i++;
    }
    out_put(o, line, i);
    if (clipped && color)
        out_put(o, "\033[0m", 4);
    out_put(o, "\n", 1);
}

void trender_duration(int64_t ms, char out[32])
{
    if (ms < 0)
        ms = 0;
    if (ms < 60000)
        snprintf(out, 32, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
    else if (ms < 3600000)
        snprintf(out, 32, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        snprintf(out, 32, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

static const char *status_label(enum tview_status s)
{
    return s == TV_RATE_LIMITED ? "rate limited" : tview_status_name(s);
}

static const char *status_color(enum tview_status s)
{
    switch (s) {
    case TV_COMPLETED:
        return "\033[32m";
    case TV_FAILED:
        return "\033[31m";
    case TV_RATE_LIMITED:
        return "\033[33m";
    case TV_WAITING:
        return "\033[2m";
    default:
        return "\033[36m";
    }
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void row_line(char *line, const struct tview_row *r, int repo_w, int bar_w,
                     const struct trender_opts *o)
{
    int done = r->status == TV_COMPLETED;
    int64_t total = r->total > 0 ? r->total : 1, prog = r->total > 0 ? r->progress : 0;
    int pct = done ? 100 : clampi((int)(prog * 100 / total), 0, 100);
    int filled = done ? bar_w : clampi((int)(prog * bar_w / total), 0, bar_w);
    char bar[BAR_MAX + 1], prs[32], wait[32] = "-", elapsed[32] = "-";
    int rlen = (int)strlen(r->display);

    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '.', (size_t)(bar_w - filled));
    bar[bar_w] = '\0';
    if (r->status == TV_WAITING)
        snprintf(prs, sizeof prs, "-");
    else
        snprintf(prs, sizeof prs, "%d/%d", r->progress, r->total);
    if (r->status == TV_RATE_LIMITED) {
        if (r->retry_at_ms)
            trender_duration(r->retry_at_ms - o->now_ms, wait);
        else
            snprintf(wait, sizeof wait, "?");
    }
    if (r->started_ms)
        trender_duration((tview_terminal(r->status) ? r->updated_ms : o->now_ms) - r->started_ms,
                         elapsed);
    if (rlen > repo_w) /* keep the end: the name tells repositories of one owner apart */
        line_add(line, "~%s", r->display + (rlen - repo_w + 1));
    else
        line_add(line, "%-*s", repo_w, r->display);
    line_add(line, "  [%s] %3d%%  %9s  %s%-12s%s  %5d  %7s  %7s", bar, pct, prs,
             o->color ? status_color(r->status) : "", status_label(r->status),
             o->color ? "\033[0m" : "", r->chunk, wait, elapsed);
    if (r->status == TV_FAILED && r->error[0])
        line_add(line, "  %s", r->error);
}

static void footer_line(char *line, const tview *tv, const struct trender_opts *o)
{
    struct tview_totals t;
    char elapsed[32] = "-";
    size_t running;

    tview_totals(tv, &t);
    running = t.by_status[TV_STARTED] + t.by_status[TV_PROCESSING];
    if (t.first_started_ms)
        trender_duration((running || t.by_status[TV_RATE_LIMITED] || t.by_status[TV_WAITING]
                              ? o->now_ms
                              : t.last_updated_ms) -
                             t.first_started_ms,
                         elapsed);
    line_add(line,
             "%zu repositories: %zu completed, %zu failed, %zu running, %zu rate limited, "
             "%zu waiting | PRs %lld/%lld | API %lld requests, %lld points | %s",
             t.repositories, t.by_status[TV_COMPLETED], t.by_status[TV_FAILED], running,
             t.by_status[TV_RATE_LIMITED], t.by_status[TV_WAITING], (long long)t.progress,
             (long long)t.total, (long long)t.requests, (long long)t.points, elapsed);
}

/* Marks which rows fit in `room` lines: every non-terminal row first (in
 * key order), then terminal ones. Returns how many were left out. */
static size_t choose_rows(const tview *tv, unsigned char *show, size_t room)
{
    size_t n = tview_count(tv), used = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            int term = tview_terminal(tview_row(tv, i)->status);
            if (!show[i] && used < room && (pass == 1 || !term)) {
                show[i] = 1;
                used++;
            }
        }
    return n - used;
}

char *trender_table(const tview *tv, const struct trender_opts *o, int *nlines)
{
    struct out out = {{0}, 0};
    size_t n = tview_count(tv), hidden = 0;
    int width = o->width < 20 ? 20 : o->width, repo_w = REPO_COL_MIN, bar_w, lines = 0;
    unsigned char *show = calloc(n ? n : 1, 1);
    char line[LINE_MAX_BYTES];

    if (!show)
        return NULL;
    for (size_t i = 0; i < n; i++)
        repo_w = clampi((int)strlen(tview_row(tv, i)->display), repo_w, REPO_COL_MAX);
    bar_w = clampi(width - repo_w - ROW_FIXED, BAR_MIN, BAR_MAX);
    if (o->max_lines > 0 && n + 2 > (size_t)o->max_lines)
        hidden = choose_rows(tv, show, o->max_lines > 3 ? (size_t)o->max_lines - 3 : 0);
    else
        memset(show, 1, n ? n : 1);

    line[0] = '\0';
    line_add(line, "%-*s  %-*s  %9s  %-12s  %5s  %7s  %7s", repo_w, "REPOSITORY", bar_w + 7,
             "PROGRESS", "PRS", "STATUS", "CHUNK", "WAIT", "ELAPSED");
    out_line(&out, line, width, 0);
    lines++;
    for (size_t i = 0; i < n; i++) {
        if (!show[i])
            continue;
        line[0] = '\0';
        row_line(line, tview_row(tv, i), repo_w, bar_w, o);
        out_line(&out, line, width, o->color);
        lines++;
    }
    if (n == 0 || hidden) {
        line[0] = '\0';
        if (n == 0)
            line_add(line, "(no backfill events yet)");
        else
            line_add(line, "... %zu more repositories not shown (enlarge the terminal "
                           "or use --repo)", hidden);
        out_line(&out, line, width, 0);
        lines++;
    }
    line[0] = '\0';
    footer_line(line, tv, o);
    out_line(&out, line, width, 0);
    lines++;
    free(show);
    if (out.oom || !out.text.data) {
        dynbuf_free(&out.text);
        return NULL;
    }
    *nlines = lines;
    return out.text.data; /* the caller owns it now */
}
