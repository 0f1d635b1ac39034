/* job_timeline: where one job's wall time goes, on the consumer's own
 * clock (monotonic seconds): from the moment its message reached a free
 * slot to its final commit, split into spans by what the job was doing.
 * Pure bookkeeping — no Kafka, no GitHub — so job.c marks the moments
 * and this file adds them up.
 *
 * A job is always in exactly one span; jt_switch() closes the current one
 * at `now` and opens the next, so the spans add up to the job's total.
 * "Outside GitHub" is the total less the time a request was at GitHub and
 * the waits GitHub's limits (or our shared pace of them) imposed: what a
 * worker adds around the requests, the per-job overhead. */
#ifndef BACKFILL_JOB_TIMELINE_H
#define BACKFILL_JOB_TIMELINE_H

#include <stddef.h>

enum jt_span {
    JT_LOAD,    /* reading the committed checkpoint of the partition */
    JT_STARTED, /* `started` queued until Kafka acknowledged it */
    JT_SEND,    /* ready for the next request, not sent yet */
    JT_GITHUB,  /* a request at GitHub: sent until its answer arrived */
    JT_COLLECT, /* the answer arrived until the worker took it */
    JT_PUBLISH, /* building and queueing a page's events */
    JT_ACKS,    /* a page's events queued until acknowledged */
    JT_COMMIT,  /* committing a checkpoint or the final offset */
    JT_WAIT,    /* a rate-limit reset, the pace, a retry's backoff: not overhead */
    JT_N
};

struct job_timeline {
    double received;   /* the job's message reached its slot */
    double handover;   /* seconds the slot stood free before that; < 0: its first job */
    double mark;       /* accounted up to here */
    enum jt_span cur;  /* what the job does since mark */
    double span[JT_N]; /* seconds per span */
};

/* Starts the timeline of a job received at `now` (in JT_LOAD). */
void jt_begin(struct job_timeline *t, double now, double handover);

/* Closes the current span at now (a time before the mark counts as 0)
 * and opens `next`. */
void jt_switch(struct job_timeline *t, double now, enum jt_span next);

/* Moves up to secs of what was counted as `from` to `to` (when a span
 * turns out to have ended earlier than it was seen to). */
void jt_move(struct job_timeline *t, enum jt_span from, enum jt_span to, double secs);

/* Received to mark; total less JT_GITHUB and JT_WAIT. */
double jt_total(const struct job_timeline *t);
double jt_outside(const struct job_timeline *t);

/* The span's name in logs and metrics ("load", "started", ...). */
const char *jt_name(enum jt_span s);

/* "total_ms=… github_ms=… outside_ms=… load_ms=… …" (every span, then
 * handover_ms when the slot had a job before), for a log line. Returns
 * what snprintf returns. */
int jt_format(const struct job_timeline *t, char *buf, size_t len);

#endif
