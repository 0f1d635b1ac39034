/* Unit tests of backfill-tail's view model (tview: folding events into
 * per-repository rows), its renderer (trender) and backfill-status's text
 * table (text_table). No Kafka, no terminal, no database. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "text_table.h"
#include "trender.h"
#include "tview.h"

#define T0 1764360000000LL /* a fixed "now" */

/* A progress.update envelope (caller json_decref's). */
static json_t *progress(const char *repo, const char *id, long long started, int seq,
                        const char *status, int prog, int chunk, const char *retry_at,
                        const char *error)
{
    return json_pack("{s:s, s:s, s:I, s:i, s:{s:s, s:s, s:i, s:I, s:s, s:i, s:i, s:i, s:s?, "
                     "s:s?, s:{s:i, s:i}}}",
                     "name", "backfill/progress.update", "id", "ev", "ts",
                     (json_int_t)(started + seq * 1000), "v", 1, "data", "repository", repo,
                     "backfillId", id, "seq", seq, "startedAt", (json_int_t)started, "status",
                     status, "progress", prog, "total", 200, "chunk", chunk, "retryAt", retry_at,
                     "error", error, "apiCost", "requests", chunk, "points", chunk);
}

static json_t *prs(const char *repo, const char *id, long long started, int seq, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:i}", "number", i + 1));
    return json_pack("{s:s, s:s, s:I, s:i, s:{s:s, s:s, s:i, s:I, s:i, s:o}}", "name",
                     "backfill/pull_requests", "id", "ev", "ts",
                     (json_int_t)(started + seq * 1000), "v", 1, "data", "repository", repo,
                     "backfillId", id, "seq", seq, "startedAt", (json_int_t)started, "chunk", 1,
                     "pullRequests", arr);
}

/* Applies and frees one envelope. */
static enum tview_result apply(tview *tv, json_t *env)
{
    char err[256];
    enum tview_result r = tview_apply(tv, env, err, sizeof err);
    json_decref(env);
    return r;
}

static void test_fold(void)
{
    tview *tv = tview_new();
    const struct tview_row *r;

    CHECK(tv && tview_count(tv) == 0 && !tview_done(tv));
    CHECK(apply(tv, progress("Acme/Widget", "b1", T0, 1, "started", 0, 0, NULL, NULL)) ==
          TV_APPLIED);
    CHECK(apply(tv, prs("acme/widget", "b1", T0, 2, 100)) == TV_APPLIED);
    CHECK(apply(tv, progress("acme/widget", "b1", T0, 3, "processing", 100, 1, NULL, NULL)) ==
          TV_APPLIED);
    CHECK(tview_count(tv) == 1);
    r = tview_row(tv, 0);
    CHECK(!strcmp(r->key, "acme/widget"));
    CHECK(!strcmp(r->display, "Acme/Widget")); /* the spelling of the first event */
    CHECK(r->status == TV_PROCESSING && r->progress == 100 && r->total == 200 && r->chunk == 1);
    CHECK(r->pr_events == 1 && r->pr_records == 100 && r->seq == 3);
    CHECK(r->started_ms == T0 && r->updated_ms == T0 + 3000);
    CHECK(!tview_done(tv));

    /* a replayed chunk (seq not above the last) changes nothing */
    CHECK(apply(tv, prs("acme/widget", "b1", T0, 2, 100)) == TV_IGNORED);
    CHECK(apply(tv, progress("acme/widget", "b1", T0, 3, "processing", 100, 1, NULL, NULL)) ==
          TV_IGNORED);
    CHECK(tview_row(tv, 0)->pr_records == 100);

    /* rate limited, then completed */
    CHECK(apply(tv, progress("acme/widget", "b1", T0, 4, "rate_limited", 100, 1,
                             "2025-11-28T20:10:00Z", NULL)) == TV_APPLIED);
    r = tview_row(tv, 0);
    CHECK(r->status == TV_RATE_LIMITED && r->retry_at_ms == 1764360600000LL);
    CHECK(apply(tv, progress("acme/widget", "b1", T0, 5, "completed", 137, 2, NULL, NULL)) ==
          TV_APPLIED);
    r = tview_row(tv, 0);
    CHECK(r->status == TV_COMPLETED && r->progress == 137 && r->retry_at_ms == 0);
    CHECK(tview_done(tv) && !tview_any_failed(tv));

    /* an older backfill of the same repository is ignored; a newer one replaces */
    CHECK(apply(tv, progress("acme/widget", "b0", T0 - 1, 9, "failed", 0, 0, NULL, "x")) ==
          TV_IGNORED);
    CHECK(apply(tv, progress("acme/widget", "b2", T0 + 5000, 1, "started", 0, 0, NULL, NULL)) ==
          TV_APPLIED);
    r = tview_row(tv, 0);
    CHECK(r->status == TV_STARTED && r->progress == 0 && r->pr_records == 0 &&
          !strcmp(r->backfill_id, "b2"));
    CHECK(!tview_done(tv));

    /* a second repository sorts by key; a failure is counted */
    CHECK(apply(tv, progress("Aaa/first", "c1", T0, 1, "failed", 0, 0, NULL,
                             "Could not resolve to a Repository\nwith the name")) == TV_APPLIED);
    CHECK(tview_count(tv) == 2 && !strcmp(tview_row(tv, 0)->key, "aaa/first"));
    CHECK(!strcmp(tview_row(tv, 0)->display, "Aaa/first"));
    CHECK(!strchr(tview_row(tv, 0)->error, '\n'));
    CHECK(tview_any_failed(tv));

    /* the key is lower-cased; owner and name give the spelling shown */
    json_t *e = progress("zz/top", "z1", T0, 1, "started", 0, 0, NULL, NULL);
    json_object_set_new(json_object_get(e, "data"), "owner", json_string("ZZ"));
    json_object_set_new(json_object_get(e, "data"), "name", json_string("Top"));
    CHECK(apply(tv, e) == TV_APPLIED && !strcmp(tview_row(tv, 2)->display, "ZZ/Top"));
    e = progress("zz/other", "z2", T0, 1, "started", 0, 0, NULL, NULL);
    json_object_set_new(json_object_get(e, "data"), "owner", json_string("nope")); /* mismatch */
    json_object_set_new(json_object_get(e, "data"), "name", json_string("other"));
    CHECK(apply(tv, e) == TV_APPLIED && !strcmp(tview_row(tv, 2)->display, "zz/other"));

    struct tview_totals t;
    tview_totals(tv, &t);
    CHECK(t.repositories == 4 && t.by_status[TV_FAILED] == 1 && t.by_status[TV_STARTED] == 3);
    CHECK(t.total == 800 && t.first_started_ms == T0);
    tview_free(tv);
    tview_free(NULL);
}

