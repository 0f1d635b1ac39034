/* metrics: see metrics.h.
 *
 * Locks, from the outside in (never the other way round):
 *   metrics.render_lock  one render at a time (collect hooks, then output)
 *   metrics.lock         the family list and the hooks
 *   metric_family.lock   the family's series (lookup, creation, hide_all,
 *                        output)
 * A series' value, its histogram counts and its shown flag are atomics
 * read and written without any lock. Families and series are only ever
 * appended and live until metrics_free(), so a pointer handed out stays
 * valid and a list walked up to a tail read under the lock is stable.
 *
 * A double is kept as its bit pattern in an _Atomic uint64_t: set is a
 * store, add a compare-and-swap loop. A histogram keeps one count per
 * bucket (not cumulative; the last is +Inf) and its sum: the output
 * accumulates them, and _count is the +Inf bucket, so the two always
 * agree however the render and the updates interleave. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

#define METRICS_HOOKS_MAX 16
#define METRICS_HASH 256 /* chains per family: a few series per chain at the cap */
#define METRICS_DROPPED "backfill_metrics_series_dropped_total"

const double METRICS_LATENCY_BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1,     2.5,  5,     10,   30,  60};
const int METRICS_LATENCY_NBUCKETS =
    (int)(sizeof METRICS_LATENCY_BUCKETS / sizeof METRICS_LATENCY_BUCKETS[0]);

struct metric {
    struct metric_family *family;  /* borrowed: the family holding it */
    char *values[METRICS_LABELS_MAX]; /* owned: the label values */
    unsigned hash;                 /* of the label values */
    _Atomic uint64_t value;        /* bits of a double: the value, or a histogram's sum */
    _Atomic uint64_t *counts;      /* owned: histogram bucket counts, nbuckets + 1 (+Inf) */
    atomic_int shown;              /* 0 after metrics_hide until the next update */
    struct metric *next;           /* borrowed: the next series in creation order */
    struct metric *chain;          /* borrowed: the next series in this hash chain */
};

struct metric_family {
    struct metrics *reg;           /* borrowed: the registry holding it */
    enum metric_type type;
    char *name;                    /* owned */
    char *help;                    /* owned */
    char *labels[METRICS_LABELS_MAX]; /* owned: the label names */
    int nlabels;
    double buckets[METRICS_BUCKETS_MAX];
    int nbuckets;
    pthread_mutex_t lock;          /* the series below */
    struct metric *first, *last;   /* owned: every series but the overflow one */
    struct metric *hash[METRICS_HASH]; /* borrowed: the same series, by label values */
    int nseries;
    struct metric *overflow;       /* owned: where updates go past METRICS_SERIES_MAX */
    struct metric_family *next;    /* borrowed: the next family in registration order */
};

struct metrics_hook {
    void (*fn)(void *ctx);
    void *ctx; /* borrowed */
};

struct metrics {
    pthread_mutex_t render_lock;   /* one render at a time */
    pthread_mutex_t lock;          /* the families list and the hooks */
    struct metric_family *first, *last; /* owned */
    struct metric_family *dropped; /* borrowed: backfill_metrics_series_dropped_total */
    struct metrics_hook hooks[METRICS_HOOKS_MAX];
    int nhooks;
};

/* ---- doubles in atomics ---- */

