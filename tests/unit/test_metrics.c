/* test_metrics: the Prometheus registry (metrics.h), its HTTP server
 * (metrics_http.h) and the listen-address parser (listen_addr.h). The
 * exposition text is compared byte for byte, and when promtool is
 * installed, `promtool check metrics` must accept a representative
 * registry's text. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "listen_addr.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

/* The whole text of m; "" when it fails. Owned by the caller (free). */
static char *render(struct metrics *m)
{
    struct dynbuf b;
    dynbuf_init(&b, 0);
    CHECK(metrics_render(m, &b) == 0);
    if (!b.data)
        return strdup("");
    return b.data;
}

/* Checks that the text of m is exactly want (printing both when not). */
static void check_text(struct metrics *m, const char *want)
{
    char *got = render(m);
    CHECK(got && strcmp(got, want) == 0);
    if (got && strcmp(got, want) != 0)
        fprintf(stderr, "--- want\n%s--- got\n%s---\n", want, got);
    free(got);
}

static void test_names(void)
{
    struct metrics *m = metrics_new();
    const double b2[] = {1, 2}, bad[] = {2, 1};
    struct metric_family *f;
    CHECK(m != NULL);
    f = metrics_family(m, METRIC_COUNTER, "t_ok_total", "ok", "a, b", NULL, 0);
    CHECK(f != NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "t_ok_total", "again", "a,b", NULL, 0) == f);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_ok_total", "ok", "a,b", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "t_ok_total", "ok", "a", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "1abc_total", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "a-b_total", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, NULL, "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_COUNTER, "t_requests", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g_total", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "__x", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a-b", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a,,b", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a,", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a b", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a,a", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a,b,c,d,e", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", "a:b", NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g", "x", NULL, b2, 2) == NULL);
    CHECK(metrics_family(m, METRIC_HISTOGRAM, "t_h", "x", "le", b2, 2) == NULL);
    CHECK(metrics_family(m, METRIC_HISTOGRAM, "t_h", "x", NULL, NULL, 0) == NULL);
    CHECK(metrics_family(m, METRIC_HISTOGRAM, "t_h", "x", NULL, bad, 2) == NULL);
    CHECK(metrics_family(m, METRIC_HISTOGRAM, "t_h_seconds", "x", NULL, b2, 2) != NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_g:sub", "x", "a,b,c,d", NULL, 0) != NULL);
    CHECK(metrics_family(m, METRIC_GAUGE, "t_le", "x", "le", NULL, 0) != NULL);
    CHECK(metrics_family(NULL, METRIC_GAUGE, "t_g", "x", NULL, NULL, 0) == NULL);
    /* NULL everywhere is a no-op */
    CHECK(metrics_series(NULL, NULL) == NULL);
    CHECK(metrics_series(f, NULL) == NULL); /* two labels, no values */
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    metrics_hide(NULL);
    metrics_hide_all(NULL);
    CHECK(metric_value(NULL) == 0);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_counter_gauge(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *c = metrics_family(m, METRIC_COUNTER, "t_requests_total",
                                             "Requests answered.", "code", NULL, 0);
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_temperature_celsius",
                                             "Back\\slash and\nnewline.", NULL, NULL, 0);
    struct metric_family *empty = metrics_family(m, METRIC_GAUGE, "t_empty", "Nothing.",
                                                 NULL, NULL, 0);
    struct metric *ok = metrics_series1(c, "200");
    CHECK(empty != NULL);
    metric_add(ok, 2);
    metric_add(ok, 1);
    metric_add(ok, -5); /* a counter never goes down */
    metric_add(ok, NAN);
    metric_set(ok, 100); /* nor is set */
    metric_add(metrics_series1(c, "500"), 1);
    CHECK(metrics_series1(c, "200") == ok);
    CHECK(metric_value(ok) == 3);
    metric_set(metrics_series0(g), 21.5);
    metric_add(metrics_series0(g), -1);
    check_text(m, "# HELP t_requests_total Requests answered.\n"
                  "# TYPE t_requests_total counter\n"
                  "t_requests_total{code=\"200\"} 3\n"
                  "t_requests_total{code=\"500\"} 1\n"
                  "# HELP t_temperature_celsius Back\\\\slash and\\nnewline.\n"
                  "# TYPE t_temperature_celsius gauge\n"
                  "t_temperature_celsius 20.5\n");
    metrics_free(m);
}

