/* job: see job.h. This file is the job's state machine: the only code
 * that changes a job's phase. It finds the checkpoint, publishes, waits
 * for acknowledgements, commits and fails, and acts on what the GitHub
 * side of a JOB_FETCH step (job_github.c, below it) decided: accept the
 * page, wait for the reset, retry, or fail with a reason. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commits.h"
#include "job_messages.h"
#include "isotime.h"
#include "job_github.h"
#include "job_timeline.h"
#include "log.h"
#include "worker_metrics.h"

/* A delivery report or an answer wakes the loop at once (main.c), and
 * job_run_not_before() says "now" once what the job waits on is there;
 * these only bound a wait in case a wake-up is missed. */
#define JOB_ACK_POLL_S 0.02        /* between looks at the acknowledgements */
#define JOB_FETCH_POLL_S 0.02      /* between looks at a request in flight */
#define JOB_COMMIT_POLL_S 0.02     /* between looks at a commit's answer */
#define JOB_COMMIT_RETRY_S 0.2     /* between attempts to send a commit */
#define JOB_COMMIT_GIVE_UP_S 60.0  /* then go on without it: a later commit covers it */
#define JOB_COMMITTED_TIMEOUT_MS 5000

enum job_phase {
    JOB_LOAD,   /* read the committed checkpoint of the job's partition */
    JOB_START,  /* publish `started` */
    JOB_FETCH,  /* fetch the next page (job_github.c) and publish it */
    JOB_ACKS,   /* wait until Kafka acknowledged what was published */
    JOB_COMMIT, /* commit the acknowledged checkpoint */
    JOB_FAIL,   /* publish `failed` (and the dead letter) */
    JOB_END     /* the final commit is done */
};

struct job_run {
    struct worker_ctx *ctx;    /* borrowed */
    struct job_gh gh;          /* the GitHub side: request in flight, page size, retries */
    struct publisher_tally *tally; /* borrowed: the slot's deliveries */
    int64_t fail_mark;         /* tally->failed when nothing of ours was in flight */
    rd_kafka_message_t *msg;   /* owned: the job message, kept for the DLQ */
    struct job job;
    struct pager pager;
    struct checkpoint cp;      /* the job as of its last acknowledged chunk */
    int64_t seq;               /* last seq used (ahead of cp.seq after a redo) */
    int64_t repository_id;
    enum job_phase phase;
    double not_before;         /* wall-clock seconds */
    char fail_reason[GH_REASON_MAX]; /* set once the job failed */
    int fail_dlq;
    enum wm_fail fail_class;   /* the failure's metrics label */
    int counted;               /* counted as started (wm_job_started) */
    /* Published, waiting for acknowledgement and commit: */
    struct checkpoint pending;
    int pending_final;         /* commit offset + 1: the job ends */
    enum job_phase redo;       /* where to go back to if a delivery failed */
    enum job_phase then;       /* where to go after the commit */
    double then_not_before;
    struct pager pager_before; /* the pager before the page being published */
    double acks_since;         /* monotonic, when the wait for acks began */
    double commit_since;       /* monotonic, first attempt of the pending commit */
    uint64_t commit_ticket;    /* the pending commit, sent (commits.h); 0 = not yet */
    int commit_failures;
    int acks_slow_logged;
    /* `started` is published and the first request goes out while Kafka
     * acknowledges it; its checkpoint (the cutoff) is committed once it
     * is, unless a page's checkpoint comes first and covers it. */
    int started_pending;
    struct checkpoint started_cp;
    struct job_timeline tl;    /* where the job's time went (logged at its end) */
    double limit_wait_from;    /* isotime_mono() when a wait for a rate limit began, or 0 */
};

static double job_now(void)
{
    return (double)isotime_now_ms() / 1000.0;
}

/* The job starts waiting for a rate limit (a reset, a secondary limit, the
 * shared pace): the time until its next step counts in
 * backfill_rate_limit_wait_seconds_total (job_limit_wait_end). */
static void job_limit_wait_begin(job_run *jr)
{
    if (jr->limit_wait_from == 0)
        jr->limit_wait_from = isotime_mono();
}

/* Counts the wait since job_limit_wait_begin, if any, as waited until now. */
static void job_limit_wait_end(job_run *jr, double now)
{
    if (jr->limit_wait_from > 0)
        wm_rate_limit_wait(now - jr->limit_wait_from);
    jr->limit_wait_from = 0;
}

