/* pgw_pipe: a batch's bookkeeping (its events and offsets) and the
 * commit that does not wait (pgw_commit_start / pgw_commit_poll).
 *
 * pgw_commit_start sends, in libpq's pipeline mode and without reading a
 * result: SAVEPOINT pgw_batch, the statements that write the staged
 * events at once and the offset upserts, then a sync. While the server
 * works, the caller goes on decoding the next batch: its rows are held in
 * memory (w->held) and streamed into COPY once the commit is known, right
 * after its BEGIN. So client and server work at the same time instead of
 * taking turns.
 *
 * COMMIT is not part of the pipeline: pgw_commit_poll sends it once it has
 * read every statement's success, and waits for it. Were it queued behind
 * them, a server session whose sink died (kill -9) while a statement
 * waited for a lock would still commit the batch afterwards, behind the
 * back of the restarted sink; this way such a session finds no COMMIT and
 * rolls back, as with pgw_commit.
 *
 * If a statement fails, Postgres skips the rest of the pipeline and the
 * transaction stays open in the failed state. A data error in one of the
 * batch's statements is then handled as in pgw_commit: ROLLBACK TO
 * SAVEPOINT pgw_batch, every event again under its own savepoint (refused
 * ones reported), the offsets -- synchronously, inside pgw_commit_poll.
 * Any other failure loses the batch (PGW_EDB). */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgw_internal.h"

#define OFFSET_STMT "pgw_offset_set"

int pgw_batch_add(struct pgw_batch *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char *k = realloc(b->kinds, cap);
        uint64_t *h;

        if (!k)
            return -1;
        b->kinds = k;
        if (!(h = realloc(b->keys, cap * sizeof *h)))
            return -1;
        b->keys = h;
        b->cap = cap;
    }
    b->kinds[b->n] = 0;
    b->keys[b->n++] = 0;
    return 0;
}

void pgw_batch_clear(struct pgw_batch *b)
{
    size_t i;

    for (i = 0; i < b->noffs; i++) {
        free(b->offs[i].group);
        free(b->offs[i].topic);
    }
    b->n = b->noffs = 0;
}

void pgw_batch_free(struct pgw_batch *b)
{
    pgw_batch_clear(b);
    free(b->kinds);
    free(b->keys);
    free(b->offs);
    memset(b, 0, sizeof *b);
}

static struct pgw_offset *find_offset(const struct pgw_batch *b, const char *group,
                                      const char *topic, int partition)
{
    size_t i;

    for (i = 0; i < b->noffs; i++)
        if (b->offs[i].partition == partition && !strcmp(b->offs[i].group, group) &&
            !strcmp(b->offs[i].topic, topic))
            return &b->offs[i];
    return NULL;
}

int pgw_batch_offset(const struct pgw_batch *b, const char *group, const char *topic,
                     int partition, int64_t *next)
{
    const struct pgw_offset *o = find_offset(b, group, topic, partition);

    if (o)
        *next = o->next;
    return o != NULL;
}

int pgw_batch_set_offset(struct pgw_batch *b, const char *group, const char *topic,
                         int partition, int64_t next)
{
    struct pgw_offset *o = find_offset(b, group, topic, partition);

    if (o) {
        o->next = next;
        return 0;
    }
    if (b->noffs == b->offs_cap) {
        size_t cap = b->offs_cap ? b->offs_cap * 2 : 16;

        if (!(o = realloc(b->offs, cap * sizeof *o)))
            return -1;
        b->offs = o;
        b->offs_cap = cap;
    }
    o = &b->offs[b->noffs];
    o->group = strdup(group);
    o->topic = strdup(topic);
    if (!o->group || !o->topic) {
        free(o->group);
        free(o->topic);
        return -1;
    }
    o->partition = partition;
    o->next = next;
    b->noffs++;
    return 0;
}

