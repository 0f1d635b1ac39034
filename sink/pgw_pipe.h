/* pgw_pipe: the third layer of pg_writer -- the commit that does not
 * wait. Sends a filled batch's writes and offsets in one libpq pipeline,
 * then learns the outcome and sends COMMIT (see pgw_pipe.c for the
 * protocol). Calls pgw_stage and pgw_conn. Internal to pg_writer. */
#ifndef BACKFILL_PGW_PIPE_H
#define BACKFILL_PGW_PIPE_H

#include <stddef.h>

#include "pg_writer.h"
#include "pgw_conn.h"
#include "pgw_stage.h"

/* The batch in flight. Every field is read and written by pgw_pipe.c
 * only; start from all zero. */
struct pgw_pipe {
    int pending;          /* its pipeline has not been read to the end */
    struct pgw_batch fly; /* owned: its record */
    size_t nq;            /* statements of the pipeline read so far */
    size_t q_lo, q_hi;    /* the batch's own writes among them: [q_lo, q_hi) */
    int q_failed;         /* 0, or PGW_EBADEVENT / PGW_EDB: how the pipeline failed */
    char q_err[512];      /* why */
    int64_t rows[PGW_NTABLES]; /* rows its writes inserted or changed so far, per table */
};

/* Sends the batch staged in s (inside the open transaction; nothing in
 * flight): ends its COPY, queues its writes and offsets and a sync, and
 * takes its record (s is left with no batch). PGW_OK, or PGW_EDB (the
 * transaction is lost: roll back). */
int pgwp_send(struct pgw_pipe *p, struct pgw_conn *c, struct pgw_stage *s, char *errstr,
              size_t errlen);

/* The outcome of the batch in flight. 1: not known yet (only when
 * wait == 0). PGW_OK: committed; events the database refused were
 * written again one by one without them, and reported to on_skip (may be
 * NULL; ctx is handed to it) with their index in that batch; rows (enum
 * pgw_table) is set to the rows the batch inserted or changed. PGW_EDB:
 * not committed (outcome unknown if the connection died); the transaction
 * is rolled back, rows untouched. Either way nothing is in flight
 * afterwards. */
int pgwp_poll(struct pgw_pipe *p, struct pgw_conn *c, int wait, pgw_skip_fn *on_skip, void *ctx,
              int64_t rows[PGW_NTABLES], char *errstr, size_t errlen);

/* 1 while a batch is in flight, else 0. */
int pgwp_pending(const struct pgw_pipe *p);

/* Reads the pipeline of the batch in flight to its end, if the
 * connection is alive, and forgets the batch (its outcome stays unknown:
 * the server rolls it back unless pgwp_poll sent COMMIT). */
void pgwp_abandon(struct pgw_pipe *p, struct pgw_conn *c);

/* Forgets the batch in flight without reading anything (the connection
 * is about to be dropped). */
void pgwp_forget(struct pgw_pipe *p);

/* Frees what p holds and zeroes it. */
void pgwp_free(struct pgw_pipe *p);

#endif
