/* fetcher: see fetcher.h. A mutex and a condition variable hand one
 * request to the thread and one page back. The thread also counts each
 * answer and its latency (worker_metrics: atomics, any thread). */
#include "fetcher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"
#include "repo_name.h"
#include "worker_metrics.h"

enum fetcher_state { FETCHER_IDLE, FETCHER_QUEUED, FETCHER_RUNNING, FETCHER_DONE, FETCHER_QUIT };

struct fetcher {
    gh_client *gh; /* owned */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum fetcher_state state; /* guarded by mu */
    char owner[REPO_OWNER_MAX + 1];
    char name[REPO_NAME_MAX + 1];
    char after[GH_CURSOR_MAX + 1];
    char token[GH_TOKEN_MAX + 1]; /* the request's credential; wiped once sent */
    int first;
    struct gh_page page; /* filled by the thread, owned until collected */
    double answered_at;  /* isotime_mono() when the last request ended; guarded by mu */
    void (*wake)(void *ctx); /* called (from the thread) when a request ends */
    void *wake_ctx;
};

static void *fetcher_main(void *arg)
{
    fetcher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->state != FETCHER_QUEUED && f->state != FETCHER_QUIT)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->state == FETCHER_QUIT)
            break;
        f->state = FETCHER_RUNNING;
        pthread_mutex_unlock(&f->mu);
        double t0 = isotime_mono();
        gh_fetch_page(f->gh, f->token, f->owner, f->name, f->first, f->after, &f->page);
        double t1 = isotime_mono();
        wm_github_answer(&f->page, t1 - t0);
        pthread_mutex_lock(&f->mu);
        memset(f->token, 0, sizeof f->token);
        f->answered_at = t1;
        f->state = FETCHER_DONE;
        pthread_cond_broadcast(&f->cv);
        if (f->wake)
            f->wake(f->wake_ctx);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

fetcher *fetcher_new(gh_client *gh, char *errstr, size_t errlen)
{
    fetcher *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(errstr, errlen, "out of memory");
        gh_free(gh);
        return NULL;
    }
    f->gh = gh;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
        snprintf(errstr, errlen, "cannot start a GitHub request thread");
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        gh_free(gh);
        free(f);
        return NULL;
    }
    return f;
}

void fetcher_free(fetcher *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    while (f->state == FETCHER_QUEUED || f->state == FETCHER_RUNNING)
        pthread_cond_wait(&f->cv, &f->mu);
    f->state = FETCHER_QUIT;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    gh_page_clear(&f->page);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    gh_free(f->gh);
    free(f);
}

int fetcher_start(fetcher *f, const char *token, const char *owner, const char *name, int first,
                  const char *after)
{
    int rc = -1;
    pthread_mutex_lock(&f->mu);
    if (f->state == FETCHER_IDLE && strlen(token) <= GH_TOKEN_MAX) {
        snprintf(f->token, sizeof f->token, "%s", token);
        snprintf(f->owner, sizeof f->owner, "%s", owner);
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->after, sizeof f->after, "%s", after ? after : "");
        f->first = first;
        f->state = FETCHER_QUEUED;
        pthread_cond_broadcast(&f->cv);
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fetcher_set_wake(fetcher *f, void (*wake)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&f->mu);
    f->wake = wake;
    f->wake_ctx = ctx;
    pthread_mutex_unlock(&f->mu);
}

double fetcher_answered_at(const fetcher *f)
{
    double t;
    pthread_mutex_lock((pthread_mutex_t *)&f->mu);
    t = f->answered_at;
    pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
    return t;
}

int fetcher_done(const fetcher *f)
{
    int done;
    pthread_mutex_lock((pthread_mutex_t *)&f->mu);
    done = f->state == FETCHER_DONE;
    pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
    return done;
}

int fetcher_busy(const fetcher *f)
{
    int busy;
    pthread_mutex_lock((pthread_mutex_t *)&f->mu);
    busy = f->state != FETCHER_IDLE;
    pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
    return busy;
}

int fetcher_collect(fetcher *f, struct gh_page *page, int wait)
{
    int done = 0;
    pthread_mutex_lock(&f->mu);
    while (wait && (f->state == FETCHER_QUEUED || f->state == FETCHER_RUNNING))
        pthread_cond_wait(&f->cv, &f->mu);
    if (f->state == FETCHER_DONE) {
        *page = f->page; /* ownership of page->records moves to the caller */
        memset(&f->page, 0, sizeof f->page);
        f->state = FETCHER_IDLE;
        done = 1;
    }
    pthread_mutex_unlock(&f->mu);
    return done;
}
