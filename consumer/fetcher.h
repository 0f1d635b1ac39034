/* fetcher: one GitHub request at a time, run on its own thread, so a
 * worker can have several jobs waiting on GitHub at once while its main
 * thread keeps polling Kafka, publishing and committing.
 *
 * A fetcher owns a gh_client (its own connection, kept alive) and one
 * thread. The main thread starts a request and later collects the page;
 * the thread touches nothing but the client and the page being filled. */
#ifndef BACKFILL_FETCHER_H
#define BACKFILL_FETCHER_H

#include "github.h"

typedef struct fetcher fetcher;

/* Takes ownership of gh (freed with the fetcher, or on failure). NULL with
 * a reason when the thread cannot be started. */
fetcher *fetcher_new(gh_client *gh, char *errstr, size_t errlen);

/* Waits for a request in flight to end, stops the thread, frees all.
 * NULL is a no-op. */
void fetcher_free(fetcher *f);

/* Starts fetching a page with token (arguments copied; the token is wiped
 * once the request is done). Returns 0, or -1 if a request is already in
 * flight or not collected yet, or the token is over GH_TOKEN_MAX. */
int fetcher_start(fetcher *f, const char *token, const char *owner, const char *name, int first,
                  const char *after);

/* 1 while a request is started and not yet collected. */
int fetcher_busy(const fetcher *f);

/* If the request has ended, moves its page into *page (caller clears it)
 * and returns 1; returns 0 while it runs (page untouched). With wait set,
 * blocks until it ends (bounded by the client's timeouts). */
int fetcher_collect(fetcher *f, struct gh_page *page, int wait);

#endif