/* Schedules the next step `secs` from now; returns JOB_STEP_WAIT. */
static enum job_step job_wait(job_run *jr, double secs)
{
    jr->not_before = job_now() + secs;
    return JOB_STEP_WAIT;
}

void job_run_wake(job_run *jr)
{
    double now = job_now();
    if (!jr->gh.no_credential)
        return;
    if (jr->not_before > now)
        jr->not_before = now;
    if (jr->then_not_before > now)
        jr->then_not_before = now;
}

double job_run_not_before(const job_run *jr)
{
    /* what the job waits on is there: look now (never before a retry's
     * backoff, which job_fetch keeps itself) */
    if ((jr->phase == JOB_ACKS || jr->started_pending) && jr->tally->in_flight <= 0)
        return 0;
    if (jr->phase == JOB_FETCH && jr->gh.in_flight && fetcher_done(jr->gh.fetch))
        return 0;
    if (jr->phase == JOB_COMMIT && jr->commit_ticket &&
        commits_state(jr->ctx->commits, job_run_topic(jr), jr->msg->partition,
                      jr->commit_ticket) != COMMIT_PENDING)
        return 0;
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
    return jr->phase != JOB_ACKS && jr->phase != JOB_COMMIT && !jr->gh.in_flight;
}

void job_run_free(job_run *jr)
{
    if (!jr)
        return;
    job_limit_wait_end(jr, isotime_mono()); /* stopped while waiting: waited until now */
    job_gh_abandon(&jr->gh); /* the slot's fetcher must be idle for the next job */
    if (jr->counted)
        wm_job_released();
    rd_kafka_message_destroy(jr->msg);
    free(jr);
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

static job_run *job_run_poison(struct worker_ctx *ctx, struct publisher_tally *tally,
                               rd_kafka_message_t *msg, const char *why)
{
    struct dlq_info info = {why, rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, NULL};
    log_warn("poison message at %s[%d]@%lld: %s; sending it to %s", info.src_topic,
             (int)msg->partition, (long long)msg->offset, why, ctx->dlq_topic);
    wm_poison();
    int64_t mark = tally->failed;
    if (publisher_send_dlq(ctx->ob, tally, ctx->dlq_topic, msg, &info) != 0 ||
        publisher_check(ctx->ob, tally, ctx->ack_timeout_ms, mark) != 0)
        job_poison_again(ctx, msg);
    else if (!commits_send(ctx->commits, info.src_topic, msg->partition, msg->offset + 1, NULL))
        log_warn("dead-lettered %s[%d]@%lld but could not commit past it; a later commit "
                 "covers it, or it is dead-lettered again after a restart", info.src_topic,
                 (int)msg->partition, (long long)msg->offset);
    rd_kafka_message_destroy(msg);
    return NULL;
}

job_run *job_run_start(struct worker_ctx *ctx, rd_kafka_message_t *msg, fetcher *fetch,
                       struct publisher_tally *tally, double slot_idle_s)
{
    char err[256];
    struct gh_retry_conf conf = {ctx->page_size, ctx->max_retries, ctx->retry_base_ms,
                                 ctx->secondary_wait_ms};
    job_run *jr = calloc(1, sizeof *jr);

    if (!jr) {
        rd_kafka_message_destroy(msg);
        return NULL;
    }
    jr->ctx = ctx;
    job_gh_init(&jr->gh, fetch, ctx->creds, &conf);
    jr->tally = tally;
    jr->fail_mark = tally->failed;
    jr->msg = msg;
    if (job_decode(msg->payload, msg->len, &jr->job, err, sizeof err)) {
        free(jr);
        return job_run_poison(ctx, tally, msg, err);
    }
    jr->phase = JOB_LOAD;
    jt_begin(&jr->tl, isotime_mono(), slot_idle_s);
    jr->counted = 1;
    wm_job_started();
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

/* A job with no checkpoint: a fresh cutoff, `started` next. */
static void job_start_fresh(job_run *jr)
{
    memset(&jr->cp, 0, sizeof jr->cp);
    snprintf(jr->cp.id, sizeof jr->cp.id, "%s", jr->job.id);
    isotime_format(time(NULL) - (time_t)jr->job.since_days * 86400, jr->cp.cutoff);
    log_info("starting %s backfill=%s maxPRs=%d sinceDays=%d", jr->job.key, jr->job.id,
             jr->job.max_prs, jr->job.since_days);
    jr->phase = JOB_START;
    job_init_pager(jr);
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
    if (commits_final_at(jr->ctx->commits, job_run_topic(jr), jr->msg->partition,
                         jr->msg->offset)) {
        /* we own the partition and committed up to this message ourselves:
         * nothing of it can be committed (no need to ask) */
        rd_kafka_topic_partition_list_destroy(l);
        job_start_fresh(jr);
        return JOB_STEP_AGAIN;
    }
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
        job_init_pager(jr);
    } else {
        job_start_fresh(jr);
    }
    return JOB_STEP_AGAIN;
}

/* Fills the fields of a progress event that come from the job's state,
 * with next as the checkpoint being built. */
static void job_progress_info(const job_run *jr, const struct checkpoint *next,
                              struct progress_info *pi, const char *status)
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
    pi->remaining = cred_pool_remaining(jr->ctx->creds);
}

