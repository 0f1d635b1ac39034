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
 *     pgw_commit
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

/* Connects. conninfo is a libpq connection string, a postgres:// URI, or
 * a bare database name ("" = libpq defaults and PG* environment). Forces
 * client_encoding UTF8; connect_timeout defaults to 10 s. Returns a new
 * writer, or NULL with a reason in errstr that never contains the
 * password. Does not touch the schema (see pgw_migrate). */
pgw *pgw_new(const char *conninfo, char *errstr, size_t errlen);

/* Closes the connection (rolling back an open transaction). NULL is a
 * no-op. */
void pgw_free(pgw *w);

/* Applies the migrations compiled into the binary that the database has
 * not recorded in schema_migrations yet, all in one transaction under an
 * advisory lock (concurrent sinks wait for each other). Must be called
 * outside a batch. Returns the number of migrations applied (0 when up to
 * date), or PGW_EDB with a reason (nothing applied). */
int pgw_migrate(pgw *w, char *errstr, size_t errlen);

/* Reads the stored position of (group, topic, partition). Returns 0 and
 * sets *next_offset (the next message to consume), 1 if none is stored
 * (*next_offset untouched), or PGW_EDB. Usable inside or outside a batch
 * (inside, it sees the batch's own writes). */
int pgw_load_offsets(pgw *w, const char *group, const char *topic, int partition,
                     int64_t *next_offset, char *errstr, size_t errlen);

/* Starts a batch (BEGIN, READ COMMITTED). Prepares the statements first if
 * this connection has not yet (so the schema must exist). Returns PGW_OK
 * or PGW_EDB (no transaction open then). */
int pgw_begin(pgw *w, char *errstr, size_t errlen);

/* Applies one event's data object (borrowed, not modified) inside the
 * batch. event_name is the envelope's name:
 *   "backfill/pull_requests"   upserts repository, authors, pull requests
 *   "backfill/progress.update" upserts repository, the backfill state (only
 *                              if newer than the stored one) and a
 *                              backfill_chunks row for processing chunks
 *   anything else              ignored: PGW_OK, nothing written
 * Returns PGW_OK, PGW_EBADEVENT (reason in errstr; the event's writes are
 * undone, the batch goes on) or PGW_EDB (reason in errstr; the batch is
 * lost). */
int pgw_apply(pgw *w, const char *event_name, json_t *data, char *errstr, size_t errlen);

/* Records, inside the batch, that (group, topic, partition) is consumed up
 * to next_offset (exclusive). Overwrites whatever was stored. Returns
 * PGW_OK or PGW_EDB; PGW_EDB also for partition < 0 or next_offset < 0. */
int pgw_set_offset(pgw *w, const char *group, const char *topic, int partition,
                   int64_t next_offset, char *errstr, size_t errlen);

/* Commits the batch. Returns PGW_OK once it is durable, else PGW_EDB: the
 * batch is rolled back -- or, if the connection died during COMMIT, its
 * outcome is unknown; either way reload offsets with pgw_load_offsets
 * (after pgw_reconnect) and continue from there. No transaction is open
 * afterwards in any case. */
int pgw_commit(pgw *w, char *errstr, size_t errlen);

/* Abandons the batch if one is open (best effort; a dead connection
 * rolls back by itself). Safe to call at any time. */
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
