/* pgw_internal: the writer object and the modules right under the public
 * face. Not part of the public API; nothing outside sink/pg_writer.c and
 * sink/pgw_*.c includes it (and tests/fuzz/fuzz_sink_event.c, which stubs
 * pgw_stage.c's three event-facing functions).
 *
 * pg_writer is a chain of files that only call downward:
 *
 *   pg_writer.c    public face: the batch's state, the API of pg_writer.h
 *   pgw_events.c   decoding the two event types into staged rows
 *   pgw_migrate.c  applying schemas/migrations (embedded)
 *   pgw_pipe.c     the pipelined commit of a filled batch
 *   pgw_stage.c    the batch's record, COPY into the staging table, the
 *                  statements that write staged events
 *   pgw_conn.c     the libpq connection: statements, COPY, BEGIN/COMMIT,
 *                  errors (connect and password masking: common/pg_conn)
 *   pgw_fields.c   JSON fields, COPY text
 *   (generated)    pgw_sql.c: schemas/pg_writer/NAME.sql; pgw_migrations.c:
 *                  schemas/migrations/NNN_NAME.sql
 *
 * struct pgw holds one part per layer; each part is read and written only
 * by the file that defines its type. */
#ifndef BACKFILL_PGW_INTERNAL_H
#define BACKFILL_PGW_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_writer.h"
#include "pgw_conn.h"
#include "pgw_fields.h"
#include "pgw_pipe.h"
#include "pgw_stage.h"

/* Where the batch the caller fills stands (pg_writer.c's). */
enum pgw_state {
    PGW_IDLE = 0, /* no batch open */
    PGW_OPEN,     /* pgw_begin done: events and offsets may be added */
    PGW_FAILED,   /* PGW_EDB seen in this batch: only pgw_rollback is left */
};

struct pgw {
    struct pgw_conn conn;  /* pgw_conn.c's */
    struct pgw_stage st;   /* pgw_stage.c's: the open batch's record and rows */
    struct pgw_pipe pipe;  /* pgw_pipe.c's: the batch whose commit is in flight */
    enum pgw_state state;  /* pg_writer.c's, as are the two below */
    pgw_skip_fn *on_skip;  /* borrowed, or NULL */
    void *skip_ctx;        /* borrowed */
    int64_t committed_rows[PGW_NTABLES]; /* the last committed batch's, per table */
};

/* Defined in pgw_events.c. Validate data (borrowed) completely, write the
 * event's rows as COPY text into pgw_rows(w) (emptied first) and hand them
 * to pgw_stage. Return PGW_OK, PGW_EBADEVENT (nothing staged) or PGW_EDB,
 * reason in errstr. */
int pgw_apply_pull_requests(pgw *w, json_t *data, char *errstr, size_t errlen);
int pgw_apply_progress(pgw *w, json_t *data, char *errstr, size_t errlen);

/* Defined in pgw_migrate.c: applies the embedded migrations not yet
 * recorded, on c outside any transaction (see pgw_migrate). Returns how
 * many, or PGW_EDB (nothing applied, transaction rolled back). */
int pgwm_apply(struct pgw_conn *c, char *errstr, size_t errlen);

#endif