static void test_floats(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_v", "Values.", "k", NULL, 0);
    metric_set(metrics_series1(g, "a"), 0.1);
    metric_set(metrics_series1(g, "b"), 1e20);
    metric_set(metrics_series1(g, "c"), NAN);
    metric_set(metrics_series1(g, "d"), INFINITY);
    metric_set(metrics_series1(g, "e"), -INFINITY);
    metric_set(metrics_series1(g, "f"), -3);
    metric_set(metrics_series1(g, "g"), 1.0 / 3);
    metric_set(metrics_series1(g, "h"), 9007199254740993.0);
    metric_set(metrics_series1(g, "i"), 123456789012.0);
    metric_set(metrics_series1(g, "j"), 1e-7);
    check_text(m, "# HELP t_v Values.\n"
                  "# TYPE t_v gauge\n"
                  "t_v{k=\"a\"} 0.1\n"
                  "t_v{k=\"b\"} 1e+20\n"
                  "t_v{k=\"c\"} NaN\n"
                  "t_v{k=\"d\"} +Inf\n"
                  "t_v{k=\"e\"} -Inf\n"
                  "t_v{k=\"f\"} -3\n"
                  "t_v{k=\"g\"} 0.3333333333333333\n"
                  "t_v{k=\"h\"} 9007199254740992\n"
                  "t_v{k=\"i\"} 123456789012\n"
                  "t_v{k=\"j\"} 1e-07\n");
    metrics_free(m);
}

static void test_escaping(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_e", "Escapes.", "a,b", NULL, 0);
    metric_set(metrics_series2(g, "x\\y\"z\nw", "caf\xc3\xa9 \xff!"), 1);
    metric_set(metrics_series2(g, "", NULL), 2); /* NULL is "" */
    CHECK(metrics_series2(g, NULL, "") == metrics_series2(g, "", ""));
    check_text(m, "# HELP t_e Escapes.\n"
                  "# TYPE t_e gauge\n"
                  "t_e{a=\"x\\\\y\\\"z\\nw\",b=\"caf\xc3\xa9 \xef\xbf\xbd!\"} 1\n"
                  "t_e{a=\"\",b=\"\"} 2\n");
    metrics_free(m);
}

