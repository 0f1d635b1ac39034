/* pgw_conn: the bottom layer of pg_writer -- one libpq connection and
 * the statements that run on it. Everything that talks to libpq directly
 * is here: connecting (common/pg_conn), preparing the writer's
 * statements, running one (now, or queued in pipeline mode), COPY,
 * BEGIN / COMMIT / ROLLBACK, and turning a failure into a message without
 * secrets and into PGW_EBADEVENT or PGW_EDB.
 *
 * Uses only common/pg_conn and the embedded SQL (pgw_sql.h); the files
 * above call it. Internal to pg_writer. */
#ifndef BACKFILL_PGW_CONN_H
#define BACKFILL_PGW_CONN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "pg_writer.h"

/* One connection. Every field is read and written by pgw_conn.c only. */
struct pgw_conn {
    PGconn *pg;    /* owned */
    int prepared;  /* staging table made and statements prepared on this session */
    int copy_open; /* COPY pg_temp.pgw_stage FROM STDIN is in progress */
};

/* Connects (see pg_conn_open; application name backfill-sink) and
 * silences libpq's NOTICEs. PGW_OK, or PGW_EDB with a password-free
 * reason; c is then closed (pgwc_close is still allowed). */
int pgwc_open(struct pgw_conn *c, const char *conninfo, char *errstr, size_t errlen);

/* Closes the connection (the server rolls back an open transaction).
 * Safe on a closed or never-opened c. */
void pgwc_close(struct pgw_conn *c);

/* 1 if the connection looks usable, else 0. */
int pgwc_ok(const struct pgw_conn *c);

/* Drops and re-opens the connection with the same parameters; the
 * session's statements and staging table are gone (prepared again by
 * pgwc_prepare). PGW_OK or PGW_EDB. */
int pgwc_reset(struct pgw_conn *c, char *errstr, size_t errlen);

/* "what: message (detail) [SQLSTATE]" of a failed result r (NULL or a
 * client-side failure: libpq's connection message) into errstr, secrets
 * masked. */
void pgwc_error(const struct pgw_conn *c, const PGresult *r, const char *what, char *errstr,
                size_t errlen);

/* Is the failed result r the fault of the data (SQLSTATE class 21, 22,
 * 23 or 54: bad value, constraint violated, row too big) on a connection
 * that is still fine? The one place that decides it. */
int pgwc_is_data_error(const struct pgw_conn *c, const PGresult *r);

/* Creates the staging table and prepares every statement of pgw_sql.h,
 * once per session (a no-op after that). Restartable: DEALLOCATE ALL
 * first. Outside a transaction only. PGW_OK or PGW_EDB. */
int pgwc_prepare(struct pgw_conn *c, char *errstr, size_t errlen);

/* Runs simple-protocol SQL (ending an open COPY first) whose rows, if
 * any, do not matter. PGW_OK or PGW_EDB. */
int pgwc_cmd(struct pgw_conn *c, const char *sql, const char *what, char *errstr, size_t errlen);

/* BEGIN ISOLATION LEVEL READ COMMITTED. PGW_OK or PGW_EDB. */
int pgwc_begin(struct pgw_conn *c, char *errstr, size_t errlen);

/* COMMIT, and checks that it committed (an aborted transaction answers
 * COMMIT with the tag ROLLBACK). PGW_OK or PGW_EDB (outcome unknown if
 * the connection died). */
int pgwc_commit(struct pgw_conn *c, char *errstr, size_t errlen);

/* Abandons whatever is open: aborts a COPY, leaves pipeline mode, rolls
 * back a transaction. Best effort, never fails; a no-op on a dead
 * connection. */
void pgwc_rollback(struct pgw_conn *c);

/* Runs prepared statement stmt with nparams text parameters (NULL = SQL
 * NULL), ending an open COPY first; what names it in messages. PGW_OK
 * (*res, if res is not NULL, is the result: the caller PQclears it),
 * PGW_EBADEVENT (pgwc_is_data_error; meaningful only under a savepoint)
 * or PGW_EDB; on failure *res is NULL. */
int pgwc_exec(struct pgw_conn *c, const char *what, const char *stmt, int nparams,
              const char *const *params, PGresult **res, char *errstr, size_t errlen);

/* Like pgwc_exec for sql that is not prepared (parameters $1.. as text). */
int pgwc_query(struct pgw_conn *c, const char *what, const char *sql, int nparams,
               const char *const *params, PGresult **res, char *errstr, size_t errlen);

/* Queues prepared statement stmt (pipeline mode, see pgwc_pipeline_begin)
 * without reading a result. PGW_OK or PGW_EDB. */
int pgwc_send(struct pgw_conn *c, const char *what, const char *stmt, int nparams,
              const char *const *params, char *errstr, size_t errlen);

/* Queues simple SQL without parameters in pipeline mode. */
int pgwc_send_sql(struct pgw_conn *c, const char *what, const char *sql, char *errstr,
                  size_t errlen);

/* Pipeline mode: pgwc_pipeline_begin ends an open COPY and enters it;
 * pgwc_pipeline_sync marks the end of what was queued. PGW_OK or PGW_EDB. */
int pgwc_pipeline_begin(struct pgw_conn *c, char *errstr, size_t errlen);
int pgwc_pipeline_sync(struct pgw_conn *c, char *errstr, size_t errlen);

/* What pgwc_pipeline_next read. */
enum pgwc_next {
    PGWC_SYNC = 0,   /* the sync: everything queued is read; pipeline mode is left */
    PGWC_RESULT = 1, /* *r is a result of the statement being read (the caller PQclears it) */
    PGWC_END = 2,    /* that statement's results are complete; the next one follows */
    PGWC_WAIT = 3,   /* nothing to read yet (only when !wait) */
};

/* Reads the next thing of the pipeline: an enum pgwc_next, or PGW_EDB
 * when the connection failed. wait != 0 blocks until there is one. */
int pgwc_pipeline_next(struct pgw_conn *c, int wait, PGresult **r, char *errstr, size_t errlen);

/* Streams len bytes of COPY text (whole lines) into pg_temp.pgw_stage,
 * starting the COPY if needed. PGW_OK or PGW_EDB. */
int pgwc_copy_put(struct pgw_conn *c, const char *rows, size_t len, char *errstr,
                  size_t errlen);

/* Ends the COPY if one is open. PGW_OK or PGW_EDB. */
int pgwc_copy_end(struct pgw_conn *c, char *errstr, size_t errlen);

#endif
