/* job: see job.h. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "events.h"
#include "isotime.h"
#include "log.h"
#include "pager.h"

#define JOB_SECONDARY_MAX 8    /* secondary-limit waits per request before giving up */
#define JOB_SECONDARY_WAIT 60  /* seconds, when GitHub sent no retry-after */
#define JOB_MIN_PAGE 5         /* smallest page after server errors */

struct job_run {
    struct worker_ctx *ctx;    /* borrowed */
    rd_kafka_message_t *msg;   /* owned: the job message, kept for the DLQ */
    struct job job;
    struct pager pager;
    struct checkpoint cp;      /* last committed checkpoint */
    int64_t repository_id;
    int page_max;              /* current page size (shrinks after server errors) */
    int retries;               /* transient failures of the current request */
    int secondary;             /* secondary-limit hits of the current request */
    int started;               /* the started event is published and committed */
    double not_before;         /* wall-clock seconds */
    char fail_reason[600];     /* set once the job failed but its end is not committed yet */
    int fail_dlq;
};

static double job_now(void)
{
    return (double)isotime_now_ms() / 1000.0;
}

static unsigned job_jitter(unsigned range_ms)
{
    return range_ms ? (unsigned)rand() % range_ms : 0;
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

void job_run_free(job_run *jr)
{
    if (!jr)
        return;
    rd_kafka_message_destroy(jr->msg);
    free(jr);
}

/* Commits `offset` of the job's partition with optional metadata. */
static int job_commit(struct worker_ctx *ctx, const rd_kafka_message_t *msg, int64_t offset,
                      const char *metadata)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *p;
    rd_kafka_resp_err_t err;

    if (!l)
        return -1;
    p = rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(msg->rkt), msg->partition);
    p->offset = offset;
    if (metadata) {
        p->metadata = strdup(metadata); /* owned by the list from here */
        p->metadata_size = p->metadata ? strlen(metadata) : 0;
    }
    err = rd_kafka_commit(ctx->consumer, l, 0);
    if (!err && l->elems[0].err)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_warn("commit of %s[%d]@%lld failed: %s", rd_kafka_topic_name(msg->rkt),
                 (int)msg->partition, (long long)offset, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* Reads the committed offset + metadata of the message's partition and
 * fills cp if it is a checkpoint of this very job. Returns 1 if resuming. */
static int job_find_checkpoint(job_run *jr)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *p;
    char err[256];
    int found = 0;

    if (!l)
        return 0;
    p = rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(jr->msg->rkt), jr->msg->partition);
    if (rd_kafka_committed(jr->ctx->consumer, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        p->offset == jr->msg->offset && p->metadata && p->metadata_size > 0 &&
        checkpoint_decode(p->metadata, p->metadata_size, &jr->cp, err, sizeof err) == 0 &&
        strcmp(jr->cp.id, jr->job.id) == 0)
        found = 1;
    rd_kafka_topic_partition_list_destroy(l);
    return found;
}

static void job_init_fresh(job_run *jr)
{
    memset(&jr->cp, 0, sizeof jr->cp);
    snprintf(jr->cp.id, sizeof jr->cp.id, "%s", jr->job.id);
    isotime_format(time(NULL) - (time_t)jr->job.since_days * 86400, jr->cp.cutoff);
}

static job_run *job_run_poison(struct worker_ctx *ctx, rd_kafka_message_t *msg, const char *why)
{
    struct dlq_info info = {why, rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, NULL};
    log_warn("poison message at %s[%d]@%lld: %s; sending it to %s", info.src_topic,
             (int)msg->partition, (long long)msg->offset, why, ctx->dlq_topic);
    if (outbox_send_dlq(ctx->ob, ctx->dlq_topic, msg, &info) == 0 &&
        outbox_wait(ctx->ob, ctx->ack_timeout_ms) == 0)
        job_commit(ctx, msg, msg->offset + 1, NULL);
    else
        log_error("could not dead-letter %s[%d]@%lld; it will be retried after a restart",
                  info.src_topic, (int)msg->partition, (long long)msg->offset);
    rd_kafka_message_destroy(msg);
    return NULL;
}

