/* pgw_pipe: see pgw_pipe.h.
 *
 * pgwp_send queues, in libpq's pipeline mode and without reading a
 * result: SAVEPOINT pgw_batch, the statements that write the staged
 * events at once and the offset upserts, then a sync. While the server
 * works, the caller goes on decoding the next batch (its rows are held in
 * memory, see pgws_open, and streamed into COPY once the commit is known,
 * right after its BEGIN). So client and server work at the same time
 * instead of taking turns.
 *
 * COMMIT is not part of the pipeline: pgwp_poll sends it once it has read
 * every statement's success, and waits for it. Were it queued behind
 * them, a server session whose sink died (kill -9) while a statement
 * waited for a lock would still commit the batch afterwards, behind the
 * back of the restarted sink; this way such a session finds no COMMIT and
 * rolls back.
 *
 * If a statement fails, Postgres skips the rest of the pipeline and the
 * transaction stays open in the failed state. A data error in one of the
 * batch's own writes (pgwc_is_data_error) is then handled here: ROLLBACK
 * TO SAVEPOINT pgw_batch, every event again under its own savepoint
 * (refused ones reported and skipped), the offsets, COMMIT. Any other
 * failure loses the batch (PGW_EDB). */
#include "pgw_pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pgwp_send(struct pgw_pipe *p, struct pgw_conn *c, struct pgw_stage *s, char *errstr,
              size_t errlen)
{
    size_t n;

    if (pgwc_pipeline_begin(c, errstr, errlen) ||
        pgws_send_events(c, &s->cur, &n, errstr, errlen) ||
        pgws_offsets(c, 1, &s->cur, errstr, errlen) || pgwc_pipeline_sync(c, errstr, errlen))
        return PGW_EDB;
    pgws_take(s, &p->fly);
    p->q_lo = n ? 1 : 0; /* after SAVEPOINT pgw_batch */
    p->q_hi = n;
    p->nq = 0;
    p->q_failed = 0;
    p->q_err[0] = '\0';
    memset(p->rows, 0, sizeof p->rows);
    p->pending = 1;
    return PGW_OK;
}

/* One result of the pipeline: counts the rows a write changed, notes
 * the first failure. */
static void take(struct pgw_pipe *p, const struct pgw_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int own = p->nq >= p->q_lo && p->nq < p->q_hi;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        int table = own ? pgws_statement_table(&p->fly, 0, p->fly.n, p->nq - p->q_lo) : -1;
        if (table >= 0)
            p->rows[table] += strtoll(PQcmdTuples(r), NULL, 10);
        return;
    }
    if (p->q_failed)
        return;
    pgwc_error(c, r, own ? "batch write" : "savepoint or offsets", p->q_err, sizeof p->q_err);
    p->q_failed = own && pgwc_is_data_error(c, r) ? PGW_EBADEVENT : PGW_EDB;
}

/* Reads the pipeline up to its sync. 1: not there yet (only if !wait),
 * 0: read (p->q_failed says how it went), PGW_EDB: connection lost. */
static int read_pipeline(struct pgw_pipe *p, struct pgw_conn *c, int wait, char *errstr,
                         size_t errlen)
{
    PGresult *r;

    for (;;) {
        switch (pgwc_pipeline_next(c, wait, &r, errstr, errlen)) {
        case PGWC_SYNC:
            return 0;
        case PGWC_WAIT:
            return 1;
        case PGWC_END:
            p->nq++;
            break;
        case PGWC_RESULT:
            take(p, c, r);
            PQclear(r);
            break;
        default:
            return PGW_EDB;
        }
    }
}

int pgwp_poll(struct pgw_pipe *p, struct pgw_conn *c, int wait, pgw_skip_fn *on_skip, void *ctx,
              int64_t rows[PGW_NTABLES], char *errstr, size_t errlen)
{
    int rc;

    if (!p->pending) {
        snprintf(errstr, errlen, "no commit in flight");
        return PGW_EDB;
    }
    if ((rc = read_pipeline(p, c, wait, errstr, errlen)) == 1)
        return 1;
    p->pending = 0;
    if (rc == 0 && p->q_failed == PGW_EBADEVENT) {
        /* as if each event had been written alone: only those rows count */
        memset(p->rows, 0, sizeof p->rows);
        if (pgwc_cmd(c, "ROLLBACK TO SAVEPOINT pgw_batch", "rollback to savepoint", errstr,
                     errlen) ||
            pgws_write_each(c, &p->fly, on_skip, ctx, p->rows, errstr, errlen) ||
            pgws_offsets(c, 0, &p->fly, errstr, errlen))
            rc = PGW_EDB;
    } else if (rc == 0 && p->q_failed) {
        snprintf(errstr, errlen, "%s", p->q_err);
        rc = PGW_EDB;
    }
    if (rc == 0)
        rc = pgwc_commit(c, errstr, errlen);
    if (rc != PGW_OK)
        pgwc_rollback(c);
    else
        memcpy(rows, p->rows, sizeof p->rows);
    pgws_batch_clear(&p->fly);
    return rc == PGW_OK ? PGW_OK : PGW_EDB;
}

int pgwp_pending(const struct pgw_pipe *p)
{
    return p->pending;
}

void pgwp_abandon(struct pgw_pipe *p, struct pgw_conn *c)
{
    char err[64];

    if (p->pending && pgwc_ok(c))
        read_pipeline(p, c, 1, err, sizeof err);
    pgwp_forget(p);
}

void pgwp_forget(struct pgw_pipe *p)
{
    p->pending = 0;
    pgws_batch_clear(&p->fly);
}

void pgwp_free(struct pgw_pipe *p)
{
    pgws_batch_free(&p->fly);
    memset(p, 0, sizeof *p);
}
