/* pg_writer: the Postgres side of backfill-sink.
 *
 * Takes decoded `data` objects of backfill events and writes them to the
 * tables of schemas/migrations/ (repositories, contributors, pull_requests,
 * progressive_backfill_state, backfill_chunks) together with the Kafka
 * offsets they came from (kafka_offsets), one transaction per batch:
 *
 *     pgw_begin
 *     pgw_apply            (per event; PGW_EBADEVENT: log, skip, go on)
 *     pgw_set_offset       (per partition touched: offset of last msg + 1)
 *     pgw_commit_start     (sends the batch; returns without waiting)
 *     ...                  (the next batch may be begun and filled)
 *     pgw_commit_poll      (the outcome; COMMIT is sent only here)
 *
 * pgw_apply only validates an event and streams its rows (COPY) into a
 * temporary staging table; the batch's events are written with one
 * statement per table when the commit is sent, and only if the database
 * refuses some of them are they written one by one, each under its own
 * savepoint: those refused are reported to the skip handler (pgw_on_skip),
 * the others land.
 *
 * Any PGW_EDB along the way means: pgw_rollback, then (if !pgw_ok)
 * pgw_reconnect with backoff, reload the offsets with pgw_load_offsets,
 * seek the consumer there and consume the batch again. Because the offsets
 * commit atomically with the rows, every event takes effect exactly once;
 * and every write is idempotent anyway (replays change nothing visible).
 *
 * It knows nothing of Kafka's client library: group/topic/partition/offset
 * are plain values. Input is hostile: every JSON field is type-checked;
 * text Postgres cannot store (NUL, invalid UTF-8) is cleaned, never fatal.
 * The connection string may hold a password: it is never copied into an
 * error message.
 *
 * Not thread-safe: one pgw per thread. */
#ifndef BACKFILL_PG_WRITER_H
#define BACKFILL_PG_WRITER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum {
    PGW_OK = 0,
    /* The event is invalid (bad field, value Postgres refuses). Its writes
     * were undone (savepoint); the transaction goes on. Log and skip it. */
    PGW_EBADEVENT = -1,
    /* Connection lost or a database error unrelated to one event (also:
     * API misuse). The transaction is lost: pgw_rollback, pgw_reconnect if
     * !pgw_ok, and redo the whole batch from the offsets in Postgres. */
    PGW_EDB = -2,
};

typedef struct pgw pgw;

/* The tables whose written rows a committed batch counts (for the sink's
 * metrics): the three an upsert of one statement per batch writes. The
 * backfill state and chunk rows are written by a statement whose answer
 * is not a row count, so they are not counted. */
enum pgw_table {
    PGW_TABLE_REPOSITORIES = 0,
    PGW_TABLE_CONTRIBUTORS,
    PGW_TABLE_PULL_REQUESTS,
    PGW_NTABLES
};

/* Told about an event the database refused when its batch was written (a
 * value Postgres rejects, a constraint violated): event is the 0-based
 * index of its pgw_apply call in that batch, why the reason. Its writes
 * are undone, the rest of the batch lands. */
typedef void pgw_skip_fn(void *ctx, size_t event, const char *why);

/* Connects (common/pg_conn: application name backfill-sink). conninfo is a
 * libpq connection string, a postgres:// URI, or a bare database name
 * (NULL or "" = libpq defaults and PG* environment). Forces
 * client_encoding UTF8; connect_timeout defaults to 10 s. Returns a new
 * writer (pgw_free it), or NULL with a reason in errstr that never
 * contains the password. Does not touch the schema (see pgw_migrate). */
pgw *pgw_new(const char *conninfo, char *errstr, size_t errlen);

/* Closes the connection (rolling back an open transaction). NULL is a
 * no-op. */
void pgw_free(pgw *w);

/* Applies the migrations compiled into the binary that the database has
 * not recorded in schema_migrations yet, all in one transaction under an
 * advisory lock (concurrent sinks wait for each other). Must be called
 * outside a batch, with no commit in flight. Returns the number of migrations applied (0 when up to
 * date), or PGW_EDB with a reason (nothing applied). */
int pgw_migrate(pgw *w, char *errstr, size_t errlen);

/* Reads the stored position of (group, topic, partition). Returns 0 and
 * sets *next_offset (the next message to consume), 1 if none is stored
 * (*next_offset untouched), or PGW_EDB (also while a commit is in
 * flight). Usable inside or outside a batch (inside, it sees the batch's
 * own pgw_set_offset). */
int pgw_load_offsets(pgw *w, const char *group, const char *topic, int partition,
                     int64_t *next_offset, char *errstr, size_t errlen);

