/* Unit tests: when paging stops (max PRs, cutoff, last page). A fake
 * GitHub serves `in_window` PRs newer than the cutoff followed by `older`
 * ones, newest first, in pages. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "isotime.h"
#include "pager.h"

static const time_t now = 1764360000; /* 2025-11-28T20:00:00Z */

/* Builds page `first` records starting at index `start` of the fake repo. */
static void fake_page(int in_window, int older, int start, int first, struct gh_page *pg)
{
    int total = in_window + older, end = start + first < total ? start + first : total;
    memset(pg, 0, sizeof *pg);
    pg->status = GH_OK;
    pg->records = json_array();
    for (int i = start; i < end; i++) {
        char ts[ISOTIME_LEN + 1];
        time_t created = i < in_window ? now - 3600 - (time_t)i * 60 : now - 31 * 86400 - (time_t)i * 60;
        isotime_format(created, ts);
        json_array_append_new(pg->records, json_pack("{s:i, s:s}", "number", total - i, "createdAt", ts));
    }
    pg->has_next = end < total;
    snprintf(pg->end_cursor, sizeof pg->end_cursor, "c%d", end);
}

struct run_result {
    int stored, pages;
    int time_limit;
};

static struct run_result run(int in_window, int older, int max_prs)
{
    struct pager p;
    struct run_result r = {0, 0, 0};
    int pos = 0;
    pager_init(&p, max_prs, now - 30 * 86400, NULL, 0);
    while (!p.done && r.pages < 100) {
        struct gh_page pg;
        int first = pager_next_first(&p, GH_PAGE_MAX);
        if (p.cursor[0])
            sscanf(p.cursor, "c%d", &pos);
        fake_page(in_window, older, pos, first, &pg);
        json_t *keep = pager_accept(&p, &pg);
        r.stored += (int)json_array_size(keep);
        r.pages++;
        json_decref(keep);
        gh_page_clear(&pg);
    }
    r.time_limit = p.reached_time_limit;
    CHECK(p.fetched == r.stored);
    return r;
}

int main(void)
{
    struct run_result r;

    r = run(250, 0, 200); /* 250 in the window: exactly 200, two pages */
    CHECK(r.stored == 200);
    CHECK(r.pages == 2);
    r = run(50, 0, 200); /* only 50 exist: all of them, one page */
    CHECK(r.stored == 50);
    CHECK(r.pages == 1);
    r = run(120, 80, 200); /* stops at the first PR older than the cutoff */
    CHECK(r.stored == 120);
    CHECK(r.pages == 2);
    CHECK(r.time_limit);
    r = run(100, 5, 200); /* page 1 is all in the window: page 2 proves the end */
    CHECK(r.stored == 100);
    CHECK(r.pages == 2);
    r = run(0, 0, 200);
    CHECK(r.stored == 0 && r.pages == 1);
    r = run(0, 30, 200);
    CHECK(r.stored == 0 && r.pages == 1 && r.time_limit);
    r = run(1000, 0, 250); /* pages of 100, 100, 50 */
    CHECK(r.stored == 250 && r.pages == 3);
    r = run(7, 0, 5);
    CHECK(r.stored == 5 && r.pages == 1);

    /* resume: a pager started from a checkpoint continues where it was */
    struct pager p;
    pager_init(&p, 200, now - 30 * 86400, "c100", 100);
    CHECK(!p.done && p.fetched == 100 && strcmp(p.cursor, "c100") == 0);
    CHECK(pager_next_first(&p, 100) == 100);
    CHECK(pager_next_first(&p, 25) == 25);
    pager_init(&p, 200, now, NULL, 200);
    CHECK(p.done);

    /* null-free records with a bad createdAt stop paging rather than crash */
    struct gh_page pg;
    memset(&pg, 0, sizeof pg);
    pg.records = json_pack("[{s:i}]", "number", 1);
    pg.has_next = 1;
    pager_init(&p, 200, now - 86400, NULL, 0);
    json_t *keep = pager_accept(&p, &pg);
    CHECK(json_array_size(keep) == 0 && p.done);
    json_decref(keep);
    gh_page_clear(&pg);
    return CHECK_DONE();
}
