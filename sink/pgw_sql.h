/* pgw_sql: the SQL of pg_writer, compiled in from schemas/pg_writer/NAME.sql
 * (the definitions are generated at build time by
 * sink/embed_migrations.cmake, MODE=statements), so that the statements
 * live next to the migrations whose tables they write and read as SQL.
 * Files named pgw_NAME.sql are prepared once per session as statement
 * pgw_NAME (pgw_conn.c); the others (the staging table) are run before.
 * Internal to pg_writer. */
#ifndef BACKFILL_PGW_SQL_H
#define BACKFILL_PGW_SQL_H

#include <stddef.h>

struct pgw_sql {
    const char *name; /* file name without ".sql" */
    const char *sql;  /* NUL-terminated */
};

/* Sorted by name. */
extern const struct pgw_sql pgw_sql[];
extern const size_t pgw_sql_count;

/* The prepared statements the writer runs (their parameters are all
 * text, each cast in the SQL):
 *   pgw_repos, pgw_contribs, pgw_prs ($1, $2: the range of events)
 *   pgw_progress ($1, $2, $3: the round; answers how many rounds follow)
 *   pgw_offset_set (group, topic, partition, next offset)
 *   pgw_offset_get (group, topic, partition; answers next_offset) */
#define PGW_SQL_PREFIX "pgw_"
#define PGW_SQL_REPOS "pgw_repos"
#define PGW_SQL_CONTRIBS "pgw_contribs"
#define PGW_SQL_PRS "pgw_prs"
#define PGW_SQL_PROGRESS "pgw_progress"
#define PGW_SQL_OFFSET_SET "pgw_offset_set"
#define PGW_SQL_OFFSET_GET "pgw_offset_get"

#endif
