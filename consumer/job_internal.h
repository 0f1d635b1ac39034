/* job_internal: what job.c (the job's life: checkpoint, publish, ack,
 * commit, fail) and job_github.c (one GitHub request and GitHub's policy
 * around it) share. Not for use outside consumer/job*.c. */
#ifndef BACKFILL_JOB_INTERNAL_H
#define BACKFILL_JOB_INTERNAL_H

#include "checkpoint.h"
#include "events.h"
#include "fetcher.h"
#include "job.h"
#include "pager.h"

enum job_phase {
    JOB_LOAD,   /* read the committed checkpoint of the job's partition */
    JOB_START,  /* publish `started` */
    JOB_FETCH,  /* fetch the next page and publish it (job_github.c) */
    JOB_ACKS,   /* wait until Kafka acknowledged what was published */
    JOB_COMMIT, /* commit the acknowledged checkpoint */
    JOB_FAIL,   /* publish `failed` (and the dead letter) */
    JOB_END     /* the final commit is done */
};

struct job_run {
    struct worker_ctx *ctx;    /* borrowed */
    fetcher *fetch;            /* borrowed: the slot's GitHub request thread */
    int in_flight;             /* a request of this job is with the fetcher */
    struct outbox_tally *tally; /* borrowed: the slot's deliveries */
    int64_t fail_mark;         /* tally->failed when nothing of ours was in flight */
    rd_kafka_message_t *msg;   /* owned: the job message, kept for the DLQ */
    struct job job;
    struct pager pager;
    struct checkpoint cp;      /* the job as of its last acknowledged chunk */
    int64_t seq;               /* last seq used (ahead of cp.seq after a redo) */
    int64_t repository_id;
    enum job_phase phase;
    int page_max;              /* current page size (shrinks after server errors) */
    int retries;               /* transient failures of the current request */
    int secondary;             /* secondary-limit answers to the current request */
    double not_before;         /* wall-clock seconds */
    char fail_reason[600];     /* set once the job failed */
    int fail_dlq;
    /* Published, waiting for acknowledgement and commit: */
    struct checkpoint pending;
    int pending_final;         /* commit offset + 1: the job ends */
    enum job_phase redo;       /* where to go back to if a delivery failed */
    enum job_phase then;       /* where to go after the commit */
    double then_not_before;
    struct pager pager_before; /* the pager before the page being published */
    double acks_since;         /* monotonic, when the wait for acks began */
    double commit_since;       /* monotonic, first attempt of the pending commit */
    int commit_failures;
    int acks_slow_logged;
};

double job_now(void);

/* Schedules the next step `secs` from now; returns JOB_STEP_WAIT. */
enum job_step job_wait(job_run *jr, double secs);

/* Fills the fields of a progress event that come from the job's state,
 * with next as the checkpoint being built. */
void job_progress_info(const job_run *jr, const struct checkpoint *next,
                       struct progress_info *pi, const char *status);

/* Publishes one progress event with seq ++*seq. 0, or -1 if not queued. */
int job_send_progress(job_run *jr, struct progress_info *pi, int64_t *seq);

/* Everything of `next` is queued: wait for its acknowledgement, then
 * commit it (offset + 1 when final) and go on to phase `then` at
 * then_not_before; if a delivery fails go back to `redo` (with the pager
 * as it was before, saved by the caller in jr->pager_before). */
enum job_step job_published(job_run *jr, const struct checkpoint *next, int final,
                            enum job_phase redo, enum job_phase then, double then_not_before);

/* Ends the job as failed with reason (copied); to_dlq also dead-letters
 * the job message with its last checkpoint. */
enum job_step job_fail(job_run *jr, const char *reason, int to_dlq);

/* The JOB_FETCH step (job_github.c). */
enum job_step job_fetch(job_run *jr);

#endif
