/* held: see held.h. A short array kept in arrival order: a worker owns a
 * few partitions, so a linear look is the simplest thing that works. */
#include "held.h"

#include <stdlib.h>
#include <string.h>

struct held {
    rd_kafka_message_t **msgs; /* owned, oldest first */
    size_t n, cap;
};

held *held_new(void)
{
    return calloc(1, sizeof(held));
}

void held_free(held *h)
{
    if (!h)
        return;
    held_drop(h, NULL);
    free(h->msgs);
    free(h);
}

static int held_is(const rd_kafka_message_t *m, const char *topic, int32_t partition)
{
    return m->partition == partition && strcmp(rd_kafka_topic_name(m->rkt), topic) == 0;
}

int held_has(const held *h, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < h->n; i++)
        if (held_is(h->msgs[i], topic, partition))
            return 1;
    return 0;
}

int held_put(held *h, rd_kafka_message_t *msg)
{
    if (held_has(h, rd_kafka_topic_name(msg->rkt), msg->partition))
        return -1;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        rd_kafka_message_t **m = realloc(h->msgs, cap * sizeof *m);
        if (!m)
            return -1;
        h->msgs = m;
        h->cap = cap;
    }
    h->msgs[h->n++] = msg;
    return 0;
}

/* Removes entry i, keeping the order. */
static rd_kafka_message_t *held_remove(held *h, size_t i)
{
    rd_kafka_message_t *m = h->msgs[i];
    memmove(&h->msgs[i], &h->msgs[i + 1], (h->n - i - 1) * sizeof *h->msgs);
    h->n--;
    return m;
}

rd_kafka_message_t *held_take(held *h, int (*busy)(void *ctx, const char *topic, int32_t partition),
                              void *ctx)
{
    for (size_t i = 0; i < h->n; i++)
        if (!busy(ctx, rd_kafka_topic_name(h->msgs[i]->rkt), h->msgs[i]->partition))
            return held_remove(h, i);
    return NULL;
}

void held_drop(held *h, const rd_kafka_topic_partition_list_t *parts)
{
    size_t i = 0;
    while (h && i < h->n) {
        int listed = !parts;
        for (int j = 0; !listed && j < parts->cnt; j++)
            listed = held_is(h->msgs[i], parts->elems[j].topic, parts->elems[j].partition);
        if (listed)
            rd_kafka_message_destroy(held_remove(h, i));
        else
            i++;
    }
}
