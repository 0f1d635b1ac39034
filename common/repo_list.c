/* repo_list: see repo_list.h. */
#include "repo_list.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"

void repo_list_init(struct repo_list *l)
{
    memset(l, 0, sizeof *l);
    l->max_prs = JOB_DEFAULT_MAX_PRS;
    l->since_days = JOB_DEFAULT_SINCE_DAYS;
}

void repo_list_free(struct repo_list *l)
{
    free(l->jobs);
    free(l->index);
    l->jobs = NULL;
    l->index = NULL;
    l->n = l->cap = l->index_cap = 0;
}

static size_t repo_list_hash(const char *key)
{
    size_t h = 14695981039346656037u; /* FNV-1a */
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211u;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t repo_list_slot(const struct repo_list *l, const char *key)
{
    size_t mask = l->index_cap - 1, i = repo_list_hash(key) & mask;
    while (l->index[i] && strcmp(l->jobs[l->index[i] - 1].key, key) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Keeps the index at most half full. Returns -1 when memory runs out. */
static int repo_list_grow_index(struct repo_list *l)
{
    size_t cap = l->index_cap ? l->index_cap * 2 : 64, *old = l->index, old_cap = l->index_cap;
    if (l->index_cap > 2 * (l->n + 1))
        return 0;
    l->index = calloc(cap, sizeof *l->index);
    if (!l->index) {
        l->index = old;
        return -1;
    }
    l->index_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            l->index[repo_list_slot(l, l->jobs[old[i] - 1].key)] = old[i];
    free(old);
    return 0;
}

static int repo_list_reject(struct repo_list *l, const char *where, const char *entry,
                            const char *reason)
{
    l->rejected++;
    if (l->on_reject)
        l->on_reject(l->reject_ctx, where, entry, reason);
    else
        fprintf(stderr, "%s: rejected '%s': %s\n", where, entry, reason);
    return REPO_REJECTED;
}

int repo_list_add(struct repo_list *l, const char *entry, const char *where)
{
    char buf[REPO_ENTRY_MAX + 1], owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1];
    char key[REPO_FULL_MAX + 1], err[256];
    size_t len, slot;

    while (isspace((unsigned char)*entry))
        entry++;
    len = strlen(entry);
    while (len && isspace((unsigned char)entry[len - 1]))
        len--;
    if (len >= sizeof buf) {
        snprintf(buf, 64, "%s", entry);
        snprintf(err, sizeof err, "longer than %d characters", REPO_ENTRY_MAX);
        return repo_list_reject(l, where, buf, err);
    }
    memcpy(buf, entry, len);
    buf[len] = '\0';
    if (repo_parse_entry(buf, owner, name, err, sizeof err))
        return repo_list_reject(l, where, buf, err);
    repo_key(owner, name, key);
    if (repo_list_grow_index(l))
        return -1;
    slot = repo_list_slot(l, key);
    if (l->index[slot]) {
        l->duplicates++;
        return REPO_DUPLICATE;
    }
    if (dynbuf_grow_array(&l->jobs, &l->cap, l->n + 1, sizeof *l->jobs))
        return -1;
    job_init(&l->jobs[l->n], owner, name, l->trigger);
    l->jobs[l->n].max_prs = l->max_prs;
    l->jobs[l->n].since_days = l->since_days;
    l->n++;
    l->index[slot] = l->n;
    return REPO_ADDED;
}

int repo_list_add_file(struct repo_list *l, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char line[REPO_ENTRY_MAX + 2], where[512];
    unsigned lineno = 0;

    if (!f) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *hash = strchr(line, '#');
        int c;
        lineno++;
        if (!strchr(line, '\n')) /* longer than any entry: drop the rest, reject it whole */
            while ((c = getc(f)) != EOF && c != '\n')
                ;
        if (hash)
            *hash = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            continue;
        snprintf(where, sizeof where, "%s:%u", strcmp(path, "-") == 0 ? "stdin" : path, lineno);
        if (repo_list_add(l, p, where) < 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    return 0;
}