job_run *job_run_start(struct worker_ctx *ctx, rd_kafka_message_t *msg)
{
    char err[256];
    job_run *jr = calloc(1, sizeof *jr);
    time_t cutoff;

    if (!jr) {
        rd_kafka_message_destroy(msg);
        return NULL;
    }
    jr->ctx = ctx;
    jr->msg = msg;
    if (job_decode(msg->payload, msg->len, &jr->job, err, sizeof err)) {
        free(jr);
        return job_run_poison(ctx, msg, err);
    }
    jr->page_max = ctx->page_size;
    if (job_find_checkpoint(jr)) {
        jr->started = 1;
        log_info("resuming %s backfill=%s at chunk %d, %d PRs fetched, cutoff %s", jr->job.key,
                 jr->job.id, jr->cp.chunk, jr->cp.fetched, jr->cp.cutoff);
    } else {
        job_init_fresh(jr);
        log_info("starting %s backfill=%s maxPRs=%d sinceDays=%d", jr->job.key, jr->job.id,
                 jr->job.max_prs, jr->job.since_days);
    }
    isotime_parse(jr->cp.cutoff, &cutoff);
    pager_init(&jr->pager, jr->job.max_prs, cutoff, jr->cp.cursor, jr->cp.fetched);
    return jr;
}

/* Fills the fields of a progress event that come from the job's state. */
static void job_progress_info(const job_run *jr, const struct checkpoint *cp,
                              struct progress_info *pi, const char *status)
{
    const struct worker_ctx *ctx = jr->ctx;
    memset(pi, 0, sizeof *pi);
    pi->job = &jr->job;
    pi->repository_id = jr->repository_id;
    pi->status = status;
    pi->progress = jr->pager.fetched;
    pi->chunk = cp->chunk;
    pi->chunk_size = -1;
    pi->cursor = jr->pager.cursor;
    pi->cutoff = jr->cp.cutoff;
    pi->reached_time_limit = jr->pager.reached_time_limit;
    pi->requests = cp->requests;
    pi->points = cp->points;
    pi->remaining = ctx->budget_remaining;
}

/* Publishes one progress event with the next seq. */
static int job_send_progress(job_run *jr, struct progress_info *pi, int64_t *seq)
{
    char *s;
    int rc;
    pi->seq = ++*seq;
    s = events_progress(pi);
    if (!s)
        return -1;
    rc = outbox_send(jr->ctx->ob, jr->ctx->progress_topic, jr->job.key, EVENT_PROGRESS, s);
    free(s);
    return rc;
}

/* Waits for the acknowledgements of everything published, then commits
 * the new checkpoint `next` (or offset + 1 when final). On success the
 * job's committed checkpoint becomes `next`. */
static int job_checkpoint(job_run *jr, const struct checkpoint *next, int final)
{
    char meta[CHECKPOINT_MAX_BYTES + 1];
    if (outbox_wait(jr->ctx->ob, jr->ctx->ack_timeout_ms) != 0) {
        log_warn("%s: events not acknowledged by Kafka; the chunk will be redone", jr->job.key);
        return -1;
    }
    if (final) {
        job_commit(jr->ctx, jr->msg, jr->msg->offset + 1, NULL);
    } else if (checkpoint_encode(next, meta, sizeof meta) < 0) {
        log_error("%s: checkpoint does not fit in commit metadata", jr->job.key);
        return -1;
    } else {
        job_commit(jr->ctx, jr->msg, jr->msg->offset, meta);
    }
    jr->cp = *next;
    return 0;
}

static enum job_step job_fail(job_run *jr, const char *reason, int to_dlq)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    char meta[CHECKPOINT_MAX_BYTES + 1];

    if (reason != jr->fail_reason) {
        snprintf(jr->fail_reason, sizeof jr->fail_reason, "%s", reason);
        jr->fail_dlq = to_dlq;
        log_error("%s backfill=%s failed: %s", jr->job.key, jr->job.id, reason);
    }
    job_progress_info(jr, &next, &pi, "failed");
    pi.error = reason;
    if (job_send_progress(jr, &pi, &next.seq) == 0 && to_dlq) {
        struct dlq_info info = {reason, rd_kafka_topic_name(jr->msg->rkt), jr->msg->partition,
                                jr->msg->offset,
                                checkpoint_encode(&jr->cp, meta, sizeof meta) > 0 ? meta : NULL};
        outbox_send_dlq(jr->ctx->ob, jr->ctx->dlq_topic, jr->msg, &info);
    }
    if (job_checkpoint(jr, &next, 1) != 0) {
        jr->not_before = job_now() + 1.0;
        return JOB_STEP_WAIT; /* try failing again: nothing committed yet */
    }
    return JOB_STEP_DONE;
}

