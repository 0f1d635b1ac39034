/* dynbuf: a growable, always NUL-terminated byte buffer with a hard size
 * cap (after curl's dynbuf), and the one growth rule for our arrays.
 * Network input goes through a capped buffer, so a peer cannot make us
 * allocate without bound. */
#ifndef BACKFILL_DYNBUF_H
#define BACKFILL_DYNBUF_H

#include <stddef.h>

struct dynbuf {
    char *data; /* owned; NULL until the first byte */
    size_t len; /* bytes held, not counting the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* most bytes it may hold (0: no cap) */
};

/* An empty buffer that holds at most max bytes (0: no cap). */
void dynbuf_init(struct dynbuf *b, size_t max);

/* Appends n bytes. Returns 0, DYNBUF_TOO_BIG when the result would pass
 * the cap, DYNBUF_NOMEM when memory runs out; b is unchanged on failure. */
enum { DYNBUF_TOO_BIG = -1, DYNBUF_NOMEM = -2 };
int dynbuf_add(struct dynbuf *b, const void *p, size_t n);

/* Empties the buffer, keeping its memory. */
void dynbuf_reset(struct dynbuf *b);

/* Frees the memory; b is empty and reusable after. */
void dynbuf_free(struct dynbuf *b);

/* Makes room for at least `need` elements of elem_size in *arr (owned,
 * may be NULL) whose capacity is *cap, doubling from 16. Returns 0, or -1
 * when memory runs out (*arr and *cap unchanged). */
int dynbuf_grow_array(void *arr, size_t *cap, size_t need, size_t elem_size);

#endif
