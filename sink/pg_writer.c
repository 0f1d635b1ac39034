/* pg_writer: connection, batch transactions, savepoints, migrations and
 * Kafka offsets (migrations: pgw_migrate.c). Staging and the statements that write events live in
 * pgw_stage.c, decoding the two event types in pgw_events.c.
 *
 * Protocol on the wire, per batch (batching mode, see pg_writer.h):
 *   BEGIN ISOLATION LEVEL READ COMMITTED
 *   COPY pg_temp.pgw_stage FROM STDIN    rows of every event, streamed
 *                                        while the batch fills
 *   at pgw_commit: end of COPY; SAVEPOINT pgw_batch; one statement per
 *                  table for the whole batch (on a data error: ROLLBACK
 *                  TO SAVEPOINT pgw_batch, then every event again under
 *                  its own savepoint pgw_ev, skipping those refused)
 *   per partition: prepared offset upsert
 *   COMMIT
 * Without batching, each pgw_apply ends the COPY and writes its event
 * under [RELEASE SAVEPOINT pgw_ev;] SAVEPOINT pgw_ev at once.
 *
 * Errors: an SQLSTATE of class 21/22/23/54 raised inside an event (bad
 * value, constraint violated, row too big) is the event's fault, so it is
 * PGW_EBADEVENT; anything else -- a lost connection, deadlock, full disk,
 * a missing table -- is PGW_EDB, and the batch is lost. Secrets: the
 * password (from conninfo or PGPASSWORD) is masked in every message this
 * module writes, and a conninfo that does not parse is reported without
 * the quoted text libpq would echo from it. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "pg_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgw_internal.h"

#define SAVEPOINT_SQL "SAVEPOINT pgw_ev"
#define NEXT_SAVEPOINT_SQL "RELEASE SAVEPOINT pgw_ev; SAVEPOINT pgw_ev"

static const struct pgw_stmt offset_stmts[] = {
    {"pgw_offset_set",
     "INSERT INTO kafka_offsets AS k (consumer_group, topic, partition, next_offset)\n"
     "VALUES ($1::text, $2::text, $3::integer, $4::bigint)\n"
     "ON CONFLICT (consumer_group, topic, partition) DO UPDATE\n"
     "   SET next_offset = EXCLUDED.next_offset, updated_at = now()\n"
     " WHERE k.next_offset IS DISTINCT FROM EXCLUDED.next_offset",
     4},
    {"pgw_offset_get",
     "SELECT next_offset FROM kafka_offsets\n"
     " WHERE consumer_group = $1::text AND topic = $2::text AND partition = $3::integer",
     3},
};

/* Overwrites every occurrence of a secret in buf with '*'. */
static void mask_secrets(const pgw *w, char *buf)
{
    size_t i, n;
    char *p;

    for (i = 0; i < 2; i++) {
        if (!w->secret[i] || !(n = strlen(w->secret[i])))
            continue;
        for (p = strstr(buf, w->secret[i]); p; p = strstr(p + n, w->secret[i]))
            memset(p, '*', n);
    }
}

/* Writes "prefix: msg" into errstr on one line, secrets masked. Masking
 * happens on the full text before it is cut to errlen, so no piece of a
 * password can survive at the cut. */
static void put_msg(const pgw *w, char *errstr, size_t errlen, const char *prefix, const char *msg)
{
    size_t i, n, lp = strlen(prefix), lm = msg ? strlen(msg) : 0;
    char *full;

    if (!errlen)
        return;
    if (!(full = malloc(lp + lm + 3))) {
        snprintf(errstr, errlen, "out of memory");
        return;
    }
    memcpy(full, prefix, lp);
    n = lp;
    if (lp && lm) {
        memcpy(full + n, ": ", 2);
        n += 2;
    }
    if (lm)
        memcpy(full + n, msg, lm);
    full[n + lm] = '\0';
    for (i = strlen(full); i > 0 && (full[i - 1] == '\n' || full[i - 1] == ' '); i--)
        full[i - 1] = '\0';
    for (i = 0; full[i]; i++)
        if (full[i] == '\n' || full[i] == '\t' || full[i] == '\r')
            full[i] = ' ';
    mask_secrets(w, full);
    if ((n = strlen(full)) >= errlen)
        n = errlen - 1; /* cut */
    memcpy(errstr, full, n);
    errstr[n] = '\0';
    free(full);
}