/* Runs (or queues, pipe) the offset upserts of b. */
static int offsets(pgw *w, int pipe, const struct pgw_batch *b, char *errstr, size_t errlen)
{
    size_t i;

    for (i = 0; i < b->noffs; i++) {
        char pb[24], ob[24];
        const char *p[4] = {b->offs[i].group, b->offs[i].topic, pb, ob};
        int rc;

        snprintf(pb, sizeof pb, "%d", b->offs[i].partition);
        snprintf(ob, sizeof ob, "%lld", (long long)b->offs[i].next);
        if (!pipe) {
            if ((rc = pgw_exec(w, "storing offset", OFFSET_STMT, 4, p, NULL, errstr, errlen)))
                return rc;
        } else if (!PQsendQueryPrepared(w->conn, OFFSET_STMT, 4, p, NULL, NULL, 0)) {
            pgw_result_error(w, NULL, errstr, errlen, "storing offset");
            return PGW_EDB;
        }
    }
    return PGW_OK;
}

int pgw_write_offsets(pgw *w, const struct pgw_batch *b, char *errstr, size_t errlen)
{
    return offsets(w, 0, b, errstr, errlen);
}

/* Queues everything of the open batch but COMMIT, and a sync. */
static int send_all(pgw *w, char *errstr, size_t errlen)
{
    size_t n;

    if (!PQenterPipelineMode(w->conn)) {
        pgw_result_error(w, NULL, errstr, errlen, "entering pipeline mode");
        return PGW_EDB;
    }
    if (pgw_send_events(w, &w->cur, w->flushed, w->cur.n, &n, errstr, errlen) ||
        offsets(w, 1, &w->cur, errstr, errlen))
        return PGW_EDB;
    w->q_lo = n ? 1 : 0; /* after SAVEPOINT pgw_batch */
    w->q_hi = n;
    if (!PQpipelineSync(w->conn)) {
        pgw_result_error(w, NULL, errstr, errlen, "sending the batch");
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgw_commit_start(pgw *w, char *errstr, size_t errlen)
{
    struct pgw_batch t;

    if (!w->in_txn || w->txn_failed || !w->defer || w->pending || !w->started) {
        snprintf(errstr, errlen, "pgw_commit_start: %s",
                 !w->in_txn ? "no batch open" : w->txn_failed ? "the batch already failed"
                                                               : "not possible now");
        pgw_rollback(w);
        return PGW_EDB;
    }
    if (pgw_copy_end(w, errstr, errlen) || send_all(w, errstr, errlen)) {
        pgw_rollback(w);
        return PGW_EDB;
    }
    t = w->fly; /* the open batch is now the one in flight */
    w->fly = w->cur;
    w->cur = t;
    pgw_batch_clear(&w->cur);
    w->flushed = 0;
    w->nq = 0;
    w->q_failed = 0;
    w->pending = 1;
    w->in_txn = w->started = w->sp_open = 0;
    return PGW_OK;
}

/* One result of the pipeline: notes the first failure. */
static void take(pgw *w, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    const char *state;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || w->q_failed)
        return;
    state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    pgw_result_error(w, r, w->q_err, sizeof w->q_err,
                     w->nq >= w->q_lo && w->nq < w->q_hi ? "batch write" : "savepoint or offsets");
    w->q_failed = PGW_EDB;
    if (w->nq >= w->q_lo && w->nq < w->q_hi && state && PQstatus(w->conn) == CONNECTION_OK &&
        (!strncmp(state, "21", 2) || !strncmp(state, "22", 2) || !strncmp(state, "23", 2) ||
         !strncmp(state, "54", 2)))
        w->q_failed = PGW_EBADEVENT;
}

/* Reads the pipeline up to its sync. 1: not there yet (only if !wait),
 * 0: read (w->q_failed says how it went), PGW_EDB: connection lost. */
static int read_pipeline(pgw *w, int wait, char *errstr, size_t errlen)
{
    PGresult *r;

    for (;;) {
        if (!wait && (!PQconsumeInput(w->conn) || PQisBusy(w->conn))) {
            if (PQstatus(w->conn) == CONNECTION_OK)
                return 1;
            pgw_result_error(w, NULL, errstr, errlen, "reading the batch's results");
            return PGW_EDB;
        }
        if (!(r = PQgetResult(w->conn))) {
            w->nq++; /* end of one statement's results */
            if (PQstatus(w->conn) != CONNECTION_OK) {
                pgw_result_error(w, NULL, errstr, errlen, "reading the batch's results");
                return PGW_EDB;
            }
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            if (PQexitPipelineMode(w->conn))
                return 0;
            pgw_result_error(w, NULL, errstr, errlen, "leaving pipeline mode");
            return PGW_EDB;
        }
        take(w, r);
        PQclear(r);
    }
}

/* The batch statements were refused: as pgw_commit does, each event
 * alone, then the offsets. */
static int redo_each(pgw *w, char *errstr, size_t errlen)
{
    if (pgw_cmd(w, "ROLLBACK TO SAVEPOINT pgw_batch", "rollback to savepoint", errstr, errlen) ||
        pgw_write_events(w, &w->fly, 0, w->fly.n, 1, errstr, errlen) ||
        pgw_write_offsets(w, &w->fly, errstr, errlen))
        return PGW_EDB;
    return PGW_OK;
}

/* COMMIT, now that every statement of the batch is known to have worked.
 * An aborted transaction answers with the tag ROLLBACK. */
static int commit_now(pgw *w, char *errstr, size_t errlen)
{
    PGresult *r = PQexec(w->conn, "COMMIT");
    int ok;

    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok)
        pgw_result_error(w, r, errstr, errlen, "COMMIT");
    PQclear(r);
    return ok ? PGW_OK : PGW_EDB;
}

