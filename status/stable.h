/* stable: a plain text table — column titles, rows of strings, columns
 * padded to their widest cell (counted in UTF-8 code points), numbers
 * right-aligned on request. Pure; used by backfill-status to print
 * backfill_progress_summary, testable without a database.
 *
 *   stable *t = stable_new(3, titles);
 *   stable_add(t, cells);            (per row; cells are copied)
 *   char *text = stable_render(t);   (caller frees)
 *   stable_free(t); */
#ifndef BACKFILL_STABLE_H
#define BACKFILL_STABLE_H

#include <stddef.h>

#define STABLE_CELL_MAX 200 /* longer cells are cut, ending in "..." */

typedef struct stable stable;

/* ncols titles (borrowed for the call, copied). NULL when out of memory or
 * ncols is 0. stable_free(NULL) is a no-op. */
stable *stable_new(size_t ncols, const char *const *titles);
void stable_free(stable *t);

/* Right-aligns column col (numbers). */
void stable_align_right(stable *t, size_t col);

/* Appends a row of ncols cells (NULL cell = empty); control characters in
 * cells become spaces. Returns 0, or -1 when out of memory (table
 * unchanged). */
int stable_add(stable *t, const char *const *cells);

/* The table as text: titles, a rule of dashes, the rows, each line ending
 * in '\n', no trailing blanks. NULL when out of memory. */
char *stable_render(const stable *t);

#endif
