/* credentials: the worker's GitHub credentials — personal tokens (one, or
 * one a line in a file that is re-read when it changes) and a GitHub
 * App's installations — grouped by the account whose budget they spend,
 * and the choice of which one each request goes out on.
 *
 * Accounts. GitHub counts the primary budget (5,000 points an hour) and
 * the secondary limits (2,000 points a minute, 100 requests in flight)
 * per account, not per token: two tokens of one person share one budget.
 * A personal token's account is its login (GET /user, asked once per
 * token); each App installation is an account of its own. Each account
 * has one primary budget (github_policy.h) and one pace (github_pace.h).
 *
 * Choosing. A request for owner/name goes out on a credential that can
 * see it — the installation that covers the owner (GET /repos/{owner}/
 * {repo}/installation, remembered per owner) and every personal token —
 * whose account's budget covers it and whose pace lets it go now, taking
 * the one with the most budget left. A job may move between credentials
 * from one page to the next.
 *
 * Refusals. A personal token GitHub answers 401 is taken out of the pool
 * with one log line ("GitHub rejected credential 2 of 3: Bad
 * credentials"); the request is sent again on another. An installation
 * token answered 401 is renewed. With no usable credential left the pool
 * says so (cred_pool_usable) and the worker stops taking jobs while the
 * running ones wait; a token file is re-read every two seconds, and a new
 * valid token brings the pool back.
 *
 * Threads. An agent thread does every REST call (identifying tokens,
 * finding installations, getting and renewing installation tokens, which
 * it renews before they expire: when less than half their lifetime, or
 * ten minutes, is left) and re-reads the token file; the worker's main
 * thread calls everything else. A mutex guards what they share. No
 * token, key or JWT is ever logged or returned in a message. */
#ifndef BACKFILL_CREDENTIALS_H
#define BACKFILL_CREDENTIALS_H

#include <time.h>

#include "github.h"
#include "github_policy.h"

typedef struct cred_pool cred_pool;

struct cred_conf {
    const char *graphql_url;   /* borrowed */
    const char *rest_url;      /* borrowed; NULL = derived from graphql_url */
    const char *token_file;    /* borrowed; NULL = none: tokens one a line */
    const char *token;         /* borrowed; NULL = none: GITHUB_TOKEN, used without a file */
    const char *app_id;        /* borrowed; NULL = no App */
    const char *app_key_file;  /* borrowed: the App's PEM private key */
    long connect_timeout_ms, http_timeout_ms;
    int reserve;               /* primary budget reserve; -1 = from the group's concurrency */
    int points_per_minute;     /* the group's secondary limits per account, 0 = off */
    int concurrency;
};

/* Reads the credentials and starts the agent thread. NULL with a reason
 * when none is configured, the token file cannot be read, or the App's
 * key is unusable. */
cred_pool *cred_pool_new(const struct cred_conf *conf, char *errstr, size_t errlen);
void cred_pool_free(cred_pool *p);

/* The worker's share of the group's limits (its partitions of the jobs
 * topic, 0..1) and its --jobs, after every rebalance. */
void cred_pool_set_share(cred_pool *p, double share, int jobs);

/* 0 when every credential has been rejected (take no new jobs), else 1;
 * while tokens just read are being checked, what it said before. Logs
 * each change once. */
int cred_pool_usable(cred_pool *p);

#define CRED_TOKEN_MAX 255

/* What a request goes out with. */
struct cred_lease {
    int account;                     /* whose budget and pace it counts against */
    int installation;                /* index of the installation, -1 for a personal token */
    char token[CRED_TOKEN_MAX + 1];  /* secret: wipe after use (cred_pool_release does) */
};

enum cred_verdict {
    CRED_GO,            /* *lease is filled: send */
    CRED_LATER,         /* the shared pace: look again after *later_s */
    CRED_READYING,      /* a credential is being identified, looked up or renewed:
                         * look again after *later_s */
    CRED_WAIT,          /* every budget that can see it is spent: *d says until when, why */
    CRED_NONE,          /* no valid credential at all: *d says why and when to look again
                         * (sooner if one comes back: cred_pool_usable) */
    CRED_UNCOVERED,     /* nothing can see the repository: *d says why (the job fails) */
};

/* Picks the credential for the next request of owner/name (see above).
 * On CRED_GO the request is counted against its account. */
enum cred_verdict cred_pool_acquire(cred_pool *p, const char *owner, const char *name,
                                    time_t now, struct cred_lease *lease, double *later_s,
                                    struct gh_decision *d);

/* Notes GitHub's answer to a leased request (budget, refusals) and wipes
 * the lease. Returns 1 when the answer was a refusal of the credential
 * (401): the request should go again at once on another, and why says
 * what happened; 0 otherwise. *budget gets a copy of the account's budget
 * as it stands after the answer, for the policy's decision. */
int cred_pool_release(cred_pool *p, struct cred_lease *lease, const struct gh_page *page,
                      time_t now, struct gh_budget *budget, char *why, size_t whylen);

/* Primary budget points left on the account the worker last heard about
 * with the most left (-1 unknown), for progress events. */
int cred_pool_remaining(cred_pool *p);

#endif
