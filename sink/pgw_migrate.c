/* pgw_migrate: applying the migrations compiled in from schemas/migrations
 * (see pgw_migrate in pg_writer.h): one transaction, under an advisory
 * lock so concurrent sinks wait for each other, each migration recorded in
 * schema_migrations. */
#include <stdio.h>
#include <string.h>

#include "pgw_internal.h"
#include "pgw_migrations.h"

#define MIGRATION_LOCK_SQL \
    "SELECT pg_advisory_xact_lock(hashtextextended('backfill.schema_migrations', 0))"

/* Is migration m recorded? 1 yes, 0 no, PGW_EDB. */
static int migration_done(pgw *w, const struct pgw_migration *m, char *errstr, size_t errlen)
{
    char vb[24];
    const char *params[1] = {vb};
    PGresult *r;
    int rc;

    snprintf(vb, sizeof vb, "%d", m->version);
    r = PQexecParams(w->conn, "SELECT 1 FROM schema_migrations WHERE version = $1::integer", 1,
                     NULL, params, NULL, NULL, 0);

    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        pgw_result_error(w, r, errstr, errlen, "reading schema_migrations");
        rc = PGW_EDB;
    } else {
        rc = PQntuples(r) > 0;
    }
    PQclear(r);
    return rc;
}

static int apply_migration(pgw *w, const struct pgw_migration *m, char *errstr, size_t errlen)
{
    char vb[24], what[128];
    const char *params[2] = {vb, m->name};
    PGresult *r;

    snprintf(vb, sizeof vb, "%d", m->version);
    snprintf(what, sizeof what, "migration %s", m->name);
    if (pgw_cmd(w, m->sql, what, errstr, errlen))
        return PGW_EDB;
    r = PQexecParams(w->conn,
                     "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2::text)",
                     2, NULL, params, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgw_result_error(w, r, errstr, errlen, what);
        PQclear(r);
        return PGW_EDB;
    }
    PQclear(r);
    return PGW_OK;
}

int pgw_migrate(pgw *w, char *errstr, size_t errlen)
{
    size_t i;
    int applied = 0, rc;

    if (w->in_txn || !pgw_ok(w)) {
        snprintf(errstr, errlen, "pgw_migrate: %s",
                 w->in_txn ? "a batch is open" : "connection lost (reconnect first)");
        return PGW_EDB;
    }
    if (pgw_cmd(w, "BEGIN", "BEGIN", errstr, errlen))
        return PGW_EDB;
    /* The lock serialises concurrent sinks; it is released at COMMIT. */
    if (pgw_cmd(w, MIGRATION_LOCK_SQL, "migration lock", errstr, errlen) ||
        pgw_cmd(w,
                 "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                 "    version integer PRIMARY KEY,\n"
                 "    name text NOT NULL,\n"
                 "    applied_at timestamptz NOT NULL DEFAULT now())",
                 "creating schema_migrations", errstr, errlen))
        goto fail;
    for (i = 0; i < pgw_migrations_count; i++) {
        if ((rc = migration_done(w, &pgw_migrations[i], errstr, errlen)) < 0)
            goto fail;
        if (rc)
            continue;
        if (apply_migration(w, &pgw_migrations[i], errstr, errlen))
            goto fail;
        applied++;
    }
    if (pgw_cmd(w, "COMMIT", "COMMIT", errstr, errlen))
        goto fail;
    return applied;
fail:
    pgw_rollback(w);
    return PGW_EDB;
}
