/* text_table (ttable_): a plain text table — column titles, rows of strings, columns
 * padded to their widest cell (counted in UTF-8 code points), numbers
 * right-aligned on request. Pure; used by backfill-status to print
 * backfill_progress_summary, testable without a database.
 *
 *   ttable *t = ttable_new(3, titles);
 *   ttable_add(t, cells);            (per row; cells are copied)
 *   char *text = ttable_render(t);   (caller frees)
 *   ttable_free(t); */
#ifndef BACKFILL_TEXT_TABLE_H
#define BACKFILL_TEXT_TABLE_H

#include <stddef.h>

#define TTABLE_CELL_MAX 200 /* longer cells are cut, ending in "..." */

typedef struct ttable ttable;

/* ncols titles (borrowed for the call, copied). NULL when out of memory or
 * ncols is 0. ttable_free(NULL) is a no-op. */
ttable *ttable_new(size_t ncols, const char *const *titles);
void ttable_free(ttable *t);

/* Right-aligns column col (numbers). */
void ttable_align_right(ttable *t, size_t col);

/* Appends a row of ncols cells (NULL cell = empty); control characters in
 * cells become spaces. Returns 0, or -1 when out of memory (table
 * unchanged). */
int ttable_add(ttable *t, const char *const *cells);

/* The table as text: titles, a rule of dashes, the rows, each line ending
 * in '\n', no trailing blanks. NULL when out of memory. */
char *ttable_render(const ttable *t);

#endif
