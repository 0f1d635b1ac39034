/* pg_writer: the public face (see pg_writer.h) -- the state of the batch
 * the caller fills, the checks on every call, and the order of the steps.
 * The work is done by the layers below (pgw_internal.h lists them); this
 * file is the only one that changes w->state.
 *
 * Protocol on the wire, per batch:
 *   BEGIN ISOLATION LEVEL READ COMMITTED
 *   COPY pg_temp.pgw_stage FROM STDIN    rows of every event, streamed
 *                                        while the batch fills
 *   pgw_commit_start: end of COPY; in one pipeline: SAVEPOINT pgw_batch,
 *                     one statement per table for the whole batch, the
 *                     offset upserts, sync
 *   pgw_commit_poll:  read the results; on a data error ROLLBACK TO
 *                     SAVEPOINT pgw_batch, then every event again under
 *                     its own savepoint pgw_ev, skipping those refused,
 *                     and the offsets; then COMMIT
 *
 * Errors: an SQLSTATE of class 21/22/23/54 raised by an event's writes
 * (bad value, constraint violated, row too big) is the event's fault: it
 * is skipped and reported; anything else -- a lost connection, deadlock,
 * full disk, a missing table -- is PGW_EDB, and the batch is lost. */
#include "pg_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pgw_internal.h"
#include "pgw_sql.h"

pgw *pgw_new(const char *conninfo, char *errstr, size_t errlen)
{
    pgw *w = calloc(1, sizeof *w);

    if (!w) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (pgwc_open(&w->conn, conninfo, errstr, errlen)) {
        pgw_free(w);
        return NULL;
    }
    return w;
}

void pgw_free(pgw *w)
{
    if (!w)
        return;
    pgwc_close(&w->conn); /* the server rolls back an open transaction */
    pgws_free(&w->st);
    pgwp_free(&w->pipe);
    free(w);
}

int pgw_ok(pgw *w)
{
    return w && pgwc_ok(&w->conn);
}

const char *pgw_table_name(int table)
{
    static const char *const names[PGW_NTABLES] = {"repositories", "contributors",
                                                   "pull_requests"};

    return table >= 0 && table < PGW_NTABLES ? names[table] : NULL;
}

void pgw_committed_rows(const pgw *w, int64_t rows[PGW_NTABLES])
{
    memcpy(rows, w->committed_rows, sizeof w->committed_rows);
}

int pgw_commit_pending(const pgw *w)
{
    return w && pgwp_pending(&w->pipe);
}

void pgw_on_skip(pgw *w, pgw_skip_fn *on_skip, void *ctx)
{
    w->on_skip = on_skip;
    w->skip_ctx = ctx;
}

/* The open batch failed: only pgw_rollback is left. Returns PGW_EDB. */
static int fail(pgw *w)
{
    if (w->state == PGW_OPEN)
        w->state = PGW_FAILED;
    return PGW_EDB;
}

void pgw_rollback(pgw *w)
{
    if (!w)
        return;
    pgwp_abandon(&w->pipe, &w->conn);
    pgwc_rollback(&w->conn);
    pgws_clear(&w->st);
    w->state = PGW_IDLE;
}

int pgw_reconnect(pgw *w, char *errstr, size_t errlen)
{
    pgwp_forget(&w->pipe);
    pgws_clear(&w->st);
    w->state = PGW_IDLE;
    return pgwc_reset(&w->conn, errstr, errlen);
}

int pgw_migrate(pgw *w, char *errstr, size_t errlen)
{
    if (w->state != PGW_IDLE || pgwp_pending(&w->pipe) || !pgwc_ok(&w->conn)) {
        snprintf(errstr, errlen, "pgw_migrate: %s",
                 !pgwc_ok(&w->conn) ? "connection lost (reconnect first)"
                                    : "a batch is open or a commit in flight");
        return PGW_EDB;
    }
    return pgwm_apply(&w->conn, errstr, errlen);
}

int pgw_begin(pgw *w, char *errstr, size_t errlen)
{
    int pending = pgwp_pending(&w->pipe);

    if (w->state != PGW_IDLE) {
        snprintf(errstr, errlen, "pgw_begin: a batch is already open");
        return PGW_EDB;
    }
    if (!pgwc_ok(&w->conn)) {
        snprintf(errstr, errlen, "pgw_begin: connection lost (reconnect first)");
        return PGW_EDB;
    }
    /* While a commit is in flight, BEGIN waits for its outcome. */
    if (!pending && (pgwc_prepare(&w->conn, errstr, errlen) ||
                     pgwc_begin(&w->conn, errstr, errlen)))
        return PGW_EDB;
    pgws_open(&w->st, pending);
    w->state = PGW_OPEN;
    return PGW_OK;
}

