/* pgw_conn: see pgw_conn.h. The statements it prepares are those of
 * schemas/pg_writer/ (pgw_sql.h); what they mean is explained there. */
#include "pgw_conn.h"

#include <stdio.h>
#include <string.h>

#include "pg_conn.h"
#include "pgw_sql.h"

#define APP_NAME "backfill-sink"
#define COPY_SQL "COPY pg_temp.pgw_stage FROM STDIN"

/* libpq prints NOTICEs ("relation already exists, skipping") to stderr by
 * default; the sink has its own log, and none of them needs action. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int pgwc_open(struct pgw_conn *c, const char *conninfo, char *errstr, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!(c->pg = pg_conn_open(conninfo, APP_NAME, errstr, errlen)))
        return PGW_EDB;
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    return PGW_OK;
}

void pgwc_close(struct pgw_conn *c)
{
    PQfinish(c->pg);
    memset(c, 0, sizeof *c);
}

int pgwc_ok(const struct pgw_conn *c)
{
    return c->pg && PQstatus(c->pg) == CONNECTION_OK;
}

int pgwc_reset(struct pgw_conn *c, char *errstr, size_t errlen)
{
    c->prepared = c->copy_open = 0; /* they die with the session */
    PQreset(c->pg);
    if (!pgwc_ok(c)) {
        pgwc_error(c, NULL, "cannot reconnect to Postgres", errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

void pgwc_error(const struct pgw_conn *c, const PGresult *r, const char *what, char *errstr,
                size_t errlen)
{
    const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char msg[768];

    if (!prim) { /* client-side failure (connection lost, out of memory) */
        pg_conn_msg(c->pg, what, c->pg ? PQerrorMessage(c->pg) : "out of memory", errstr,
                    errlen);
        return;
    }
    snprintf(msg, sizeof msg, "%s%s%s%s [%s]", prim, detail ? " (" : "", detail ? detail : "",
             detail ? ")" : "", state ? state : "?");
    pg_conn_msg(c->pg, what, msg, errstr, errlen);
}

int pgwc_is_data_error(const struct pgw_conn *c, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    if (!pgwc_ok(c) || !st)
        return 0;
    return !strncmp(st, "21", 2) || !strncmp(st, "22", 2) || !strncmp(st, "23", 2) ||
           !strncmp(st, "54", 2);
}

/* Reads what is left of a COPY's results; stops at anything but a
 * finished result (a broken connection must not loop here). */
static void drain(struct pgw_conn *c)
{
    PGresult *r;
    int i;

    for (i = 0; i < 8 && (r = PQgetResult(c->pg)); i++) {
        ExecStatusType st = PQresultStatus(r);

        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
}

int pgwc_copy_end(struct pgw_conn *c, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (!c->copy_open)
        return PGW_OK;
    c->copy_open = 0;
    ok = PQputCopyEnd(c->pg, NULL) == 1;
    if (!ok) {
        pgwc_error(c, NULL, "staging (end of COPY)", errstr, errlen);
    } else {
        r = PQgetResult(c->pg);
        ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            pgwc_error(c, r, "staging (end of COPY)", errstr, errlen);
        PQclear(r);
    }
    drain(c);
    return ok ? PGW_OK : PGW_EDB;
}

int pgwc_copy_put(struct pgw_conn *c, const char *rows, size_t len, char *errstr, size_t errlen)
{
    PGresult *r;

    if (!c->copy_open) {
        r = PQexec(c->pg, COPY_SQL);
        if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
            pgwc_error(c, r, "staging (COPY)", errstr, errlen);
            PQclear(r);
            return PGW_EDB;
        }
        PQclear(r);
        c->copy_open = 1;
    }
    if (PQputCopyData(c->pg, rows, (int)len) != 1) {
        pgwc_error(c, NULL, "staging (COPY)", errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgwc_cmd(struct pgw_conn *c, const char *sql, const char *what, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (pgwc_copy_end(c, errstr, errlen))
        return PGW_EDB;
    r = PQexec(c->pg, sql);
    ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        pgwc_error(c, r, what, errstr, errlen);
    PQclear(r);
    return ok ? PGW_OK : PGW_EDB;
}

int pgwc_begin(struct pgw_conn *c, char *errstr, size_t errlen)
{
    return pgwc_cmd(c, "BEGIN ISOLATION LEVEL READ COMMITTED", "BEGIN", errstr, errlen);
}

int pgwc_commit(struct pgw_conn *c, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (pgwc_copy_end(c, errstr, errlen))
        return PGW_EDB;
    r = PQexec(c->pg, "COMMIT");
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok && r && PQresultStatus(r) == PGRES_COMMAND_OK)
        snprintf(errstr, errlen, "COMMIT: the transaction was rolled back");
    else if (!ok)
        pgwc_error(c, r, "COMMIT (outcome unknown if the connection died)", errstr, errlen);
    PQclear(r);
    return ok ? PGW_OK : PGW_EDB;
}

void pgwc_rollback(struct pgw_conn *c)
{
    PGTransactionStatusType ts;

    if (!pgwc_ok(c)) {
        c->copy_open = 0;
        return;
    }
    if (c->copy_open) {
        c->copy_open = 0;
        if (PQputCopyEnd(c->pg, "batch abandoned") == 1)
            drain(c);
    }
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(c->pg);
    ts = PQtransactionStatus(c->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* Is q a statement to prepare (else SQL to run as it is)? */
static int is_statement(const struct pgw_sql *q)
{
    return !strncmp(q->name, PGW_SQL_PREFIX, strlen(PGW_SQL_PREFIX));
}

static int prepare_one(struct pgw_conn *c, const struct pgw_sql *q, char *errstr, size_t errlen)
{
    /* 0 parameters given: the server counts them, each typed by its cast */
    PGresult *r = PQprepare(c->pg, q->name, q->sql, 0, NULL);
    char what[96];
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok) {
        snprintf(what, sizeof what, "preparing %s", q->name);
        pgwc_error(c, r, what, errstr, errlen);
    }
    PQclear(r);
    return ok ? PGW_OK : PGW_EDB;
}

int pgwc_prepare(struct pgw_conn *c, char *errstr, size_t errlen)
{
    size_t i;

    if (c->prepared)
        return PGW_OK;
    if (pgwc_cmd(c, "DEALLOCATE ALL", "DEALLOCATE", errstr, errlen))
        return PGW_EDB;
    for (i = 0; i < pgw_sql_count; i++) /* the staging table */
        if (!is_statement(&pgw_sql[i]) &&
            pgwc_cmd(c, pgw_sql[i].sql, pgw_sql[i].name, errstr, errlen))
            return PGW_EDB;
    for (i = 0; i < pgw_sql_count; i++)
        if (is_statement(&pgw_sql[i]) && prepare_one(c, &pgw_sql[i], errstr, errlen))
            return PGW_EDB;
    c->prepared = 1;
    return PGW_OK;
}

/* The end of pgwc_exec / pgwc_query: r is the result of stmt. */
static int finish(struct pgw_conn *c, PGresult *r, const char *what, PGresult **res,
                  char *errstr, size_t errlen)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res)
            *res = r;
        else
            PQclear(r);
        return PGW_OK;
    }
    pgwc_error(c, r, what, errstr, errlen);
    rc = pgwc_is_data_error(c, r) ? PGW_EBADEVENT : PGW_EDB;
    PQclear(r);
    return rc;
}

int pgwc_exec(struct pgw_conn *c, const char *what, const char *stmt, int nparams,
              const char *const *params, PGresult **res, char *errstr, size_t errlen)
{
    if (res)
        *res = NULL;
    if (pgwc_copy_end(c, errstr, errlen))
        return PGW_EDB;
    return finish(c, PQexecPrepared(c->pg, stmt, nparams, params, NULL, NULL, 0), what, res,
                  errstr, errlen);
}

int pgwc_query(struct pgw_conn *c, const char *what, const char *sql, int nparams,
               const char *const *params, PGresult **res, char *errstr, size_t errlen)
{
    if (res)
        *res = NULL;
    if (pgwc_copy_end(c, errstr, errlen))
        return PGW_EDB;
    return finish(c, PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0), what, res,
                  errstr, errlen);
}

int pgwc_send(struct pgw_conn *c, const char *what, const char *stmt, int nparams,
              const char *const *params, char *errstr, size_t errlen)
{
    if (!PQsendQueryPrepared(c->pg, stmt, nparams, params, NULL, NULL, 0)) {
        pgwc_error(c, NULL, what, errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgwc_send_sql(struct pgw_conn *c, const char *what, const char *sql, char *errstr,
                  size_t errlen)
{
    if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0)) {
        pgwc_error(c, NULL, what, errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgwc_pipeline_begin(struct pgw_conn *c, char *errstr, size_t errlen)
{
    if (pgwc_copy_end(c, errstr, errlen))
        return PGW_EDB;
    if (!PQenterPipelineMode(c->pg)) {
        pgwc_error(c, NULL, "entering pipeline mode", errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgwc_pipeline_sync(struct pgw_conn *c, char *errstr, size_t errlen)
{
    if (!PQpipelineSync(c->pg)) {
        pgwc_error(c, NULL, "sending the batch", errstr, errlen);
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgwc_pipeline_next(struct pgw_conn *c, int wait, PGresult **r, char *errstr, size_t errlen)
{
    *r = NULL;
    if (!wait && (!PQconsumeInput(c->pg) || PQisBusy(c->pg))) {
        if (pgwc_ok(c))
            return PGWC_WAIT;
        pgwc_error(c, NULL, "reading the batch's results", errstr, errlen);
        return PGW_EDB;
    }
    if (!(*r = PQgetResult(c->pg))) { /* end of one statement's results */
        if (pgwc_ok(c))
            return PGWC_END;
        pgwc_error(c, NULL, "reading the batch's results", errstr, errlen);
        return PGW_EDB;
    }
    if (PQresultStatus(*r) != PGRES_PIPELINE_SYNC)
        return PGWC_RESULT;
    PQclear(*r);
    *r = NULL;
    if (PQexitPipelineMode(c->pg))
        return PGWC_SYNC;
    pgwc_error(c, NULL, "leaving pipeline mode", errstr, errlen);
    return PGW_EDB;
}
