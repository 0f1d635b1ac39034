/* store: see store.h. */
#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"

/* the files of web/sql/, embedded at build time (cmake/embed_text.cmake) */
extern const char web_sql_backfills[];
extern const char web_sql_record[];
extern const char web_sql_estimate[];

#define STORE_MAX 16

struct store {
    char *conninfo;
    int size;
    PGconn *idle[STORE_MAX]; /* owned; NULL slots are free */
    int out;                 /* connections lent out */
    pthread_mutex_t lock;
    pthread_cond_t returned;
};

store *store_new(const char *conninfo, int size)
{
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(conninfo ? conninfo : ""))) {
        free(s);
        return NULL;
    }
    s->size = size < 1 ? 1 : size > STORE_MAX ? STORE_MAX : size;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->returned, NULL);
    return s;
}

void store_free(store *s)
{
    if (!s)
        return;
    for (int i = 0; i < STORE_MAX; i++)
        if (s->idle[i])
            PQfinish(s->idle[i]);
    pthread_cond_destroy(&s->returned);
    pthread_mutex_destroy(&s->lock);
    free(s->conninfo);
    free(s);
}

/* Lends a connection (an idle one, or a new one while fewer than size are
 * out), waiting for one to come back when all are busy. */
static PGconn *store_take(store *s, char *errstr, size_t errlen)
{
    PGconn *c = NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (int i = 0; i < STORE_MAX && !c; i++)
            if (s->idle[i]) {
                c = s->idle[i];
                s->idle[i] = NULL;
            }
        if (c || s->out < s->size)
            break;
        pthread_cond_wait(&s->returned, &s->lock);
    }
    s->out++;
    pthread_mutex_unlock(&s->lock);
    if (c && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
    }
    if (!c)
        c = pg_conn_open(s->conninfo, "backfill-web", errstr, errlen);
    if (!c) {
        pthread_mutex_lock(&s->lock);
        s->out--;
        pthread_cond_signal(&s->returned);
        pthread_mutex_unlock(&s->lock);
    }
    return c;
}

/* Gives a connection back; a broken one is closed instead. */
static void store_give(store *s, PGconn *c)
{
    int kept = 0;
    pthread_mutex_lock(&s->lock);
    s->out--;
    if (PQstatus(c) == CONNECTION_OK)
        for (int i = 0; i < STORE_MAX && !kept; i++)
            if (!s->idle[i]) {
                s->idle[i] = c;
                kept = 1;
            }
    pthread_cond_signal(&s->returned);
    pthread_mutex_unlock(&s->lock);
    if (!kept)
        PQfinish(c);
}

/* Runs sql with text parameters; returns the first column of the first
 * row as a malloc'd string ("" for a command), or NULL with a reason. A
 * connection that broke mid-way is retried once on a fresh one (Postgres
 * restarted since it was opened). */
static char *store_query(store *s, const char *sql, int nparams, const char *const *params,
                         char *errstr, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = store_take(s, errstr, errlen);
        PGresult *r;
        char *out = NULL;
        int retry;
        if (!c)
            return NULL;
        r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            out = strdup(PQgetvalue(r, 0, 0));
        else if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
            out = strdup("");
        else
            pg_conn_msg(c, "database", PQresultErrorMessage(r), errstr, errlen);
        retry = !out && PQstatus(c) != CONNECTION_OK;
        PQclear(r);
        store_give(s, c);
        if (out || !retry)
            return out;
    }
    return NULL;
}

int store_record(store *s, const char *entries_json, char *errstr, size_t errlen)
{
    const char *params[] = {entries_json};
    char *r = store_query(s, web_sql_record, 1, params, errstr, errlen);
    free(r);
    return r ? 0 : -1;
}

char *store_backfills(store *s, const char *status, const char *key, int history, char *errstr,
                      size_t errlen)
{
    const char *params[] = {status, key, history ? "history" : ""};
    return store_query(s, web_sql_backfills, 3, params, errstr, errlen);
}

char *store_estimate(store *s, char *errstr, size_t errlen)
{
    return store_query(s, web_sql_estimate, 0, NULL, errstr, errlen);
}

int store_ping(store *s, char *errstr, size_t errlen)
{
    char *r = store_query(s, "SELECT to_regclass('progressive_backfill_state') IS NOT NULL", 0,
                          NULL, errstr, errlen);
    int ok = r && strcmp(r, "t") == 0;
    if (r && !ok)
        snprintf(errstr, errlen, "the database has no backfill tables yet (backfill-sink creates "
                                 "them when it starts)");
    free(r);
    return ok ? 0 : -1;
}
