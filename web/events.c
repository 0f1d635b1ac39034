/* events: see events.h. */
#include "events.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "isotime.h"
#include "log.h"
#include "repo_name.h"
#include "tfollow.h"

#define HUB_KEEPALIVE_MS 15000
/* A new stream starts this far back: Postgres, which the page reads its
 * rows from, is a sink batch behind the topic, so an update that passed
 * just before a page connected may not be in the rows it read yet. The
 * page ignores what it already has (seq). */
#define HUB_REPLAY_MS 10000

struct hub_event {
    uint64_t n;                   /* 0: empty slot */
    int64_t at_ms;                /* when it arrived */
    char key[REPO_FULL_MAX + 1];  /* lower-cased owner/name */
    char *text;                   /* owned: the whole SSE record, "id: ...\n...\n\n" */
    size_t len;
};

struct event_hub {
    tfollow *follow; /* owned; used by the follower thread only */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t changed;
    struct hub_event *ring; /* capacity slots; event n lives at n % capacity */
    size_t capacity;
    uint64_t next;          /* the number the next event gets (from 1) */
    int64_t start_ms;       /* this run's id prefix */
    int streams, max_streams;
    int stopping;
    char failure[512];      /* why the follower stopped; "" while it reads */
};

struct event_stream {
    event_hub *hub;               /* borrowed */
    uint64_t cursor;              /* the next event number to consider */
    char key[REPO_FULL_MAX + 1];  /* "" = every repository */
    int reset;                    /* send a reset event first */
    char *out;                    /* owned: bytes taken from the ring, not yet sent */
    size_t out_len, out_off;
};

/* Takes the data object out of a progress event's envelope; NULL for
 * anything else (pull-request batches, garbage). */
static char *hub_progress_data(const struct tfollow_msg *m, char key[REPO_FULL_MAX + 1])
{
    json_error_t jerr;
    json_t *env, *data, *repo;
    char owner[REPO_OWNER_MAX + 1], name[REPO_NAME_MAX + 1], err[128], *out = NULL;
    if (strcmp(m->event, EVENT_PROGRESS) != 0 || m->len > JOB_MAX_BYTES)
        return NULL;
    env = json_loadb(m->value, m->len, 0, &jerr);
    data = json_object_get(env, "data");
    repo = json_object_get(data, "repository");
    if (json_is_object(data) && json_is_string(repo) &&
        repo_parse(json_string_value(repo), owner, name, err, sizeof err) == 0) {
        repo_key(owner, name, key);
        out = json_dumps(data, JSON_COMPACT);
    }
    json_decref(env);
    return out;
}

static void *hub_follow(void *arg)
{
    event_hub *h = arg;
    char err[512], key[REPO_FULL_MAX + 1];
    for (;;) {
        struct tfollow_msg m;
        enum tfollow_result r;
        pthread_mutex_lock(&h->lock);
        int stop = h->stopping;
        pthread_mutex_unlock(&h->lock);
        if (stop)
            return NULL;
        r = tfollow_next(h->follow, 200, &m, err, sizeof err);
        if (r == TF_FATAL) {
            log_error("event stream: %s", err);
            pthread_mutex_lock(&h->lock);
            snprintf(h->failure, sizeof h->failure, "%s", err);
            pthread_mutex_unlock(&h->lock);
            return NULL;
        }
        if (r == TF_MSG) {
            char *data = hub_progress_data(&m, key);
            if (data)
                hub_publish(h, key, data);
            free(data);
        }
    }
}

