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

/* Has wake(ctx) called on the fetcher's thread each time a request
 * ends, so a loop waiting for something else can look at once (it must
 * be safe to call from any thread, e.g. rd_kafka_queue_yield). */
void fetcher_set_wake(fetcher *f, void (*wake)(void *ctx), void *ctx);

/* isotime_mono() when the last request ended (0 before the first). */
double fetcher_answered_at(const fetcher *f);

/* 1 when a request has ended and waits to be collected. */
int fetcher_done(const fetcher *f);

/* 1 while a request is started and not yet collected. */
int fetcher_busy(const fetcher *f);

/* If the request has ended, moves its page into *page (caller clears it)
 * and returns 1; returns 0 while it runs (page untouched). With wait set,
 * blocks until it ends (bounded by the client's timeouts). */
int fetcher_collect(fetcher *f, struct gh_page *page, int wait);

#endif
