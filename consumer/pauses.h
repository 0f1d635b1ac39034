/* pauses: pausing and resuming the worker's partitions of the jobs topic.
 *
 * The worker pauses a partition while its next job message is held, and
 * every partition while no GitHub credential is usable (main.c decides
 * which). This
 * module applies that split and works around a librdkafka stall: a broker
 * thread whose partitions are all paused idles in a 1 s wait, and
 * resuming a partition does not wake it, so the next job starts up to
 * 1 s late. Still there in librdkafka 2.14.2 (measured: 30 small jobs on
 * one worker, gap between one job's end and the next one's start: median
 * 987 ms without the seek, 15 ms with it; fetch.queue.backoff.ms=10 or
 * fetch.error.backoff.ms=10 do not shorten it). Seeking a resumed
 * partition to its own position wakes the thread at once and changes
 * nothing else: the fetcher resumes from that same position anyway, and
 * the pause already dropped whatever had been fetched before it.
 *
 * Not thread-safe: call from the thread that polls the consumer. */
#ifndef BACKFILL_PAUSES_H
#define BACKFILL_PAUSES_H

#include <librdkafka/rdkafka.h>

typedef struct pauses pauses;

/* Returns a tracker with nothing paused, or NULL when out of memory. */
pauses *pauses_new(void);

/* Frees the tracker (pauses nothing, resumes nothing). NULL is a no-op. */
void pauses_free(pauses *p);

/* Pauses `pause` and resumes `resume` (both borrowed; entries' offsets
 * are ignored). Resumed partitions this tracker had paused and whose
 * position is known are sought to that position so their fetch starts
 * now (see above). whole: the two lists cover the entire assignment, so
 * anything not in `pause` counts as running from now on; otherwise the
 * lists only add to what the tracker knows. Failures are harmless (the
 * fetch starts within librdkafka's 1 s anyway) and not reported. */
void pauses_apply(pauses *p, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *pause,
                  const rd_kafka_topic_partition_list_t *resume, int whole);

#endif
