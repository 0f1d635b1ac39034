/* pager: when to stop paging a repository's pull requests, newest first.
 *
 * Pure logic, no I/O: the worker asks how big the next page should be,
 * fetches it, and hands it to pager_accept, which keeps the records that
 * belong to the backfill and decides whether another page is needed.
 * Paging stops at max_prs, at the first pull request created before the
 * cutoff, or when GitHub says there is no next page. */
#ifndef BACKFILL_PAGER_H
#define BACKFILL_PAGER_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "github.h"

struct pager {
    int max_prs;
    time_t cutoff;
    int fetched;                        /* records accepted so far */
    char cursor[GH_CURSOR_MAX + 1];     /* where the next page starts ("" = newest) */
    bool done;
    bool reached_time_limit;            /* stopped at a PR older than the cutoff */
};

/* Starts a pager; cursor NULL or "" starts from the newest PR, fetched is
 * the count already accepted before a resume. */
void pager_init(struct pager *p, int max_prs, time_t cutoff, const char *cursor, int fetched);

/* Size of the next page: min(page_max, max_prs - fetched), at least 1. */
int pager_next_first(const struct pager *p, int page_max);

/* Consumes a GH_OK page. Returns a new array (caller owns) of the records
 * to store, possibly empty, and advances the pager; NULL on allocation
 * failure (pager untouched). */
json_t *pager_accept(struct pager *p, const struct gh_page *page);

#endif