static uint64_t metrics_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double metrics_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void metrics_atomic_add(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, metrics_bits(metrics_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- names ---- */

/* ASCII only, whatever the locale says */
static int metrics_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int metrics_alnum(char c)
{
    return metrics_alpha(c) || (c >= '0' && c <= '9');
}

static int metrics_name_ok(const char *s)
{
    if (!s || !(metrics_alpha(*s) || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!(metrics_alnum(*s) || *s == ':'))
            return 0;
    return 1;
}

static int metrics_label_name_ok(const char *s, size_t n, enum metric_type type)
{
    size_t i;
    if (n == 0 || !metrics_alpha(s[0]))
        return 0;
    if (n >= 2 && s[0] == '_' && s[1] == '_')
        return 0; /* reserved for Prometheus itself */
    if (type == METRIC_HISTOGRAM && n == 2 && memcmp(s, "le", 2) == 0)
        return 0;
    for (i = 1; i < n; i++)
        if (!metrics_alnum(s[i]))
            return 0;
    return 1;
}

static int metrics_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* promtool's lints that a name can fail: counters end in _total, and only
 * counters; _bucket, _sum and _count are a histogram's own. NULL when the
 * name is fine, else what is wrong with it. */
static const char *metrics_name_problem(enum metric_type type, const char *name)
{
    if (!metrics_name_ok(name))
        return "not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)";
    if (type == METRIC_COUNTER && !metrics_ends_with(name, "_total"))
        return "a counter's name ends in _total";
    if (type != METRIC_COUNTER && metrics_ends_with(name, "_total"))
        return "only a counter's name ends in _total";
    if (metrics_ends_with(name, "_bucket") || metrics_ends_with(name, "_sum") ||
        metrics_ends_with(name, "_count"))
        return "_bucket, _sum and _count are reserved for histograms' series";
    return NULL;
}

static int metrics_has_label(const struct metric_family *f, const char *p, size_t n)
{
    int i;
    for (i = 0; i < f->nlabels; i++)
        if (strlen(f->labels[i]) == n && memcmp(f->labels[i], p, n) == 0)
            return 1;
    return 0;
}

/* Splits "a, b" into f->labels. 0, or -1 on a bad list (a bad or repeated
 * name, an empty one, too many) or no memory. */
static int metrics_parse_labels(struct metric_family *f, const char *labels)
{
    const char *p = labels;
    while (p && *p) {
        size_t n;
        p += strspn(p, " ");
        n = strcspn(p, ", ");
        if (f->nlabels == METRICS_LABELS_MAX || !metrics_label_name_ok(p, n, f->type) ||
            metrics_has_label(f, p, n))
            return -1;
        if (!(f->labels[f->nlabels] = strndup(p, n)))
            return -1;
        f->nlabels++;
        p += n;
        p += strspn(p, " ");
        if (*p == ',') {
            if (!*++p)
                return -1; /* a trailing comma */
        } else if (*p) {
            return -1; /* "a b": names not separated by a comma */
        }
    }
    return 0;
}

static int metrics_buckets_ok(enum metric_type type, const double *buckets, int n)
{
    int i;
    if (type != METRIC_HISTOGRAM)
        return buckets == NULL && n == 0;
    if (!buckets || n < 1 || n > METRICS_BUCKETS_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return 0;
    return 1;
}

/* ---- series ---- */

static void metrics_series_free(struct metric *s)
{
    int i;
    if (!s)
        return;
    for (i = 0; i < METRICS_LABELS_MAX; i++)
        free(s->values[i]);
    free(s->counts);
    free(s);
}

static unsigned metrics_hash(const struct metric_family *f, const char *const *values)
{
    unsigned h = 2166136261u; /* FNV-1a over the values and their ends */
    int i;
    for (i = 0; i < f->nlabels; i++) {
        const unsigned char *p = (const unsigned char *)(values[i] ? values[i] : "");
        for (; *p; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0xff) * 16777619u;
    }
    return h;
}

static struct metric *metrics_series_new(struct metric_family *f, const char *const *values,
                                         unsigned hash)
{
    struct metric *s = calloc(1, sizeof *s);
    int i;
    if (!s)
        return NULL;
    s->family = f;
    s->hash = hash;
    atomic_init(&s->value, metrics_bits(0));
    atomic_init(&s->shown, 1);
    if (f->type == METRIC_HISTOGRAM) {
        if (!(s->counts = calloc((size_t)f->nbuckets + 1, sizeof *s->counts)))
            goto fail;
        for (i = 0; i <= f->nbuckets; i++)
            atomic_init(&s->counts[i], 0);
    }
    for (i = 0; values && i < f->nlabels; i++)
        if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
            goto fail;
    return s;
fail:
    metrics_series_free(s);
    return NULL;
}

/* The series with these values, or NULL. Called with f->lock held. */
static struct metric *metrics_series_find(struct metric_family *f, const char *const *values,
                                          unsigned hash)
{
    struct metric *s;
    int i;
    for (s = f->hash[hash % METRICS_HASH]; s; s = s->chain) {
        if (s->hash != hash)
            continue;
        for (i = 0; i < f->nlabels; i++)
            if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
                break;
        if (i == f->nlabels)
            return s;
    }
    return NULL;
}

/* Finds or makes the series; *dropped set when the cap sent it to the
 * overflow series. Called with f->lock held. */
static struct metric *metrics_series_locked(struct metric_family *f, const char *const *values,
                                            int *dropped)
{
    unsigned hash = metrics_hash(f, values);
    struct metric *s = metrics_series_find(f, values, hash);
    if (s)
        return s;
    if (f->nseries >= METRICS_SERIES_MAX) {
        *dropped = 1;
        if (!f->overflow)
            f->overflow = metrics_series_new(f, NULL, 0);
        return f->overflow;
    }
    if (!(s = metrics_series_new(f, values, hash)))
        return NULL;
    s->chain = f->hash[hash % METRICS_HASH];
    f->hash[hash % METRICS_HASH] = s;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
    return s;
}

struct metric *metrics_series(struct metric_family *f, const char *const *values)
{
    struct metric *s;
    int dropped = 0;
    if (!f || (f->nlabels > 0 && !values))
        return NULL;
    pthread_mutex_lock(&f->lock);
    s = metrics_series_locked(f, values, &dropped);
    pthread_mutex_unlock(&f->lock);
    if (dropped && f != f->reg->dropped) /* the dropped counter's own overflow: not counted */
        metric_add(metrics_series1(f->reg->dropped, f->name), 1);
    return s;
}

struct metric *metrics_series0(struct metric_family *f)
{
    return metrics_series(f, NULL);
}

struct metric *metrics_series1(struct metric_family *f, const char *v1)
{
    const char *v[1] = {v1};
    return metrics_series(f, v);
}

struct metric *metrics_series2(struct metric_family *f, const char *v1, const char *v2)
{
    const char *v[2] = {v1, v2};
    return metrics_series(f, v);
}

/* ---- updates ---- */

static void metrics_show(struct metric *s)
{
    if (!atomic_load_explicit(&s->shown, memory_order_relaxed))
        atomic_store_explicit(&s->shown, 1, memory_order_relaxed);
}

void metric_add(struct metric *s, double v)
{
    if (!s || s->family->type == METRIC_HISTOGRAM)
        return;
    if (s->family->type == METRIC_COUNTER && !(v >= 0))
        return; /* a counter only goes up (and NaN is no amount) */
    metrics_atomic_add(&s->value, v);
    metrics_show(s);
}

void metric_set(struct metric *s, double v)
{
    if (!s || s->family->type != METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->value, metrics_bits(v), memory_order_relaxed);
    metrics_show(s);
}

void metric_observe(struct metric *s, double v)
{
    const struct metric_family *f;
    int i = 0;
    if (!s || s->family->type != METRIC_HISTOGRAM || isnan(v))
        return;
    f = s->family;
    while (i < f->nbuckets && v > f->buckets[i])
        i++;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    metrics_atomic_add(&s->value, v);
    metrics_show(s);
}

double metric_value(const struct metric *s)
{
    return s ? metrics_double(atomic_load_explicit(&s->value, memory_order_relaxed)) : 0;
}

void metrics_hide(struct metric *s)
{
    if (s)
        atomic_store_explicit(&s->shown, 0, memory_order_relaxed);
}

void metrics_hide_all(struct metric_family *f)
{
    struct metric *s;
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    for (s = f->first; s; s = s->next)
        metrics_hide(s);
    pthread_mutex_unlock(&f->lock);
}

/* ---- families and the registry ---- */

static void metrics_family_free(struct metric_family *f)
{
    struct metric *s, *next;
    int i;
    if (!f)
        return;
    for (s = f->first; s; s = next) {
        next = s->next;
        metrics_series_free(s);
    }
    metrics_series_free(f->overflow);
    for (i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    pthread_mutex_destroy(&f->lock);
    free(f->name);
    free(f->help);
    free(f);
}

static struct metric_family *metrics_family_new(enum metric_type type, const char *name,
                                                const char *help, const char *labels,
                                                const double *buckets, int nbuckets)
{
    struct metric_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->lock, NULL)) {
        free(f);
        return NULL;
    }
    f->type = type;
    f->nbuckets = nbuckets;
    if (nbuckets > 0)
        memcpy(f->buckets, buckets, (size_t)nbuckets * sizeof *buckets);
    if (!(f->name = strdup(name)) || !(f->help = strdup(help)) ||
        metrics_parse_labels(f, labels)) {
        metrics_family_free(f);
        return NULL;
    }
    return f;
}

/* The family registered as name, or NULL. Called with m->lock held. */
static struct metric_family *metrics_family_find(struct metrics *m, const char *name)
{
    struct metric_family *f;
    for (f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Why this family cannot be registered, or NULL when it can. */
static const char *metrics_family_problem(enum metric_type type, const char *name,
                                          const char *help, const double *buckets, int nbuckets)
{
    const char *why = metrics_name_problem(type, name);
    if (why)
        return why;
    if (!help || !help[0])
        return "no help text";
    if (!metrics_buckets_ok(type, buckets, nbuckets))
        return type == METRIC_HISTOGRAM ? "buckets must be 1..16 finite increasing bounds"
                                        : "only a histogram has buckets";
    return NULL;
}

/* Whether a and b have the same type, label names and buckets. */
static int metrics_family_same(const struct metric_family *a, const struct metric_family *b)
{
    int i;
    if (a->type != b->type || a->nlabels != b->nlabels || a->nbuckets != b->nbuckets)
        return 0;
    for (i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0)
            return 0;
    for (i = 0; i < a->nbuckets; i++)
        if (a->buckets[i] != b->buckets[i])
            return 0;
    return 1;
}

/* Registers f in m, or returns the one already there (and frees f).
 * *clash set when that one differs (then NULL). */
static struct metric_family *metrics_family_add(struct metrics *m, struct metric_family *f,
                                                int *clash)
{
    struct metric_family *old;
    pthread_mutex_lock(&m->lock);
    if ((old = metrics_family_find(m, f->name))) {
        *clash = !metrics_family_same(old, f);
        pthread_mutex_unlock(&m->lock);
        metrics_family_free(f);
        return *clash ? NULL : old;
    }
    f->reg = m;
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->lock);
    return f;
}

struct metric_family *metrics_family(struct metrics *m, enum metric_type type,
                                     const char *name, const char *help,
                                     const char *labels, const double *buckets,
                                     int nbuckets)
{
    const char *why = metrics_family_problem(type, name, help, buckets, nbuckets);
    struct metric_family *f;
    int clash = 0;
    if (!m)
        return NULL;
    if (why) {
        log_error("metrics: not registering %s: %s", name ? name : "(null)", why);
        return NULL;
    }
    if (!(f = metrics_family_new(type, name, help, labels, buckets, nbuckets))) {
        log_error("metrics: not registering %s: a bad label list, or out of memory", name);
        return NULL;
    }
    f = metrics_family_add(m, f, &clash);
    if (clash)
        log_error("metrics: not registering %s: registered before with another type, "
                  "labels or buckets", name);
    return f;
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL)) {
        free(m);
        return NULL;
    }
    if (pthread_mutex_init(&m->render_lock, NULL)) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    m->dropped = metrics_family(m, METRIC_COUNTER, METRICS_DROPPED,
                                "Label sets refused because their family already had "
                                "the most series it may have",
                                "family", NULL, 0);
    if (!m->dropped) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    struct metric_family *f, *next;
    if (!m)
        return;
    for (f = m->first; f; f = next) {
        next = f->next;
        metrics_family_free(f);
    }
    pthread_mutex_destroy(&m->render_lock);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct metrics *metrics_default_reg;
static pthread_once_t metrics_default_once = PTHREAD_ONCE_INIT;

static void metrics_default_init(void)
{
    metrics_default_reg = metrics_new();
}

struct metrics *metrics_default(void)
{
    pthread_once(&metrics_default_once, metrics_default_init);
    return metrics_default_reg;
}

int metrics_on_collect(struct metrics *m, void (*fn)(void *ctx), void *ctx)
{
    int rc = -1;
    if (!m || !fn)
        return -1;
    pthread_mutex_lock(&m->lock);
    if (m->nhooks < METRICS_HOOKS_MAX) {
        m->hooks[m->nhooks++] = (struct metrics_hook){fn, ctx};
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void metrics_build_info(struct metrics *m, const char *program, const char *version,
                        const char *librdkafka_version)
{
    struct metric_family *f =
        metrics_family(m, METRIC_GAUGE, "backfill_build_info",
                       "Always 1: the program, its version and librdkafka's (none when the "
                       "program does not link it)",
                       "program,version,librdkafka", NULL, 0);
    const char *v[3] = {program ? program : "", version ? version : "",
                        librdkafka_version && librdkafka_version[0] ? librdkafka_version
                                                                    : "none"};
    metric_set(metrics_series(f, v), 1);
}

/* ---- the exposition text ---- */

struct metrics_out {
    struct dynbuf *b; /* borrowed */
    int failed;       /* a dynbuf_add failed: the output is partial */
};

static void out_add(struct metrics_out *o, const char *p, size_t n)
{
    if (!o->failed && dynbuf_add(o->b, p, n))
        o->failed = 1;
}

static void out_str(struct metrics_out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

/* A float as Prometheus writes one: NaN, +Inf, -Inf; an integer without
 * exponent or point while a double holds it exactly; otherwise the
 * shortest of %.15g..%.17g that reads back as the same double. */
static void metrics_format_double(double v, char *buf, size_t len)
{
    int prec;
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53 */
        snprintf(buf, len, "%.0f", v);
        return;
    }
    for (prec = 15; prec < 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
    snprintf(buf, len, "%.17g", v);
}

static void out_double(struct metrics_out *o, double v)
{
    char buf[64];
    metrics_format_double(v, buf, sizeof buf);
    out_str(o, buf);
}

/* HELP text: backslash and newline escaped. */
static void out_help(struct metrics_out *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_str(o, "\\\\");
        else if (*s == '\n')
            out_str(o, "\\n");
        else
            out_add(o, s, 1);
    }
}

/* A label value: backslash, double quote and newline escaped; a byte that
 * is not valid UTF-8 written as U+FFFD (Prometheus reads UTF-8 only). */
static void out_label_value(struct metrics_out *o, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) {
            out_str(o, "\xef\xbf\xbd");
            k = 1;
        } else if (s[i] == '\\') {
            out_str(o, "\\\\");
        } else if (s[i] == '"') {
            out_str(o, "\\\"");
        } else if (s[i] == '\n') {
            out_str(o, "\\n");
        } else {
            out_add(o, s + i, k);
        }
        i += k;
    }
}

/* {a="x",b="y"} with le="..." last when le is not NULL; nothing when there
 * is no label at all. */
static void out_labels(struct metrics_out *o, const struct metric *s, const char *le)
{
    const struct metric_family *f = s->family;
    int i;
    if (f->nlabels == 0 && !le)
        return;
    out_str(o, "{");
    for (i = 0; i < f->nlabels; i++) {
        if (i)
            out_str(o, ",");
        out_str(o, f->labels[i]);
        out_str(o, "=\"");
        out_label_value(o, s->values[i]);
        out_str(o, "\"");
    }
    if (le) {
        out_str(o, f->nlabels ? ",le=\"" : "le=\"");
        out_str(o, le);
        out_str(o, "\"");
    }
    out_str(o, "}");
}

/* name{labels} value\n */
static void out_sample(struct metrics_out *o, const struct metric *s, const char *suffix,
                       const char *le, double v)
{
    out_str(o, s->family->name);
    out_str(o, suffix);
    out_labels(o, s, le);
    out_str(o, " ");
    out_double(o, v);
    out_str(o, "\n");
}

static void out_histogram(struct metrics_out *o, const struct metric *s)
{
    const struct metric_family *f = s->family;
    double cumulative = 0;
    char le[64];
    int i;
    for (i = 0; i <= f->nbuckets; i++) {
        cumulative += (double)atomic_load_explicit(&s->counts[i], memory_order_relaxed);
        if (i < f->nbuckets)
            metrics_format_double(f->buckets[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        out_sample(o, s, "_bucket", le, cumulative);
    }
    out_sample(o, s, "_sum", NULL, metric_value(s));
    out_sample(o, s, "_count", NULL, cumulative);
}

static const char *metrics_type_name(enum metric_type t)
{
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

/* HELP, TYPE and the shown series of f; nothing when none is shown. */
static void out_family(struct metrics_out *o, struct metric_family *f)
{
    struct metric *s;
    int header = 0;
    pthread_mutex_lock(&f->lock);
    for (s = f->first; s; s = s->next) {
        if (!atomic_load_explicit(&s->shown, memory_order_relaxed))
            continue;
        if (!header) {
            out_str(o, "# HELP ");
            out_str(o, f->name);
            out_str(o, " ");
            out_help(o, f->help);
            out_str(o, "\n# TYPE ");
            out_str(o, f->name);
            out_str(o, " ");
            out_str(o, metrics_type_name(f->type));
            out_str(o, "\n");
            header = 1;
        }
        if (f->type == METRIC_HISTOGRAM)
            out_histogram(o, s);
        else
            out_sample(o, s, "", NULL, metric_value(s));
    }
    pthread_mutex_unlock(&f->lock);
}

/* Runs the collect hooks, from a copy taken under the lock: a hook may
 * register families or series. */
static void metrics_collect(struct metrics *m)
{
    struct metrics_hook hooks[METRICS_HOOKS_MAX];
    int n, i;
    pthread_mutex_lock(&m->lock);
    n = m->nhooks;
    memcpy(hooks, m->hooks, (size_t)n * sizeof hooks[0]);
    pthread_mutex_unlock(&m->lock);
    for (i = 0; i < n; i++)
        hooks[i].fn(hooks[i].ctx);
}

int metrics_render(struct metrics *m, struct dynbuf *out)
{
    struct metrics_out o = {out, 0};
    struct metric_family *f, *last;
    if (!m)
        return 0;
    pthread_mutex_lock(&m->render_lock);
    metrics_collect(m);
    pthread_mutex_lock(&m->lock);
    f = m->first;
    last = m->last;
    pthread_mutex_unlock(&m->lock);
    for (; f; f = f == last ? NULL : f->next)
        out_family(&o, f);
    pthread_mutex_unlock(&m->render_lock);
    return o.failed ? -1 : 0;
}
