/* job: runs one repository/backfill.initial job, one step at a time, so
 * the Kafka loop can keep polling between steps (a step is one GitHub
 * request plus the publishing and committing that follow it; a wait for a
 * rate-limit reset is not a step — the loop waits and polls).
 *
 * Protocol (DESIGN.md "The worker"): after every chunk the job publishes
 * the chunk's pull requests, then its progress event, waits until both are
 * acknowledged, then commits the job message's own offset with a
 * checkpoint in the commit metadata. On completion or terminal failure it
 * publishes the final event and commits offset + 1. A job whose message
 * carries a checkpoint of its own id resumes from it: same cutoff, same
 * cursor, seq continuing. */
#ifndef BACKFILL_JOB_H
#define BACKFILL_JOB_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <time.h>

#include "github.h"
#include "outbox.h"

/* What every job of one worker shares. */
struct worker_ctx {
    rd_kafka_t *consumer;        /* borrowed */
    outbox *ob;                  /* borrowed */
    gh_client *gh;               /* borrowed */
    const char *progress_topic;  /* borrowed */
    const char *dlq_topic;       /* borrowed */
    int page_size;               /* 1..100 */
    int chunk_pause_ms;          /* pause after each chunk (0 = none) */
    int max_retries;             /* per request, for transient errors */
    int retry_base_ms;           /* first backoff; doubles per retry, with jitter */
    int ack_timeout_ms;          /* how long to wait for Kafka acknowledgements */
    int budget_remaining;        /* the token's primary budget as last seen, -1 unknown */
    time_t budget_reset_at;      /* when it resets, 0 unknown */
};

typedef struct job_run job_run;

enum job_step { JOB_STEP_AGAIN, JOB_STEP_WAIT, JOB_STEP_DONE };

/* Takes ownership of msg (a job message). If the message is not a valid
 * job it is sent to the DLQ with the reason, its offset + 1 is committed,
 * msg is destroyed and NULL is returned; NULL is also returned (and msg
 * destroyed, nothing committed) if even that fails. */
job_run *job_run_start(struct worker_ctx *ctx, rd_kafka_message_t *msg);

/* Does the next step. JOB_STEP_WAIT: call again at job_run_not_before();
 * JOB_STEP_DONE: final event published and offset + 1 committed. */
enum job_step job_run_step(job_run *jr);

/* Wall-clock time (seconds) before which the next step must not run. */
double job_run_not_before(const job_run *jr);

int32_t job_run_partition(const job_run *jr);
const char *job_run_topic(const job_run *jr);
const char *job_run_key(const job_run *jr);

void job_run_free(job_run *jr);

#endif
