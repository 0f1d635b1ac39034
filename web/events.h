/* events: the progress stream for browsers. One thread follows the
 * progress topic as an observer (tfollow: no group, no commits) and keeps
 * the last `capacity` progress updates in a ring, each numbered; every
 * open event stream (Server-Sent Events) reads the ring from its own
 * position. Memory stays bounded: a stream that falls behind the ring is
 * ended (its browser reconnects and reloads state), and at most
 * max_streams are open at once.
 *
 * Event ids are "<start>-<n>": n counts events since this server started
 * at <start>, so a browser that reconnects with Last-Event-ID resumes
 * right after its last event, and one whose id is from another run or
 * already overwritten gets a `reset` event (reload the state) instead of
 * a silent gap. */
#ifndef BACKFILL_WEB_EVENTS_H
#define BACKFILL_WEB_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

typedef struct event_hub event_hub;
typedef struct event_stream event_stream;

/* Starts following the progress topic of c. NULL with a reason. */
event_hub *hub_new(const struct cli_common *c, size_t capacity, int max_streams, char *errstr,
                   size_t errlen);

/* Ends every stream and stops the follower. */
void hub_free(event_hub *h);

/* Adds one progress update (the data object of a progress event, as
 * compact JSON) for the repository with lower-cased key. */
void hub_publish(event_hub *h, const char *key, const char *data_json);

/* 0 while the follower reads; -1 with a reason when it stopped. */
int hub_health(event_hub *h, char *errstr, size_t errlen);

/* Opens a stream of the events after last_event_id (NULL: those of the
 * last 10 s, then everything new) for one repository key (NULL: all).
 * NULL when max_streams are open. */
event_stream *hub_open(event_hub *h, const char *key, const char *last_event_id);

/* libmicrohttpd content reader: blocks until there is something to send
 * (an event, or a keep-alive comment every 15 s). Returns bytes written
 * to buf, or -1 (MHD_CONTENT_READER_END_OF_STREAM) to end the stream. */
ssize_t hub_read(void *stream, uint64_t pos, char *buf, size_t max);

/* libmicrohttpd's free callback for a stream. */
void hub_close(void *stream);

/* Wakes every stream so that it ends (before stopping the HTTP server). */
void hub_shutdown(event_hub *h);

#endif
