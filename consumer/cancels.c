/* cancels: see cancels.h. */
#include "cancels.h"

#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"
#include "codec.h"
#include "isotime.h"
#include "tfollow.h"
#include "log.h"

struct cancel_entry {
    char key[REPO_FULL_MAX + 1];
    int64_t ts; /* ms: the latest cancel of this repository */
};

struct cancels {
    tfollow *follow;            /* owned: the control topic, every partition, no group */
    struct cancel_entry *items; /* owned */
    size_t n, cap;
};

static void cancels_note(cancels *cs, const char *key, int64_t ts)
{
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->items[i].key, key) == 0) {
            if (ts > cs->items[i].ts)
                cs->items[i].ts = ts;
            return;
        }
    if (dynbuf_grow_array(&cs->items, &cs->cap, cs->n + 1, sizeof *cs->items)) {
        log_error("out of memory recording a cancellation of %s", key);
        return;
    }
    snprintf(cs->items[cs->n].key, sizeof cs->items[cs->n].key, "%s", key);
    cs->items[cs->n++].ts = ts;
    log_info("%s: cancellation requested", key);
}

/* Reads one event of the follower; returns what tfollow_next said. */
static enum tfollow_result cancels_read(cancels *cs, int timeout_ms)
{
    struct tfollow_msg m;
    char key[REPO_FULL_MAX + 1], err[512];
    int64_t ts;
    enum tfollow_result r = tfollow_next(cs->follow, timeout_ms, &m, err, sizeof err);
    if (r == TF_MSG && cancel_decode(m.value, m.len, key, &ts, err, sizeof err) == 0)
        cancels_note(cs, key, ts);
    else if (r == TF_MSG)
        log_warn("ignoring control message at offset %lld: %s", (long long)m.offset, err);
    else if (r == TF_FATAL)
        log_error("control topic: %s", err);
    return r;
}

cancels *cancels_new(const struct cli_common *c, int timeout_ms, char *errstr, size_t errlen)
{
    const struct tfollow_spec spec = {c->control_topic, 1, "backfill-consumer-control", 1};
    cancels *cs = calloc(1, sizeof *cs);
    double deadline = isotime_mono() + timeout_ms / 1000.0;

    if (!cs) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (!(cs->follow = tfollow_new(c, &spec, errstr, errlen))) {
        cancels_free(cs);
        return NULL;
    }
    /* read what is there before any job starts */
    while (!tfollow_caught_up(cs->follow) && isotime_mono() < deadline)
        if (cancels_read(cs, 100) == TF_FATAL)
            break;
    return cs;
}

void cancels_free(cancels *cs)
{
    if (!cs)
        return;
    tfollow_free(cs->follow);
    free(cs->items);
    free(cs);
}

void cancels_poll(cancels *cs)
{
    enum tfollow_result r;
    if (!cs)
        return;
    do
        r = cancels_read(cs, 0);
    while (r == TF_MSG || r == TF_EOF);
}

int cancels_hit(const cancels *cs, const char *key, int64_t queued_ms)
{
    for (size_t i = 0; cs && i < cs->n; i++)
        if (strcmp(cs->items[i].key, key) == 0)
            return cs->items[i].ts >= queued_ms;
    return 0;
}