static void test_histogram(void)
{
    struct metrics *m = metrics_new();
    const double b[] = {0.1, 1, 2.5};
    struct metric_family *h = metrics_family(m, METRIC_HISTOGRAM, "t_latency_seconds",
                                             "Latency.", "op", b, 3);
    struct metric *s = metrics_series1(h, "get");
    metric_observe(s, 0.05);
    metric_observe(s, 0.1); /* le is inclusive */
    metric_observe(s, 0.5);
    metric_observe(s, 100);
    metric_observe(s, NAN); /* not counted */
    metric_add(s, 1);       /* not a histogram's */
    metrics_series1(h, "put"); /* shown with zeros */
    check_text(m, "# HELP t_latency_seconds Latency.\n"
                  "# TYPE t_latency_seconds histogram\n"
                  "t_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
                  "t_latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
                  "t_latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
                  "t_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                  "t_latency_seconds_sum{op=\"get\"} 100.65\n"
                  "t_latency_seconds_count{op=\"get\"} 4\n"
                  "t_latency_seconds_bucket{op=\"put\",le=\"0.1\"} 0\n"
                  "t_latency_seconds_bucket{op=\"put\",le=\"1\"} 0\n"
                  "t_latency_seconds_bucket{op=\"put\",le=\"2.5\"} 0\n"
                  "t_latency_seconds_bucket{op=\"put\",le=\"+Inf\"} 0\n"
                  "t_latency_seconds_sum{op=\"put\"} 0\n"
                  "t_latency_seconds_count{op=\"put\"} 0\n");
    metrics_free(m);
}

static void test_histogram_unlabelled(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *h =
        metrics_family(m, METRIC_HISTOGRAM, "t_d_seconds", "D.", NULL, METRICS_LATENCY_BUCKETS,
                       METRICS_LATENCY_NBUCKETS);
    char *text;
    CHECK(METRICS_LATENCY_NBUCKETS == 13);
    metric_observe(metrics_series0(h), 0.007);
    text = render(m);
    CHECK(strstr(text, "t_d_seconds_bucket{le=\"0.005\"} 0\n"
                       "t_d_seconds_bucket{le=\"0.01\"} 1\n") != NULL);
    CHECK(strstr(text, "t_d_seconds_bucket{le=\"60\"} 1\n"
                       "t_d_seconds_bucket{le=\"+Inf\"} 1\n"
                       "t_d_seconds_sum 0.007\n"
                       "t_d_seconds_count 1\n") != NULL);
    free(text);
    metrics_free(m);
}

static void test_cap(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_many", "Many.", "i", NULL, 0);
    struct metric *first = NULL, *over;
    char v[32], *text;
    int i;
    for (i = 0; i < METRICS_SERIES_MAX; i++) {
        struct metric *s;
        snprintf(v, sizeof v, "%d", i);
        s = metrics_series1(g, v);
        CHECK(s != NULL);
        if (i == 0)
            first = s;
        metric_set(s, i);
    }
    CHECK(metrics_series1(g, "0") == first);
    over = metrics_series1(g, "extra1");
    CHECK(over != NULL && over != first);
    CHECK(metrics_series1(g, "extra2") == over);
    CHECK(metrics_series1(g, "999") != over); /* existing ones still found */
    metric_set(over, 12345.5);
    text = render(m);
    CHECK(strncmp(text, "# HELP backfill_metrics_series_dropped_total ", 45) == 0);
    CHECK(strstr(text, "backfill_metrics_series_dropped_total{family=\"t_many\"} 2\n") != NULL);
    CHECK(strstr(text, "t_many{i=\"999\"} 999\n") != NULL);
    CHECK(strstr(text, "extra") == NULL);
    CHECK(strstr(text, "12345.5") == NULL);
    free(text);
    metrics_free(m);
}

static void test_hide(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_lag", "Lag.", "p", NULL, 0);
    struct metric *p0 = metrics_series1(g, "0"), *p1 = metrics_series1(g, "1");
    metric_set(p0, 10);
    metric_set(p1, 11);
    metrics_hide(p0);
    check_text(m, "# HELP t_lag Lag.\n# TYPE t_lag gauge\nt_lag{p=\"1\"} 11\n");
    metrics_hide_all(g);
    check_text(m, ""); /* no series shown: no HELP or TYPE either */
    CHECK(metrics_series1(g, "0") == p0); /* a lookup is no update */
    check_text(m, "");
    metric_set(p0, 12);
    check_text(m, "# HELP t_lag Lag.\n# TYPE t_lag gauge\nt_lag{p=\"0\"} 12\n");
    metrics_free(m);
}

static void collect_hook(void *ctx)
{
    struct metric *s = ctx;
    metric_add(s, 1);
}

static void test_collect(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "t_renders", "Renders.", NULL,
                                             NULL, 0);
    struct metric *s = metrics_series0(g);
    int i;
    CHECK(metrics_on_collect(m, collect_hook, s) == 0);
    check_text(m, "# HELP t_renders Renders.\n# TYPE t_renders gauge\nt_renders 1\n");
    metrics_hide(s);
    check_text(m, "# HELP t_renders Renders.\n# TYPE t_renders gauge\nt_renders 2\n");
    for (i = 1; i < 16; i++)
        CHECK(metrics_on_collect(m, collect_hook, s) == 0);
    CHECK(metrics_on_collect(m, collect_hook, s) == -1);
    CHECK(metrics_on_collect(m, NULL, s) == -1);
    metrics_free(m);
}

