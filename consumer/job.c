/* job: see job.h. This file is the job's life around Kafka — find the
 * checkpoint, publish, wait for acknowledgements, commit, fail; the GitHub
 * side of a step is in job_github.c. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isotime.h"
#include "job_internal.h"
#include "log.h"

#define JOB_ACK_POLL_S 0.002       /* between looks at the acknowledgements */
#define JOB_COMMIT_RETRY_S 0.2     /* between attempts of a failed commit */
#define JOB_COMMIT_GIVE_UP_S 60.0  /* then go on without it: a later commit covers it */
#define JOB_COMMITTED_TIMEOUT_MS 5000

double job_now(void)
{
    return (double)isotime_now_ms() / 1000.0;
}

enum job_step job_wait(job_run *jr, double secs)
{
    jr->not_before = job_now() + secs;
    return JOB_STEP_WAIT;
}

double job_run_not_before(const job_run *jr)
{
    return jr->not_before;
}

int32_t job_run_partition(const job_run *jr)
{
    return jr->msg->partition;
}

const char *job_run_topic(const job_run *jr)
{
    return rd_kafka_topic_name(jr->msg->rkt);
}

const char *job_run_key(const job_run *jr)
{
    return jr->job.key;
}

int job_run_at_boundary(const job_run *jr)
{
    return jr->phase != JOB_ACKS && jr->phase != JOB_COMMIT && !jr->in_flight;
}

void job_run_free(job_run *jr)
{
    if (!jr)
        return;
    if (jr->in_flight) { /* the slot's fetcher must be idle for the next job */
        struct gh_page page;
        fetcher_collect(jr->fetch, &page, 1);
        gh_page_clear(&page);
    }
    rd_kafka_message_destroy(jr->msg);
    free(jr);
}

/* Commits `offset` of the message's partition with optional metadata.
 * Returns the error (0 on success); logs nothing. */
static rd_kafka_resp_err_t job_commit(struct worker_ctx *ctx, const rd_kafka_message_t *msg,
                                      int64_t offset, const char *metadata)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *p;
    rd_kafka_resp_err_t err;

    if (!l)
        return RD_KAFKA_RESP_ERR__FAIL;
    p = rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition);
    p->offset = offset;
    if (metadata) {
        p->metadata = strdup(metadata); /* owned by the list from here */
        if (!p->metadata) {
            rd_kafka_topic_partition_list_destroy(l);
            return RD_KAFKA_RESP_ERR__FAIL;
        }
        p->metadata_size = strlen(metadata);
    }
    err = rd_kafka_commit(ctx->consumer, l, 0);
    if (!err && l->elems[0].err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    return err;
}

/* The dead letter was not acknowledged: seek the partition back to the
 * message so it is read (and dead-lettered) again, instead of letting the
 * next job's commit move past a message nobody kept. The failed wait for
 * the acknowledgement (ack_timeout_ms) paces the attempts. */
