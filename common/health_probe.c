/* health_probe: see health_probe.h. */
#include "health_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "isotime.h"
#include "listen_addr.h"

#define PROBE_ANSWER_MAX 4096

/* Turns an unspecified address (0.0.0.0, ::) into the loopback one. */
static void probe_local(struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)a;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (a->ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    }
}

/* Waits until fd is ready for events or the deadline passes: 1, 0 on
 * timeout, -1 on error. */
static int probe_wait(int fd, short events, int64_t deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t left = deadline_ms - isotime_now_ms();
    int n;
    if (left <= 0)
        return 0;
    do
        n = poll(&p, 1, (int)left);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Sends the request and reads the answer into buf (NUL-terminated): 0, or
 * -1 with the reason in why. */
static int probe_exchange(int fd, int64_t deadline_ms, char *buf, size_t cap, char *why,
                          size_t whylen)
{
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    size_t len = 0;
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
        snprintf(why, whylen, "cannot send the request: %s", strerror(errno));
        return -1;
    }
    while (len + 1 < cap) {
        ssize_t n;
        if (probe_wait(fd, POLLIN, deadline_ms) <= 0) {
            snprintf(why, whylen, "no answer in time");
            return -1;
        }
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return 0;
}

/* Connects with a deadline: a connected socket, or -1 with why. */
static int probe_connect(const struct sockaddr_storage *a, socklen_t alen, int64_t deadline_ms,
                         char *why, size_t whylen)
{
    int fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = 0;
    socklen_t elen = sizeof err;
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)a, alen) < 0 && errno != EINPROGRESS) {
        err = errno;
    } else if (probe_wait(fd, POLLOUT, deadline_ms) <= 0) {
        err = ETIMEDOUT;
    } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
        err = errno;
    }
    if (err) {
        snprintf(why, whylen, "cannot connect: %s", strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

int health_probe(const char *listen, int timeout_ms, char *why, size_t whylen)
{
    struct sockaddr_storage a;
    socklen_t alen = 0;
    int loopback, fd, status;
    int64_t deadline = isotime_now_ms() + timeout_ms;
    char *answer, *eol;
    if (listen_addr_parse("--metrics", listen, &a, &alen, &loopback, why, whylen))
        return -1;
    probe_local(&a);
    if ((fd = probe_connect(&a, alen, deadline, why, whylen)) < 0)
        return -1;
    if (!(answer = malloc(PROBE_ANSWER_MAX))) {
        snprintf(why, whylen, "out of memory");
        close(fd);
        return -1;
    }
    if (probe_exchange(fd, deadline, answer, PROBE_ANSWER_MAX, why, whylen) < 0) {
        status = -1;
    } else if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(why, whylen, "not an HTTP answer");
        status = -1;
    } else {
        const char *body = strstr(answer, "\r\n\r\n");
        body = body ? body + 4 : "";
        if ((eol = strchr(body, '\n')))
            *eol = '\0';
        snprintf(why, whylen, "HTTP %d: %s", status, body);
        status = status == 200 ? 0 : 1;
    }
    free(answer);
    close(fd);
    return status;
}

int health_probe_main(const char *program, const char *listen)
{
    char why[256];
    int rc;
    if (!listen || !*listen) {
        fprintf(stderr, "%s --healthcheck: no metrics address to ask: set --metrics ADDR:PORT "
                "or BACKFILL_METRICS_LISTEN\n", program);
        return 2;
    }
    rc = health_probe(listen, 3000, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "%s --healthcheck: %s: %s\n", program, listen, why);
    return rc == 0 ? 0 : 1;
}