static void test_build_info(void)
{
    struct metrics *m = metrics_new();
    metrics_build_info(m, "backfill-sink", "1.0.0", NULL);
    metrics_build_info(m, "backfill-worker", "1.0.0", "2.10.1");
    check_text(m, "# HELP backfill_build_info Always 1: the program, its version and "
                  "librdkafka's (none when the program does not link it)\n"
                  "# TYPE backfill_build_info gauge\n"
                  "backfill_build_info{program=\"backfill-sink\",version=\"1.0.0\","
                  "librdkafka=\"none\"} 1\n"
                  "backfill_build_info{program=\"backfill-worker\",version=\"1.0.0\","
                  "librdkafka=\"2.10.1\"} 1\n");
    metrics_free(m);
}

static void test_default(void)
{
    struct metrics *m = metrics_default();
    CHECK(m != NULL && metrics_default() == m);
}

/* ---- threads ---- */

#define THREADS 4
#define ADDS 100000

struct thread_arg {
    struct metric_family *c, *h; /* borrowed */
    struct metrics *m;           /* borrowed */
    atomic_int *done;            /* borrowed */
    atomic_int *failed;          /* borrowed */
};

static void *adder(void *p)
{
    const struct thread_arg *a = p;
    struct metric *c = metrics_series1(a->c, "x"), *h = metrics_series0(a->h);
    int i;
    for (i = 0; i < ADDS; i++) {
        metric_add(c, 1);
        metric_observe(h, 0.5);
        if (i % 10000 == 0)
            metrics_hide(c);
    }
    return NULL;
}

/* Renders until told to stop (no CHECK here: check.h counts without
 * atomics); counts failed renders in *failed. */
static void *renderer(void *p)
{
    const struct thread_arg *a = p;
    while (!atomic_load(a->done)) {
        struct dynbuf b;
        dynbuf_init(&b, 0);
        if (metrics_render(a->m, &b))
            atomic_fetch_add(a->failed, 1);
        dynbuf_free(&b);
    }
    return NULL;
}

static void test_threads(void)
{
    struct metrics *m = metrics_new();
    const double b[] = {1};
    atomic_int done = 0, failed = 0;
    struct thread_arg a = {metrics_family(m, METRIC_COUNTER, "t_adds_total", "Adds.", "k",
                                          NULL, 0),
                           metrics_family(m, METRIC_HISTOGRAM, "t_obs", "Obs.", NULL, b, 1), m,
                           &done, &failed};
    pthread_t t[THREADS], r;
    char *text;
    int i;
    CHECK(pthread_create(&r, NULL, renderer, &a) == 0);
    for (i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, adder, &a) == 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&done, 1);
    pthread_join(r, NULL);
    CHECK(atomic_load(&failed) == 0);
    CHECK(metric_value(metrics_series1(a.c, "x")) == THREADS * ADDS);
    text = render(m);
    CHECK(strstr(text, "t_adds_total{k=\"x\"} 400000\n") != NULL);
    CHECK(strstr(text, "t_obs_bucket{le=\"1\"} 400000\nt_obs_bucket{le=\"+Inf\"} 400000\n"
                       "t_obs_sum 200000\nt_obs_count 400000\n") != NULL);
    free(text);
    metrics_free(m);
}

/* ---- promtool ---- */

