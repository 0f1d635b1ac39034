/* job_queue: how work enters the system — publishes repository/backfill.
 * initial jobs (or cancellations) keyed by repository with an idempotent
 * producer (acks=all) and waits for Kafka's acknowledgement of each. The
 * producer CLI and the web front door both queue through it.
 *
 * Thread-safe: several threads may call jq_send at once (the web serves
 * requests on many threads); one thread of its own serves the delivery
 * reports. */
#ifndef BACKFILL_JOB_QUEUE_H
#define BACKFILL_JOB_QUEUE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "codec.h"

typedef struct job_queue job_queue;

/* What became of one message. */
struct jq_result {
    int done;           /* 1 acknowledged, -1 failed */
    int32_t partition;  /* when done == 1 */
    int64_t offset;
    const char *error;  /* static text when done == -1 */
};

/* Creates the Kafka producer (client.id `client_id`, the common options'
 * brokers and -X properties) and its delivery thread. NULL with a reason. */
job_queue *jq_new(const struct cli_common *c, const char *client_id, char *errstr, size_t errlen);
void jq_free(job_queue *q);

/* Makes sure our topics exist (kafka_ensure_topics), reports partition
 * shortfalls as warnings (`consequence` says what they cost) and learns
 * the target topics' leaders. Returns 0, or -1 with a reason. */
int jq_prepare(job_queue *q, int timeout_ms, const char *consequence, char *errstr,
               size_t errlen);

/* How long Kafka may take to acknowledge a message before it counts as
 * failed (message.timeout.ms; -X message.timeout.ms=N changes it). */
#define JQ_DELIVERY_TIMEOUT_MS 60000

/* Publishes one message per job — the job itself, or with cancel its
 * cancellation on the control topic — and waits for Kafka's verdict on
 * each (at most message.timeout.ms). Fills res[i] for jobs[i]; returns how
 * many were not acknowledged. */
size_t jq_send(job_queue *q, const struct job *jobs, size_t n, int cancel,
               struct jq_result *res);

/* The producer handle, for metadata queries (health checks). */
rd_kafka_t *jq_handle(job_queue *q);

#endif