event_hub *hub_new(const struct cli_common *c, size_t capacity, int max_streams, char *errstr,
                   size_t errlen)
{
    const struct tfollow_spec spec = {c->progress_topic, c->partitions, "backfill-web", 0};
    event_hub *h = calloc(1, sizeof *h);
    if (!h || !(h->ring = calloc(capacity, sizeof *h->ring))) {
        free(h);
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    h->capacity = capacity;
    h->max_streams = max_streams;
    h->next = 1;
    h->start_ms = isotime_now_ms();
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    if (!(h->follow = tfollow_new(c, &spec, errstr, errlen))) {
        hub_free(h);
        return NULL;
    }
    if (pthread_create(&h->thread, NULL, hub_follow, h) != 0) {
        snprintf(errstr, errlen, "cannot start the event thread: %s", strerror(errno));
        hub_free(h);
        return NULL;
    }
    h->thread_started = 1;
    return h;
}

void hub_shutdown(event_hub *h)
{
    pthread_mutex_lock(&h->lock);
    h->stopping = 1;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

void hub_free(event_hub *h)
{
    if (!h)
        return;
    hub_shutdown(h);
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    tfollow_free(h->follow);
    for (size_t i = 0; i < h->capacity; i++)
        free(h->ring[i].text);
    free(h->ring);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void hub_publish(event_hub *h, const char *key, const char *data_json)
{
    size_t cap = strlen(data_json) + 96;
    char *text = malloc(cap);
    if (!text)
        return; /* a browser misses one update; its next one or a reload repairs it */
    pthread_mutex_lock(&h->lock);
    uint64_t n = h->next++;
    struct hub_event *e = &h->ring[n % h->capacity];
    int len = snprintf(text, cap, "id: %llx-%llu\nevent: progress\ndata: %s\n\n",
                       (unsigned long long)h->start_ms, (unsigned long long)n, data_json);
    free(e->text);
    *e = (struct hub_event){.n = n, .at_ms = isotime_now_ms(), .text = text, .len = (size_t)len};
    snprintf(e->key, sizeof e->key, "%s", key);
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

int hub_health(event_hub *h, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&h->lock);
    int bad = h->failure[0] != '\0';
    if (bad)
        snprintf(errstr, errlen, "%s", h->failure);
    pthread_mutex_unlock(&h->lock);
    return bad ? -1 : 0;
}

/* The oldest event number still in the ring (under lock). */
static uint64_t hub_oldest(const event_hub *h)
{
    return h->next > h->capacity ? h->next - h->capacity : 1;
}

/* Where a stream with Last-Event-ID `id` resumes (under lock): right after
 * it, or 0 when it is not from this run or already overwritten. */
static uint64_t hub_resume_at(const event_hub *h, const char *id)
{
    unsigned long long start, n;
    char tail;
    if (sscanf(id, "%llx-%llu%c", &start, &n, &tail) != 2 || (int64_t)start != h->start_ms ||
        n >= h->next || n + 1 < hub_oldest(h))
        return 0;
    return n + 1;
}

event_stream *hub_open(event_hub *h, const char *key, const char *last_event_id)
{
    event_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hub = h;
    snprintf(s->key, sizeof s->key, "%s", key ? key : "");
    pthread_mutex_lock(&h->lock);
    if (h->streams >= h->max_streams) {
        pthread_mutex_unlock(&h->lock);
        free(s);
        return NULL;
    }
    h->streams++;
    s->cursor = h->next;
    for (int64_t since = isotime_now_ms() - HUB_REPLAY_MS;
         s->cursor > hub_oldest(h) && h->ring[(s->cursor - 1) % h->capacity].at_ms >= since;)
        s->cursor--;
    if (last_event_id && last_event_id[0]) {
        uint64_t at = hub_resume_at(h, last_event_id);
        if (at)
            s->cursor = at;
        else
            s->reset = 1;
    }
    pthread_mutex_unlock(&h->lock);
    return s;
}

void hub_close(void *stream)
{
    event_stream *s = stream;
    if (!s)
        return;
    pthread_mutex_lock(&s->hub->lock);
    s->hub->streams--;
    pthread_mutex_unlock(&s->hub->lock);
    free(s->out);
    free(s);
}

/* Fills s->out with what to send next, waiting up to the keep-alive
 * interval (under lock). Returns 0, or -1 to end the stream. */
static int hub_next_out(event_stream *s)
{
    event_hub *h = s->hub;
    struct timespec until;
    static const char reset[] = "event: reset\ndata: {}\n\n", keepalive[] = ": keepalive\n\n";
    const char *text = NULL;
    size_t len = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += HUB_KEEPALIVE_MS / 1000;
    while (!text && !h->stopping) {
        if (s->reset) {
            s->reset = 0;
            text = reset;
            len = sizeof reset - 1;
            break;
        }
        if (s->cursor < hub_oldest(h)) {
            log_warn("event stream: a reader fell more than %zu events behind; ending its "
                     "stream (its browser reconnects and reloads)", h->capacity);
            return -1;
        }
        for (; s->cursor < h->next && !text; s->cursor++) {
            const struct hub_event *e = &h->ring[s->cursor % h->capacity];
            if (!s->key[0] || strcmp(e->key, s->key) == 0) {
                text = e->text;
                len = e->len;
            }
        }
        if (!text && pthread_cond_timedwait(&h->changed, &h->lock, &until) == ETIMEDOUT) {
            text = keepalive;
            len = sizeof keepalive - 1;
        }
    }
    if (!text)
        return -1; /* stopping */
    free(s->out);
    s->out = malloc(len);
    if (!s->out)
        return -1;
    memcpy(s->out, text, len);
    s->out_len = len;
    s->out_off = 0;
    return 0;
}

ssize_t hub_read(void *stream, uint64_t pos, char *buf, size_t max)
{
    event_stream *s = stream;
    size_t n;
    (void)pos;
    if (s->out_off == s->out_len) {
        pthread_mutex_lock(&s->hub->lock);
        int r = hub_next_out(s);
        pthread_mutex_unlock(&s->hub->lock);
        if (r)
            return -1;
    }
    n = s->out_len - s->out_off < max ? s->out_len - s->out_off : max;
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    return (ssize_t)n;
}
