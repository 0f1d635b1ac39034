/* pgw_internal: what pg_writer.c (connection, transactions, migrations,
 * offsets) and pgw_events.c (the two event types) share. Not part of the
 * public API; nothing outside sink/pg_writer*.c, pgw_*.c includes it. */
#ifndef BACKFILL_PGW_INTERNAL_H
#define BACKFILL_PGW_INTERNAL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "pg_writer.h"

/* A statement prepared once per connection. */
struct pgw_stmt {
    const char *name; /* prepared-statement name */
    const char *sql;
    int nparams;
};

/* Defined in pgw_events.c: the statements the event appliers use. */
extern const struct pgw_stmt pgw_event_stmts[];
extern const size_t pgw_event_nstmts;

/* Defined in pgw_events.c. Validate data (borrowed) completely before the
 * first write, then call pgw_savepoint and run their statements with
 * pgw_exec. Return PGW_OK, PGW_EBADEVENT or PGW_EDB, reason in errstr. */
int pgw_apply_pull_requests(pgw *w, json_t *data, char *errstr, size_t errlen);
int pgw_apply_progress(pgw *w, json_t *data, char *errstr, size_t errlen);

/* Defined in pg_writer.c. Opens this event's savepoint (releasing the
 * previous event's). Returns PGW_OK or PGW_EDB. */
int pgw_savepoint(pgw *w, char *errstr, size_t errlen);

/* Defined in pg_writer.c. Runs prepared statement stmt with nparams text
 * parameters (NULL = SQL NULL). what names it in messages. On PGW_OK, if
 * res is not NULL, *res is the result (owned by the caller: PQclear). On
 * failure *res is NULL and the SQLSTATE decides: data and constraint
 * errors (classes 21, 22, 23, 54) are PGW_EBADEVENT, all else PGW_EDB. */
int pgw_exec(pgw *w, const char *what, const char *stmt, int nparams, const char *const *params,
             PGresult **res, char *errstr, size_t errlen);

#endif