/* Starts a batch (BEGIN, READ COMMITTED; while a commit is in flight,
 * BEGIN follows once it is known and the batch's rows wait in memory).
 * Prepares the statements first if this connection has not yet (so the
 * schema must exist). Returns PGW_OK or PGW_EDB (no batch open then). */
int pgw_begin(pgw *w, char *errstr, size_t errlen);

/* Applies one event's data object (borrowed, not modified) inside the
 * batch. event_name is the envelope's name:
 *   "backfill/pull_requests"   upserts repository, authors, pull requests
 *   "backfill/progress.update" upserts repository, the backfill state (only
 *                              if newer than the stored one) and a
 *                              backfill_chunks row for processing chunks
 *   anything else              ignored: PGW_OK, nothing written
 * Returns PGW_OK (valid and staged: the database judges it when the
 * batch is written, see pgw_skip_fn), PGW_EBADEVENT (invalid, reason in
 * errstr; nothing staged, the batch goes on) or PGW_EDB (reason in errstr;
 * the batch is lost). */
int pgw_apply(pgw *w, const char *event_name, json_t *data, char *errstr, size_t errlen);

/* Sets who is told about events the database refuses (see pgw_skip_fn):
 * on_skip (NULL: nobody) and ctx are borrowed and handed over for every
 * batch whose outcome pgw_commit_poll learns from now on. */
void pgw_on_skip(pgw *w, pgw_skip_fn *on_skip, void *ctx);

/* Records, inside the batch, that (group, topic, partition) is consumed up
 * to next_offset (exclusive). Overwrites whatever was stored. Returns
 * PGW_OK or PGW_EDB; PGW_EDB also for partition < 0 or next_offset < 0. */
int pgw_set_offset(pgw *w, const char *group, const char *topic, int partition,
                   int64_t next_offset, char *errstr, size_t errlen);

/* Sends the open batch's writes and offsets (one libpq pipeline) and
 * returns without waiting: the caller decodes the next batch while the
 * server works. pgw_commit_poll sends COMMIT once they all worked (never
 * before: a session whose sink died must not commit) and tells the
 * outcome. Until then only pgw_begin, pgw_apply, pgw_set_offset (the next
 * batch: its rows wait in memory and go out once the commit is known),
 * pgw_commit_poll, pgw_commit_pending, pgw_rollback, pgw_ok and
 * pgw_reconnect may be called; anything else is PGW_EDB. Returns PGW_OK
 * (sent; no batch open) or PGW_EDB (the batch is rolled back; no batch
 * open). */
int pgw_commit_start(pgw *w, char *errstr, size_t errlen);

/* The outcome of pgw_commit_start. 1: still in flight (only when wait is
 * 0). PGW_OK: committed and durable; events Postgres refused were
 * reported to the skip handler (indexes of that batch), and a batch begun
 * meanwhile has started. PGW_EDB: rolled back -- or, if the connection
 * died during COMMIT, its outcome is unknown; either way reload offsets
 * with pgw_load_offsets (after pgw_reconnect) and continue from there; the
 * batch begun meanwhile is lost too (pgw_rollback). Also PGW_EDB when
 * nothing is in flight. wait != 0 blocks until the outcome is known. */
int pgw_commit_poll(pgw *w, int wait, char *errstr, size_t errlen);

/* The table's name as Postgres knows it ("pull_requests"), for table in
 * enum pgw_table; NULL otherwise. */
const char *pgw_table_name(int table);

/* Rows of each table (enum pgw_table) the last batch pgw_commit_poll
 * reported committed (PGW_OK) inserted or changed: an upsert that found a
 * row as it was (a replayed or stale event) counts nothing, and neither
 * does an event Postgres refused. All zero before the first commit. */
void pgw_committed_rows(const pgw *w, int64_t rows[PGW_NTABLES]);

/* 1 while a pgw_commit_start is in flight, else 0. */
int pgw_commit_pending(const pgw *w);

/* Abandons the batch if one is open, and a commit in flight (its outcome
 * is then unknown: reload the offsets). Best effort; a dead connection
 * rolls back by itself. Safe to call at any time. */
void pgw_rollback(pgw *w);

/* 1 if the connection looks usable, 0 if it is broken (call
 * pgw_reconnect). libpq notices a dead connection only when a call fails,
 * so after any PGW_EDB ask again. */
int pgw_ok(pgw *w);

/* Drops and re-opens the connection with the original parameters;
 * statements are prepared again on the next pgw_begin. Any open batch is
 * lost. Returns PGW_OK, or PGW_EDB with a reason (password-free); call
 * again later with backoff. */
int pgw_reconnect(pgw *w, char *errstr, size_t errlen);

#endif
