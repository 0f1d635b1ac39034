/* github: a small GitHub GraphQL client for one query — a page of a
 * repository's pull requests, newest first — and the parser of its answer.
 *
 * It knows nothing of Kafka: it takes owner/name/page size/cursor and
 * returns converted pull-request records (the `pullRequest` shape of
 * schemas/pull_requests.schema.json) plus what GitHub said about cost and
 * limits. It classifies every failure so the caller can apply GitHub's
 * policy (wait for reset, back off, shrink the page, give up). The token
 * is sent only in the Authorization header and never copied into an error
 * message. */
#ifndef BACKFILL_GITHUB_H
#define BACKFILL_GITHUB_H

#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GH_DEFAULT_URL "https://api.github.com/graphql"
#define GH_PAGE_MAX 100              /* GitHub's maximum `first` */
#define GH_BODY_MAX (64u << 20)      /* hard cap on a response body */
#define GH_CURSOR_MAX 1024
#define GH_TOKEN_MAX 1024           /* longest token sent (an installation token is ~40) */

enum gh_status {
    GH_OK = 0,
    GH_NOT_FOUND,       /* terminal: repository unknown (or invisible to the token) */
    GH_FORBIDDEN,       /* terminal: FORBIDDEN on the repository */
    GH_UNAUTHORIZED,    /* terminal: bad or missing token (HTTP 401) */
    GH_RATE_LIMITED,    /* primary budget exhausted: wait until reset_at */
    GH_SECONDARY_LIMIT, /* 403/429 secondary limit: wait retry_after, then back off */
    GH_SERVER_ERROR,    /* 502/504/"Something went wrong": retry with a smaller page */
    GH_TRANSIENT,       /* network error, timeout, truncated or non-JSON body: retry */
    GH_INVALID,         /* GitHub rejected the query (bad cursor, limits): terminal */
};

struct gh_page {
    enum gh_status status;
    long http_status;
    json_t *records;   /* owned: array of PR records, newest first (never NULL when GH_OK) */
    bool has_next;
    char end_cursor[GH_CURSOR_MAX + 1];
    int64_t repository_id; /* GitHub databaseId of the repository, 0 if unknown */
    int cost;              /* points charged for this query, -1 unknown */
    int remaining;         /* points left in the window, -1 unknown */
    time_t reset_at;       /* when the window resets, 0 unknown */
    int retry_after;       /* seconds from a retry-after header, -1 none */
    char error[512];       /* readable reason when status != GH_OK */
};

typedef struct gh_client gh_client;

/* Creates a client for the GraphQL endpoint url (borrowed, copied).
 * Timeouts in milliseconds: connect and total per request. The token goes
 * with each request (gh_fetch_page), so one client serves any credential.
 * Returns NULL with a reason in errstr on failure. */
gh_client *gh_new(const char *url, long connect_timeout_ms, long total_timeout_ms, char *errstr,
                  size_t errlen);
void gh_free(gh_client *gh);

/* Lets a signal handler cancel the request in flight: while *flag is
 * nonzero, gh_fetch_page gives up within about a second and returns
 * GH_TRANSIENT ("request cancelled"). flag is borrowed and read from the
 * thread that fetches (hence atomic, which a signal handler may set since
 * it is lock-free); NULL (the
 * default) means requests end only by completing or timing out. */
void gh_set_cancel_flag(gh_client *gh, const atomic_int *flag);

/* The GraphQL document every request sends (static storage). */
const char *gh_query_document(void);

/* Fetches one page with token (borrowed; NULL or "" for no Authorization
 * header, longer than GH_TOKEN_MAX fails): `first` (1..100) pull requests
 * of owner/name after `after` (NULL or "" = from the newest). Always fills *page (call
 * gh_page_clear afterwards); returns page->status. Blocking, bounded by
 * the client's connect and total timeouts (a hung server is a
 * GH_TRANSIENT timeout, never a hang). One request at a time per client. */
enum gh_status gh_fetch_page(gh_client *gh, const char *token, const char *owner,
                             const char *name, int first, const char *after, struct gh_page *page);

/* Parses a response: HTTP status, body, and the values of the headers
 * x-ratelimit-remaining, x-ratelimit-reset and retry-after (each NULL when
 * absent). Fills *page and returns its status. Exposed for tests and
 * fuzzing; never crashes on any input. */
enum gh_status gh_parse_response(long http_status, const char *body, size_t len,
                                 const char *h_remaining, const char *h_reset,
                                 const char *h_retry_after, struct gh_page *page);

/* Releases what a page owns and zeroes it. */
void gh_page_clear(struct gh_page *page);

/* A short name for a status ("ok", "not_found", …). */
const char *gh_status_name(enum gh_status st);

#endif
