/* pg_conn: see pg_conn.h. */
#define _POSIX_C_SOURCE 200809L

#include "pg_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Overwrites every occurrence of secret in buf with '*'. */
static void mask(char *buf, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;

    if (!n)
        return;
    for (char *p = strstr(buf, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

void pg_conn_msg(const PGconn *conn, const char *prefix, const char *msg, char *errstr,
                 size_t errlen)
{
    size_t i, n, lp = prefix ? strlen(prefix) : 0, lm = msg ? strlen(msg) : 0;
    char *full; /* owned */

    if (!errlen)
        return;
    if (!(full = malloc(lp + lm + 3))) {
        snprintf(errstr, errlen, "out of memory");
        return;
    }
    memcpy(full, prefix ? prefix : "", lp);
    n = lp;
    if (lp && lm) {
        memcpy(full + n, ": ", 2);
        n += 2;
    }
    memcpy(full + n, msg ? msg : "", lm);
    full[n + lm] = '\0';
    for (i = strlen(full); i > 0 && (full[i - 1] == '\n' || full[i - 1] == ' '); i--)
        full[i - 1] = '\0';
    for (i = 0; full[i]; i++)
        if (full[i] == '\n' || full[i] == '\t' || full[i] == '\r')
            full[i] = ' ';
    /* Masked on the whole text, before the cut: no piece of a password
     * survives at the end of errstr. */
    mask(full, conn ? PQpass(conn) : NULL);
    mask(full, getenv("PGPASSWORD"));
    if ((n = strlen(full)) >= errlen)
        n = errlen - 1;
    memcpy(errstr, full, n);
    errstr[n] = '\0';
    free(full);
}

/* libpq's own rule for "this is a connection string, not a dbname". */
static int is_conninfo(const char *s)
{
    return !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11) || strchr(s, '=');
}

/* in with the text inside every "..." replaced by "..." (libpq's parse
 * errors quote pieces of the connection string, which may be the
 * password). Returns a malloc'd string, or NULL if out of memory. */
static char *hide_quoted(const char *in)
{
    char *out = malloc(strlen(in) * 4 + 1), *o = out; /* worst case: every byte a quote */
    int quoted = 0;

    if (!out)
        return NULL;
    for (; *in; in++) {
        if (*in == '"') {
            if (!quoted) {
                memcpy(o, "\"...", 4);
                o += 4;
            } else {
                *o++ = '"';
            }
            quoted = !quoted;
        } else if (!quoted) {
            *o++ = *in;
        }
    }
    *o = '\0';
    return out;
}

/* 0 if conninfo parses (or is a bare database name), else -1 with a
 * reason that does not echo it. */
static int check_conninfo(const char *conninfo, char *errstr, size_t errlen)
{
    PQconninfoOption *opts;
    char *perr = NULL, *shown; /* owned */

    if (!is_conninfo(conninfo))
        return 0;
    if ((opts = PQconninfoParse(conninfo, &perr))) {
        PQconninfoFree(opts);
        return 0;
    }
    shown = perr ? hide_quoted(perr) : NULL;
    if (shown)
        pg_conn_msg(NULL, "invalid connection string", shown, errstr, errlen);
    else
        snprintf(errstr, errlen, "invalid connection string (or out of memory)");
    free(shown);
    PQfreemem(perr);
    return -1;
}

PGconn *pg_conn_open(const char *conninfo, const char *app_name, char *errstr, size_t errlen)
{
    /* Entries before dbname are defaults the conninfo may override; those
     * after it win over the conninfo. */
    const char *kw[] = {"connect_timeout", "fallback_application_name", "dbname",
                        "client_encoding", NULL};
    const char *val[] = {"10", app_name, conninfo ? conninfo : "", "UTF8", NULL};
    PGconn *conn;

    if (check_conninfo(val[2], errstr, errlen) < 0)
        return NULL;
    conn = PQconnectdbParams(kw, val, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        pg_conn_msg(conn, "cannot connect to Postgres", conn ? PQerrorMessage(conn)
                                                             : "out of memory",
                    errstr, errlen);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
