/* http: see http.h.
 *
 * Metrics (common/metrics.h, served by main.c's --metrics listener):
 *   backfill_web_requests_total{route,code}        answers, by route and status
 *   backfill_web_request_duration_seconds{route}   from the request's headers to
 *                                                  its last byte (event streams left out)
 *   backfill_web_event_streams                     event streams open now
 *   backfill_web_repositories_queued_total         repositories bulk adds queued
 * route is one of http_routes[], never the raw path, so the series stay
 * bounded whatever clients ask for. */
#include "http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dynbuf.h"
#include "isotime.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

/* No inline script or style anywhere: data shown as text can never run. */
/* A body over API_BODY_MAX is still read (and dropped) up to this, so a client
 * that sends it whole before reading, as most do without Expect: 100-continue,
 * gets the 413 instead of a connection reset half-way through its upload. */
#define HTTP_DISCARD_MAX (8 * API_BODY_MAX)

#define HTTP_CSP                                                                            \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "      \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct http_server {
    struct MHD_Daemon *d;
    const struct web_app *app; /* borrowed */
};

/* The route labels: a fixed set. */
enum http_route {
    ROUTE_PAGE, ROUTE_STATIC, ROUTE_HEALTHZ, ROUTE_BULK_ADD, ROUTE_BACKFILLS, ROUTE_REPO,
    ROUTE_CANCEL, ROUTE_RETRY, ROUTE_EVENTS, ROUTE_ESTIMATE, ROUTE_LAG, ROUTE_OTHER, ROUTE_COUNT
};
static const char *const http_routes[ROUTE_COUNT] = {
    "/", "static", "/healthz", "/api/bulk-add", "/api/backfills", "/api/backfills/{repo}",
    "/api/backfills/{repo}/cancel", "/api/backfills/{repo}/retry", "/api/events",
    "/api/estimate", "/api/lag", "other"};

/* The families, registered once in metrics_default() (borrowed from it). */
static struct {
    pthread_once_t once;
    struct metric_family *requests;           /* {route,code} */
    struct metric *duration[ROUTE_COUNT];
    struct metric *streams;
    struct metric *queued;
} http_m = {.once = PTHREAD_ONCE_INIT};

static void http_metrics_register(void)
{
    struct metrics *m = metrics_default();
    struct metric_family *dur, *streams, *queued;

    http_m.requests = metrics_family(m, METRIC_COUNTER, "backfill_web_requests_total",
                                     "HTTP requests answered, by route and status code.",
                                     "route,code", NULL, 0);
    dur = metrics_family(m, METRIC_HISTOGRAM, "backfill_web_request_duration_seconds",
                         "Time from a request's headers to the last byte of its answer, by "
                         "route (event streams are not counted).",
                         "route", METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
    streams = metrics_family(m, METRIC_GAUGE, "backfill_web_event_streams",
                             "Event streams (GET /api/events) open now.", NULL, NULL, 0);
    queued = metrics_family(m, METRIC_COUNTER, "backfill_web_repositories_queued_total",
                            "Repositories queued for a backfill by POST /api/bulk-add.", NULL,
                            NULL, 0);
    for (int i = 0; i < ROUTE_COUNT; i++)
        http_m.duration[i] = metrics_series1(dur, http_routes[i]);
    http_m.streams = metrics_series0(streams);
    http_m.queued = metrics_series0(queued);
}

/* The route label of a request path (what api_handle dispatches on). */
static enum http_route http_route_of(const char *p)
{
    static const char prefix[] = "/api/backfills/";
    static const struct { const char *path; enum http_route route; } exact[] = {
        {"/", ROUTE_PAGE}, {"/index.html", ROUTE_PAGE}, {"/app.js", ROUTE_STATIC},
        {"/style.css", ROUTE_STATIC}, {"/healthz", ROUTE_HEALTHZ},
        {"/api/bulk-add", ROUTE_BULK_ADD}, {"/api/backfills", ROUTE_BACKFILLS},
        {"/api/events", ROUTE_EVENTS}, {"/api/estimate", ROUTE_ESTIMATE}, {"/api/lag", ROUTE_LAG}};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strcmp(p, exact[i].path) == 0)
            return exact[i].route;
    if (strncmp(p, prefix, sizeof prefix - 1) == 0) {
        const char *slash = strchr(p + sizeof prefix - 1, '/');
        const char *action = slash ? strchr(slash + 1, '/') : NULL;
        if (!slash)
            return ROUTE_OTHER;
        if (!action)
            return ROUTE_REPO;
        if (strcmp(action, "/cancel") == 0)
            return ROUTE_CANCEL;
        if (strcmp(action, "/retry") == 0)
            return ROUTE_RETRY;
    }
    return ROUTE_OTHER;
}

/* Counts one answer; for a bulk add, the repositories it queued (the
 * "queued" field of its body: api.c's answer, read back rather than
 * reaching into api.c). */
