/* isotime: ISO-8601 UTC timestamps as GitHub writes them ("2026-11-28T21:39:11Z"). */
#ifndef BACKFILL_ISOTIME_H
#define BACKFILL_ISOTIME_H

#include <stdint.h>
#include <time.h>

#define ISOTIME_LEN 20 /* without the NUL */

/* Formats t as "YYYY-MM-DDTHH:MM:SSZ" into out. */
void isotime_format(time_t t, char out[ISOTIME_LEN + 1]);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z"; returns 0 and sets *t, or -1 and
 * leaves *t untouched. */
int isotime_parse(const char *s, time_t *t);

/* Milliseconds since the Unix epoch, wall clock. */
int64_t isotime_now_ms(void);

/* Seconds on a monotonic clock, for timeouts and waits. */
double isotime_mono(void);

#endif