/* Publishes one progress event with seq ++*seq. 0, or -1 if not queued. */
static int job_send_progress(job_run *jr, struct progress_info *pi, int64_t *seq)
{
    char *s;
    int rc;
    pi->seq = ++*seq;
    s = jobmsg_progress(pi);
    if (!s)
        return -1;
    rc = publisher_send(jr->ctx->ob, jr->tally, jr->ctx->progress_topic, jr->job.key, EVENT_PROGRESS,
                     s);
    free(s);
    return rc;
}

/* Everything of `next` is queued: wait for its acknowledgement, then
 * commit it (offset + 1 when final) and go on to phase `then` at
 * then_not_before; if a delivery fails go back to `redo` (with the pager
 * as it was before, saved by the caller in jr->pager_before). */
static enum job_step job_published(job_run *jr, const struct checkpoint *next, int final,
                                   enum job_phase redo, enum job_phase then,
                                   double then_not_before)
{
    if (jr->started_pending) { /* this checkpoint covers `started` too */
        jr->started_pending = 0;
        if (redo == JOB_FETCH)
            redo = JOB_START; /* if `started` is refused, publish it again first */
    }
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
    int r = publisher_check(jr->ctx->ob, jr->tally, 0, jr->fail_mark);
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
    jr->commit_ticket = 0;
    return JOB_STEP_AGAIN;
}

/* The job's last line: what it did and where its time went. */
static void job_log_end(const job_run *jr)
{
    char tl[512];
    jt_format(&jr->tl, tl, sizeof tl);
    if (jr->fail_reason[0])
        log_info("ended %s backfill=%s failed after %d PRs in %d chunks, %lld requests, %lld "
                 "points %s", jr->job.key, jr->job.id, jr->pager.fetched, jr->cp.chunk,
                 (long long)jr->cp.requests, (long long)jr->cp.points, tl);
    else
        log_info("completed %s backfill=%s: %d PRs in %d chunks, %lld requests, %lld points%s %s",
                 jr->job.key, jr->job.id, jr->pager.fetched, jr->cp.chunk,
                 (long long)jr->cp.requests, (long long)jr->cp.points,
                 jr->pager.reached_time_limit ? ", reached the time window" : "", tl);
}

/* JOB_COMMIT: commits the acknowledged checkpoint (offset + 1 when final);
 * retries a failed commit (e.g. during a rebalance or a broker restart)
 * for up to JOB_COMMIT_GIVE_UP_S, then goes on without it. */
static enum job_step job_commit_step(job_run *jr)
{
    char meta[CHECKPOINT_MAX_BYTES + 1];
    int64_t offset = jr->msg->offset + (jr->pending_final ? 1 : 0);

