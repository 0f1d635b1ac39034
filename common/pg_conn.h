/* pg_conn: opening a libpq connection the way every binary of ours does,
 * and reporting Postgres errors without secrets.
 *
 * The connection string (DATABASE_URL) may hold a password, and
 * PGPASSWORD may be set: neither may reach a log line or an error message.
 * libpq's own messages can quote the connection string (a parse error
 * echoes the piece it did not understand) or, in principle, the password;
 * so a conninfo is parsed first and a parse error is reported with every
 * quoted piece hidden, and every later message goes through pg_conn_msg,
 * which overwrites the password with '*' before the text is cut to size.
 *
 * Depends on libpq only. */
#ifndef BACKFILL_PG_CONN_H
#define BACKFILL_PG_CONN_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connects. conninfo is a libpq connection string, a postgres:// URI, a
 * bare database name, or NULL / "" for libpq's defaults and the PG*
 * environment. app_name (borrowed) becomes fallback_application_name, so
 * each binary shows up under its own name unless the conninfo or
 * PGAPPNAME says otherwise. connect_timeout defaults to 10 s (the
 * conninfo may change it); client_encoding is forced to UTF8. Returns the
 * connection (owned by the caller: PQfinish), or NULL with a reason in
 * errstr ("cannot connect to Postgres: ..." or "invalid connection
 * string: ...") that holds no password and no quoted piece of conninfo. */
/* --help text for the Postgres connection, shared by every binary that
 * connects. */
#define PG_CONN_HELP                                                                         \
    "  env DATABASE_URL        libpq connection string or URI (may hold a password; it is\n" \
    "                          never logged). Unset: libpq's own variables PGHOST, PGPORT,\n" \
    "                          PGUSER, PGPASSWORD, PGDATABASE (any password works there,\n"   \
    "                          unescaped: compose uses them).\n"

PGconn *pg_conn_open(const char *conninfo, const char *app_name, char *errstr, size_t errlen);

/* Writes "prefix: msg" into errstr (errlen > 0) as one line (newlines and
 * tabs become spaces, trailing blanks dropped), with the password of conn
 * (PQpass: from its conninfo, PGPASSWORD or ~/.pgpass) and the value of
 * PGPASSWORD overwritten by '*' before the text is cut to errlen. conn
 * (borrowed) may be NULL: then only PGPASSWORD is masked. msg NULL or ""
 * gives just the prefix; prefix "" gives just msg. Out of memory: errstr
 * says so. */
void pg_conn_msg(const PGconn *conn, const char *prefix, const char *msg, char *errstr,
                 size_t errlen);

#endif
