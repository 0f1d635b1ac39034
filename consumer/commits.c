/* commits: see commits.h. */
#include "commits.h"

#include <stdlib.h>
#include <string.h>

#include "isotime.h"
#include "log.h"

#define COMMITS_RETRY_S 0.2     /* between attempts of a failed commit */
#define COMMITS_GIVE_UP_S 60.0  /* then go on without it */

/* One partition's newest commit. */
struct commit_part {
    char *topic; /* owned */
    int32_t partition;
    uint64_t sent;     /* ticket of the newest commit sent */
    uint64_t ok;       /* ticket of the newest commit that succeeded */
    int64_t offset;    /* of the newest, to send it again */
    char *metadata;    /* owned, NULL for none */
    int retry;         /* the newest failed: send it again at retry_at */
    int gave_up;       /* the newest kept failing for COMMITS_GIVE_UP_S */
    int failures;      /* failed attempts of the newest */
    double retry_at, failing_since; /* isotime_mono() */
};

struct commits {
    rd_kafka_t *rk;      /* borrowed */
    rd_kafka_queue_t *q; /* owned: where the answers come */
    uint64_t tickets;    /* the last ticket given */
    struct commit_part *parts;
    size_t n, cap;
};

commits *commits_new(rd_kafka_t *consumer)
{
    commits *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rk = consumer;
    c->q = rd_kafka_queue_new(consumer);
    if (!c->q) {
        free(c);
        return NULL;
    }
    return c;
}

static void commit_part_clear(struct commit_part *p)
{
    free(p->topic);
    free(p->metadata);
}

void commits_free(commits *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        commit_part_clear(&c->parts[i]);
    free(c->parts);
    rd_kafka_queue_destroy(c->q);
    free(c);
}

void commits_set_wake(commits *c, void (*wake)(rd_kafka_t *rk, void *ctx), void *ctx)
{
    rd_kafka_queue_cb_event_enable(c->q, wake, ctx);
}

static struct commit_part *commit_find(const commits *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
            return &c->parts[i];
    return NULL;
}

static int commit_pending(const struct commit_part *p)
{
    return p->sent > p->ok && !p->gave_up;
}

/* Sends p's newest commit (again) under a new ticket; 0 if not queued. */
static uint64_t commit_send_part(commits *c, struct commit_part *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *e;
    rd_kafka_resp_err_t err;
    uint64_t ticket = c->tickets + 1;

    if (!l)
        return 0;
    e = rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
    e->offset = p->offset;
    if (p->metadata && !(e->metadata = strdup(p->metadata))) {
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
    }
    e->metadata_size = p->metadata ? strlen(p->metadata) : 0;
    err = rd_kafka_commit_queue(c->rk, l, c->q, NULL, (void *)(uintptr_t)ticket);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        log_debug("commit of %s[%d]@%lld not queued: %s", p->topic, (int)p->partition,
                  (long long)p->offset, rd_kafka_err2str(err));
        return 0;
    }
    c->tickets = ticket;
    p->sent = ticket;
    p->retry = 0;
    return ticket;
}

uint64_t commits_send(commits *c, const char *topic, int32_t partition, int64_t offset,
                      const char *metadata)
{
    struct commit_part *p = commit_find(c, topic, partition);
    char *meta = NULL;

    if (metadata && !(meta = strdup(metadata)))
        return 0;
    if (!p) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            struct commit_part *np = realloc(c->parts, cap * sizeof *np);
            if (!np) {
                free(meta);
                return 0;
            }
            c->parts = np;
            c->cap = cap;
        }
        p = &c->parts[c->n];
        memset(p, 0, sizeof *p);
        if (!(p->topic = strdup(topic))) {
            free(meta);
            return 0;
        }
        p->partition = partition;
        c->n++;
    }
    free(p->metadata);
    p->metadata = meta;
    p->offset = offset;
    p->gave_up = 0;
    p->failures = 0;
    p->failing_since = 0;
    return commit_send_part(c, p);
}

