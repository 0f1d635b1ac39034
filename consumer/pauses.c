/* pauses: see pauses.h. */
#include "pauses.h"

#include <stdlib.h>

struct pauses {
    rd_kafka_topic_partition_list_t *paused; /* owned: what we paused and did not resume */
};

pauses *pauses_new(void)
{
    pauses *p = calloc(1, sizeof *p);
    if (p && !(p->paused = rd_kafka_topic_partition_list_new(16))) {
        free(p);
        return NULL;
    }
    return p;
}

void pauses_free(pauses *p)
{
    if (!p)
        return;
    rd_kafka_topic_partition_list_destroy(p->paused);
    free(p);
}

static int listed(const rd_kafka_topic_partition_list_t *l, const char *topic, int32_t partition)
{
    return rd_kafka_topic_partition_list_find(l, topic, partition) != NULL;
}

/* Seeks the partitions of `resumed` that were paused to their positions. */
static void wake_fetch(const pauses *p, rd_kafka_t *rk,
                       const rd_kafka_topic_partition_list_t *resumed)
{
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(resumed->cnt);
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(resumed->cnt);
    rd_kafka_error_t *e;

    if (!pos || !seek)
        goto out;
    for (int i = 0; i < resumed->cnt; i++)
        if (listed(p->paused, resumed->elems[i].topic, resumed->elems[i].partition))
            rd_kafka_topic_partition_list_add(pos, resumed->elems[i].topic,
                                              resumed->elems[i].partition);
    if (pos->cnt == 0 || rd_kafka_position(rk, pos) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    for (int i = 0; i < pos->cnt; i++)
        if (pos->elems[i].offset >= 0) /* unknown after a seek or before any message */
            rd_kafka_topic_partition_list_add(seek, pos->elems[i].topic, pos->elems[i].partition)
                ->offset = pos->elems[i].offset;
    if (seek->cnt && (e = rd_kafka_seek_partitions(rk, seek, 0))) /* 0: don't wait */
        rd_kafka_error_destroy(e);
out:
    if (pos)
        rd_kafka_topic_partition_list_destroy(pos);
    if (seek)
        rd_kafka_topic_partition_list_destroy(seek);
}

/* The new set of paused partitions: `pause`, plus (unless whole) what
 * was paused before and is not in `resume`. NULL when out of memory. */
static rd_kafka_topic_partition_list_t *next_paused(const pauses *p,
                                                     const rd_kafka_topic_partition_list_t *pause,
                                                     const rd_kafka_topic_partition_list_t *resume,
                                                     int whole)
{
    rd_kafka_topic_partition_list_t *n = rd_kafka_topic_partition_list_copy(pause);
    for (int i = 0; n && !whole && i < p->paused->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &p->paused->elems[i];
        if (!listed(resume, e->topic, e->partition) && !listed(n, e->topic, e->partition))
            rd_kafka_topic_partition_list_add(n, e->topic, e->partition);
    }
    return n;
}

void pauses_apply(pauses *p, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *pause,
                  const rd_kafka_topic_partition_list_t *resume, int whole)
{
    rd_kafka_topic_partition_list_t *n;

    if (pause->cnt)
        rd_kafka_pause_partitions(rk, (rd_kafka_topic_partition_list_t *)pause);
    if (resume->cnt) {
        rd_kafka_resume_partitions(rk, (rd_kafka_topic_partition_list_t *)resume);
        wake_fetch(p, rk, resume);
    }
    if ((n = next_paused(p, pause, resume, whole))) {
        rd_kafka_topic_partition_list_destroy(p->paused);
        p->paused = n;
    }
}