/* A registry with a bit of everything, as the binaries will have. */
static struct metrics *representative(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *c = metrics_family(m, METRIC_COUNTER, "backfill_t_requests_total",
                                             "GitHub requests, by\nclass \\ outcome.",
                                             "account,class", NULL, 0);
    struct metric_family *g = metrics_family(m, METRIC_GAUGE, "backfill_t_lag_messages",
                                             "Consumer lag.", "topic,partition", NULL, 0);
    struct metric_family *h = metrics_family(m, METRIC_HISTOGRAM, "backfill_t_request_seconds",
                                             "Request latency.", "class",
                                             METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
    struct metric_family *many = metrics_family(m, METRIC_GAUGE, "backfill_t_many", "Many.",
                                                "i", NULL, 0);
    char v[16];
    int i;
    metrics_build_info(m, "backfill-test", "1.0.0", NULL);
    metric_add(metrics_series2(c, "oct\"o\\cat\n", "graphql"), 12);
    metric_add(metrics_series2(c, "caf\xc3\xa9", "rest"), 0.5);
    metric_set(metrics_series2(g, "t", "0"), NAN);
    metric_set(metrics_series2(g, "t", "1"), -INFINITY);
    metric_set(metrics_series2(g, "t", "2"), 1e300);
    metric_set(metrics_series2(g, "t", "3"), 1.0 / 3);
    metric_observe(metrics_series1(h, "graphql"), 0.3);
    metric_observe(metrics_series1(h, "graphql"), 75);
    metrics_series1(h, "rest");
    metrics_family(m, METRIC_GAUGE, "backfill_t_unused", "Never set.", NULL, NULL, 0);
    for (i = 0; i < METRICS_SERIES_MAX + 3; i++) {
        snprintf(v, sizeof v, "%d", i);
        metric_set(metrics_series1(many, v), i);
    }
    return m;
}

static void test_promtool(void)
{
    struct metrics *m = representative();
    char path[] = "/tmp/test_metrics_XXXXXX", cmd[128], *text = render(m);
    int fd = mkstemp(path), rc;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("promtool not installed: its check skipped\n");
    } else {
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
        rc = system(cmd);
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "promtool refused %s (kept)\n", path);
        else
            unlink(path);
    }
    free(text);
    metrics_free(m);
}

/* ---- listen addresses ---- */

static void test_listen_addr(void)
{
    struct sockaddr_storage a;
    socklen_t len = 0;
    int lo = -1;
    char err[256];
    CHECK(listen_addr_parse("--listen", "nonsense", &a, &len, &lo, err, sizeof err) == -1);
    CHECK(strcmp(err, "--listen nonsense: expected ADDR:PORT") == 0);
    CHECK(listen_addr_parse("--listen", "127.0.0.1:", &a, &len, &lo, err, sizeof err) == -1);
    CHECK(listen_addr_parse("--listen", "127.0.0.1:65536", &a, &len, &lo, err, sizeof err) == -1);
    CHECK(strcmp(err, "--listen: port must be 0..65535") == 0);
    CHECK(listen_addr_parse("--x", "1.2.3.4:99999999999999999999", &a, &len, &lo, err,
                            sizeof err) == -1);
    CHECK(listen_addr_parse("--x", "1.2.3.4:-1", &a, &len, &lo, err, sizeof err) == -1);
    CHECK(listen_addr_parse("--x", "127.0.0.1:8080", &a, &len, &lo, err, sizeof err) == 0);
    CHECK(a.ss_family == AF_INET && lo == 1 && len == sizeof(struct sockaddr_in));
    CHECK(ntohs(((struct sockaddr_in *)&a)->sin_port) == 8080);
    CHECK(listen_addr_parse("--x", ":9464", &a, &len, &lo, err, sizeof err) == 0);
    CHECK(a.ss_family == AF_INET && lo == 0);
    CHECK(((struct sockaddr_in *)&a)->sin_addr.s_addr == htonl(INADDR_ANY));
    CHECK(listen_addr_parse("--x", "0.0.0.0:0", &a, &len, &lo, err, sizeof err) == 0 && lo == 0);
    CHECK(listen_addr_parse("--x", "[::1]:9464", &a, NULL, &lo, err, sizeof err) == 0);
    CHECK(a.ss_family == AF_INET6 && lo == 1);
}

/* ---- the HTTP server ---- */

struct health {
    atomic_int ready;
};

static int health_fn(void *ctx, char *why, size_t whylen)
{
    struct health *h = ctx;
    if (atomic_load(&h->ready))
        return 1;
    snprintf(why, whylen, "no partition\nassigned yet");
    return 0;
}

/* Sends req to 127.0.0.1:port and returns the whole answer (malloc'd), or
 * NULL. */
static char *http(int port, const char *req)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    struct dynbuf b;
    char buf[4096];
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dynbuf_init(&b, 1 << 20);
    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) ||
        write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (dynbuf_add(&b, buf, (size_t)n))
            break;
    close(fd);
    return b.data ? b.data : strdup("");
}

