/* fuzz_sink_event: the sink's event path without Postgres. Arbitrary bytes
 * are read as a message of the progress topic the way sink_batch.c does
 * (json_loadb with JSON_ALLOW_NUL, then "name" and "data"), and handed to
 * the decoders of sink/pgw_events.c. pg_writer.c and pgw_stage.c are
 * replaced by the stubs below, so every event that passes validation
 * reaches pgw_stage, whose COPY text is then checked instead of sent.
 *
 * Checks: the decoders return PGW_OK or PGW_EBADEVENT with a reason; the
 * staged text is valid UTF-8 without NUL (Postgres text can hold nothing
 * else), made of whole lines of exactly the staging table's 42 columns
 * whose kind matches the event, and a progress line's metadata column is
 * a JSON object. */
#define _POSIX_C_SOURCE 200809L /* strndup */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pgw_fields.h"
#include "pgw_internal.h"

#define EVENT_MAX_BYTES (1u << 20) /* the sink caps at 16 MiB; keep runs fast */
#define STAGE_COLS 42
#define METADATA_COL 35

static struct pgwf_buf rows; /* the stub writer's only buffer */

/* Stub of pg_writer.c. */
long pgw_event_index(const pgw *w)
{
    (void)w;
    return 7;
}

/* Stub of pg_writer.c. */
struct pgwf_buf *pgw_rows(pgw *w)
{
    (void)w;
    return &rows;
}

/* Checks one line (without its newline) of kind `kind`. */
static void check_line(const char *l, size_t n, int kind)
{
    size_t i, cols = 1, start = 0;
    char *meta = NULL;

    FUZZ_CHECK(n >= 1 && (l[0] == kind || (kind == PGW_KIND_HEAD && l[0] == PGW_KIND_PR)));
    for (i = 0; i <= n; i++) {
        if (i < n && l[i] != '\t')
            continue;
        if (cols - 1 == METADATA_COL && l[0] == PGW_KIND_PROGRESS) {
            meta = strndup(l + start, i - start);
            FUZZ_CHECK(meta != NULL);
        }
        start = i + 1;
        cols += i < n;
    }
    FUZZ_CHECK(cols == STAGE_COLS);
    if (meta) {
        json_error_t jerr;
        json_t *j;
        char *r = meta, *q = meta;

        for (; *r; r++, q++) { /* undo the COPY escapes: \\ and \t \n \r */
            if (*r == '\\' && r[1]) {
                r++;
                *q = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r == 'r' ? '\r' : *r;
            } else {
                *q = *r;
            }
        }
        *q = '\0';
        j = json_loads(meta, 0, &jerr);
        FUZZ_CHECK(json_is_object(j));
        json_decref(j);
        free(meta);
    }
}

/* Stub of pgw_stage.c: checks the staged COPY text. */
int pgw_stage(pgw *w, int kind, uint64_t key, char *errstr, size_t errlen)
{
    const char *t = pgwf_buf_str(&rows), *nl;
    size_t off = 0;

    (void)w, (void)key, (void)errstr, (void)errlen;
    FUZZ_CHECK(t != NULL && rows.text.len > 0 && t[rows.text.len - 1] == '\n');
    FUZZ_CHECK(pgwf_is_clean(t, rows.text.len));
    while (off < rows.text.len) {
        nl = memchr(t + off, '\n', rows.text.len - off);
        FUZZ_CHECK(nl != NULL);
        FUZZ_CHECK(memchr(t + off, '\r', (size_t)(nl - t) - off) == NULL);
        check_line(t + off, (size_t)(nl - t) - off, kind);
        off = (size_t)(nl - t) + 1;
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
    pgwf_buf_free(&rows);
    return 0;
}
