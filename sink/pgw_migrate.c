/* pgw_migrate: applying the migrations compiled in from schemas/migrations
 * (see pgw_migrate in pg_writer.h): one transaction, under an advisory
 * lock so concurrent sinks wait for each other, each migration recorded in
 * schema_migrations. Calls pgw_conn only. */
#include <stdio.h>
#include <string.h>

#include "pgw_internal.h"
#include "pgw_migrations.h"

#define MIGRATION_LOCK_SQL \
    "SELECT pg_advisory_xact_lock(hashtextextended('backfill.schema_migrations', 0))"

/* Is migration m recorded? 1 yes, 0 no, PGW_EDB. */
static int migration_done(struct pgw_conn *c, const struct pgw_migration *m, char *errstr,
                          size_t errlen)
{
    char vb[24];
    const char *params[1] = {vb};
    PGresult *r;
    int rc;

    snprintf(vb, sizeof vb, "%d", m->version);
    if (pgwc_query(c, "reading schema_migrations",
                   "SELECT 1 FROM schema_migrations WHERE version = $1::integer", 1, params, &r,
                   errstr, errlen))
        return PGW_EDB;
    rc = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int apply_migration(struct pgw_conn *c, const struct pgw_migration *m, char *errstr,
                           size_t errlen)
{
    char vb[24], what[128];
    const char *params[2] = {vb, m->name};

    snprintf(vb, sizeof vb, "%d", m->version);
    snprintf(what, sizeof what, "migration %s", m->name);
    if (pgwc_cmd(c, m->sql, what, errstr, errlen))
        return PGW_EDB;
    if (pgwc_query(c, what,
                   "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2::text)",
                   2, params, NULL, errstr, errlen))
        return PGW_EDB;
    return PGW_OK;
}

int pgwm_apply(struct pgw_conn *c, char *errstr, size_t errlen)
{
    size_t i;
    int applied = 0, rc;

    if (pgwc_cmd(c, "BEGIN", "BEGIN", errstr, errlen))
        return PGW_EDB;
    /* The lock serialises concurrent sinks; it is released at COMMIT. */
    if (pgwc_cmd(c, MIGRATION_LOCK_SQL, "migration lock", errstr, errlen) ||
        pgwc_cmd(c,
                 "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                 "    version integer PRIMARY KEY,\n"
                 "    name text NOT NULL,\n"
                 "    applied_at timestamptz NOT NULL DEFAULT now())",
                 "creating schema_migrations", errstr, errlen))
        goto fail;
    for (i = 0; i < pgw_migrations_count; i++) {
        if ((rc = migration_done(c, &pgw_migrations[i], errstr, errlen)) < 0)
            goto fail;
        if (rc)
            continue;
        if (apply_migration(c, &pgw_migrations[i], errstr, errlen))
            goto fail;
        applied++;
    }
    if (pgwc_cmd(c, "COMMIT", "COMMIT", errstr, errlen))
        goto fail;
    return applied;
fail:
    pgwc_rollback(c);
    return PGW_EDB;
}
