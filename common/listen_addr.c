/* listen_addr: see listen_addr.h. */
#include "listen_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits spec at its last colon into host (brackets of [v6] removed) and
 * port (digits only, at most 65535). 0, or -1 with a reason. */
static int listen_addr_split(const char *what, const char *spec, char *host, size_t hostlen,
                             const char **port, char *errstr, size_t errlen)
{
    const char *colon = strrchr(spec, ':'), *h = spec;
    size_t hl;
    if (!colon || !colon[1]) {
        snprintf(errstr, errlen, "%s %s: expected ADDR:PORT", what, spec);
        return -1;
    }
    *port = colon + 1;
    hl = (size_t)(colon - spec);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostlen) {
        snprintf(errstr, errlen, "%s: address too long", what);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (strspn(*port, "0123456789") != strlen(*port) || strlen(*port) > 5 ||
        atoi(*port) > 65535) {
        snprintf(errstr, errlen, "%s: port must be 0..65535", what);
        return -1;
    }
    return 0;
}

static int listen_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

int listen_addr_parse(const char *what, const char *spec, struct sockaddr_storage *out,
                      socklen_t *len, int *loopback, char *errstr, size_t errlen)
{
    char host[256];
    const char *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai = NULL;
    int e;
    if (listen_addr_split(what, spec, host, sizeof host, &port, errstr, errlen))
        return -1;
    if (!host[0])
        hints.ai_family = AF_INET; /* ":PORT": every IPv4 address */
    if ((e = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
        snprintf(errstr, errlen, "%s %s: %s", what, host, gai_strerror(e));
        return -1;
    }
    if (ai->ai_addrlen > sizeof *out) { /* cannot happen for IPv4 or IPv6 */
        snprintf(errstr, errlen, "%s %s: unsupported address family", what, host);
        freeaddrinfo(ai);
        return -1;
    }
    memset(out, 0, sizeof *out);
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    if (len)
        *len = (socklen_t)ai->ai_addrlen;
    *loopback = listen_addr_is_loopback(ai->ai_addr);
    freeaddrinfo(ai);
    return 0;
}
