/* fuzz_sink_event: the sink's event path without Postgres. Arbitrary bytes
 * are read as a message of the progress topic the way sink_batch.c does
 * (json_loadb with JSON_ALLOW_NUL, then "name" and "data"), and handed to
 * the appliers of sink/pgw_events.c. pg_writer.c is replaced by the two
 * stubs below, so every event that passes validation reaches its
 * statements, whose parameters are then checked instead of executed.
 *
 * Checks: the appliers return PGW_OK or PGW_EBADEVENT with a reason;
 * every parameter handed to libpq is valid UTF-8 without NUL (Postgres
 * text can hold nothing else); the recordset parameters (pull requests,
 * contributors) are JSON arrays and the progress metadata a JSON object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pgw_fields.h"
#include "pgw_internal.h"

#define EVENT_MAX_BYTES (1u << 20) /* the sink caps at 16 MiB; keep runs fast */

static json_t *parse_param(const char *text)
{
    json_error_t jerr;
    return json_loads(text, 0, &jerr);
}

/* Stub of pg_writer.c: nothing to open. */
int pgw_savepoint(pgw *w, char *errstr, size_t errlen)
{
    (void)w, (void)errstr, (void)errlen;
    return PGW_OK;
}

/* Stub of pg_writer.c: checks the parameters; the repository upsert
 * answers one row with id "1". */
int pgw_exec(pgw *w, const char *what, const char *stmt, int nparams, const char *const *params,
             PGresult **res, char *errstr, size_t errlen)
{
    json_t *j = NULL;
    int i;

    (void)w, (void)what, (void)errstr, (void)errlen;
    for (i = 0; i < nparams; i++)
        FUZZ_CHECK(!params[i] || pgwf_is_clean(params[i], strlen(params[i])));
    if (!strcmp(stmt, "pgw_prs") || !strcmp(stmt, "pgw_contrib")) {
        j = parse_param(params[!strcmp(stmt, "pgw_prs") ? 2 : 0]);
        FUZZ_CHECK(json_is_array(j) && json_array_size(j) > 0);
    } else if (!strcmp(stmt, "pgw_state")) {
        j = parse_param(params[9]);
        FUZZ_CHECK(json_is_object(j));
    }
    json_decref(j);
    if (res) {
        PGresAttDesc col = {.name = "id", .typid = 20, .typlen = 8, .atttypmod = -1};
        *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        FUZZ_CHECK(*res && PQsetResultAttrs(*res, 1, &col) && PQsetvalue(*res, 0, 0, "1", 1));
    }
    return PGW_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root, *name, *ev;
    const char *n;
    char err[512];
    int rc;

    if (size > EVENT_MAX_BYTES)
        return 0;
    root = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &jerr);
    name = json_object_get(root, "name");
    ev = json_object_get(root, "data");
    if (json_is_string(name) && json_is_object(ev)) {
        n = json_string_value(name);
        memset(err, 'x', sizeof err);
        rc = PGW_OK;
        if (!strcmp(n, "backfill/pull_requests"))
            rc = pgw_apply_pull_requests(NULL, ev, err, sizeof err);
        else if (!strcmp(n, "backfill/progress.update"))
            rc = pgw_apply_progress(NULL, ev, err, sizeof err);
        FUZZ_CHECK(rc == PGW_OK || rc == PGW_EBADEVENT);
        FUZZ_CHECK(rc == PGW_OK || (memchr(err, '\0', sizeof err) && err[0] != '\0'));
    }
    json_decref(root);
    return 0;
}