/* Whether the answer to req has status and contains each of the
 * NULL-terminated strings. */
static int http_has(int port, const char *req, int status, ...)
{
    char *got = http(port, req), want[32];
    const char *s;
    int ok;
    va_list ap;
    snprintf(want, sizeof want, " %d ", status);
    ok = got && strncmp(got, "HTTP/1.", 7) == 0 && strncmp(got + 8, want, strlen(want)) == 0;
    va_start(ap, status);
    while ((s = va_arg(ap, const char *)))
        if (ok && !strstr(got, s))
            ok = 0;
    va_end(ap);
    if (!ok)
        fprintf(stderr, "--- %s--- got\n%s\n---\n", req, got ? got : "(nothing)");
    free(got);
    return ok;
}

static void test_http(void)
{
    struct metrics *m = metrics_new();
    struct health hs;
    struct metrics_http *h, *busy;
    char err[256], spec[64], *head;
    int port;
    atomic_init(&hs.ready, 1);
    metrics_build_info(m, "backfill-test", "1.0.0", NULL);
    CHECK(metrics_http_start("nonsense", m, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "ADDR:PORT") != NULL);
    h = metrics_http_start("127.0.0.1:0", m, health_fn, &hs, err, sizeof err);
    CHECK(h != NULL);
    if (!h) {
        fprintf(stderr, "metrics_http_start: %s\n", err);
        metrics_free(m);
        return;
    }
    port = metrics_http_port(h);
    CHECK(port > 0 && port < 65536);
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    busy = metrics_http_start(spec, m, NULL, NULL, err, sizeof err);
    CHECK(busy == NULL && strstr(err, "in use") != NULL);
    metrics_http_stop(busy);
    CHECK(http_has(port, "GET /metrics HTTP/1.0\r\n\r\n", 200,
                   "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
                   "\r\n\r\n# HELP backfill_build_info ",
                   "backfill_build_info{program=\"backfill-test\"", NULL));
    head = http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
    CHECK(head && strstr(head, " 200 ") && !strstr(head, "# HELP"));
    free(head);
    CHECK(http_has(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200,
                   "\r\nContent-Type: text/plain", "\r\n\r\nok\n", NULL));
    atomic_store(&hs.ready, 0);
    CHECK(http_has(port, "GET /healthz HTTP/1.0\r\n\r\n", 503,
                   "\r\n\r\nno partition assigned yet\n", NULL));
    CHECK(http_has(port, "GET /nope HTTP/1.0\r\n\r\n", 404, NULL));
    CHECK(http_has(port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", 405,
                   "\r\nAllow: GET, HEAD\r\n", NULL));
    CHECK(http_has(port, "DELETE /healthz HTTP/1.0\r\n\r\n", 405, NULL));
    CHECK(http_has(port, "GET /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc", 413, NULL));
    metrics_http_stop(h);
    h = metrics_http_start(spec, m, NULL, NULL, err, sizeof err); /* the port was let go */
    CHECK(h != NULL && metrics_http_port(h) == port);
    metrics_http_stop(h);
    h = metrics_http_start(":0", m, NULL, NULL, err, sizeof err); /* every address */
    CHECK(h != NULL && metrics_http_port(h) > 0);
    if (h)
        CHECK(http_has(metrics_http_port(h), "GET /healthz HTTP/1.0\r\n\r\n", 200, "ok\n", NULL));
    metrics_http_stop(h);
    metrics_http_stop(NULL);
    CHECK(metrics_http_port(NULL) == -1);
    metrics_free(m);
}

int main(void)
{
    log_init("test_metrics"); /* test_names' refusals are logged: expected */
    test_names();
    test_counter_gauge();
    test_floats();
    test_escaping();
    test_histogram();
    test_histogram_unlabelled();
    test_cap();
    test_hide();
    test_collect();
    test_build_info();
    test_default();
    test_threads();
    test_promtool();
    test_listen_addr();
    test_http();
    return CHECK_DONE();
}
