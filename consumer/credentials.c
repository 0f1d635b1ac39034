/* credentials: see credentials.h. The main thread reads and counts; the
 * agent thread (cred_agent_main) talks to GitHub's REST API and re-reads
 * the token file, and publishes what it learned under the pool's mutex.
 * The agent never holds the mutex across a request. */
#include "credentials.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dynbuf.h"
#include "github_app.h"
#include "github_pace.h"
#include "github_rest.h"
#include "isotime.h"
#include "json_field.h"
#include "log.h"
#include "repo_name.h"
#include "worker_metrics.h"

#define CRED_TOKENS_MAX 64        /* personal tokens in a pool */
#define CRED_ACCOUNT_KEY_MAX 96
#define CRED_FILE_MAX (64 * 1024) /* a token file bigger than this is refused */
#define CRED_FILE_CHECK_S 2.0     /* how often the token file is looked at */
#define CRED_RETRY_S 5.0          /* after a REST call failed for a network reason */
#define CRED_IDENTIFY_RETRY_S 30.0 /* a token whose account is unknown: ask again after */
#define CRED_NO_INSTALLATION_S 60 /* how long "no installation covers owner" is believed */
#define CRED_TOKEN_MIN_LEFT 5     /* seconds an installation token must still live to be sent */
#define CRED_RENEW_MAX_S 600      /* renew an installation token 10 min (at most half its life)
                                   * before it expires, if it was used in that time before */
#define CRED_NO_CREDENTIAL_WAIT_S 15 /* a job without any valid credential looks again after */

enum cred_state { CRED_PENDING, CRED_VALID, CRED_REJECTED };

struct cred_account {
    char key[CRED_ACCOUNT_KEY_MAX]; /* "alice", "installation/42", "credential 2" */
    struct gh_budget budget;
    struct gh_pace pace;
};

struct cred_token { /* a personal token */
    char secret[CRED_TOKEN_MAX + 1];
    enum cred_state state;
    int account;     /* -1 until identified */
    int identified;  /* its account is its login (else "credential N", for now) */
    double retry_at; /* after a failed identification: when to ask again */
};

struct cred_installation {
    int64_t id;
    int account;
    char secret[CRED_TOKEN_MAX + 1]; /* "" until the first access token */
    time_t expires_at, issued_at;
    int stale;         /* refused by GitHub: renew before the next use */
    double retry_at;   /* after a failed renewal */
    double used_at;    /* last lease, to stop renewing tokens nobody uses */
};

struct cred_owner { /* which installation covers a repository owner */
    char owner[REPO_OWNER_MAX + 1];
    char repo[REPO_NAME_MAX + 1]; /* one repository of it, for the lookup */
    int installation;  /* index, -1 none, -2 lookup pending */
    double checked;    /* when "none" was learned (believed CRED_NO_INSTALLATION_S) */
    char why[512];     /* when none: the lookup's answer */
};

struct cred_pool {
    struct cred_conf conf;      /* strings borrowed from the caller */
    char rest[GH_REST_URL_MAX]; /* REST base URL */
    gh_app *app;                /* owned, NULL without an App */
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* the agent's: work for it, or quit */
    pthread_t agent;
    int agent_started, quit;

    /* guarded by mu */
    struct cred_token tokens[CRED_TOKENS_MAX];
    int ntokens;
    struct cred_account *accounts; /* owned; grows; indices stay valid */
    size_t naccounts, accounts_cap;
    struct cred_installation *insts; /* owned */
    size_t ninsts, insts_cap;
    struct cred_owner *owners;       /* owned */
    size_t nowners, owners_cap;
    char app_error[320];        /* the App's last refusal, "" when fine */
    double share;               /* the worker's share of the group's limits */
    int jobs;
    int usable;                 /* as cred_pool_usable last said */

    /* the agent's own (cred_pool_new's before the agent starts) */
    struct stat file_seen;
    int file_read;
    double file_checked;
    char fresh[CRED_TOKENS_MAX][CRED_TOKEN_MAX + 1]; /* tokens just read: secret, wiped */
};

/* ---- accounts -------------------------------------------------------- */