/* The commit is known: begins the batch opened meanwhile, if any. A
 * failure there fails that batch, not the one just committed. */
static void start_next(pgw *w)
{
    char err[512];

    if (!w->in_txn)
        return;
    if (pgw_cmd(w, "BEGIN ISOLATION LEVEL READ COMMITTED", "BEGIN", err, sizeof err) ||
        (w->started = 1, pgw_stage_held(w, err, sizeof err)))
        w->txn_failed = 1;
}

int pgw_commit_poll(pgw *w, int wait, char *errstr, size_t errlen)
{
    int rc;

    if (!w->pending) {
        snprintf(errstr, errlen, "pgw_commit_poll: no commit in flight");
        return PGW_EDB;
    }
    if ((rc = read_pipeline(w, wait, errstr, errlen)) == 1)
        return 1;
    w->pending = 0;
    if (rc == 0 && w->q_failed == PGW_EBADEVENT) {
        w->skipped = 0;
        rc = redo_each(w, errstr, errlen);
    } else if (rc == 0 && w->q_failed) {
        snprintf(errstr, errlen, "%s", w->q_err);
        rc = PGW_EDB;
    }
    if (rc == 0)
        rc = commit_now(w, errstr, errlen);
    if (rc != PGW_OK) {
        if (pgw_ok(w) && PQpipelineStatus(w->conn) == PQ_PIPELINE_OFF &&
            PQtransactionStatus(w->conn) != PQTRANS_IDLE)
            PQclear(PQexec(w->conn, "ROLLBACK"));
        pgw_batch_clear(&w->fly);
        w->txn_failed = w->in_txn; /* the batch begun meanwhile cannot start */
        return PGW_EDB;
    }
    pgw_batch_clear(&w->fly);
    start_next(w);
    return PGW_OK;
}

int pgw_commit_pending(const pgw *w)
{
    return w && w->pending;
}

void pgw_pipe_abandon(pgw *w)
{
    char err[64];

    if (!w->pending)
        return;
    if (pgw_ok(w))
        read_pipeline(w, 1, err, sizeof err);
    if (PQpipelineStatus(w->conn) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(w->conn);
    w->pending = 0;
    pgw_batch_clear(&w->fly);
}
