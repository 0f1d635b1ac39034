/* sink_batch: the sink's Kafka loop — consume the progress topic in
 * batches and hand each batch to pg_writer inside one transaction together
 * with the offsets it advances to. See main.c for the guarantees. */
#ifndef BACKFILL_SINK_BATCH_H
#define BACKFILL_SINK_BATCH_H

#include <signal.h>

#include "cli.h"
#include "pg_writer.h"

#define SINK_EVENT_MAX_BYTES (16u << 20) /* larger messages are skipped as garbage */

struct sink_config {
    const char *group;  /* borrowed */
    const char *topic;  /* borrowed */
    int batch_size;
    int batch_ms;
    int batch_idle_ms;  /* write the batch once no event came for this long (0: never) */
    volatile sig_atomic_t *stop; /* borrowed: set by the signal handler */
};

typedef struct sink sink;

/* Creates the consumer, creates the topic if missing (waiting for Kafka
 * until it answers or *cfg->stop) and subscribes. Takes ownership of db
 * (freed on failure too). NULL with a reason, or with errstr "" when
 * stopped while waiting. */
sink *sink_new(const struct cli_common *common, const struct sink_config *cfg, pgw *db,
               char *errstr, size_t errlen);

/* Runs until *cfg->stop (returns 0) or a fatal Kafka error (returns 1). */
int sink_run(sink *s);

void sink_free(sink *s);

#endif
