/* text_table: see text_table.h. Cells are stored as one malloc'd string each in a
 * row-major array that grows by doubling. */
#define _POSIX_C_SOURCE 200809L
#include "text_table.h"

#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"

struct ttable {
    size_t ncols;
    char **cells;         /* owned: (nrows + 1) * ncols, row 0 = titles */
    size_t nrows, cap;    /* rows including the titles; capacity in rows */
    unsigned char *right; /* owned, ncols */
};

/* Code points in s (UTF-8 continuation bytes do not count). */
static size_t cols_of(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A cleaned, capped copy of s. */
static char *clean_copy(const char *s)
{
    size_t len = s ? strlen(s) : 0, i, n = 0;
    char *c;

    if (len > TTABLE_CELL_MAX) {
        len = TTABLE_CELL_MAX - 3;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--; /* do not cut a character in half */
    }
    if (!(c = malloc(len + 4)))
        return NULL;
    for (i = 0; i < len; i++)
        c[n++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    if (s && strlen(s) > TTABLE_CELL_MAX) {
        memcpy(c + n, "...", 3);
        n += 3;
    }
    c[n] = '\0';
    return c;
}

static int add_row(ttable *t, const char *const *cells)
{
    char **row;
    size_t i;

    /* rows of ncols cells each */
    if (dynbuf_grow_array(&t->cells, &t->cap, t->nrows + 1, t->ncols * sizeof *t->cells))
        return -1;
    row = &t->cells[t->nrows * t->ncols];
    for (i = 0; i < t->ncols; i++) {
        if (!(row[i] = clean_copy(cells[i]))) {
            while (i--)
                free(row[i]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

ttable *ttable_new(size_t ncols, const char *const *titles)
{
    ttable *t = ncols ? calloc(1, sizeof *t) : NULL;
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (!(t->right = calloc(ncols, 1)) || add_row(t, titles)) {
        ttable_free(t);
        return NULL;
    }
    return t;
}

void ttable_free(ttable *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t);
}

void ttable_align_right(ttable *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = 1;
}

int ttable_add(ttable *t, const char *const *cells)
{
    return add_row(t, cells);
}

/* Writes one line of row r into out (room checked by the caller). */
static size_t put_row(const ttable *t, size_t r, const size_t *width, char *out)
{
    size_t n = 0, last = n;
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = t->cells[r * t->ncols + c];
        size_t pad = width[c] - cols_of(s), len = strlen(s);
        if (c > 0) {
            memcpy(out + n, "  ", 2);
            n += 2;
        }
        if (t->right[c]) {
            memset(out + n, ' ', pad);
            n += pad;
        }
        memcpy(out + n, s, len);
        n += len;
        last = n;
        if (!t->right[c]) {
            memset(out + n, ' ', pad);
            n += pad;
        }
    }
    while (last > 0 && out[last - 1] == ' ')
        last--; /* no trailing blanks (an empty last cell leaves some) */
    out[last] = '\n';
    return last + 1;
}

char *ttable_render(const ttable *t)
{
    size_t *width = calloc(t->ncols, sizeof *width), total = 0, n = 0, line = 0;
    char *out = NULL;

    if (!width)
        return NULL;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = cols_of(t->cells[r * t->ncols + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    for (size_t c = 0; c < t->ncols; c++)
        line += width[c] + 2;
    /* bytes can exceed columns (UTF-8): size each row by bytes + padding */
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            total += strlen(t->cells[r * t->ncols + c]) + width[c] + 2;
    total += line + 2;
    if (!(out = malloc(total + 1)))
        goto done;
    n = put_row(t, 0, width, out);
    memset(out + n, '-', line > 2 ? line - 2 : 0);
    n += line > 2 ? line - 2 : 0;
    out[n++] = '\n';
    for (size_t r = 1; r < t->nrows; r++)
        n += put_row(t, r, width, out + n);
    out[n] = '\0';
done:
    free(width);
    return out;
}