static int cred_reserve(const cred_pool *p)
{
    double group_in_flight;
    if (p->conf.reserve >= 0)
        return p->conf.reserve;
    /* everyone's requests in flight on one account, if all run --jobs like us */
    group_in_flight = p->share > 0 ? ceil(p->jobs / p->share) : p->jobs;
    if (p->conf.concurrency > 0 && group_in_flight > p->conf.concurrency)
        group_in_flight = p->conf.concurrency;
    return group_in_flight > 1 ? (int)group_in_flight - 1 : 0;
}

static void cred_account_share(const cred_pool *p, struct cred_account *a)
{
    gh_pace_share(&a->pace, p->conf.points_per_minute, p->conf.concurrency, p->share,
                  isotime_mono());
    a->budget.reserve = cred_reserve(p);
}

/* The account named key, created if new; -1 when memory runs out. */
static int cred_account_for(cred_pool *p, const char *key)
{
    struct cred_account *a;
    for (size_t i = 0; i < p->naccounts; i++)
        if (strcmp(p->accounts[i].key, key) == 0)
            return (int)i;
    if (dynbuf_grow_array(&p->accounts, &p->accounts_cap, p->naccounts + 1, sizeof *a))
        return -1;
    a = &p->accounts[p->naccounts];
    memset(a, 0, sizeof *a);
    snprintf(a->key, sizeof a->key, "%s", key);
    gh_budget_init(&a->budget, 0);
    gh_pace_init(&a->pace);
    cred_account_share(p, a);
    return (int)p->naccounts++;
}

/* ---- the token file ---------------------------------------------------- */

/* Splits text into tokens (one a line; blank lines and lines starting
 * with # are skipped). Returns the count, or -1 with a reason. */
static int cred_parse_tokens(char *text, char out[][CRED_TOKEN_MAX + 1], int max, char *err,
                             size_t errlen)
{
    int n = 0, line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        size_t len;
        line++;
        while (*l == ' ' || *l == '\t')
            l++;
        len = strlen(l);
        while (len && (l[len - 1] == '\r' || l[len - 1] == ' ' || l[len - 1] == '\t'))
            l[--len] = '\0';
        if (!len || l[0] == '#')
            continue;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)l[i] <= ' ' || (unsigned char)l[i] >= 0x7f) {
                snprintf(err, errlen, "line %d is not a token (a token is one word of printable "
                         "ASCII)", line);
                return -1;
            }
        if (len > CRED_TOKEN_MAX) {
            snprintf(err, errlen, "line %d is longer than a token can be (%d)", line,
                     CRED_TOKEN_MAX);
            return -1;
        }
        if (n == max) {
            snprintf(err, errlen, "more than %d tokens", max);
            return -1;
        }
        memcpy(out[n++], l, len + 1);
    }
    if (n == 0)
        snprintf(err, errlen, "no token in it");
    return n ? n : -1;
}

