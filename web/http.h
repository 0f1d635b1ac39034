/* http: backfill-web's HTTP server on GNU libmicrohttpd — one thread per
 * connection (an event stream blocks its own thread, nobody else's),
 * request bodies capped at API_BODY_MAX, the security headers on every
 * answer, and one log line per request with its status and duration. What
 * to answer is api.c's business. */
#ifndef BACKFILL_WEB_HTTP_H
#define BACKFILL_WEB_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "api.h"

typedef struct http_server http_server;

/* Listens on addr and serves app (borrowed; must outlive the server).
 * max_connections bounds open connections (streams included). NULL with
 * a reason. */
http_server *http_start(const struct web_app *app, const struct sockaddr *addr,
                        int max_connections, char *errstr, size_t errlen);

/* Stops listening and waits for every connection to end (end the event
 * streams first: hub_shutdown). NULL is a no-op. */
void http_stop(http_server *s);

#endif