/* Is the batch open for more? Else PGW_EDB with why in errstr. */
static int check_open(const pgw *w, const char *fn, char *errstr, size_t errlen)
{
    if (w->state == PGW_OPEN)
        return PGW_OK;
    snprintf(errstr, errlen, "%s: %s", fn,
             w->state == PGW_FAILED ? "the batch already failed" : "no batch open");
    return PGW_EDB;
}

int pgw_apply(pgw *w, const char *event_name, json_t *data, char *errstr, size_t errlen)
{
    int (*fn)(pgw *, json_t *, char *, size_t);

    if (check_open(w, "pgw_apply", errstr, errlen))
        return PGW_EDB;
    if (pgws_next_event(&w->st) < 0) {
        snprintf(errstr, errlen, "out of memory");
        return fail(w);
    }
    if (!event_name)
        return PGW_OK;
    if (!strcmp(event_name, EVENT_PULL_REQUESTS))
        fn = pgw_apply_pull_requests;
    else if (!strcmp(event_name, EVENT_PROGRESS))
        fn = pgw_apply_progress;
    else
        return PGW_OK; /* not ours: ignored */
    if (!json_is_object(data)) {
        snprintf(errstr, errlen, "data: expected an object");
        return PGW_EBADEVENT;
    }
    switch (fn(w, data, errstr, errlen)) {
    case PGW_OK:
        return PGW_OK;
    case PGW_EBADEVENT:
        return PGW_EBADEVENT;
    default:
        return fail(w);
    }
}

int pgw_set_offset(pgw *w, const char *group, const char *topic, int partition,
                   int64_t next_offset, char *errstr, size_t errlen)
{
    if (check_open(w, "pgw_set_offset", errstr, errlen))
        return PGW_EDB;
    if (!group || !topic || partition < 0 || next_offset < 0) {
        snprintf(errstr, errlen, "pgw_set_offset: invalid group/topic/partition/offset");
        return PGW_EDB;
    }
    /* written with the batch, by pgw_commit_start */
    if (pgws_set_offset(&w->st, group, topic, partition, next_offset) < 0) {
        snprintf(errstr, errlen, "out of memory");
        return fail(w);
    }
    return PGW_OK;
}

int pgw_load_offsets(pgw *w, const char *group, const char *topic, int partition,
                     int64_t *next_offset, char *errstr, size_t errlen)
{
    char pb[24];
    const char *params[3] = {group, topic, pb};
    PGresult *r;
    char *end;
    long long v;
    int rc;

    if (!group || !topic || partition < 0) {
        snprintf(errstr, errlen, "pgw_load_offsets: invalid group/topic/partition");
        return PGW_EDB;
    }
    if (!pgwc_ok(&w->conn) || pgwp_pending(&w->pipe)) {
        snprintf(errstr, errlen, "pgw_load_offsets: %s",
                 pgwc_ok(&w->conn) ? "a commit is in flight" : "connection lost (reconnect first)");
        return PGW_EDB;
    }
    if (w->state == PGW_OPEN && pgws_offset(&w->st, group, topic, partition, next_offset))
        return 0; /* recorded in this batch, not written yet */
    snprintf(pb, sizeof pb, "%d", partition);
    if (pgwc_prepare(&w->conn, errstr, errlen) || /* a no-op inside a batch */
        pgwc_exec(&w->conn, "loading offset", PGW_SQL_OFFSET_GET, 3, params, &r, errstr, errlen))
        return fail(w);
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

int pgw_commit_start(pgw *w, char *errstr, size_t errlen)
{
    int rc = check_open(w, "pgw_commit_start", errstr, errlen);

    if (rc == PGW_OK && pgwp_pending(&w->pipe)) {
        snprintf(errstr, errlen, "pgw_commit_start: a commit is already in flight");
        rc = PGW_EDB;
    }
    if (rc == PGW_OK)
        rc = pgwp_send(&w->pipe, &w->conn, &w->st, errstr, errlen);
    if (rc != PGW_OK) {
        pgw_rollback(w);
        return PGW_EDB;
    }
    w->state = PGW_IDLE;
    return PGW_OK;
}

int pgw_commit_poll(pgw *w, int wait, char *errstr, size_t errlen)
{
    char err[512];
    int rc;

    if (!pgwp_pending(&w->pipe)) {
        snprintf(errstr, errlen, "pgw_commit_poll: no commit in flight");
        return PGW_EDB;
    }
    rc = pgwp_poll(&w->pipe, &w->conn, wait, w->on_skip, w->skip_ctx, w->committed_rows,
                   errstr, errlen);
    if (rc == 1)
        return 1;
    if (rc != PGW_OK)
        return fail(w); /* the batch begun meanwhile cannot start */
    /* Committed: the batch begun meanwhile starts now. A failure there
     * fails that batch, not the one just committed. */
    if (w->state == PGW_OPEN && (pgwc_begin(&w->conn, err, sizeof err) ||
                                 pgws_release(&w->st, &w->conn, err, sizeof err)))
        fail(w);
    return PGW_OK;
}