static void http_count(enum http_route route, int status, const struct web_reply *rp)
{
    char code[8];

    snprintf(code, sizeof code, "%d", status >= 100 && status <= 999 ? status : 0);
    metric_add(metrics_series2(http_m.requests, http_routes[route], code), 1);
    if (route == ROUTE_BULK_ADD && (status == 200 || status == 207) && rp->body) {
        json_t *o = json_loadb(rp->body, rp->len, 0, NULL);
        json_t *q = json_object_get(o, "queued");
        if (json_is_integer(q) && json_integer_value(q) > 0)
            metric_add(http_m.queued, (double)json_integer_value(q));
        json_decref(o);
    }
}

/* One request, from its first callback to its completion. */
struct http_req {
    struct dynbuf body;
    int too_big;
    size_t discarded; /* bytes of a too-big body read and dropped */
    int64_t t0_ms;
    int status;
    int stream;
    enum http_route route; /* the metrics' label for path */
    char method[16];
    char path[256];
};

static const char *http_header(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static const char *http_query(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}


static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode why)
{
    struct http_req *r = *con_cls;
    (void)cls;
    (void)conn;
    if (!r)
        return;
    if (r->stream)
        metric_add(http_m.streams, -1);
    else if (r->status)
        metric_observe(http_m.duration[r->route], (double)(isotime_now_ms() - r->t0_ms) / 1000.0);
    if (r->status)
        log_info("%s %s %d %.1f ms%s", r->method, r->path, r->status,
                 (double)(isotime_now_ms() - r->t0_ms),
                 r->stream ? " (event stream)"
                 : why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                                                              : " (connection ended early)");
    dynbuf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void http_headers(struct MHD_Response *resp, const struct web_reply *rp)
{
    MHD_add_response_header(resp, "Content-Type", rp->type ? rp->type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", rp->cacheable ? "no-cache" : "no-store");
    MHD_add_response_header(resp, "Content-Security-Policy", HTTP_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (rp->allow)
        MHD_add_response_header(resp, "Allow", rp->allow);
    if (rp->stream)
        MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: don't buffer */
}

static enum MHD_Result http_reply(struct MHD_Connection *conn, struct http_req *r,
                                  struct web_reply *rp)
{
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret;
    if (rp->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, hub_read, rp->stream,
                                                 hub_close);
        if (resp) {
            rp->stream = NULL; /* the response owns it now */
            r->stream = 1;
        } else {
            hub_close(rp->stream);
            rp->stream = NULL;
            api_error(rp, 500, "out of memory");
        }
    }
    http_count(r->route, rp->status, rp);
    if (r->stream)
        metric_add(http_m.streams, 1);
    if (!r->stream) {
        if (rp->body) {
            resp = MHD_create_response_from_buffer(rp->len, rp->body, MHD_RESPMEM_MUST_FREE);
            if (resp)
                rp->body = NULL; /* the response frees it */
        } else {
            resp = MHD_create_response_from_buffer(rp->len, (void *)(rp->static_body ?
                                                   rp->static_body : ""), MHD_RESPMEM_PERSISTENT);
        }
    }
    if (!resp) {
        free(rp->body);
        return MHD_NO;
    }
    http_headers(resp, rp);
    r->status = rp->status;
    ret = MHD_queue_response(conn, (unsigned)rp->status, resp);
    MHD_destroy_response(resp);
    free(rp->body);
    return ret;
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    http_server *s = cls;
    struct http_req *r = *con_cls;
    struct web_reply rp = {0};
    (void)version;

    if (!r) { /* the headers are in: set up, and refuse a body too big to read */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->t0_ms = isotime_now_ms();
        dynbuf_init(&r->body, API_BODY_MAX);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        r->route = http_route_of(url);
        *con_cls = r;
        if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX) {
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
            r->too_big = 1;
            if ((expect && strcasecmp(expect, "100-continue") == 0) ||
                strtoull(cl, NULL, 10) > HTTP_DISCARD_MAX) { /* not sent yet, or not worth it */
                api_error(&rp, 413, "the body is larger than %d bytes", API_BODY_MAX);
                return http_reply(conn, r, &rp);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->too_big && dynbuf_add(&r->body, upload_data, *upload_data_size))
            r->too_big = 1;
        if (r->too_big) {
            r->discarded += *upload_data_size;
            if (r->discarded > HTTP_DISCARD_MAX)
                return MHD_NO; /* a body without a length that never ends: hang up */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->status) /* answered early (413): the rest of the body is discarded */
        return MHD_YES;
    if (r->too_big) {
        api_error(&rp, 413, "the body is larger than %d bytes", API_BODY_MAX);
    } else {
        const struct web_request rq = {method, url, r->body.data ? r->body.data : "",
                                       r->body.len, http_header, http_query, conn};
        api_handle(s->app, &rq, &rp);
    }
    return http_reply(conn, r, &rp);
}

http_server *http_start(const struct web_app *app, const struct sockaddr *addr,
                        int max_connections, char *errstr, size_t errlen)
{
    http_server *s = calloc(1, sizeof *s);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (!s) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    pthread_once(&http_m.once, http_metrics_register);
    if (addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->app = app;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, http_on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, metrics_http_mhd_log, (void *)"http", /* first: see its doc */
                            MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
                            MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        snprintf(errstr, errlen, "cannot listen (address in use, or not this machine's?)");
        free(s);
        return NULL;
    }
    return s;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
