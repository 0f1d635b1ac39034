/* job_timeline: see job_timeline.h. */
#include "job_timeline.h"

#include <stdio.h>
#include <string.h>

static const char *const jt_names[JT_N] = {"load", "started", "send", "github", "collect",
                                           "publish", "acks", "commit", "wait"};

const char *jt_name(enum jt_span s)
{
    return (unsigned)s < JT_N ? jt_names[s] : "?";
}

void jt_begin(struct job_timeline *t, double now, double handover)
{
    memset(t, 0, sizeof *t);
    t->received = now;
    t->mark = now;
    t->handover = handover;
    t->cur = JT_LOAD;
}

void jt_switch(struct job_timeline *t, double now, enum jt_span next)
{
    if (now > t->mark) {
        t->span[t->cur] += now - t->mark;
        t->mark = now;
    }
    t->cur = next;
}

void jt_move(struct job_timeline *t, enum jt_span from, enum jt_span to, double secs)
{
    if (secs <= 0)
        return;
    if (secs > t->span[from])
        secs = t->span[from];
    t->span[from] -= secs;
    t->span[to] += secs;
}

double jt_total(const struct job_timeline *t)
{
    return t->mark - t->received;
}

double jt_outside(const struct job_timeline *t)
{
    double o = jt_total(t) - t->span[JT_GITHUB] - t->span[JT_WAIT];
    return o > 0 ? o : 0;
}

/* Appends to buf at *used (snprintf's rules: *used may pass len). */
static void jt_append(char *buf, size_t len, size_t *used, const char *name, double secs)
{
    size_t at = *used < len ? *used : len;
    int n = snprintf(buf + at, len - at, "%s%s_ms=%.1f", *used ? " " : "", name, secs * 1e3);
    if (n > 0)
        *used += (size_t)n;
}

int jt_format(const struct job_timeline *t, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    jt_append(buf, len, &used, "total", jt_total(t));
    jt_append(buf, len, &used, "github", t->span[JT_GITHUB]);
    jt_append(buf, len, &used, "outside", jt_outside(t));
    for (int i = 0; i < JT_N; i++)
        if (i != JT_GITHUB)
            jt_append(buf, len, &used, jt_names[i], t->span[i]);
    if (t->handover >= 0)
        jt_append(buf, len, &used, "handover", t->handover);
    return (int)used;
}
