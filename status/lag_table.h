/* lag_table (lagt_): one group's lag (common/group_lag) as the text
 * `kafka-consumer-groups.sh --describe` prints — GROUP TOPIC PARTITION
 * CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID, "-" where
 * nothing is committed or no member owns the partition — followed by one
 * line of totals. Pure: no Kafka, testable. */
#ifndef BACKFILL_LAG_TABLE_H
#define BACKFILL_LAG_TABLE_H

#include "group_lag.h"

/* The table and its totals line, each line ending in '\n' (caller frees).
 * NULL when out of memory. */
char *lagt_render(const struct glag_report *r);

#endif