static void test_bad_events(void)
{
    tview *tv = tview_new();
    char err[256] = "";
    json_t *e;

    CHECK(apply(tv, json_pack("{s:s}", "name", "repository/backfill.initial")) == TV_IGNORED);
    CHECK(apply(tv, json_pack("{s:i}", "v", 1)) == TV_BAD);
    CHECK(apply(tv, progress("no-slash", "b", T0, 1, "started", 0, 0, NULL, NULL)) == TV_BAD);
    CHECK(apply(tv, progress("a/b/c", "b", T0, 1, "started", 0, 0, NULL, NULL)) == TV_BAD);
    CHECK(apply(tv, progress("a/b", "b", T0, 0, "started", 0, 0, NULL, NULL)) == TV_BAD);
    CHECK(apply(tv, progress("a/b", "b", T0, 1, "exploded", 0, 0, NULL, NULL)) == TV_BAD);
    CHECK(apply(tv, progress("a/b", "", T0, 1, "started", 0, 0, NULL, NULL)) == TV_BAD);
    e = progress("a/b", "b", T0, 1, "started", 0, 0, NULL, NULL);
    json_object_set_new(json_object_get(e, "data"), "progress", json_string("7"));
    CHECK(tview_apply(tv, e, err, sizeof err) == TV_BAD && strstr(err, "progress"));
    json_object_set_new(json_object_get(e, "data"), "progress", json_integer(7));
    json_object_del(json_object_get(e, "data"), "apiCost");
    CHECK(tview_apply(tv, e, err, sizeof err) == TV_BAD && strstr(err, "apiCost"));
    json_decref(e);
    CHECK(apply(tv, json_pack("{s:s, s:I, s:i}", "name", "backfill/progress.update", "ts",
                              (json_int_t)T0, "data", 3)) == TV_BAD);
    CHECK(tview_count(tv) == 0);
    tview_free(tv);
}

static void test_filter(void)
{
    tview *tv = tview_new();
    char err[256];

    CHECK(tview_wants(tv, "any/thing"));
    CHECK(tview_follow(tv, "not a repo", err, sizeof err) == -1 && err[0]);
    CHECK(tview_follow(tv, "Acme/Widget", err, sizeof err) == 0);
    CHECK(tview_follow(tv, "acme/widget", err, sizeof err) == 0); /* twice: harmless */
    CHECK(tview_follow(tv, "zed/z", err, sizeof err) == 0);
    CHECK(tview_count(tv) == 2 && tview_row(tv, 0)->status == TV_WAITING);
    CHECK(tview_wants(tv, "ACME/widget") && !tview_wants(tv, "other/repo"));
    CHECK(apply(tv, progress("other/repo", "o", T0, 1, "started", 0, 0, NULL, NULL)) ==
          TV_IGNORED);
    CHECK(apply(tv, progress("acme/widget", "a", T0, 1, "completed", 5, 1, NULL, NULL)) ==
          TV_APPLIED);
    CHECK(!tview_done(tv)); /* zed/z still waiting */
    CHECK(apply(tv, progress("zed/z", "z", T0, 1, "failed", 0, 0, NULL, "gone")) == TV_APPLIED);
    CHECK(tview_done(tv) && tview_any_failed(tv) && tview_count(tv) == 2);
    tview_free(tv);
}

static int count_char(const char *s, const char *end, char c)
{
    int n = 0;
    for (; s < end; s++)
        n += *s == c;
    return n;
}

