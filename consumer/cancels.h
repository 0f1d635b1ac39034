/* cancels: which backfills were cancelled. Reads the control topic
 * (repository/backfill.cancel events, keyed by repository) from the
 * beginning without joining a group or committing, and remembers the
 * latest cancel time per repository. A job queued before that time is
 * stopped at its next chunk boundary (or before it starts); a job queued
 * after it — a re-run — is not affected. */
#ifndef BACKFILL_CANCELS_H
#define BACKFILL_CANCELS_H

#include <stdint.h>

#include "cli.h"

typedef struct cancels cancels;

/* Starts following the control topic and reads what it already holds
 * (bounded by timeout_ms). NULL with a reason on failure. */
cancels *cancels_new(const struct cli_common *c, int timeout_ms, char *errstr, size_t errlen);
void cancels_free(cancels *cs);

/* Reads whatever arrived, without blocking. */
void cancels_poll(cancels *cs);

/* 1 if the repository (lower-cased key) was cancelled at or after
 * queued_ms; NULL cs is never cancelled. */
int cancels_hit(const cancels *cs, const char *key, int64_t queued_ms);

#endif
