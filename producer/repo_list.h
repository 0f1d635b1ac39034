/* repo_list: the producer's list of repositories to queue — validated by
 * GitHub's naming rules and de-duplicated case-insensitively, each turned
 * into a job. Rejected entries are reported on stderr with the reason. */
#ifndef BACKFILL_REPO_LIST_H
#define BACKFILL_REPO_LIST_H

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
};

void repo_list_init(struct repo_list *l);
void repo_list_free(struct repo_list *l);

/* Validates and adds one "owner/name" (surrounding whitespace trimmed);
 * `where` names its origin for error messages. Returns 0 (added, duplicate
 * or rejected — see the counters), -1 only when memory runs out. */
int repo_list_add(struct repo_list *l, const char *entry, const char *where);

/* Adds every line of a file ('-' = stdin), skipping blank lines and '#'
 * comments. Returns 0, or -1 when the file cannot be read (message on
 * stderr). */
int repo_list_add_file(struct repo_list *l, const char *path);

#endif