/* Reads the token file into out; -1 with a reason. */
static int cred_read_file(const char *path, char out[][CRED_TOKEN_MAX + 1], int max, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    size_t n;
    int rc;

    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    buf = malloc(CRED_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    n = fread(buf, 1, CRED_FILE_MAX + 1, f);
    fclose(f);
    if (n > CRED_FILE_MAX) {
        snprintf(err, errlen, "bigger than %d bytes", CRED_FILE_MAX);
        rc = -1;
    } else {
        buf[n] = '\0';
        rc = cred_parse_tokens(buf, out, max, err, errlen);
    }
    memset(buf, 0, n); /* n <= CRED_FILE_MAX + 1, the size of buf */
    free(buf);
    return rc;
}

/* Replaces the pool's personal tokens by fresh (keeping what is known of
 * those it had already). With mu held. */
static void cred_set_tokens(cred_pool *p, char fresh[][CRED_TOKEN_MAX + 1], int n)
{
    struct cred_token next[CRED_TOKENS_MAX];
    memset(next, 0, sizeof next);
    for (int i = 0; i < n; i++) {
        next[i].account = -1;
        snprintf(next[i].secret, sizeof next[i].secret, "%s", fresh[i]);
        for (int k = 0; k < p->ntokens; k++)
            if (strcmp(p->tokens[k].secret, fresh[i]) == 0) {
                next[i] = p->tokens[k];
                break;
            }
    }
    memcpy(p->tokens, next, sizeof next);
    memset(next, 0, sizeof next);
    p->ntokens = n;
}

/* The agent: re-reads the token file when it changed. */
static void cred_check_file(cred_pool *p)
{
    struct stat st;
    char err[160];
    int n;

    if (!p->conf.token_file || isotime_mono() - p->file_checked < CRED_FILE_CHECK_S)
        return;
    p->file_checked = isotime_mono();
    if (stat(p->conf.token_file, &st) != 0)
        return; /* being replaced, or gone: keep what we have */
    if (p->file_read && st.st_ino == p->file_seen.st_ino && st.st_size == p->file_seen.st_size &&
        st.st_mtim.tv_sec == p->file_seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == p->file_seen.st_mtim.tv_nsec)
        return;
    p->file_seen = st;
    p->file_read = 1;
    n = cred_read_file(p->conf.token_file, p->fresh, CRED_TOKENS_MAX, err, sizeof err);
    if (n < 0) {
        memset(p->fresh, 0, sizeof p->fresh);
        log_warn("token file %s: %s; keeping the tokens read before", p->conf.token_file, err);
        return;
    }
    pthread_mutex_lock(&p->mu);
    cred_set_tokens(p, p->fresh, n);
    pthread_mutex_unlock(&p->mu);
    memset(p->fresh, 0, sizeof p->fresh);
    log_info("read %d GitHub token%s from %s", n, n == 1 ? "" : "s", p->conf.token_file);
}

/* ---- what the agent asks GitHub ------------------------------------- */

static int cred_live_tokens(const cred_pool *p)
{
    int n = 0;
    for (int i = 0; i < p->ntokens; i++)
        n += p->tokens[i].state != CRED_REJECTED;
    return n;
}

/* With mu held: one line when a personal token is refused. */
static void cred_reject_token(cred_pool *p, int i, const char *why)
{
    int left;
    p->tokens[i].state = CRED_REJECTED;
    left = cred_live_tokens(p);
    log_error("GitHub rejected credential %d of %d: %s; taking it out of the pool (%d left%s)",
              i + 1, p->ntokens, why, left,
              p->conf.token_file ? ", fix or replace it in the token file" : "");
}

/* Identifies one pending personal token: GET /user. */
static int cred_identify_one(cred_pool *p)
{
    char secret[CRED_TOKEN_MAX + 1], auth[CRED_TOKEN_MAX + 16], key[CRED_ACCOUNT_KEY_MAX];
    struct gh_rest_answer a;
    const char *login;
    double now = isotime_mono();
    int i, found = -1, rc;

    pthread_mutex_lock(&p->mu);
    for (i = 0; i < p->ntokens && found < 0; i++)
        if (p->tokens[i].state != CRED_REJECTED && !p->tokens[i].identified &&
            p->tokens[i].retry_at <= now)
            found = i;
    if (found >= 0)
        memcpy(secret, p->tokens[found].secret, sizeof secret);
    pthread_mutex_unlock(&p->mu);
    if (found < 0)
        return 0;
    snprintf(auth, sizeof auth, "token %s", secret);
    rc = gh_rest_call(p->rest, "GET", "/user", auth, p->conf.connect_timeout_ms,
                      p->conf.http_timeout_ms, &a);
    memset(auth, 0, sizeof auth);
    login = rc == 0 ? jfield_str(a.body, "login", 80) : NULL;
    pthread_mutex_lock(&p->mu);
    /* the file may have been re-read meanwhile: find the token again */
    for (i = 0; i < p->ntokens && strcmp(p->tokens[i].secret, secret) != 0; i++)
        ;
    if (i < p->ntokens && p->tokens[i].state != CRED_REJECTED) {
        struct cred_token *t = &p->tokens[i];
        if (a.http_status == 401) {
            cred_reject_token(p, i, a.error);
        } else if (login) {
            t->account = cred_account_for(p, login);
            t->identified = t->account >= 0;
            t->state = t->account >= 0 ? CRED_VALID : t->state;
            log_info("GitHub credential %d of %d: account %s", i + 1, p->ntokens, login);
        } else {
            /* GET /user is not for it (403/404: an installation's token, an
             * Enterprise without the endpoint) or did not answer: serve
             * with it as an account of its own meanwhile, and ask again */
            snprintf(key, sizeof key, "credential %d", i + 1);
            if (t->state == CRED_PENDING && (t->account = cred_account_for(p, key)) >= 0)
                t->state = CRED_VALID;
            t->retry_at = isotime_mono() + CRED_IDENTIFY_RETRY_S;
            log_warn("cannot tell whose GitHub credential %d of %d is (GET /user: %s); counting "
                     "it as an account of its own, asking again in %.0f s", i + 1, p->ntokens,
                     a.error, CRED_IDENTIFY_RETRY_S);
        }
    }
    pthread_mutex_unlock(&p->mu);
    memset(secret, 0, sizeof secret);
    gh_rest_answer_clear(&a);
    return 1;
}

/* The installation with this id, created if new (-1: out of memory).
 * With mu held. */
static int cred_installation_for(cred_pool *p, int64_t id)
{
    struct cred_installation *in;
    char key[CRED_ACCOUNT_KEY_MAX];
    for (size_t i = 0; i < p->ninsts; i++)
        if (p->insts[i].id == id)
            return (int)i;
    if (dynbuf_grow_array(&p->insts, &p->insts_cap, p->ninsts + 1, sizeof *in))
        return -1;
    snprintf(key, sizeof key, "installation/%" PRId64, id);
    in = &p->insts[p->ninsts];
    memset(in, 0, sizeof *in);
    in->id = id;
    in->account = cred_account_for(p, key);
    if (in->account < 0)
        return -1;
    return (int)p->ninsts++;
}

/* Finds the installation of one owner whose lookup is pending. */
static int cred_lookup_one(cred_pool *p)
{
    char owner[REPO_OWNER_MAX + 1], repo[REPO_NAME_MAX + 1], path[256];
    char jwt[GH_APP_JWT_MAX], auth[GH_APP_JWT_MAX + 16];
    struct gh_rest_answer a;
    int64_t id = 0;
    int found = 0, rc;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nowners && !found; i++)
        if (p->owners[i].installation == -2) {
            memcpy(owner, p->owners[i].owner, sizeof owner);
            memcpy(repo, p->owners[i].repo, sizeof repo);
            found = 1;
        }
    pthread_mutex_unlock(&p->mu);
    if (!found)
        return 0;
    if (gh_app_jwt(p->app, time(NULL), jwt, sizeof jwt)) {
        memset(&a, 0, sizeof a);
        snprintf(a.error, sizeof a.error, "cannot sign the App's JWT");
        rc = -1;
    } else {
        snprintf(auth, sizeof auth, "Bearer %s", jwt);
        snprintf(path, sizeof path, "/repos/%s/%s/installation", owner, repo);
        rc = gh_rest_call(p->rest, "GET", path, auth, p->conf.connect_timeout_ms,
                          p->conf.http_timeout_ms, &a);
        memset(auth, 0, sizeof auth);
        memset(jwt, 0, sizeof jwt);
    }
    if (rc == 0 && jfield_int(a.body, "id", 1, INT64_MAX, &id) != JF_OK)
        snprintf(a.error, sizeof a.error, "an answer without an installation id");
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nowners; i++) {
        struct cred_owner *o = &p->owners[i];
        if (strcmp(o->owner, owner) != 0)
            continue;
        if (id > 0) {
            o->installation = cred_installation_for(p, id);
            log_info("GitHub App installation %" PRId64 " covers %s", id, owner);
        } else if (a.http_status == 404) {
            o->installation = -1;
            o->checked = isotime_mono();
            snprintf(o->why, sizeof o->why, "no installation of GitHub App %s covers %s "
                     "(GET /repos/%s/%s/installation: %.200s)", gh_app_id(p->app), owner, owner,
                     repo, a.error);
            log_warn("%s", o->why);
        } else {
            o->installation = -1;
            o->checked = isotime_mono() - CRED_NO_INSTALLATION_S + CRED_RETRY_S;
            snprintf(o->why, sizeof o->why, "cannot find the GitHub App installation for %s "
                     "(%.200s)", owner, a.error);
            snprintf(p->app_error, sizeof p->app_error, "%s", a.error);
            log_warn("%s; asking again in %.0f s", o->why, CRED_RETRY_S);
        }
    }
    pthread_mutex_unlock(&p->mu);
    gh_rest_answer_clear(&a);
    return 1;
}

