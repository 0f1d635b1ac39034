/* pgw_migrations: the SQL files of schemas/migrations/, compiled into the
 * binary. The definitions are generated at build time by
 * sink/embed_migrations.cmake (file NNN_name.sql -> {NNN, "NNN_name", sql});
 * ordered by version, versions unique. Internal to pg_writer. */
#ifndef BACKFILL_PGW_MIGRATIONS_H
#define BACKFILL_PGW_MIGRATIONS_H

#include <stddef.h>

struct pgw_migration {
    int version;      /* the file name's leading number */
    const char *name; /* file name without ".sql" */
    const char *sql;  /* NUL-terminated; no BEGIN/COMMIT (caller's transaction) */
};

extern const struct pgw_migration pgw_migrations[];
extern const size_t pgw_migrations_count;

#endif
