/* pgw_stage: the middle layer of pg_writer -- the record of the batch
 * being filled (what each event staged, the offsets to store) and the
 * staging of its rows: streamed with COPY into the temporary table while
 * the batch fills, then written to the real tables by the statements of
 * schemas/pg_writer/, either all events at once (queued in a pipeline) or each
 * event alone under its own savepoint. Calls pgw_conn only. Internal to
 * pg_writer. */
#ifndef BACKFILL_PGW_STAGE_H
#define BACKFILL_PGW_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "pg_writer.h"
#include "pgw_conn.h"
#include "pgw_fields.h"

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

/* One batch's record: an entry per pgw_apply call, and its offsets. */
struct pgw_batch {
    char *kinds;    /* owned: PGW_KIND_HEAD / _PROGRESS if staged, else 0 */
    uint64_t *keys; /* owned: progress events: hash of the repository, else 0 */
    size_t n, cap;
    struct pgw_offset *offs; /* owned */
    size_t noffs, offs_cap;
};

/* Forgets b's events and offsets (keeps its memory). */
void pgws_batch_clear(struct pgw_batch *b);

/* Frees what b holds and zeroes it. */
void pgws_batch_free(struct pgw_batch *b);

/* The staging side of the open batch. Every field is read and written by
 * pgw_stage.c only; start from all zero. */
struct pgw_stage {
    struct pgw_batch cur; /* owned: the batch being filled */
    struct pgwf_buf rows; /* owned: COPY text of the event being decoded */
    struct pgwf_buf held; /* owned: rows of cur staged while holding */
    int holding;          /* no transaction to COPY into yet: rows wait in held */
};

/* Starts recording a new batch (forgetting the last one). hold: its rows
 * wait in memory until pgws_release (the previous batch's COMMIT is still
 * in flight, so there is no transaction for them yet). */
void pgws_open(struct pgw_stage *s, int hold);

/* Streams the rows held so far into COPY (inside the batch's transaction,
 * now begun) and stops holding. PGW_OK or PGW_EDB. */
int pgws_release(struct pgw_stage *s, struct pgw_conn *c, char *errstr, size_t errlen);

/* Gives the next event of the batch an entry (nothing staged yet). 0, or
 * -1 if out of memory. */
int pgws_next_event(struct pgw_stage *s);

/* Records that (group, topic, partition) is consumed up to next in this
 * batch (overwriting an earlier record). Strings are copied. 0, or -1 if
 * out of memory. */
int pgws_set_offset(struct pgw_stage *s, const char *group, const char *topic, int partition,
                    int64_t next);

/* The offset recorded for (group, topic, partition) in this batch: 1 and
 * *next set, or 0 (none; *next untouched). */
int pgws_offset(const struct pgw_stage *s, const char *group, const char *topic, int partition,
                int64_t *next);

/* Moves the batch's record into *into (whose old content is cleared and
 * becomes the stage's, empty). The stage then has no batch. */
void pgws_take(struct pgw_stage *s, struct pgw_batch *into);

/* Forgets the batch and its rows (keeps memory). */
void pgws_clear(struct pgw_stage *s);

/* Frees what s holds and zeroes it. */
void pgws_free(struct pgw_stage *s);

/* For pgw_events.c (their names and types are fixed: tests/fuzz stubs
 * them). pgw_event_index: the index of the event being applied in the
 * batch (column `ev`); pgw_rows: the buffer its rows go to (borrowed);
 * pgw_stage: streams those rows (COPY text, whole lines), of the given
 * kind, into the staging table, or holds them (see pgws_open); key: for
 * a progress event, a hash of its repository. PGW_OK or PGW_EDB. */
long pgw_event_index(const pgw *w);
struct pgwf_buf *pgw_rows(pgw *w);
int pgw_stage(pgw *w, int kind, uint64_t key, char *errstr, size_t errlen);

/* Queues (pipeline mode) SAVEPOINT pgw_batch and the statements that
 * write every staged event of b at once; *nsent: how many were queued
 * (0 when b staged nothing). PGW_OK or PGW_EDB. */
int pgws_send_events(struct pgw_conn *c, const struct pgw_batch *b, size_t *nsent, char *errstr,
                     size_t errlen);

/* Writes each staged event of b alone, under its own savepoint; an event
 * the database refuses is undone and reported to on_skip (may be NULL;
 * ctx is handed to it) with its index. Adds the rows the events that
 * landed inserted or changed to rows (enum pgw_table). PGW_OK, or PGW_EDB
 * (the transaction is lost). */
int pgws_write_each(struct pgw_conn *c, const struct pgw_batch *b, pgw_skip_fn *on_skip,
                    void *ctx, int64_t rows[PGW_NTABLES], char *errstr, size_t errlen);

/* The table (enum pgw_table) whose rows the stmt-th statement (0-based)
 * that writes the staged events [from, to) of b inserts or changes, so
 * that its command tag counts them; -1 for a statement whose answer is
 * not such a count (the progress rounds) or past the last one. */
int pgws_statement_table(const struct pgw_batch *b, size_t from, size_t to, size_t stmt);

/* The offset upserts of b: queued (pipe != 0, pipeline mode) or run now.
 * PGW_OK or PGW_EDB. */
int pgws_offsets(struct pgw_conn *c, int pipe, const struct pgw_batch *b, char *errstr,
                 size_t errlen);

#endif
