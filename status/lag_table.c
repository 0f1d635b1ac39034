/* lag_table: see lag_table.h. */
#define _POSIX_C_SOURCE 200809L
#include "lag_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_table.h"

enum { C_GROUP, C_TOPIC, C_PART, C_CUR, C_END, C_LAG, C_CID, C_HOST, C_CLIENT, NCOLS };

/* v as decimal text into buf, or "-" when negative (none). */
static const char *num(char *buf, size_t len, int64_t v)
{
    if (v < 0)
        return "-";
    snprintf(buf, len, "%" PRId64, v);
    return buf;
}

/* The totals line (malloc'd), e.g. "backfill-sink: state Stable, 1 member,
 * total lag 28 on 12 partitions". */
static char *totals(const struct glag_report *r)
{
    char line[1024], extra[160] = "";
    int n;
    if (r->uncommitted)
        snprintf(extra, sizeof extra,
                 " (%zu with no committed offset, counted from their log start)", r->uncommitted);
    n = snprintf(line, sizeof line, "%s: state %s, %d member%s, total lag %" PRId64
                 " on %zu partition%s%s\n",
                 r->group, r->state ? r->state : "?", r->members, r->members == 1 ? "" : "s",
                 r->total_lag, r->n, r->n == 1 ? "" : "s", extra);
    return n < 0 ? NULL : strdup(line);
}

char *lagt_render(const struct glag_report *r)
{
    static const char *const titles[NCOLS] = {"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
                                              "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                                              "CLIENT-ID"};
    ttable *t = ttable_new(NCOLS, titles);
    char *table = NULL, *sum = NULL, *out = NULL;

    if (!t)
        return NULL;
    for (int c = C_PART; c <= C_LAG; c++)
        ttable_align_right(t, (size_t)c);
    for (size_t i = 0; i < r->n; i++) {
        const struct glag_partition *p = &r->parts[i];
        char part[24], cur[24], end[24], lag[24];
        const char *row[NCOLS] = {r->group,
                                  r->topic,
                                  num(part, sizeof part, p->partition),
                                  num(cur, sizeof cur, p->committed),
                                  num(end, sizeof end, p->end),
                                  num(lag, sizeof lag, p->lag),
                                  p->consumer_id ? p->consumer_id : "-",
                                  p->host ? p->host : "-",
                                  p->client_id ? p->client_id : "-"};
        if (ttable_add(t, row))
            goto done;
    }
    if (!(table = ttable_render(t)) || !(sum = totals(r)))
        goto done;
    if ((out = malloc(strlen(table) + strlen(sum) + 1)))
        strcat(strcpy(out, table), sum);
done:
    free(table);
    free(sum);
    ttable_free(t);
    return out;
}
