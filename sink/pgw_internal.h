/* pgw_internal: what pg_writer.c (connection, transactions, migrations,
 * offsets), pgw_stage.c (staging and the batch statements) and
 * pgw_events.c (decoding the two event types) share. Not part of the
 * public API; nothing outside sink/pg_writer*.c, pgw_*.c includes it. */
#ifndef BACKFILL_PGW_INTERNAL_H
#define BACKFILL_PGW_INTERNAL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_writer.h"
#include "pgw_fields.h"

/* A statement prepared once per connection. */
struct pgw_stmt {
    const char *name; /* prepared-statement name */
    const char *sql;
    int nparams;
};

/* Kinds of staged rows (column `kind` of pg_temp.pgw_stage). */
#define PGW_KIND_HEAD 'h'     /* a pull_requests event: its repository */
#define PGW_KIND_PR 'p'       /* one pull request (and its author) */
#define PGW_KIND_PROGRESS 's' /* a progress.update event: repository and state */

/* An offset pgw_set_offset recorded; written with the batch. */
struct pgw_offset {
    char *group, *topic; /* owned */
    int partition;
    int64_t next;
};

/* One batch's bookkeeping, one entry per pgw_apply call. */
struct pgw_batch {
    char *kinds;    /* owned: PGW_KIND_HEAD / _PROGRESS if staged, else 0 */
    uint64_t *keys; /* owned: progress events: hash of the repository, else 0 */
    size_t n, cap;
    struct pgw_offset *offs; /* owned */
    size_t noffs, offs_cap;
};

struct pgw {
    PGconn *conn;    /* owned */
    char *secret[2]; /* owned: passwords to mask in messages (conninfo, PGPASSWORD), or NULL */
    int prepared;    /* temp table made and statements prepared on this connection */
    int in_txn;      /* a batch is open (pgw_begin .. commit/rollback) */
    int txn_failed;  /* PGW_EDB seen in this batch: only rollback is left */
    int sp_open;     /* savepoint pgw_ev exists in this batch */
    int guarded;     /* a savepoint covers the statements now running */
    int copy_open;   /* COPY pg_temp.pgw_stage FROM STDIN is in progress */
    struct pgw_batch cur; /* the open batch */
    size_t flushed;  /* events of cur before this index are written */
    struct pgwf_buf rows; /* owned: the COPY text of the event being decoded */
    /* pgw_commit_start: the batch whose COMMIT is in flight */
    int pending;     /* its pipeline has not been read to the end */
    struct pgw_batch fly;
    int started;     /* BEGIN sent for cur (not while a commit is in flight) */
    struct pgwf_buf held; /* owned: rows of cur staged before it started */
    size_t nq;       /* statements of the pipeline read so far */
    size_t q_lo, q_hi; /* the batch's own statements among them: [q_lo, q_hi) */
    int q_failed;    /* 0, or PGW_EBADEVENT / PGW_EDB: how the pipeline failed */
    char q_err[512]; /* why */
    /* batching (pgw_defer) */
    int defer;
    pgw_skip_fn *on_skip; /* borrowed */
    void *skip_ctx;       /* borrowed */
    long skipped;         /* events the database refused in this batch */
};

/* Defined in pgw_stage.c: the temp table and the statements that move
 * staged rows into the real tables. */
extern const char pgw_stage_ddl[];
extern const struct pgw_stmt pgw_stage_stmts[];
extern const size_t pgw_stage_nstmts;

/* Defined in pgw_events.c. Validate data (borrowed) completely, write the
 * event's rows as COPY text into w->rows (emptied first) and hand them
 * to pgw_stage. Return PGW_OK, PGW_EBADEVENT (nothing staged) or PGW_EDB,
 * reason in errstr. */
int pgw_apply_pull_requests(pgw *w, json_t *data, char *errstr, size_t errlen);
int pgw_apply_progress(pgw *w, json_t *data, char *errstr, size_t errlen);

/* Defined in pg_writer.c: the index of the event being applied in this
 * batch (column `ev`), and the buffer its rows go to. */
long pgw_event_index(const pgw *w);
struct pgwf_buf *pgw_rows(pgw *w);

/* Defined in pgw_stage.c. Streams the rows in w->rows (COPY text, whole
 * lines) of the current event, of the given kind, into the staging table,
 * opening the COPY if needed (or holds them while a commit is in flight).
 * key: for a progress event, a hash of its repository (see
 * pgw_progress_rounds). Returns PGW_OK or PGW_EDB. */
