/* health_probe: the client side of /healthz, for `--healthcheck` (what
 * compose's health checks run inside a container, where there is no curl):
 * connects to the address the binary's own --metrics server listens on
 * (an unspecified address, 0.0.0.0 or ::, means this machine's loopback),
 * asks GET /healthz and reads the first line of the answer. */
#ifndef BACKFILL_HEALTH_PROBE_H
#define BACKFILL_HEALTH_PROBE_H

#include <stddef.h>

/* 0 when the server at listen ("ADDR:PORT", as --metrics takes it) answers
 * /healthz with 200 within timeout_ms; 1 when it answers otherwise, with
 * its one-line reason in why ("HTTP 503: no partition assigned"); -1 when
 * it cannot be asked at all (bad address, nothing listening, timeout),
 * with the reason in why. Reads at most 4 KiB of the answer. */
int health_probe(const char *listen, int timeout_ms, char *why, size_t whylen);

/* What `PROGRAM --healthcheck` does: probes listen (NULL: no --metrics
 * address configured), prints one line on stderr when not healthy, and
 * returns the exit status: 0 healthy, 1 not healthy or not answering, 2
 * when there is nothing to ask (no --metrics / BACKFILL_METRICS_LISTEN). */
int health_probe_main(const char *program, const char *listen);

#endif
