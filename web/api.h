/* api: backfill-web's routes — the bulk-add page and its assets, the JSON
 * API, the event stream and the health check — independent of how HTTP
 * is spoken (http.c does that). Contract: web/API.md and the README. */
#ifndef BACKFILL_WEB_API_H
#define BACKFILL_WEB_API_H

#include <stddef.h>

#include "events.h"
#include "job_queue.h"
#include "store.h"

struct web_app {
    const struct cli_common *common; /* borrowed */
    job_queue *jq;                   /* borrowed */
    store *db;                       /* borrowed */
    event_hub *hub;                  /* borrowed */
    const char *token;               /* borrowed: BACKFILL_WEB_TOKEN, NULL: none */
    rd_kafka_t *lag_client;          /* borrowed: asks the groups' lag (glag_client_new) */
};

/* What a request says, read through http.c. */
struct web_request {
    const char *method;
    const char *path;                               /* decoded, without the query */
    const char *body;                               /* NUL-terminated; "" when none */
    size_t body_len;
    const char *(*header)(void *conn, const char *name); /* NULL when absent */
    const char *(*query)(void *conn, const char *name);
    void *conn;
};

/* What to answer: a body, or an event stream. */
struct web_reply {
    int status;
    char *body;           /* owned (malloc'd), or NULL with static_body */
    const char *static_body;
    size_t len;
    const char *type;     /* Content-Type */
    const char *allow;    /* Allow, for a 405 */
    int cacheable;        /* the page's assets: revalidate; everything else: no-store */
    event_stream *stream; /* owned until handed to the HTTP layer */
};

/* Largest request body accepted (413 beyond). */
#define API_BODY_MAX (1024 * 1024)
/* Most repositories in one bulk add (422 beyond). */
#define API_REPOS_MAX 1000

void api_handle(const struct web_app *app, const struct web_request *rq, struct web_reply *rp);

/* Whether the web is ready, as GET /healthz decides: Kafka answers
 * metadata and the event follower reads (else its reason in kerr), and
 * Postgres has the tables (else its reason in perr). Returns 0 when ready,
 * else bit 1 for Kafka and bit 2 for Postgres. Blocks up to 3 s. */
int api_ready(const struct web_app *app, char *kerr, size_t klen, char *perr, size_t plen);

/* Fills rp with {"error": msg} and status. */
void api_error(struct web_reply *rp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
