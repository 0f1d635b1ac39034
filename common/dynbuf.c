/* dynbuf: see dynbuf.h. */
#include "dynbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void dynbuf_init(struct dynbuf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

int dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
    if ((b->max && n > b->max - b->len) || n > SIZE_MAX - b->len - 1)
        return DYNBUF_TOO_BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *nd;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        if (b->max && cap > b->max + 1)
            cap = b->max + 1;
        if (!(nd = realloc(b->data, cap)))
            return DYNBUF_NOMEM;
        b->data = nd;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void dynbuf_reset(struct dynbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void dynbuf_free(struct dynbuf *b)
{
    free(b->data);
    dynbuf_init(b, b->max);
}

int dynbuf_grow_array(void *arr, size_t *cap, size_t need, size_t elem_size)
{
    void **a = arr; /* really a T ** */
    size_t n = *cap ? *cap : 16;
    void *grown;
    if (need <= *cap)
        return 0;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem_size)
            return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / elem_size || !(grown = realloc(*a, n * elem_size)))
        return -1;
    *a = grown;
    *cap = n;
    return 0;
}