static void conn_error(const pgw *w, char *errstr, size_t errlen, const char *prefix)
{
    put_msg(w, errstr, errlen, prefix, w->conn ? PQerrorMessage(w->conn) : "out of memory");
}

/* "what: message (detail) [SQLSTATE]" from a failed result. */
void pgw_result_error(const pgw *w, const PGresult *r, char *errstr, size_t errlen,
                      const char *what)
{
    const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char msg[768];

    if (!prim) { /* client-side failure (connection lost, out of memory) */
        conn_error(w, errstr, errlen, what);
        return;
    }
    snprintf(msg, sizeof msg, "%s%s%s%s [%s]", prim, detail ? " (" : "", detail ? detail : "",
             detail ? ")" : "", state ? state : "?");
    put_msg(w, errstr, errlen, what, msg);
}

/* Is this failure the event's fault? */
static int is_data_error(const pgw *w, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    if (PQstatus(w->conn) != CONNECTION_OK || !st)
        return 0;
    return !strncmp(st, "21", 2) || !strncmp(st, "22", 2) || !strncmp(st, "23", 2) ||
           !strncmp(st, "54", 2);
}

int pgw_cmd(pgw *w, const char *sql, const char *what, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (w->copy_open && pgw_copy_end(w, errstr, errlen))
        return PGW_EDB;
    r = PQexec(w->conn, sql);
    ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);

    if (!ok)
        pgw_result_error(w, r, errstr, errlen, what);
    PQclear(r);
    return ok ? PGW_OK : PGW_EDB;
}

/* libpq prints NOTICEs ("relation already exists, skipping") to stderr by
 * default; the sink has its own log, and none of them needs action. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq's own rule for "this is a connection string, not a dbname". */
static int is_conninfo(const char *s)
{
    return !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11) || strchr(s, '=');
}

/* Copies in to out (room for 3 * strlen(in) + 1) with the text inside
 * every "..." replaced by "..." -- libpq's parse errors quote pieces of the
 * connection string, which may be the password. */
static void hide_quoted(const char *in, char *out)
{
    int quoted = 0;

    for (; *in; in++) {
        if (*in == '"') {
            if (!quoted) {
                memcpy(out, "\"...", 4);
                out += 4;
            } else {
                *out++ = '"';
            }
            quoted = !quoted;
        } else if (!quoted) {
            *out++ = *in;
        }
    }
    *out = '\0';
}

static int keep_secret(pgw *w, int i, const char *s)
{
    if (!s || !*s)
        return 0;
    w->secret[i] = strdup(s);
    return w->secret[i] ? 0 : -1;
}

/* Parses conninfo only to learn the password (to mask it) and to report
 * syntax errors without echoing the string. */
static int check_conninfo(pgw *w, const char *conninfo, char *errstr, size_t errlen)
{
    PQconninfoOption *opts, *o;
    char *perr = NULL, *copy;
    int rc = 0;

    if (!is_conninfo(conninfo))
        return 0; /* a bare database name */
    opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        copy = perr ? malloc(strlen(perr) * 3 + 1) : NULL;
        if (copy) {
            hide_quoted(perr, copy);
            put_msg(w, errstr, errlen, "invalid connection string", copy);
        } else {
            snprintf(errstr, errlen, "invalid connection string (or out of memory)");
        }
        free(copy);
        PQfreemem(perr);
        return -1;
    }
    for (o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && keep_secret(w, 0, o->val) < 0)
            rc = -1;
    PQconninfoFree(opts);
    if (rc < 0)
        snprintf(errstr, errlen, "out of memory");
    return rc;
}

