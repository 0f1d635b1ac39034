/* job: runs one repository/backfill.initial job, one step at a time, so
 * the Kafka loop can keep polling between steps and run the worker's
 * other jobs (up to --jobs, each on its own slot). A step is one look at
 * the job's GitHub request (starting it on the slot's fetcher thread, or
 * collecting its answer and publishing the page), at Kafka's
 * acknowledgements, or a commit; a wait for a rate-limit reset or a
 * backoff is not a step — the loop waits and polls.
 *
 * Protocol (README.md, "How it works"): after every chunk the job
 * publishes the chunk's pull requests, then its progress event, waits
 * until both are acknowledged, then commits the job message's own offset
 * with a checkpoint in the commit metadata, and sends the next request
 * only once that commit has landed. On completion or terminal failure it
 * publishes the final event and, once acknowledged, sends the commit of
 * offset + 1 and is done: the worker's commit tracker (commits.h) sees
 * that commit through. `started` and the commit of the fresh checkpoint
 * go out while the first request is at GitHub. A job whose message
 * carries a checkpoint of its own id resumes from it: same cutoff, same
 * cursor, seq continuing.
 *
 * Nothing in a step waits long: GitHub requests run on the slot's fetcher
 * thread, acknowledgements are looked at without blocking (during a
 * broker restart the job just waits; librdkafka keeps the messages and
 * retries them), a failed commit is retried, and GitHub's rate-limit and
 * backoff waits are "not before" times decided by github_policy.h.
 *
 * All job state belongs to the thread that calls these functions (the
 * consumer's main thread); the fetcher thread touches only its request. */
#ifndef BACKFILL_JOB_H
#define BACKFILL_JOB_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <time.h>

#include "github.h"
#include "github_policy.h"
#include "cancels.h"
#include "commits.h"
#include "credentials.h"
#include "fetcher.h"
#include "publisher.h"

/* What every job of one worker shares. */
struct worker_ctx {
    rd_kafka_t *consumer;        /* borrowed */
    publisher *ob;                  /* borrowed */
    const cancels *cancels;      /* borrowed: cancellations seen, NULL = none */
    const char *progress_topic;  /* borrowed */
    const char *dlq_topic;       /* borrowed */
    int page_size;               /* 1..100 */
    int chunk_pause_ms;          /* pause after each chunk (0 = none) */
    int max_retries;             /* per request, for transient errors */
    int retry_base_ms;           /* first backoff; doubles per retry, with jitter */
    long secondary_wait_ms;      /* secondary limit without retry-after (GitHub: 60 s) */
    int ack_timeout_ms;          /* acknowledgements slower than this are logged */
    cred_pool *creds;            /* borrowed: the GitHub credentials all its jobs share */
    commits *commits;            /* borrowed: every commit of the jobs topic goes through it */
};

typedef struct job_run job_run;

enum job_step { JOB_STEP_AGAIN, JOB_STEP_WAIT, JOB_STEP_DONE };

/* Takes ownership of msg (a job message). If the message is not a valid
 * job it is sent to the DLQ with the reason, its offset + 1 is committed,
 * msg is destroyed and NULL is returned; NULL is also returned (and msg
 * destroyed, nothing committed) if even that fails. fetch and tally are
 * the slot's (borrowed): its request thread and its Kafka deliveries.
 * slot_idle_s: how long the slot stood free before this message came
 * (< 0 for its first job), for the job's timeline (job_timeline.h),
 * which its last log line and backfill_job_* metrics report. */
job_run *job_run_start(struct worker_ctx *ctx, rd_kafka_message_t *msg, fetcher *fetch,
                       struct publisher_tally *tally, double slot_idle_s);

/* Does the next step. JOB_STEP_AGAIN: the next may run at once; JOB_STEP_WAIT:
 * call again at job_run_not_before(); JOB_STEP_DONE: final event
 * published and offset + 1 committed (or the job was found finished
 * already). A step never waits for GitHub; it blocks at most for one call
 * to the group coordinator (reading the committed checkpoint, up to 5 s,
 * or a commit), so the caller can keep polling the consumer between
 * steps. */
enum job_step job_run_step(job_run *jr);

/* 1 when nothing the job published is still waiting for Kafka's
 * acknowledgement or for its commit: freeing the job now loses no work
 * (whoever resumes it starts from the committed checkpoint). */
int job_run_at_boundary(const job_run *jr);

/* Drives the job to its next boundary — waits for the acknowledgements
 * of what it published and commits the checkpoint — for at most
 * timeout_ms, without polling the consumer (for a revoke callback or a
 * shutdown). Returns 1 if the job finished entirely on the way (free
 * it), 0 at a boundary, -1 if the time ran out first. */
int job_run_finish_chunk(job_run *jr, int timeout_ms);

/* A job waiting because no GitHub credential was valid looks again now
 * (one is back); any other wait is left alone. */
void job_run_wake(job_run *jr);

/* Wall-clock time (seconds) before which the next step must not run. */
double job_run_not_before(const job_run *jr);

int32_t job_run_partition(const job_run *jr);
const char *job_run_topic(const job_run *jr);
const char *job_run_key(const job_run *jr);

void job_run_free(job_run *jr);

#endif