/* 1 if installation token in should be (re)newed now. */
static int cred_needs_token(const struct cred_installation *in, time_t now, double mono)
{
    time_t life, margin;
    if (in->retry_at > mono)
        return 0;
    if (!in->secret[0] || in->stale)
        return 1;
    life = in->expires_at - in->issued_at;
    margin = life / 2 < CRED_RENEW_MAX_S ? life / 2 : CRED_RENEW_MAX_S;
    if (mono - in->used_at > margin)
        return 0; /* not used lately: renewed when it is wanted again */
    return in->expires_at - now <= margin;
}

/* Gets or renews one installation's access token. */
static int cred_renew_one(cred_pool *p)
{
    char path[128], jwt[GH_APP_JWT_MAX], auth[GH_APP_JWT_MAX + 16];
    struct gh_rest_answer a;
    const char *tok = NULL, *exp = NULL;
    time_t now = time(NULL), expires = 0;
    double mono = isotime_mono();
    int64_t id = 0;
    int rc;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->ninsts && !id; i++)
        if (cred_needs_token(&p->insts[i], now, mono))
            id = p->insts[i].id;
    pthread_mutex_unlock(&p->mu);
    if (!id)
        return 0;
    memset(&a, 0, sizeof a);
    rc = gh_app_jwt(p->app, now, jwt, sizeof jwt);
    if (rc == 0) {
        snprintf(auth, sizeof auth, "Bearer %s", jwt);
        snprintf(path, sizeof path, "/app/installations/%" PRId64 "/access_tokens", id);
        rc = gh_rest_call(p->rest, "POST", path, auth, p->conf.connect_timeout_ms,
                          p->conf.http_timeout_ms, &a);
        memset(auth, 0, sizeof auth);
        memset(jwt, 0, sizeof jwt);
    } else {
        snprintf(a.error, sizeof a.error, "cannot sign the App's JWT");
    }
    if (rc == 0) {
        tok = jfield_str(a.body, "token", CRED_TOKEN_MAX);
        exp = jfield_str(a.body, "expires_at", 40);
        if (!tok || !exp || isotime_parse(exp, &expires) != 0 || expires <= now) {
            tok = NULL;
            snprintf(a.error, sizeof a.error, "an access token answer without a usable token "
                     "or expires_at");
        }
    }
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->ninsts; i++) {
        struct cred_installation *in = &p->insts[i];
        if (in->id != id)
            continue;
        if (tok) {
            snprintf(in->secret, sizeof in->secret, "%s", tok);
            in->issued_at = now;
            in->expires_at = expires;
            in->stale = 0;
            p->app_error[0] = '\0';
            log_info("GitHub App installation %" PRId64 ": new access token, valid for %lld s",
                     id, (long long)(expires - now));
        } else {
            in->retry_at = isotime_mono() + CRED_RETRY_S;
            snprintf(p->app_error, sizeof p->app_error, "%s", a.error);
            log_error("GitHub App installation %" PRId64 ": no access token (%s); asking again "
                      "in %.0f s", id, a.error, CRED_RETRY_S);
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (a.body) /* the token's text is inside it */
        json_object_clear(a.body);
    gh_rest_answer_clear(&a);
    return 1;
}

static void *cred_agent_main(void *arg)
{
    cred_pool *p = arg;
    for (;;) {
        struct timespec until;
        int worked;

        pthread_mutex_lock(&p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
        cred_check_file(p);
        worked = cred_identify_one(p);
        if (p->app)
            worked |= cred_lookup_one(p) | cred_renew_one(p);
        if (worked)
            continue;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->mu);
        if (!p->quit)
            pthread_cond_timedwait(&p->wake, &p->mu, &until);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* ---- the pool ---------------------------------------------------------- */

cred_pool *cred_pool_new(const struct cred_conf *conf, char *errstr, size_t errlen)
{
    cred_pool *p;
    char err[200];
    int n = 0;

    if (!conf->token_file && !(conf->token && conf->token[0]) && !conf->app_id) {
        snprintf(errstr, errlen, "no GitHub credential: set GITHUB_TOKEN, GITHUB_TOKEN_FILE (one "
                 "token a line) or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY_FILE");
        return NULL;
    }
    if (conf->app_id && !conf->app_key_file) {
        snprintf(errstr, errlen, "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY_FILE is not");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    p->conf = *conf;
    p->share = 1;
    p->jobs = 1;
    p->usable = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (conf->rest_url)
        snprintf(p->rest, sizeof p->rest, "%s", conf->rest_url);
    else if (gh_rest_base_for(conf->graphql_url, p->rest, sizeof p->rest)) {
        snprintf(errstr, errlen, "cannot tell GitHub's REST URL from %s (it does not end in "
                 "/graphql): set GITHUB_API_URL", conf->graphql_url);
        goto fail;
    }
    if (conf->app_id && !(p->app = gh_app_new(conf->app_id, conf->app_key_file, errstr, errlen)))
        goto fail;
    if (conf->token_file) {
        n = cred_read_file(conf->token_file, p->fresh, CRED_TOKENS_MAX, err, sizeof err);
        if (n < 0) {
            memset(p->fresh, 0, sizeof p->fresh);
            snprintf(errstr, errlen, "token file %s: %s", conf->token_file, err);
            goto fail;
        }
        stat(conf->token_file, &p->file_seen);
        p->file_read = 1;
        p->file_checked = isotime_mono();
    } else if (conf->token && conf->token[0]) {
        if (strlen(conf->token) > CRED_TOKEN_MAX || strpbrk(conf->token, " \t\r\n")) {
            snprintf(errstr, errlen, "GITHUB_TOKEN is not a token (one word, at most %d "
                     "characters)", CRED_TOKEN_MAX);
            goto fail;
        }
        snprintf(p->fresh[0], sizeof p->fresh[0], "%s", conf->token);
        n = 1;
    }
    cred_set_tokens(p, p->fresh, n);
    memset(p->fresh, 0, sizeof p->fresh);
    if (pthread_create(&p->agent, NULL, cred_agent_main, p) != 0) {
        snprintf(errstr, errlen, "cannot start the credentials thread");
        goto fail;
    }
    p->agent_started = 1;
    log_info("GitHub credentials: %d personal token%s%s%s%s", n, n == 1 ? "" : "s",
             p->app ? ", GitHub App " : "", p->app ? gh_app_id(p->app) : "",
             p->app ? " (installations found per repository owner)" : "");
    return p;
fail:
    cred_pool_free(p);
    return NULL;
}

void cred_pool_free(cred_pool *p)
{
    if (!p)
        return;
    if (p->agent_started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->agent, NULL);
    }
    memset(p->tokens, 0, sizeof p->tokens);
    for (size_t i = 0; i < p->ninsts; i++)
        memset(p->insts[i].secret, 0, sizeof p->insts[i].secret);
    free(p->accounts);
    free(p->insts);
    free(p->owners);
    gh_app_free(p->app);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p);
}

void cred_pool_set_share(cred_pool *p, double share, int jobs)
{
    pthread_mutex_lock(&p->mu);
    p->share = share;
    p->jobs = jobs > 0 ? jobs : 1;
    for (size_t i = 0; i < p->naccounts; i++)
        cred_account_share(p, &p->accounts[i]);
    pthread_mutex_unlock(&p->mu);
}

/* With mu held: 1 while some credential is or may become usable. */
int cred_pool_usable(cred_pool *p)
{
    int valid = 0, pending = 0, u;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->ntokens; i++) {
        valid += p->tokens[i].state == CRED_VALID;
        pending += p->tokens[i].state == CRED_PENDING;
    }
    /* an App's failures are retried; tokens being checked change nothing yet */
    u = valid || p->app ? 1 : pending ? p->usable : 0;
    if (!u && p->usable)
        log_error("no valid GitHub credential left: taking no new jobs; the running ones wait%s",
                  p->conf.token_file ? " until a valid token is written to the token file"
                                     : " (restart with a valid token)");
    if (u && !p->usable)
        log_info("a valid GitHub credential is back: taking jobs again");
    p->usable = u;
    pthread_mutex_unlock(&p->mu);
    return u;
}

/* With mu held: the owner's entry, created (lookup pending) if new; NULL
 * when memory runs out. */
static struct cred_owner *cred_owner_for(cred_pool *p, const char *owner, const char *name)
{
    struct cred_owner *o;
    for (size_t i = 0; i < p->nowners; i++)
        if (strcasecmp(p->owners[i].owner, owner) == 0)
            return &p->owners[i];
    if (dynbuf_grow_array(&p->owners, &p->owners_cap, p->nowners + 1, sizeof *o))
        return NULL;
    o = &p->owners[p->nowners++];
    memset(o, 0, sizeof *o);
    snprintf(o->owner, sizeof o->owner, "%s", owner);
    snprintf(o->repo, sizeof o->repo, "%s", name);
    o->installation = -2;
    pthread_cond_broadcast(&p->wake);
    return o;
}

/* A candidate's budget: the points left as last seen, unknown counting as
 * more than any known (ask it, and learn). */
static long cred_left(const struct cred_account *a)
{
    return a->budget.remaining < 0 ? 1L << 40 : a->budget.remaining;
}

struct cred_pick {
    int account, installation, token; /* the best ready candidate so far */
    int seen[CRED_TOKENS_MAX + 1];    /* accounts weighed already (tokens share them) */
    int nseen;
    double pace_wait;                 /* shortest pace wait among the others */
    time_t reset;                     /* earliest primary reset among the spent */
    int candidates, spent, pending;
};

/* Weighs one candidate (with mu held). */
static void cred_consider(cred_pool *p, struct cred_pick *k, int account, int inst, int token,
                          time_t now, double mono)
{
    struct cred_account *a = &p->accounts[account];
    time_t until;
    double w;

    for (int i = 0; i < k->nseen; i++)
        if (k->seen[i] == account)
            return; /* another token of the same account: same budget, same pace */
    if (k->nseen < (int)(sizeof k->seen / sizeof k->seen[0]))
        k->seen[k->nseen++] = account;
    until = gh_budget_wait_until(&a->budget, now);
    k->candidates++;
    if (until) {
        k->spent++;
        if (!k->reset || until < k->reset)
            k->reset = until;
        return;
    }
    w = gh_pace_wait(&a->pace, GH_PACE_QUERY_POINTS, mono);
    if (w > 0) {
        if (k->pace_wait <= 0 || w < k->pace_wait)
            k->pace_wait = w;
        return;
    }
    if (k->account < 0 || cred_left(a) > cred_left(&p->accounts[k->account])) {
        k->account = account;
        k->installation = inst;
        k->token = token;
    }
}

/* The installation that covers owner, as a candidate (with mu held). */
static void cred_consider_app(cred_pool *p, struct cred_pick *k, const char *owner,
                              const char *name, time_t now, double mono, const char **why)
{
    struct cred_owner *o = cred_owner_for(p, owner, name);
    struct cred_installation *in;

    if (!o)
        return;
    if (o->installation == -1 && mono - o->checked > CRED_NO_INSTALLATION_S) {
        o->installation = -2; /* look again: the App may have been installed since */
        pthread_cond_broadcast(&p->wake);
    }
    if (o->installation == -2) {
        k->pending++;
        return;
    }
    if (o->installation < 0) {
        *why = o->why;
        return;
    }
    in = &p->insts[o->installation];
    in->used_at = mono;
    if (!in->secret[0] || in->stale || in->expires_at - now < CRED_TOKEN_MIN_LEFT) {
        k->pending++;
        pthread_cond_broadcast(&p->wake);
        return;
    }
    cred_consider(p, k, in->account, o->installation, -1, now, mono);
}

enum cred_verdict cred_pool_acquire(cred_pool *p, const char *owner, const char *name,
                                    time_t now, struct cred_lease *lease, double *later_s,
                                    struct gh_decision *d)
{
    struct cred_pick k = {.account = -1, .installation = -1, .token = -1};
    double mono = isotime_mono();
    const char *app_why = NULL;
    enum cred_verdict v;

    memset(d, 0, sizeof *d);
    memset(lease, 0, sizeof *lease);
    *later_s = 0;
    pthread_mutex_lock(&p->mu);
    if (p->app)
        cred_consider_app(p, &k, owner, name, now, mono, &app_why);
    for (int i = 0; i < p->ntokens; i++) {
        if (p->tokens[i].state == CRED_PENDING)
            k.pending++;
        else if (p->tokens[i].state == CRED_VALID)
            cred_consider(p, &k, p->tokens[i].account, -1, i, now, mono);
    }
    if (k.account >= 0) {
        struct cred_account *a = &p->accounts[k.account];
        const char *secret = k.installation >= 0 ? p->insts[k.installation].secret
                                                 : p->tokens[k.token].secret;
        lease->account = k.account;
        lease->installation = k.installation;
        snprintf(lease->token, sizeof lease->token, "%s", secret);
        gh_budget_spend(&a->budget);
        gh_pace_take(&a->pace, GH_PACE_QUERY_POINTS, mono);
        v = CRED_GO;
    } else if (k.pace_wait > 0 || k.pending) {
        *later_s = k.pace_wait > 0 && (!k.pending || k.pace_wait < 0.1) ? k.pace_wait : 0.1;
        v = k.pending ? CRED_READYING : CRED_LATER;
    } else if (k.spent) {
        d->verdict = GH_WAIT_RESET;
        d->until = k.reset;
        snprintf(d->reason, sizeof d->reason, "primary rate limit: the budget%s of all %d "
                 "account%s that can see %s/%s %s spent (keeping %d points in reserve for the "
                 "requests in flight)", k.spent > 1 ? "s" : "", k.spent,
                 k.spent > 1 ? "s" : "", owner, name, k.spent > 1 ? "are" : "is",
                 cred_reserve(p));
        v = CRED_WAIT;
    } else if (app_why && p->ntokens == 0) {
        d->verdict = GH_FAIL;
        snprintf(d->reason, sizeof d->reason, "%.480s, and no personal token is configured",
                 app_why);
        v = CRED_UNCOVERED;
    } else {
        d->verdict = GH_WAIT_RESET;
        d->until = now + CRED_NO_CREDENTIAL_WAIT_S;
        snprintf(d->reason, sizeof d->reason, "no valid GitHub credential can see %s/%s (%d of "
                 "%d tokens rejected%s%s)", owner, name, p->ntokens - cred_live_tokens(p),
                 p->ntokens, app_why ? "; " : p->app_error[0] ? "; App: " : "",
                 app_why ? app_why : p->app_error);
        v = CRED_NONE;
    }
    pthread_mutex_unlock(&p->mu);
    return v;
}

int cred_pool_release(cred_pool *p, struct cred_lease *lease, const struct gh_page *page,
                      time_t now, struct gh_budget *budget, char *why, size_t whylen)
{
    struct cred_account *a;
    int refused = page->status == GH_UNAUTHORIZED;

    pthread_mutex_lock(&p->mu);
    a = &p->accounts[lease->account];
    gh_pace_done(&a->pace);
    if (refused && lease->installation >= 0) {
        struct cred_installation *in = &p->insts[lease->installation];
        if (strcmp(in->secret, lease->token) == 0 && !in->stale) {
            in->stale = 1;
            pthread_cond_broadcast(&p->wake);
        }
        snprintf(why, whylen, "GitHub refused the access token of App installation %" PRId64
                 " (%s); renewing it and sending the request again", in->id, page->error);
    } else if (refused) {
        int i;
        for (i = 0; i < p->ntokens && strcmp(p->tokens[i].secret, lease->token) != 0; i++)
            ;
        if (i < p->ntokens && p->tokens[i].state == CRED_VALID)
            cred_reject_token(p, i, page->error);
        snprintf(why, whylen, "credential %d of %d was refused; sending the request again on "
                 "another", i + 1, p->ntokens);
    } else {
        gh_budget_note(&a->budget, page);
        if (page->status == GH_RATE_LIMITED)
            gh_budget_exhausted(&a->budget, page->reset_at, now);
        if (page->remaining >= 0 || page->status == GH_RATE_LIMITED)
            wm_budget(a->key, a->budget.remaining, a->budget.reset_at); /* as GitHub said */
    }
    *budget = a->budget;
    pthread_mutex_unlock(&p->mu);
    memset(lease->token, 0, sizeof lease->token);
    return refused;
}

int cred_pool_remaining(cred_pool *p)
{
    int best = -1;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->naccounts; i++)
        if (p->accounts[i].budget.remaining > best)
            best = p->accounts[i].budget.remaining;
    pthread_mutex_unlock(&p->mu);
    return best;
}
