/* trender: draws a tview as the live table of backfill-tail — a header,
 * one line per repository (progress bar, processed/total, status, chunk,
 * rate-limit wait, elapsed, and the error of a failed backfill) and a
 * footer with totals.
 *
 * Pure: returns text; no terminal I/O, no clock (the caller passes now).
 * Every line is clipped to the given width (escape sequences do not
 * count), so the caller can redraw in place by moving the cursor up by the
 * number of lines it printed last time. */
#ifndef BACKFILL_TRENDER_H
#define BACKFILL_TRENDER_H

#include <stddef.h>
#include <stdint.h>

#include "tview.h"

struct trender_opts {
    int width;      /* columns, >= 20 (smaller values are raised to 20) */
    int max_lines;  /* 0 = no limit; else rows are cut (active ones kept) to fit */
    int color;      /* 1: ANSI colours on the status column */
    int64_t now_ms; /* wall clock, for elapsed time and rate-limit waits */
};

/* Renders the table. Returns a malloc'd NUL-terminated text of *nlines
 * lines, each ending in '\n' (caller frees), or NULL when out of memory. */
char *trender_table(const tview *tv, const struct trender_opts *o, int *nlines);

/* Formats a duration in ms compactly: "0.4s", "12.0s", "3m05s", "2h07m".
 * Negative durations print as "0.0s". */
void trender_duration(int64_t ms, char out[32]);

#endif