static enum job_step job_start_event(job_run *jr)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    job_progress_info(jr, &next, &pi, "started");
    if (job_send_progress(jr, &pi, &next.seq) != 0 || job_checkpoint(jr, &next, 0) != 0) {
        jr->not_before = job_now() + 1.0;
        return JOB_STEP_WAIT;
    }
    jr->started = 1;
    return JOB_STEP_AGAIN;
}

/* Publishes rate_limited with the time work resumes, commits the new seq,
 * and schedules the next step for then. */
static enum job_step job_wait_rate_limit(job_run *jr, time_t until, const char *why)
{
    struct progress_info pi;
    struct checkpoint next = jr->cp;
    char retry_at[ISOTIME_LEN + 1];

    isotime_format(until, retry_at);
    log_warn("%s: %s; waiting until %s (still polling Kafka)", jr->job.key, why, retry_at);
    job_progress_info(jr, &next, &pi, "rate_limited");
    pi.retry_at = retry_at;
    pi.reset_at = retry_at;
    if (job_send_progress(jr, &pi, &next.seq) != 0 || job_checkpoint(jr, &next, 0) != 0)
        log_warn("%s: rate_limited event not published; continuing the wait", jr->job.key);
    jr->not_before = (double)until;
    return JOB_STEP_WAIT;
}

static enum job_step job_retry(job_run *jr, const struct gh_page *page)
{
    double wait_ms;
    if (page->status == GH_SECONDARY_LIMIT) {
        if (++jr->secondary > JOB_SECONDARY_MAX)
            return job_fail(jr, page->error, 1);
        wait_ms = page->retry_after >= 0 ? page->retry_after * 1000.0 : JOB_SECONDARY_WAIT * 1000.0;
        if (jr->secondary > 1) /* told to wait before, and hit it again: back off */
            wait_ms += (double)jr->ctx->retry_base_ms * (1 << (jr->secondary - 1)) +
                       job_jitter((unsigned)jr->ctx->retry_base_ms);
        log_warn("%s: %s; retrying in %.1f s", jr->job.key, page->error, wait_ms / 1000.0);
        jr->not_before = job_now() + wait_ms / 1000.0;
        return JOB_STEP_WAIT;
    }
    if (++jr->retries > jr->ctx->max_retries) {
        char reason[600];
        snprintf(reason, sizeof reason, "gave up after %d retries: %s", jr->ctx->max_retries,
                 page->error);
        return job_fail(jr, reason, 1);
    }
    if (page->status == GH_SERVER_ERROR && jr->page_max > JOB_MIN_PAGE)
        jr->page_max = jr->page_max / 2 > JOB_MIN_PAGE ? jr->page_max / 2 : JOB_MIN_PAGE;
    wait_ms = (double)jr->ctx->retry_base_ms * (1 << (jr->retries - 1)) +
              job_jitter((unsigned)jr->ctx->retry_base_ms);
    log_warn("%s: %s; retry %d/%d in %.1f s with pages of %d", jr->job.key, page->error,
             jr->retries, jr->ctx->max_retries, wait_ms / 1000.0, jr->page_max);
    jr->not_before = job_now() + wait_ms / 1000.0;
    return JOB_STEP_WAIT;
}

/* Publishes a fetched chunk and its progress (and the completion), then
 * commits. On failure the pager is rolled back so the page is refetched. */