    if (!jr->commit_ticket) {
        if (!jr->pending_final && checkpoint_encode(&jr->pending, meta, sizeof meta) < 0) {
            log_error("%s: checkpoint does not fit in commit metadata; not committing chunk %d",
                      jr->job.key, jr->pending.chunk);
        } else {
            jr->commit_ticket = commits_send(jr->ctx->commits, job_run_topic(jr),
                                             jr->msg->partition, offset,
                                             jr->pending_final ? NULL : meta);
            if (!jr->commit_ticket) {
                double failing = isotime_mono() - jr->commit_since;
                if (failing < JOB_COMMIT_GIVE_UP_S) {
                    if (jr->commit_failures++ == 0)
                        log_warn("%s: commit of %s[%d]@%lld could not be sent; retrying",
                                 jr->job.key, job_run_topic(jr), (int)jr->msg->partition,
                                 (long long)offset);
                    return job_wait(jr, JOB_COMMIT_RETRY_S);
                }
                log_warn("%s: commit of %s[%d]@%lld could not be sent for %.0f s; going on "
                         "without it: a later commit covers it", jr->job.key, job_run_topic(jr),
                         (int)jr->msg->partition, (long long)offset, failing);
            }
        }
    }
    /* A chunk's checkpoint must have landed before the next request goes
     * out (a crash then refetches at most the page in flight); the final
     * commit need not: the tracker sees it through, and commits_flush
     * before the partition is given up. */
    if (jr->commit_ticket && !jr->pending_final &&
        commits_state(jr->ctx->commits, job_run_topic(jr), jr->msg->partition,
                      jr->commit_ticket) == COMMIT_PENDING)
        return job_wait(jr, JOB_COMMIT_POLL_S);
    jr->commit_ticket = 0;
    jr->phase = jr->then;
    jr->not_before = jr->then_not_before;
    if (jr->pending_final) {
        if (jr->fail_reason[0])
            wm_job_failed(jr->fail_class);
        else
            wm_job_completed();
        return JOB_STEP_DONE;
    }
    return jr->not_before > job_now() ? JOB_STEP_WAIT : JOB_STEP_AGAIN;
}

/* JOB_START: publishes `started` and goes on to the first request at
 * once; the fresh checkpoint (so that whoever takes over keeps this
 * job's cutoff) is committed once `started` is acknowledged, while the
 * request is out (job_started_commit). */
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
    jr->seq = next.seq;
    jr->started_cp = next;
    jr->started_pending = 1;
    jr->pager_before = jr->pager;
    jr->phase = JOB_FETCH;
    return JOB_STEP_AGAIN;
}

/* With `started` in flight: once acknowledged, commits its checkpoint.
 * Returns -1 if Kafka refused it (publish it again before any page),
 * else 0. A failed
 * commit is not retried: the first page's checkpoint covers it. */
static int job_started_commit(job_run *jr)
{
    char meta[CHECKPOINT_MAX_BYTES + 1];
    int r = publisher_check(jr->ctx->ob, jr->tally, 0, jr->fail_mark);

    if (r != 1)
        jr->fail_mark = jr->tally->failed;
    if (r > 0)
        return 0;
    jr->started_pending = 0;
    if (r < 0) {
        log_warn("%s: Kafka refused the started event; publishing it again", jr->job.key);
        return -1;
    }
    jr->cp = jr->started_cp;
    if (checkpoint_encode(&jr->cp, meta, sizeof meta) < 0)
        return 0;
    /* not waited for: the request is out, and the first page's commit
     * comes after it on the same connection */
    if (!commits_send(jr->ctx->commits, job_run_topic(jr), jr->msg->partition, jr->msg->offset,
                      meta))
        log_warn("%s: could not send the commit of the fresh checkpoint of %s[%d]@%lld; the "
                 "first page's commit covers it", jr->job.key, job_run_topic(jr),
                 (int)jr->msg->partition, (long long)jr->msg->offset);
    return 0;
}

/* Ends the job as failed with reason (copied); to_dlq also dead-letters
 * the job message with its last checkpoint. */
static enum job_step job_fail(job_run *jr, const char *reason, int to_dlq)
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
        if (publisher_send_dlq(jr->ctx->ob, jr->tally, jr->ctx->dlq_topic, jr->msg, &info) != 0) {
            jr->seq = next.seq;
            return job_wait(jr, 1.0);
        }
    }
    jr->pager_before = jr->pager;
    return job_published(jr, &next, 1, JOB_FAIL, JOB_END, 0);
}

/* Publishes rate_limited with the time work resumes, commits it, and
 * schedules the next fetch for then (the loop keeps polling Kafka). */