pgw *pgw_new(const char *conninfo, char *errstr, size_t errlen)
{
    /* Entries before dbname are defaults the conninfo may override; those
     * after it win over the conninfo. */
    const char *kw[] = {"connect_timeout", "fallback_application_name", "dbname",
                        "client_encoding", NULL};
    const char *val[] = {"10", "backfill-sink", conninfo ? conninfo : "", "UTF8", NULL};
    pgw *w = calloc(1, sizeof *w);

    if (!w) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (check_conninfo(w, val[2], errstr, errlen) < 0)
        goto fail;
    if (keep_secret(w, 1, getenv("PGPASSWORD")) < 0) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    w->conn = PQconnectdbParams(kw, val, 1);
    if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
        conn_error(w, errstr, errlen, "cannot connect to Postgres");
        goto fail;
    }
    PQsetNoticeProcessor(w->conn, quiet_notice, NULL);
    return w;
fail:
    pgw_free(w);
    return NULL;
}

static void wipe_free(char *s)
{
    volatile char *p = s;

    if (!s)
        return;
    while (*p)
        *p++ = '\0';
    free(s);
}

void pgw_free(pgw *w)
{
    if (!w)
        return;
    PQfinish(w->conn); /* the server rolls back an open transaction */
    pgw_batch_free(&w->cur);
    pgw_batch_free(&w->fly);
    pgwf_buf_free(&w->rows);
    pgwf_buf_free(&w->held);
    wipe_free(w->secret[0]);
    wipe_free(w->secret[1]);
    free(w);
}

int pgw_ok(pgw *w)
{
    return w && w->conn && PQstatus(w->conn) == CONNECTION_OK;
}

static void reset_batch(pgw *w)
{
    w->in_txn = w->txn_failed = w->sp_open = w->guarded = 0;
    pgw_batch_clear(&w->cur);
    pgwf_buf_reset(&w->held);
    w->flushed = 0;
    w->skipped = 0;
    w->started = 0;
}

int pgw_reconnect(pgw *w, char *errstr, size_t errlen)
{
    reset_batch(w);
    w->copy_open = w->pending = 0;
    pgw_batch_clear(&w->fly);
    w->prepared = 0; /* prepared statements and the temp table die with the session */
    PQreset(w->conn);
    if (PQstatus(w->conn) != CONNECTION_OK) {
        conn_error(w, errstr, errlen, "cannot reconnect to Postgres");
        return PGW_EDB;
    }
    return PGW_OK;
}

static int prepare_list(pgw *w, const struct pgw_stmt *s, size_t n, char *errstr, size_t errlen)
{
    size_t i;
    PGresult *r;
    char what[96];

    for (i = 0; i < n; i++) {
        r = PQprepare(w->conn, s[i].name, s[i].sql, s[i].nparams, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(what, sizeof what, "preparing %s", s[i].name);
            pgw_result_error(w, r, errstr, errlen, what);
            PQclear(r);
            return PGW_EDB;
        }
        PQclear(r);
    }
    return PGW_OK;
}

/* Creates the staging table and prepares every statement once per
 * connection. A half-done earlier try
 * left some behind: DEALLOCATE ALL first makes this restartable. */
static int ensure_prepared(pgw *w, char *errstr, size_t errlen)
{
    if (w->prepared)
        return PGW_OK;
    if (pgw_cmd(w, "DEALLOCATE ALL", "DEALLOCATE", errstr, errlen) ||
        pgw_cmd(w, pgw_stage_ddl, "creating the staging table", errstr, errlen) ||
        prepare_list(w, offset_stmts, sizeof offset_stmts / sizeof offset_stmts[0], errstr,
                     errlen) ||
        prepare_list(w, pgw_stage_stmts, pgw_stage_nstmts, errstr, errlen))
        return PGW_EDB;
    w->prepared = 1;
    return PGW_OK;
}

