/* metrics_http: see metrics_http.h.
 *
 * We bind and listen ourselves (so that "address in use" comes back as
 * such) and hand the socket to libmicrohttpd, which serves it from one
 * internal polling thread and closes it (on stop, and when it fails to
 * start). Every answer is made on
 * the first call for a request, once its headers are in: no body is ever
 * read (a request announcing one gets 413, and MHD closes the connection
 * after the answer instead of reading it). */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen_addr.h"
#include "log.h"

#define METRICS_HTTP_CONNECTIONS 16
#define METRICS_HTTP_TIMEOUT_S 10
#define METRICS_HTTP_RENDER_MAX (64u << 20) /* far above 1000 series per family */
#define METRICS_HTTP_TEXT "text/plain; charset=utf-8"
#define METRICS_HTTP_EXPOSITION "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
    struct MHD_Daemon *d; /* owned: it owns the listening socket */
    struct metrics *m;    /* borrowed */
    metrics_health_fn health;
    void *ctx;            /* borrowed: handed to health */
    int port;
};

void metrics_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("%s: %s", cls ? (const char *)cls : "http", msg);
}

/* Queues status with body (copied) and content type; allow: the Allow
 * header, or NULL. */
static enum MHD_Result metrics_http_reply(struct MHD_Connection *conn, unsigned status,
                                          const char *type, const char *body, size_t len,
                                          const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (allow)
        MHD_add_response_header(resp, "Allow", allow);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result metrics_http_text(struct MHD_Connection *conn, unsigned status,
                                         const char *text, const char *allow)
{
    return metrics_http_reply(conn, status, METRICS_HTTP_TEXT, text, strlen(text), allow);
}

static enum MHD_Result metrics_http_metrics(struct MHD_Connection *conn,
                                            const struct metrics_http *h)
{
    struct dynbuf b;
    enum MHD_Result ret;
    dynbuf_init(&b, METRICS_HTTP_RENDER_MAX);
    if (metrics_render(h->m, &b)) {
        dynbuf_free(&b);
        return metrics_http_text(conn, 500, "cannot render the metrics: out of memory\n", NULL);
    }
    ret = metrics_http_reply(conn, 200, METRICS_HTTP_EXPOSITION, b.data ? b.data : "", b.len,
                             NULL);
    dynbuf_free(&b);
    return ret;
}

static enum MHD_Result metrics_http_healthz(struct MHD_Connection *conn,
                                            const struct metrics_http *h)
{
    char why[512] = "", line[520];
    size_t i;
    if (!h->health || h->health(h->ctx, why, sizeof why))
        return metrics_http_text(conn, 200, "ok\n", NULL);
    why[sizeof why - 1] = '\0';
    for (i = 0; why[i]; i++)
        if (why[i] == '\n' || why[i] == '\r')
            why[i] = ' '; /* one line */
    snprintf(line, sizeof line, "%s\n", why[0] ? why : "not ready");
    return metrics_http_text(conn, 503, line, NULL);
}

/* Whether the request says it carries a body. */
static int metrics_http_has_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    return te != NULL || (cl && strspn(cl, "0") != strlen(cl));
}

static enum MHD_Result metrics_http_on_request(void *cls, struct MHD_Connection *conn,
                                               const char *url, const char *method,
                                               const char *version, const char *upload_data,
                                               size_t *upload_data_size, void **con_cls)
{
    const struct metrics_http *h = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size)
        return MHD_NO; /* a body after all (answered already): hang up */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return metrics_http_text(conn, 405, "only GET and HEAD\n", "GET, HEAD");
    if (metrics_http_has_body(conn))
        return metrics_http_text(conn, 413, "no request body here\n", NULL);
    if (strcmp(url, "/metrics") == 0)
        return metrics_http_metrics(conn, h);
    if (strcmp(url, "/healthz") == 0)
        return metrics_http_healthz(conn, h);
    return metrics_http_text(conn, 404, "not found: try /metrics or /healthz\n", NULL);
}

/* A listening socket on addr, or -1 with a reason. */
static int metrics_http_listen(const char *spec, const struct sockaddr_storage *addr,
                               socklen_t len, char *errstr, size_t errlen)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, zero = 0;
    if (fd < 0) {
        snprintf(errstr, errlen, "--metrics %s: socket: %s", spec, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->ss_family == AF_INET6) /* [::]:PORT serves IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (const struct sockaddr *)addr, len) || listen(fd, METRICS_HTTP_CONNECTIONS)) {
        snprintf(errstr, errlen, "--metrics %s: cannot listen: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int metrics_http_bound_port(int fd)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    if (a.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a)->sin6_port);
}

struct metrics_http *metrics_http_start(const char *spec, struct metrics *m,
                                        metrics_health_fn health, void *ctx, char *errstr,
                                        size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t len;
    struct metrics_http *h;
    int loopback, fd;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (!spec || !m) {
        snprintf(errstr, errlen, "metrics http: no address or no registry");
        return NULL;
    }
    if (listen_addr_parse("--metrics", spec, &addr, &len, &loopback, errstr, errlen))
        return NULL;
    if (!(h = calloc(1, sizeof *h))) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if ((fd = metrics_http_listen(spec, &addr, len, errstr, errlen)) < 0) {
        free(h);
        return NULL;
    }
    *h = (struct metrics_http){NULL, m, health, ctx, metrics_http_bound_port(fd)};
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, metrics_http_on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, metrics_http_mhd_log, (void *)"metrics http", /* first */
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT_S,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(errstr, errlen, "--metrics %s: the HTTP server did not start", spec);
        free(h); /* MHD closed fd: it owns the socket from the call on, failed or not */
        return NULL;
    }
    return h;
}

int metrics_http_port(const struct metrics_http *h)
{
    return h ? h->port : -1;
}

void metrics_http_stop(struct metrics_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d); /* closes the listening socket */
    free(h);
}