/* One answer: the ticket's partition is done, or its newest commit failed. */
static void commit_answer(commits *c, rd_kafka_event_t *ev)
{
    uint64_t ticket = (uint64_t)(uintptr_t)rd_kafka_event_opaque(ev);
    const rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    struct commit_part *p;
    double now = isotime_mono();

    if (!l || l->cnt < 1)
        return;
    if (!err)
        err = l->elems[0].err;
    p = commit_find(c, l->elems[0].topic, l->elems[0].partition);
    if (!p)
        return; /* forgotten: the partition is gone */
    if (!err) {
        if (ticket > p->ok)
            p->ok = ticket;
        if (ticket == p->sent && p->failures)
            log_info("commit of %s[%d]@%lld succeeded after %d failed attempts", p->topic,
                     (int)p->partition, (long long)p->offset, p->failures);
        return;
    }
    if (ticket != p->sent || p->ok >= ticket)
        return; /* a newer commit of the partition supersedes it */
    if (p->failures++ == 0) {
        p->failing_since = now;
        log_warn("commit of %s[%d]@%lld failed: %s; retrying", p->topic, (int)p->partition,
                 (long long)p->offset, rd_kafka_err2str(err));
    }
    if (now - p->failing_since >= COMMITS_GIVE_UP_S) {
        p->gave_up = 1;
        log_warn("commit of %s[%d]@%lld still failing after %.0f s (%s); going on without it: "
                 "a later commit covers it", p->topic, (int)p->partition, (long long)p->offset,
                 now - p->failing_since, rd_kafka_err2str(err));
        return;
    }
    p->retry = 1;
    p->retry_at = now + COMMITS_RETRY_S;
}

/* Serves answers for up to timeout_ms (0: what is there), then sends
 * again what is due. */
static void commits_serve(commits *c, int timeout_ms)
{
    rd_kafka_event_t *ev;
    double now;

    while ((ev = rd_kafka_queue_poll(c->q, timeout_ms))) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT)
            commit_answer(c, ev);
        rd_kafka_event_destroy(ev);
        timeout_ms = 0;
    }
    now = isotime_mono();
    for (size_t i = 0; i < c->n; i++) {
        struct commit_part *p = &c->parts[i];
        if (p->retry && now >= p->retry_at && !commit_send_part(c, p))
            p->retry_at = now + COMMITS_RETRY_S;
    }
}

void commits_poll(commits *c)
{
    commits_serve(c, 0);
}

enum commit_state commits_state(commits *c, const char *topic, int32_t partition, uint64_t ticket)
{
    struct commit_part *p;
    commits_serve(c, 0);
    p = commit_find(c, topic, partition);
    if (!p || p->ok >= ticket)
        return COMMIT_DONE;
    return p->gave_up ? COMMIT_GAVE_UP : COMMIT_PENDING;
}

int commits_final_at(const commits *c, const char *topic, int32_t partition, int64_t offset)
{
    const struct commit_part *p = commit_find(c, topic, partition);
    return p && p->sent > 0 && !p->metadata && p->offset == offset;
}

static int commit_listed(const struct commit_part *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (!parts)
        return 1;
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition == p->partition && strcmp(parts->elems[i].topic, p->topic) == 0)
            return 1;
    return 0;
}

int commits_flush(commits *c, const rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
    double deadline = isotime_mono() + timeout_ms / 1000.0;
    for (;;) {
        int pending = 0;
        double left;
        commits_serve(c, 0);
        for (size_t i = 0; i < c->n; i++)
            pending += commit_listed(&c->parts[i], parts) && commit_pending(&c->parts[i]);
        if (!pending)
            return 0;
        left = deadline - isotime_mono();
        if (left <= 0)
            return -1;
        commits_serve(c, left < 0.05 ? 1 : 50);
    }
}

void commits_forget(commits *c, const rd_kafka_topic_partition_list_t *parts)
{
    size_t j = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (commit_listed(&c->parts[i], parts))
            commit_part_clear(&c->parts[i]);
        else
            c->parts[j++] = c->parts[i];
    }
    c->n = j;
}