int pgw_exec(pgw *w, const char *what, const char *stmt, int nparams, const char *const *params,
             PGresult **res, char *errstr, size_t errlen)
{
    PGresult *r;
    ExecStatusType st;
    int rc;

    if (res)
        *res = NULL;
    if (w->copy_open && pgw_copy_end(w, errstr, errlen)) {
        w->txn_failed = w->in_txn;
        return PGW_EDB;
    }
    r = PQexecPrepared(w->conn, stmt, nparams, params, NULL, NULL, 0);
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res)
            *res = r;
        else
            PQclear(r);
        return PGW_OK;
    }
    pgw_result_error(w, r, errstr, errlen, what);
    /* Only statements under a savepoint can survive a failure. */
    rc = is_data_error(w, r) && w->guarded ? PGW_EBADEVENT : PGW_EDB;
    if (rc == PGW_EDB && w->in_txn)
        w->txn_failed = 1;
    PQclear(r);
    return rc;
}

int pgw_savepoint(pgw *w, char *errstr, size_t errlen)
{
    if (pgw_cmd(w, w->sp_open ? NEXT_SAVEPOINT_SQL : SAVEPOINT_SQL, "savepoint", errstr,
                 errlen)) {
        w->txn_failed = 1;
        return PGW_EDB;
    }
    w->sp_open = 1;
    return PGW_OK;
}

int pgw_begin(pgw *w, char *errstr, size_t errlen)
{
    if (w->in_txn) {
        snprintf(errstr, errlen, "pgw_begin: a batch is already open");
        return PGW_EDB;
    }
    if (!pgw_ok(w)) {
        snprintf(errstr, errlen, "pgw_begin: connection lost (reconnect first)");
        return PGW_EDB;
    }
    if (!w->pending && (ensure_prepared(w, errstr, errlen) ||
                        pgw_cmd(w, "BEGIN ISOLATION LEVEL READ COMMITTED", "BEGIN", errstr,
                                errlen)))
        return PGW_EDB;
    reset_batch(w);
    w->in_txn = 1;
    w->started = !w->pending; /* else BEGIN follows the commit in flight */
    w->defer = w->on_skip != NULL;
    return PGW_OK;
}

long pgw_event_index(const pgw *w)
{
    return (long)w->cur.n - 1;
}

struct pgwf_buf *pgw_rows(pgw *w)
{
    return &w->rows;
}

void pgw_defer(pgw *w, pgw_skip_fn *on_skip, void *ctx)
{
    w->on_skip = on_skip;
    w->skip_ctx = ctx;
}

int pgw_apply(pgw *w, const char *event_name, json_t *data, char *errstr, size_t errlen)
{
    int (*fn)(pgw *, json_t *, char *, size_t);
    int rc;

    if (!w->in_txn || w->txn_failed) {
        snprintf(errstr, errlen, "pgw_apply: %s", w->in_txn ? "the batch already failed"
                                                           : "no batch open");
        return PGW_EDB;
    }
    if (w->pending && !w->defer) {
        snprintf(errstr, errlen, "pgw_apply: a commit is in flight");
        return PGW_EDB;
    }
    if (pgw_batch_add(&w->cur) < 0) {
        snprintf(errstr, errlen, "out of memory");
        w->txn_failed = 1;
        return PGW_EDB;
    }
    if (!event_name)
        return PGW_OK;
    if (!strcmp(event_name, "backfill/pull_requests"))
        fn = pgw_apply_pull_requests;
    else if (!strcmp(event_name, "backfill/progress.update"))
        fn = pgw_apply_progress;
    else
        return PGW_OK; /* not ours: ignored */
    if (!json_is_object(data)) {
        snprintf(errstr, errlen, "data: expected an object");
        return PGW_EBADEVENT;
    }
    rc = fn(w, data, errstr, errlen);
    if (rc == PGW_OK && !w->defer)
        rc = pgw_flush(w, errstr, errlen);
    if (rc == PGW_EDB)
        w->txn_failed = 1;
    return rc;
}