static enum job_step job_publish_chunk(job_run *jr, const struct pager *before, json_t *records,
                                       const struct gh_page *page)
{
    struct checkpoint next = jr->cp;
    struct progress_info pi;
    char **parts = NULL;
    size_t nparts = 0, n = json_array_size(records);
    int bad = 0;

    next.requests++;
    next.points += page->cost > 0 ? page->cost : 1;
    if (n > 0) {
        next.chunk++;
        bad = events_pull_requests(&jr->job, jr->repository_id, next.chunk, records, &next.seq,
                                   &parts, &nparts);
        for (size_t i = 0; !bad && i < nparts; i++)
            bad = outbox_send(jr->ctx->ob, jr->ctx->progress_topic, jr->job.key,
                              EVENT_PULL_REQUESTS, parts[i]);
        events_free_parts(parts, nparts);
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
    if (bad || job_checkpoint(jr, &next, jr->pager.done) != 0) {
        jr->pager = *before;
        jr->cp.requests++;
        jr->not_before = job_now() + 1.0;
        return JOB_STEP_WAIT;
    }
    if (jr->pager.done) {
        log_info("completed %s backfill=%s: %d PRs in %d chunks, %lld requests, %lld points%s",
                 jr->job.key, jr->job.id, jr->pager.fetched, next.chunk,
                 (long long)next.requests, (long long)next.points,
                 jr->pager.reached_time_limit ? ", reached the time window" : "");
        return JOB_STEP_DONE;
    }
    log_debug("%s: chunk %d stored, %d/%d PRs", jr->job.key, next.chunk, jr->pager.fetched,
              jr->job.max_prs);
    if (jr->ctx->chunk_pause_ms > 0) {
        jr->not_before = job_now() + jr->ctx->chunk_pause_ms / 1000.0;
        return JOB_STEP_WAIT;
    }
    return JOB_STEP_AGAIN;
}

static void job_note_budget(job_run *jr, const struct gh_page *page)
{
    if (page->remaining >= 0)
        jr->ctx->budget_remaining = page->remaining;
    if (page->reset_at > 0)
        jr->ctx->budget_reset_at = page->reset_at;
}

enum job_step job_run_step(job_run *jr)
{
    struct worker_ctx *ctx = jr->ctx;
    struct gh_page page;
    struct pager before = jr->pager;
    enum job_step st;
    json_t *records;
    time_t now = time(NULL);

    if (jr->fail_reason[0])
        return job_fail(jr, jr->fail_reason, jr->fail_dlq);
    if (!jr->started)
        return job_start_event(jr);
    if (ctx->budget_remaining >= 0 && ctx->budget_reset_at > 0 && now >= ctx->budget_reset_at)
        ctx->budget_remaining = -1; /* the window has reset */
    if (ctx->budget_remaining == 0 && ctx->budget_reset_at > now)
        return job_wait_rate_limit(jr, ctx->budget_reset_at + 1, "primary rate limit budget spent");
    gh_fetch_page(ctx->gh, jr->job.owner, jr->job.name, pager_next_first(&jr->pager, jr->page_max),
                  jr->pager.cursor, &page);
    job_note_budget(jr, &page);
    switch (page.status) {
    case GH_OK:
        break;
    case GH_RATE_LIMITED:
        jr->cp.requests++;
        ctx->budget_remaining = 0;
        st = job_wait_rate_limit(jr, page.reset_at > now ? page.reset_at + 1 : now + 60,
                                 page.error);
        gh_page_clear(&page);
        return st;
    case GH_SECONDARY_LIMIT:
    case GH_SERVER_ERROR:
    case GH_TRANSIENT:
        jr->cp.requests++;
        st = job_retry(jr, &page);
        gh_page_clear(&page);
        return st;
    default:
        jr->cp.requests++;
        st = job_fail(jr, page.error, 0);
        gh_page_clear(&page);
        return st;
    }
    jr->retries = jr->secondary = 0;
    if (jr->page_max < ctx->page_size)
        jr->page_max = jr->page_max * 2 < ctx->page_size ? jr->page_max * 2 : ctx->page_size;
    if (page.repository_id > 0)
        jr->repository_id = page.repository_id;
    records = pager_accept(&jr->pager, &page);
    if (!records) {
        gh_page_clear(&page);
        jr->not_before = job_now() + 1.0;
        return JOB_STEP_WAIT;
    }
    st = job_publish_chunk(jr, &before, records, &page);
    json_decref(records);
    gh_page_clear(&page);
    return st;
}