static void job_poison_again(struct worker_ctx *ctx, const rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *e = NULL;
    log_error("could not dead-letter %s[%d]@%lld; reading it again to retry",
              rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset);
    if (!l)
        return;
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        msg->offset;
    e = rd_kafka_seek_partitions(ctx->consumer, l, 5000);
    if (e) {
        log_error("seek back to %s[%d]@%lld failed: %s", rd_kafka_topic_name(msg->rkt),
                  (int)msg->partition, (long long)msg->offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static job_run *job_run_poison(struct worker_ctx *ctx, struct outbox_tally *tally,
                               rd_kafka_message_t *msg, const char *why)
{
    struct dlq_info info = {why, rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, NULL};
    rd_kafka_resp_err_t err;
    log_warn("poison message at %s[%d]@%lld: %s; sending it to %s", info.src_topic,
             (int)msg->partition, (long long)msg->offset, why, ctx->dlq_topic);
    int64_t mark = tally->failed;
    if (outbox_send_dlq(ctx->ob, tally, ctx->dlq_topic, msg, &info) != 0 ||
        outbox_check(ctx->ob, tally, ctx->ack_timeout_ms, mark) != 0)
        job_poison_again(ctx, msg);
    else if ((err = job_commit(ctx, msg, msg->offset + 1, NULL)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("dead-lettered %s[%d]@%lld but could not commit past it (%s); a later commit "
                 "covers it, or it is dead-lettered again after a restart", info.src_topic,
                 (int)msg->partition, (long long)msg->offset, rd_kafka_err2str(err));
    rd_kafka_message_destroy(msg);
    return NULL;
}

job_run *job_run_start(struct worker_ctx *ctx, rd_kafka_message_t *msg, fetcher *fetch,
                       struct outbox_tally *tally)
{
    char err[256];
    job_run *jr = calloc(1, sizeof *jr);

    if (!jr) {
        rd_kafka_message_destroy(msg);
        return NULL;
    }
    jr->ctx = ctx;
    jr->fetch = fetch;
    jr->tally = tally;
    jr->fail_mark = tally->failed;
    jr->msg = msg;
    if (job_decode(msg->payload, msg->len, &jr->job, err, sizeof err)) {
        free(jr);
        return job_run_poison(ctx, tally, msg, err);
    }
    jr->page_max = ctx->page_size;
    jr->phase = JOB_LOAD;
    return jr;
}

/* Sets up the pager from jr->cp (fresh or resumed). */
static void job_init_pager(job_run *jr)
{
    time_t cutoff = 0;
    if (isotime_parse(jr->cp.cutoff, &cutoff) != 0) { /* decode validated it; never trust blindly */
        cutoff = time(NULL) - (time_t)jr->job.since_days * 86400;
        isotime_format(cutoff, jr->cp.cutoff);
        log_warn("%s: checkpoint cutoff unreadable; using %s", jr->job.key, jr->cp.cutoff);
    }
    pager_init(&jr->pager, jr->job.max_prs, cutoff, jr->cp.cursor, jr->cp.fetched);
    jr->seq = jr->cp.seq;
}

/* JOB_LOAD: reads the committed offset + metadata of the job's partition.
 * A checkpoint of this very job: resume from it. Nothing of it: start
 * fresh. An offset already past the message: the job was finished. An
 * error reading it: try again — never start over just because the
 * coordinator did not answer (that would restart with a new cutoff). */
static enum job_step job_load(job_run *jr)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *p;
    rd_kafka_resp_err_t err;
    char why[256];
    int64_t committed;
    int found = 0;

    if (!l)
        return job_wait(jr, 1.0);
    p = rd_kafka_topic_partition_list_add(l, job_run_topic(jr), jr->msg->partition);
    err = rd_kafka_committed(jr->ctx->consumer, l, JOB_COMMITTED_TIMEOUT_MS);
    if (!err)
        err = p->err;
    if (err) {
        rd_kafka_topic_partition_list_destroy(l);
        log_warn("%s: cannot read the committed checkpoint of %s[%d]: %s; trying again in 1 s",
                 jr->job.key, job_run_topic(jr), (int)jr->msg->partition, rd_kafka_err2str(err));
        return job_wait(jr, 1.0);
    }
    committed = p->offset;
    if (committed == jr->msg->offset && p->metadata && p->metadata_size > 0 &&
        checkpoint_decode(p->metadata, p->metadata_size, &jr->cp, why, sizeof why) == 0 &&
        strcmp(jr->cp.id, jr->job.id) == 0)
        found = 1;
    rd_kafka_topic_partition_list_destroy(l);
    if (committed > jr->msg->offset) {
        log_info("%s backfill=%s at %s[%d]@%lld is already finished (committed offset %lld); "
                 "skipping it", jr->job.key, jr->job.id, job_run_topic(jr), (int)jr->msg->partition,
                 (long long)jr->msg->offset, (long long)committed);
        jr->phase = JOB_END;
        return JOB_STEP_DONE;
    }
    if (found) {
        log_info("resuming %s backfill=%s at chunk %d, %d PRs fetched, cutoff %s", jr->job.key,
                 jr->job.id, jr->cp.chunk, jr->cp.fetched, jr->cp.cutoff);
        jr->phase = JOB_FETCH;
    } else {
        memset(&jr->cp, 0, sizeof jr->cp);
        snprintf(jr->cp.id, sizeof jr->cp.id, "%s", jr->job.id);
        isotime_format(time(NULL) - (time_t)jr->job.since_days * 86400, jr->cp.cutoff);
        log_info("starting %s backfill=%s maxPRs=%d sinceDays=%d", jr->job.key, jr->job.id,
                 jr->job.max_prs, jr->job.since_days);
        jr->phase = JOB_START;
    }
    job_init_pager(jr);
    return JOB_STEP_AGAIN;
}

void job_progress_info(const job_run *jr, const struct checkpoint *next, struct progress_info *pi,
                       const char *status)
{
    memset(pi, 0, sizeof *pi);
    pi->job = &jr->job;
    pi->repository_id = jr->repository_id;
    pi->status = status;
    pi->progress = jr->pager.fetched;
    pi->chunk = next->chunk;
    pi->chunk_size = -1;
    pi->cursor = jr->pager.cursor;
    pi->cutoff = jr->cp.cutoff;
    pi->reached_time_limit = jr->pager.reached_time_limit;
    pi->requests = next->requests;
    pi->points = next->points;
    pi->remaining = jr->ctx->budget.remaining;
}

int job_send_progress(job_run *jr, struct progress_info *pi, int64_t *seq)
{
    char *s;
    int rc;
    pi->seq = ++*seq;
    s = events_progress(pi);
    if (!s)
        return -1;
    rc = outbox_send(jr->ctx->ob, jr->tally, jr->ctx->progress_topic, jr->job.key, EVENT_PROGRESS,
                     s);
    free(s);
    return rc;
}

enum job_step job_published(job_run *jr, const struct checkpoint *next, int final,
                            enum job_phase redo, enum job_phase then, double then_not_before)
{
    jr->pending = *next;
    jr->pending_final = final;
    jr->redo = redo;
    jr->then = then;
    jr->then_not_before = then_not_before;
    jr->seq = next->seq;
    jr->phase = JOB_ACKS;
    jr->acks_since = isotime_mono();
    jr->acks_slow_logged = 0;
    return JOB_STEP_AGAIN;
}

/* JOB_ACKS: looks at Kafka's acknowledgements of this slot's messages
 * without blocking; the loop polls Kafka in between. */
static enum job_step job_acks(job_run *jr)
{
    int r = outbox_check(jr->ctx->ob, jr->tally, 0, jr->fail_mark);
    double waited = isotime_mono() - jr->acks_since;

    if (r != 1) /* nothing in flight now: later failures are of later messages */
        jr->fail_mark = jr->tally->failed;
    if (r < 0) {
        log_warn("%s: Kafka refused events of chunk %d; publishing them again", jr->job.key,
                 jr->pending.chunk);
        jr->pager = jr->pager_before;
        jr->phase = jr->redo;
        return job_wait(jr, 1.0);
    }
    if (r > 0) {
        if (!jr->acks_slow_logged && waited * 1000.0 > jr->ctx->ack_timeout_ms) {
            log_warn("%s: events not acknowledged by Kafka after %.0f s; still waiting "
                     "(librdkafka retries them until message.timeout.ms)", jr->job.key, waited);
            jr->acks_slow_logged = 1;
        }
        return job_wait(jr, JOB_ACK_POLL_S);
    }
    if (jr->acks_slow_logged)
        log_info("%s: events acknowledged after %.1f s", jr->job.key, waited);
    jr->cp = jr->pending;
    jr->phase = JOB_COMMIT;
    jr->commit_since = isotime_mono();
    jr->commit_failures = 0;
    return JOB_STEP_AGAIN;
}

static void job_log_end(const job_run *jr)
{
    if (jr->fail_reason[0])
        return; /* logged when it failed */
    log_info("completed %s backfill=%s: %d PRs in %d chunks, %lld requests, %lld points%s",
             jr->job.key, jr->job.id, jr->pager.fetched, jr->cp.chunk, (long long)jr->cp.requests,
             (long long)jr->cp.points,
             jr->pager.reached_time_limit ? ", reached the time window" : "");
}

/* JOB_COMMIT: commits the acknowledged checkpoint (offset + 1 when final);
 * retries a failed commit (e.g. during a rebalance or a broker restart)
 * for up to JOB_COMMIT_GIVE_UP_S, then goes on without it. */
static enum job_step job_commit_step(job_run *jr)
{
    char meta[CHECKPOINT_MAX_BYTES + 1];
    int64_t offset = jr->msg->offset + (jr->pending_final ? 1 : 0);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (!jr->pending_final && checkpoint_encode(&jr->pending, meta, sizeof meta) < 0)
        log_error("%s: checkpoint does not fit in commit metadata; not committing chunk %d",
                  jr->job.key, jr->pending.chunk);
    else
        err = job_commit(jr->ctx, jr->msg, offset, jr->pending_final ? NULL : meta);
    if (err) {
        double failing = isotime_mono() - jr->commit_since;
        if (failing < JOB_COMMIT_GIVE_UP_S) {
            if (jr->commit_failures++ == 0)
                log_warn("%s: commit of %s[%d]@%lld failed: %s; retrying", jr->job.key,
                         job_run_topic(jr), (int)jr->msg->partition, (long long)offset,
                         rd_kafka_err2str(err));
            return job_wait(jr, JOB_COMMIT_RETRY_S);
        }
        log_warn("%s: commit of %s[%d]@%lld still failing after %.0f s (%s); going on without "
                 "it: a later commit covers it", jr->job.key, job_run_topic(jr),
                 (int)jr->msg->partition, (long long)offset, failing, rd_kafka_err2str(err));
    } else if (jr->commit_failures) {
        log_info("%s: commit of %s[%d]@%lld succeeded after %d failed attempts", jr->job.key,
                 job_run_topic(jr), (int)jr->msg->partition, (long long)offset,
                 jr->commit_failures);
    }
    jr->phase = jr->then;
    jr->not_before = jr->then_not_before;
    if (jr->pending_final) {
        job_log_end(jr);
        return JOB_STEP_DONE;
    }
    return jr->not_before > job_now() ? JOB_STEP_WAIT : JOB_STEP_AGAIN;
}

/* JOB_START: publishes `started` and commits the fresh checkpoint, so
 * whoever takes over keeps this job's cutoff. */
static enum job_step job_start_event(job_run *jr)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    next.seq = jr->seq;
    job_progress_info(jr, &next, &pi, "started");
    if (job_send_progress(jr, &pi, &next.seq) != 0) {
        jr->seq = next.seq;
        return job_wait(jr, 1.0);
    }
    jr->pager_before = jr->pager;
    return job_published(jr, &next, 0, JOB_START, JOB_FETCH, 0);
}

enum job_step job_fail(job_run *jr, const char *reason, int to_dlq)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    char meta[CHECKPOINT_MAX_BYTES + 1];

    if (reason != jr->fail_reason) {
        snprintf(jr->fail_reason, sizeof jr->fail_reason, "%s", reason);
        jr->fail_dlq = to_dlq;
        log_error("%s backfill=%s failed: %s%s", jr->job.key, jr->job.id, reason,
                  to_dlq ? "; sending the job and its last checkpoint to the DLQ" : "");
    }
    jr->phase = JOB_FAIL;
    next.seq = jr->seq;
    job_progress_info(jr, &next, &pi, "failed");
    pi.error = jr->fail_reason;
    if (job_send_progress(jr, &pi, &next.seq) != 0) {
        jr->seq = next.seq;
        return job_wait(jr, 1.0);
    }
    if (to_dlq) {
        struct dlq_info info = {jr->fail_reason, job_run_topic(jr), jr->msg->partition,
                                jr->msg->offset,
                                checkpoint_encode(&jr->cp, meta, sizeof meta) > 0 ? meta : NULL};
        if (outbox_send_dlq(jr->ctx->ob, jr->tally, jr->ctx->dlq_topic, jr->msg, &info) != 0) {
            jr->seq = next.seq;
            return job_wait(jr, 1.0);
        }
    }
    jr->pager_before = jr->pager;
    return job_published(jr, &next, 1, JOB_FAIL, JOB_END, 0);
}

enum job_step job_run_step(job_run *jr)
{
    /* A cancellation takes effect at a chunk boundary, once the
     * checkpoint (and so the seq to continue from) is known. */
    if ((jr->phase == JOB_START || jr->phase == JOB_FETCH) && !jr->in_flight &&
        cancels_hit(jr->ctx->cancels, jr->job.key, jr->job.ts)) {
        log_info("%s backfill=%s cancelled at chunk %d, %d PRs stored", jr->job.key, jr->job.id,
                 jr->cp.chunk, jr->cp.fetched);
        return job_fail(jr, "cancelled", 0);
    }
    switch (jr->phase) {
    case JOB_LOAD: return job_load(jr);
    case JOB_START: return job_start_event(jr);
    case JOB_FETCH: return job_fetch(jr);
    case JOB_ACKS: return job_acks(jr);
    case JOB_COMMIT: return job_commit_step(jr);
    case JOB_FAIL: return job_fail(jr, jr->fail_reason, jr->fail_dlq);
    case JOB_END: break;
    }
    return JOB_STEP_DONE;
}

int job_run_finish_chunk(job_run *jr, int timeout_ms)
{
    double deadline = isotime_mono() + timeout_ms / 1000.0;
    while (!job_run_at_boundary(jr)) {
        double wait = jr->not_before - job_now();
        if (isotime_mono() >= deadline)
            return -1;
        if (wait > 0) {
            usleep((useconds_t)((wait < 0.05 ? wait : 0.05) * 1e6));
            continue;
        }
        if (job_run_step(jr) == JOB_STEP_DONE)
            return 1;
    }
    return 0;
}
