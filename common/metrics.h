/* metrics: the process's Prometheus metrics, rendered in the text
 * exposition format 0.0.4 (what `promtool check metrics` checks).
 *
 * One registry per process (metrics_default()), as Prometheus' own client
 * libraries have: the modules that count things register their families
 * once at startup and update series from any thread. Updating a series is
 * a lock-free atomic on a double; looking a series up by its label values
 * takes the family's lock, so hot paths keep the struct metric pointer.
 *
 * Names follow Prometheus' rules: counters end in _total, durations are in
 * seconds, histograms get _bucket{le=...}, _sum and _count. Label values
 * are escaped on output. Every family holds at most METRICS_SERIES_MAX
 * series: past that, updates go to one shared overflow series that is
 * never shown, and backfill_metrics_series_dropped_total counts the
 * refusals, so a label with unbounded values cannot exhaust memory.
 * Series are never freed before metrics_free(): a pointer a caller keeps
 * stays valid; metrics_hide() only stops a series from being shown until
 * it is updated again (a partition this process no longer owns).
 *
 * No secret ever goes into a name, a help text or a label value: callers
 * pass account logins, partition numbers, classes and reasons, never
 * tokens or URLs with credentials. */
#ifndef BACKFILL_METRICS_H
#define BACKFILL_METRICS_H

#include <stddef.h>

#include "dynbuf.h"

#define METRICS_SERIES_MAX 1000
#define METRICS_LABELS_MAX 4
#define METRICS_BUCKETS_MAX 16

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;        /* a registry */
struct metric_family;  /* one name, one type, one help text */
struct metric;         /* one series of a family: one set of label values */

/* The process's registry, created on first use (thread-safe); never NULL
 * unless memory ran out at startup. */
struct metrics *metrics_default(void);

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* NULL is a no-op */

/* Registers a family, or returns the one already registered under that
 * name (same type expected). labels: comma-separated label names ("topic,
 * partition"), or NULL for none; at most METRICS_LABELS_MAX. buckets: the
 * histogram's upper bounds in increasing order, without +Inf (at most
 * METRICS_BUCKETS_MAX); NULL for other types. NULL on a bad name, a bad
 * label list, a type clash or no memory (the caller may ignore it: every
 * function below accepts a NULL family or series and does nothing). A bad
 * name includes what promtool's lint refuses: a counter not ending in
 * _total, another type ending in it, a name ending in _bucket, _sum or
 * _count; an empty help text is refused too. Refusals are logged. */
struct metric_family *metrics_family(struct metrics *m, enum metric_type type,
                                     const char *name, const char *help,
                                     const char *labels, const double *buckets,
                                     int nbuckets);

/* The series of family f with these label values (as many as the family
 * has label names, in order), created on first use. Past
 * METRICS_SERIES_MAX the shared overflow series is returned. NULL only if
 * f is NULL or no memory. */
struct metric *metrics_series(struct metric_family *f, const char *const *values);

/* Shorthands for families without labels or with one or two. */
struct metric *metrics_series0(struct metric_family *f);
struct metric *metrics_series1(struct metric_family *f, const char *v1);
struct metric *metrics_series2(struct metric_family *f, const char *v1, const char *v2);

void metric_add(struct metric *s, double v);     /* counter or gauge; a counter ignores v < 0 */
void metric_set(struct metric *s, double v);     /* gauge */
void metric_observe(struct metric *s, double v); /* histogram */
double metric_value(const struct metric *s);     /* counter or gauge; 0 for NULL */

/* Stops showing s until it is next updated; or every series of f. */
void metrics_hide(struct metric *s);
void metrics_hide_all(struct metric_family *f);

/* A function called at the start of every metrics_render(), to set gauges
 * that are cheaper to read when asked for (jobs in flight, budgets). At
 * most 16 hooks; -1 when full. fn runs in the rendering thread. */
int metrics_on_collect(struct metrics *m, void (*fn)(void *ctx), void *ctx);

/* Appends the exposition text of every shown series, families in
 * registration order. 0, or -1 when out of memory (out is then partial). */
int metrics_render(struct metrics *m, struct dynbuf *out);

/* Registers backfill_build_info{program,version,librdkafka} 1 (the
 * librdkafka version may be NULL for a binary that does not link it). */
void metrics_build_info(struct metrics *m, const char *program, const char *version,
                        const char *librdkafka_version);

/* Standard latency buckets in seconds, 5 ms to 60 s. */
extern const double METRICS_LATENCY_BUCKETS[];
extern const int METRICS_LATENCY_NBUCKETS;

#endif