/* The line of text that contains needle, as [*b, *e). */
static int find_line(const char *text, const char *needle, const char **b, const char **e)
{
    const char *p = strstr(text, needle);
    if (!p)
        return -1;
    while (p > text && p[-1] != '\n')
        p--;
    *b = p;
    *e = strchr(p, '\n');
    return *e ? 0 : -1;
}

static void test_render(void)
{
    tview *tv = tview_new();
    struct trender_opts o = {.width = 120, .max_lines = 0, .color = 0, .now_ms = T0 + 65000};
    const char *b, *e;
    char *text;
    int n = 0;

    text = trender_table(tv, &o, &n);
    CHECK(text && n == 3 && strstr(text, "no backfill events yet"));
    free(text);

    apply(tv, progress("acme/half", "h", T0, 3, "processing", 100, 1, NULL, NULL));
    apply(tv, progress("acme/done", "d", T0, 4, "completed", 37, 1, NULL, NULL));
    apply(tv, progress("acme/broken", "x", T0, 1, "failed", 0, 0, NULL, "NOT_FOUND: no such repo"));
    apply(tv,
          progress("acme/slow", "s", T0, 2, "rate_limited", 0, 0, "2025-11-28T20:03:00Z", NULL));
    text = trender_table(tv, &o, &n);
    CHECK(text && n == 6); /* header, 4 rows, footer */
    CHECK(strncmp(text, "REPOSITORY", 10) == 0);
    /* processing at 100/200: half the bar (30 columns wide at this width) */
    CHECK(find_line(text, "acme/half", &b, &e) == 0);
    CHECK(count_char(b, e, '#') == 15 && count_char(b, e, '.') == 15);
    CHECK(strstr(b, " 50%") && strstr(b, "100/200") && strstr(b, "processing") &&
          strstr(b, "1m05s"));
    /* completed: a full bar whatever the count */
    CHECK(find_line(text, "acme/done", &b, &e) == 0);
    CHECK(count_char(b, e, '#') == 30 && strstr(b, "100%") && strstr(b, "37/200") &&
          strstr(b, "completed") && strstr(b, "4.0s"));
    CHECK(find_line(text, "acme/broken", &b, &e) == 0 && strstr(b, "failed") &&
          strstr(b, "NOT_FOUND"));
    /* rate limited until now + 115 s */
    CHECK(find_line(text, "acme/slow", &b, &e) == 0 && strstr(b, "rate limited") &&
          strstr(b, "1m55s"));
    CHECK(find_line(text, "repositories:", &b, &e) == 0);
    CHECK(strstr(b, "4 repositories: 1 completed, 1 failed, 1 running, 1 rate limited, 0 waiting"));
    CHECK(strstr(b, "PRs 137/800") && strstr(b, "API 2 requests, 2 points"));
    free(text);

    /* narrow terminal: every line clipped to the width */
    o.width = 40;
    text = trender_table(tv, &o, &n);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        CHECK(nl && nl - p <= 40);
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(text);

    /* short terminal: active rows are kept, finished ones summarised */
    o.width = 120;
    o.max_lines = 4;
    text = trender_table(tv, &o, &n);
    CHECK(text && n == 4 && strstr(text, "acme/half") && !strstr(text, "acme/done") &&
          strstr(text, "more repositories not shown"));
    free(text);

    /* colour codes wrap the status only */
    o.max_lines = 0;
    o.color = 1;
    text = trender_table(tv, &o, &n);
    CHECK(text && strstr(text, "\033[32mcompleted") && strstr(text, "\033[31mfailed"));
    free(text);
    tview_free(tv);

    char d[32];
    trender_duration(400, d);
    CHECK(!strcmp(d, "0.4s"));
    trender_duration(185000, d);
    CHECK(!strcmp(d, "3m05s"));
    trender_duration(7620000, d);
    CHECK(!strcmp(d, "2h07m"));
    trender_duration(-5, d);
    CHECK(!strcmp(d, "0.0s"));
}

static void test_text_table(void)
{
    static const char *const titles[] = {"NAME", "N", "NOTE"};
    const char *r1[] = {"a/b", "7", "ünïcode"};
    const char *r2[] = {"longer/name", "1234", NULL};
    const char *r3[] = {"x/y", "1", "tab\there"};
    ttable *t = ttable_new(3, titles);
    char *text;

    CHECK(t != NULL);
    ttable_align_right(t, 1);
    CHECK(!ttable_add(t, r1) && !ttable_add(t, r2) && !ttable_add(t, r3));
    text = ttable_render(t);
    CHECK(text != NULL);
    CHECK(text && !strcmp(text, "NAME            N  NOTE\n"
                                "---------------------------\n"
                                "a/b             7  ünïcode\n"
                                "longer/name  1234\n"
                                "x/y             1  tab here\n"));
    free(text);
    ttable_free(t);
    ttable_free(NULL);
    CHECK(ttable_new(0, titles) == NULL);
}

int main(void)
{
    test_fold();
    test_bad_events();
    test_filter();
    test_render();
    test_text_table();
    return CHECK_DONE();
}