static enum job_step job_wait_rate_limit(job_run *jr, time_t until, const char *why)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    char retry_at[ISOTIME_LEN + 1];

    isotime_format(until, retry_at);
    if (!jr->gh.no_credential)
        job_limit_wait_begin(jr); /* a deployment's missing credential is not a rate limit */
    log_warn("%s: %s; waiting until %s (status paused, still polling Kafka)", jr->job.key, why,
             retry_at);
    next.seq = jr->seq;
    job_progress_info(jr, &next, &pi, "rate_limited");
    pi.retry_at = retry_at;
    pi.reset_at = retry_at;
    if (job_send_progress(jr, &pi, &next.seq) != 0) {
        log_warn("%s: rate_limited event not published; waiting anyway", jr->job.key);
        jr->seq = next.seq;
        jr->not_before = (double)until;
        return JOB_STEP_WAIT;
    }
    jr->pager_before = jr->pager;
    return job_published(jr, &next, 0, JOB_FETCH, JOB_FETCH, (double)until);
}

/* Queues a fetched chunk and its progress (and the completion); the
 * commit follows once Kafka acknowledged them. */
static enum job_step job_publish_chunk(job_run *jr, const struct pager *before, json_t *records,
                                       const struct gh_page *page)
{
    struct checkpoint next = jr->cp;
    struct progress_info pi;
    char **parts = NULL;
    size_t nparts = 0, n = json_array_size(records);
    int bad = 0;
    double pause = jr->ctx->chunk_pause_ms / 1000.0;

    next.seq = jr->seq;
    next.requests++;
    next.points += page->cost > 0 ? page->cost : 1;
    if (n > 0) {
        next.chunk++;
        bad = jobmsg_pull_requests(&jr->job, jr->repository_id, next.chunk, records, &next.seq,
                                   &parts, &nparts);
        for (size_t i = 0; !bad && i < nparts; i++)
            bad = publisher_send(jr->ctx->ob, jr->tally, jr->ctx->progress_topic, jr->job.key,
                              EVENT_PULL_REQUESTS, parts[i]);
        jobmsg_free_parts(parts, nparts);
        job_progress_info(jr, &next, &pi, "processing");
        pi.chunk_size = (int)n;
        bad = bad || job_send_progress(jr, &pi, &next.seq);
    }
    if (!bad && jr->pager.done) {
        job_progress_info(jr, &next, &pi, "completed");
        bad = job_send_progress(jr, &pi, &next.seq);
    }
    snprintf(next.cursor, sizeof next.cursor, "%s", jr->pager.cursor);
    next.fetched = jr->pager.fetched;
    jr->seq = next.seq; /* never reuse a seq that may have gone out */
    if (bad) {
        log_warn("%s: could not queue chunk %d for Kafka; fetching it again in 1 s", jr->job.key,
                 next.chunk);
        jr->pager = *before;
        jr->cp.requests++;
        return job_wait(jr, 1.0);
    }
    log_debug("%s: chunk %d queued, %d/%d PRs", jr->job.key, next.chunk, jr->pager.fetched,
              jr->job.max_prs);
    wm_page_accepted((int)n);
    jr->pager_before = *before;
    return job_published(jr, &next, jr->pager.done, JOB_FETCH, jr->pager.done ? JOB_END : JOB_FETCH,
                         pause > 0 && !jr->pager.done ? job_now() + pause : 0);
}

/* A page the policy accepted: take what belongs to the backfill and
 * publish it. */
static enum job_step job_accept(job_run *jr, const struct gh_page *page)
{
    struct pager before = jr->pager;
    enum job_step st;
    json_t *records;

    if (page->repository_id > 0)
        jr->repository_id = page->repository_id;
    records = pager_accept(&jr->pager, page);
    if (!records)
        return job_wait(jr, 1.0);
    st = job_publish_chunk(jr, &before, records, page);
    json_decref(records);
    return st;
}

/* JOB_FETCH: one look at the job's GitHub request (job_github.c), then
 * acts on what GitHub's policy decided about it. */
static enum job_step job_fetch(job_run *jr)
{
    struct gh_page page;
    struct gh_decision d;
    enum job_step st;