static char *fmt_i64(char buf[24], int64_t v)
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

int pgw_set_offset(pgw *w, const char *group, const char *topic, int partition,
                   int64_t next_offset, char *errstr, size_t errlen)
{
    if (!w->in_txn || w->txn_failed || !group || !topic || partition < 0 || next_offset < 0) {
        snprintf(errstr, errlen, "pgw_set_offset: %s",
                 !w->in_txn       ? "no batch open"
                 : w->txn_failed  ? "the batch already failed"
                                  : "invalid group/topic/partition/offset");
        return PGW_EDB;
    }
    /* written with the batch, in pgw_commit / pgw_commit_start */
    if (pgw_batch_set_offset(&w->cur, group, topic, partition, next_offset) < 0) {
        snprintf(errstr, errlen, "out of memory");
        w->txn_failed = 1;
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgw_load_offsets(pgw *w, const char *group, const char *topic, int partition,
                     int64_t *next_offset, char *errstr, size_t errlen)
{
    char pb[24];
    const char *params[3] = {group, topic, fmt_i64(pb, partition)};
    PGresult *r;
    char *end;
    long long v;
    int rc;

    if (!group || !topic || partition < 0) {
        snprintf(errstr, errlen, "pgw_load_offsets: invalid group/topic/partition");
        return PGW_EDB;
    }
    if (!pgw_ok(w) || w->pending) {
        snprintf(errstr, errlen, "pgw_load_offsets: %s",
                 w->pending ? "a commit is in flight" : "connection lost (reconnect first)");
        return PGW_EDB;
    }
    if (w->in_txn && pgw_batch_offset(&w->cur, group, topic, partition, next_offset))
        return 0; /* recorded in this batch, not written yet */
    if (ensure_prepared(w, errstr, errlen)) /* a no-op inside a batch */
        return PGW_EDB;
    if ((rc = pgw_exec(w, "loading offset", "pgw_offset_get", 3, params, &r, errstr, errlen)))
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 1;
    }
    v = strtoll(PQgetvalue(r, 0, 0), &end, 10);
    rc = *end || v < 0 ? PGW_EDB : 0;
    if (rc)
        snprintf(errstr, errlen, "loading offset: unexpected value");
    else
        *next_offset = v;
    PQclear(r);
    return rc;
}

int pgw_commit(pgw *w, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (!w->in_txn || w->txn_failed) {
        snprintf(errstr, errlen, "pgw_commit: %s",
                 w->in_txn ? "the batch already failed (rolled back)" : "no batch open");
        pgw_rollback(w);
        return PGW_EDB;
    }
    if (w->pending || pgw_flush(w, errstr, errlen) != PGW_OK ||
        pgw_write_offsets(w, &w->cur, errstr, errlen) != PGW_OK) {
        if (w->pending)
            snprintf(errstr, errlen, "pgw_commit: a commit is in flight");
        pgw_rollback(w);
        return PGW_EDB;
    }
    r = PQexec(w->conn, "COMMIT");
    /* An aborted transaction answers COMMIT with the tag ROLLBACK. */
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok) {
        if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
            snprintf(errstr, errlen, "COMMIT: the transaction was rolled back");
        else
            pgw_result_error(w, r, errstr, errlen, "COMMIT (outcome unknown if the connection died)");
    }
    PQclear(r);
    reset_batch(w);
    if (!ok)
        pgw_rollback(w);
    return ok ? PGW_OK : PGW_EDB;
}

void pgw_rollback(pgw *w)
{
    PGTransactionStatusType ts;

    if (!w)
        return;
    reset_batch(w);
    if (!pgw_ok(w)) {
        w->copy_open = w->pending = 0;
        pgw_batch_clear(&w->fly);
        return;
    }
    pgw_pipe_abandon(w);
    if (w->copy_open)
        pgw_copy_abort(w);
    ts = PQtransactionStatus(w->conn);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(w->conn, "ROLLBACK"));
}