int pgw_stage(pgw *w, int kind, uint64_t key, char *errstr, size_t errlen);

/* Defined in pgw_stage.c: starts COPY and sends it w->held. */
int pgw_stage_held(pgw *w, char *errstr, size_t errlen);

/* Defined in pgw_stage.c. Ends the COPY if one is open (statements cannot
 * run while it is). Returns PGW_OK or PGW_EDB. */
int pgw_copy_end(pgw *w, char *errstr, size_t errlen);

/* Defined in pgw_stage.c. Aborts an open COPY (best effort). */
void pgw_copy_abort(pgw *w);

/* Defined in pgw_stage.c. Queues (pipeline mode) SAVEPOINT pgw_batch and
 * the statements that write the staged events [from, to) of b at once;
 * *nsent: how many. PGW_OK or PGW_EDB. */
int pgw_send_events(pgw *w, const struct pgw_batch *b, size_t from, size_t to, size_t *nsent,
                    char *errstr, size_t errlen);

/* Defined in pgw_stage.c. Writes staged events [from, to) of b, each under
 * its own savepoint (skipping and reporting those refused) if each is set,
 * else all at once under savepoint pgw_batch (PGW_EBADEVENT: refused,
 * rolled back to the savepoint). */
int pgw_write_events(pgw *w, const struct pgw_batch *b, size_t from, size_t to, int each,
                     char *errstr, size_t errlen);

/* Defined in pgw_pipe.c: pgw_set_offset's records of b, written. */
int pgw_write_offsets(pgw *w, const struct pgw_batch *b, char *errstr, size_t errlen);

/* Defined in pgw_pipe.c: b's bookkeeping. pgw_batch_add gives the next
 * event an entry (nothing staged), -1 if out of memory;
 * pgw_batch_set_offset records an offset (-1 if out of memory),
 * pgw_batch_offset finds one (1, *next set; 0 none); pgw_batch_clear
 * forgets events and offsets (keeps memory), pgw_batch_free frees. */
int pgw_batch_add(struct pgw_batch *b);
int pgw_batch_set_offset(struct pgw_batch *b, const char *group, const char *topic,
                         int partition, int64_t next);
int pgw_batch_offset(const struct pgw_batch *b, const char *group, const char *topic,
                     int partition, int64_t *next);
void pgw_batch_clear(struct pgw_batch *b);
void pgw_batch_free(struct pgw_batch *b);

/* Defined in pgw_pipe.c: reads an in-flight commit's pipeline to its end
 * and forgets it (outcome unknown to the caller). */
void pgw_pipe_abandon(pgw *w);

/* Defined in pgw_stage.c. Writes every staged event not yet written to
 * the real tables. Batching (pgw_defer): all of them with one statement
 * per table; if the database refuses one of them, each event again under
 * its own savepoint, reporting those refused to the skip handler. Not
 * batching: the one event under its savepoint; PGW_EBADEVENT when it is
 * refused. Returns PGW_OK, PGW_EBADEVENT or PGW_EDB. */
int pgw_flush(pgw *w, char *errstr, size_t errlen);

/* Defined in pg_writer.c. Runs simple-protocol SQL whose result rows, if
 * any, do not matter. PGW_OK or PGW_EDB (no state change). */
int pgw_cmd(pgw *w, const char *sql, const char *what, char *errstr, size_t errlen);

/* Defined in pg_writer.c. Opens this event's savepoint (releasing the
 * previous event's). Returns PGW_OK or PGW_EDB. */
int pgw_savepoint(pgw *w, char *errstr, size_t errlen);

/* Defined in pg_writer.c. Runs prepared statement stmt with nparams text
 * parameters (NULL = SQL NULL). what names it in messages. On PGW_OK, if
 * res is not NULL, *res is the result (owned by the caller: PQclear). On
 * failure *res is NULL and the SQLSTATE decides: data and constraint
 * errors (classes 21, 22, 23, 54) under a savepoint (w->guarded) are
 * PGW_EBADEVENT, all else PGW_EDB. */
int pgw_exec(pgw *w, const char *what, const char *stmt, int nparams, const char *const *params,
             PGresult **res, char *errstr, size_t errlen);

/* Defined in pg_writer.c: "prefix: reason [SQLSTATE]" of a failed result
 * into errstr, secrets masked. */
void pgw_result_error(const pgw *w, const PGresult *r, char *errstr, size_t errlen,
                      const char *what);

#endif
