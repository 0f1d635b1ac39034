/* pager: see pager.h. */
#include "pager.h"

#include <stdio.h>
#include <string.h>

#include "isotime.h"

void pager_init(struct pager *p, int max_prs, time_t cutoff, const char *cursor, int fetched)
{
    memset(p, 0, sizeof *p);
    p->max_prs = max_prs;
    p->cutoff = cutoff;
    p->fetched = fetched;
    if (cursor)
        snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    p->done = fetched >= max_prs;
}

int pager_next_first(const struct pager *p, int page_max)
{
    int left = p->max_prs - p->fetched;
    int n = left < page_max ? left : page_max;
    if (n > GH_PAGE_MAX)
        n = GH_PAGE_MAX;
    return n < 1 ? 1 : n;
}

json_t *pager_accept(struct pager *p, const struct gh_page *page)
{
    json_t *keep = json_array(), *rec;
    int fetched = p->fetched;
    bool done = false, time_limit = false;
    size_t i;

    if (!keep)
        return NULL;
    json_array_foreach(page->records, i, rec) {
        time_t created;
        const char *s = json_string_value(json_object_get(rec, "createdAt"));
        if (fetched >= p->max_prs) {
            done = true;
            break;
        }
        if (!s || isotime_parse(s, &created) != 0 || created < p->cutoff) {
            done = time_limit = true;
            break;
        }
        if (json_array_append(keep, rec)) {
            json_decref(keep);
            return NULL;
        }
        fetched++;
    }
    if (fetched >= p->max_prs || !page->has_next)
        done = true;
    p->fetched = fetched;
    p->done = done;
    p->reached_time_limit = time_limit;
    if (!done)
        snprintf(p->cursor, sizeof p->cursor, "%s", page->end_cursor);
    return keep;
}
