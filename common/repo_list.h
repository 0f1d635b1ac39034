/* repo_list: a bulk add's list of repositories to queue, the one way the
 * producer and the web front door read what a person typed: each entry
 * ("owner/name" or the repository's GitHub address) validated by GitHub's
 * naming rules, de-duplicated case-insensitively, and turned into a job.
 * Rejected entries go to on_reject with the reason (stderr when unset). */
#ifndef BACKFILL_REPO_LIST_H
#define BACKFILL_REPO_LIST_H

/* An entry longer than this is refused without being parsed: an address
 * with a long path still fits. */
#define REPO_ENTRY_MAX 512

#include <stddef.h>

#include "codec.h"

struct repo_list {
    struct job *jobs; /* owned */
    size_t n, cap;
    size_t *index;    /* owned: open-addressing set of job positions + 1, by key */
    size_t index_cap; /* a power of two, > 2 * n */
    size_t rejected;     /* invalid entries seen */
    size_t duplicates;   /* entries dropped as duplicates */
    int max_prs;         /* applied to every job added */
    int since_days;
    const char *trigger; /* borrowed */
    /* told of each rejected entry; NULL: "WHERE: rejected 'ENTRY': REASON"
     * on stderr */
    void (*on_reject)(void *ctx, const char *where, const char *entry, const char *reason);
    void *reject_ctx;
};

enum repo_add_result { REPO_ADDED = 0, REPO_DUPLICATE = 1, REPO_REJECTED = 2 };

void repo_list_init(struct repo_list *l);
void repo_list_free(struct repo_list *l);

/* Validates and adds one entry (surrounding whitespace trimmed); `where`
 * names its origin for error messages. Returns REPO_ADDED (the job is
 * jobs[n - 1]), REPO_DUPLICATE, REPO_REJECTED, or -1 when memory runs out. */
int repo_list_add(struct repo_list *l, const char *entry, const char *where);

/* Adds every line of a file ('-' = stdin), skipping blank lines and '#'
 * comments. Returns 0, or -1 when the file cannot be read (message on
 * stderr). */
int repo_list_add_file(struct repo_list *l, const char *path);

#endif
