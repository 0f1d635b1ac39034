/* metrics_http: the small HTTP server every long-running binary starts with
 * --metrics ADDR:PORT (env BACKFILL_METRICS_LISTEN), on GNU libmicrohttpd
 * (the library backfill-web already serves its page with), in its own
 * thread:
 *
 *   GET /metrics   the registry's exposition text (text/plain; version=0.0.4)
 *   GET /healthz   200 "ok\n" when the health callback says ready, else 503
 *                  with its reason on one line (what compose's healthchecks
 *                  ask)
 *   anything else  404; any method but GET/HEAD 405
 *
 * Request bodies are refused, and an answer never carries a secret (the
 * registry holds none; see metrics.h). */
#ifndef BACKFILL_METRICS_HTTP_H
#define BACKFILL_METRICS_HTTP_H

#include <stdarg.h>
#include <stddef.h>

#include "metrics.h"

struct metrics_http;

/* 1 when ready, 0 when not with a short reason in why ("no partition
 * assigned yet", "Postgres unreachable: ..."). Called from the server's
 * thread: it must only read atomics or take its own locks. */
typedef int (*metrics_health_fn)(void *ctx, char *why, size_t whylen);

/* libmicrohttpd's MHD_OPTION_EXTERNAL_LOGGER routed to our log: one
 * warning line "PREFIX: message", cls being the prefix (a static string). */
void metrics_http_mhd_log(void *cls, const char *fmt, va_list ap);

/* Starts serving m on listen ("ADDR:PORT", "[v6]:PORT", ":PORT" for every
 * IPv4 address or "[::]:PORT" for every address; port 0 picks a free one;
 * see listen_addr.h). health may be NULL (always
 * ready). NULL with a message in errstr on a bad address or a port in use. */
struct metrics_http *metrics_http_start(const char *listen, struct metrics *m,
                                        metrics_health_fn health, void *ctx, char *errstr,
                                        size_t errlen);

/* The port actually listened on (for port 0). */
int metrics_http_port(const struct metrics_http *h);

/* Stops the server and waits for its thread. NULL is a no-op. */
void metrics_http_stop(struct metrics_http *h);

#endif