    if (jr->started_pending && job_started_commit(jr) < 0) {
        /* the request in flight (the same first page) stays: its answer
         * is taken after `started` went out again */
        jr->phase = JOB_START;
        return job_wait(jr, 1.0);
    }
    if (!jr->gh.in_flight && jr->not_before > job_now())
        return JOB_STEP_WAIT; /* woken for `started`; the backoff still runs */
    if (!job_gh_step(&jr->gh, &jr->job, &jr->pager, &page, &d)) {
        if (jr->gh.paced)
            job_limit_wait_begin(jr); /* not while a credential is being readied */
        return job_wait(jr, jr->gh.later_s > JOB_FETCH_POLL_S ? jr->gh.later_s : JOB_FETCH_POLL_S);
    }
    if (d.answered && d.verdict != GH_ACCEPT)
        jr->cp.requests++; /* an accepted page is counted with its chunk */
    switch (d.verdict) {
    case GH_ACCEPT:
        st = job_accept(jr, &page);
        break;
    case GH_WAIT_RESET:
        st = job_wait_rate_limit(jr, d.until, d.reason);
        break;
    case GH_RETRY:
        log_warn("%s: %s", jr->job.key, d.reason);
        if (page.status == GH_SECONDARY_LIMIT || page.status == GH_RATE_LIMITED)
            job_limit_wait_begin(jr);
        st = job_wait(jr, d.wait_ms / 1000.0);
        break;
    case GH_FAIL:
        /* not answered: the credentials said no one can see the repository */
        jr->fail_class = d.answered ? wm_fail_for(page.status) : WM_FAIL_NO_CREDENTIAL;
        st = job_fail(jr, d.reason, d.to_dlq);
        break;
    case GH_SEND: /* never with a decision to act on; look again */
    default:
        st = job_wait(jr, JOB_FETCH_POLL_S);
        break;
    }
    gh_page_clear(&page);
    return st;
}

static enum job_step job_step_phase(job_run *jr)
{
    /* A cancellation takes effect at a chunk boundary, once the
     * checkpoint (and so the seq to continue from) is known. */
    if ((jr->phase == JOB_START || jr->phase == JOB_FETCH) && !jr->gh.in_flight &&
        cancels_hit(jr->ctx->cancels, jr->job.key, jr->job.ts)) {
        log_info("%s backfill=%s cancelled at chunk %d, %d PRs stored", jr->job.key, jr->job.id,
                 jr->cp.chunk, jr->cp.fetched);
        jr->fail_class = WM_FAIL_CANCELLED;
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

/* What the job waits on between two steps: the span its time goes to. */
static enum jt_span job_span(const job_run *jr)
{
    switch (jr->phase) {
    case JOB_LOAD: return JT_LOAD;
    case JOB_START: return JT_STARTED;
    case JOB_FETCH:
        if (jr->gh.in_flight)
            return JT_GITHUB;
        return jr->not_before > job_now() ? JT_WAIT : JT_SEND;
    case JOB_ACKS: return jr->pending.requests == 0 ? JT_STARTED : JT_ACKS;
    case JOB_FAIL: return JT_PUBLISH;
    case JOB_COMMIT:
    case JOB_END:
    default: return JT_COMMIT;
    }
}

enum job_step job_run_step(job_run *jr)
{
    double t0 = isotime_mono();
    int asked = jr->phase == JOB_FETCH && jr->gh.in_flight;
    enum jt_span during = job_span(jr);
    enum job_step st;

    if (during == JT_WAIT)
        during = JT_SEND; /* the wait is over: this step sends the request */
    if (jr->phase == JOB_FETCH && !jr->gh.in_flight && jr->not_before <= job_now())
        job_limit_wait_end(jr, t0); /* over: this step may send (not an ack or commit on the way) */
    jt_switch(&jr->tl, t0, during);
    st = job_step_phase(jr);
    if (st == JOB_STEP_AGAIN)
        jr->not_before = 0; /* the next step may run at once, whatever was scheduled before */
    if (asked && !jr->gh.in_flight) {
        /* the answer came at answered_at: GitHub's time ended there; the
         * rest of the wait and this step (publishing) are ours */
        jt_move(&jr->tl, JT_GITHUB, JT_COLLECT, t0 - jr->gh.answered_at);
        jr->tl.cur = JT_PUBLISH;
    }
    jt_switch(&jr->tl, isotime_mono(), job_span(jr));
    if (st == JOB_STEP_DONE && jr->pending_final) { /* the final commit is done */
        job_log_end(jr);
        wm_job_timeline(&jr->tl);
    }
    return st;
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
