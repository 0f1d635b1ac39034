/* pgw_fields: type-checked reads of hostile JSON fields, and cleaning of
 * text for Postgres. Internal to pg_writer (no Postgres, no Kafka here).
 * The checks themselves are common/json_field's; this layer adds what the
 * writer needs on top: required/nullable rules, the field's path in every
 * message, and Postgres-specific types (identifiers, timestamps, ids).
 *
 * Getter contract, shared by every pgwf_get_* function: obj is the JSON
 * object (borrowed), ctx names it in messages ("" for the top level, else
 * e.g. "pullRequests[3]"), key is the member. Returns
 *    1  present, right type, in range: *out filled
 *    0  absent (only when not PGWF_REQUIRED) or null (only when
 *       PGWF_NULLABLE): *out untouched
 *   -1  anything else: "<ctx>.<key>: <reason>" in errstr, *out untouched.
 * Strings handed out are borrowed from obj and live as long as it does. */
#ifndef BACKFILL_PGW_FIELDS_H
#define BACKFILL_PGW_FIELDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"

#define PGWF_OPTIONAL 0
#define PGWF_REQUIRED 1 /* absent is an error */
#define PGWF_NULLABLE 2 /* null is allowed (returns 0) */

/* An integer (JSON integer, not a real) within [lo, hi]. */
int pgwf_get_int(json_t *obj, const char *ctx, const char *key, int flags, int64_t lo, int64_t hi,
                 int64_t *out, char *errstr, size_t errlen);

/* A boolean: *out = 0 or 1. */
int pgwf_get_bool(json_t *obj, const char *ctx, const char *key, int flags, int *out,
                  char *errstr, size_t errlen);

/* Any string, raw: may hold NUL bytes or (if built with the _nocheck
 * constructors) invalid UTF-8, so use *len and pgwf_clean*. */
int pgwf_get_text(json_t *obj, const char *ctx, const char *key, int flags, const char **out,
                  size_t *len, char *errstr, size_t errlen);

/* An identifier: 1..maxlen bytes of valid UTF-8 without control
 * characters (so NUL-terminated and safe to pass to libpq as is). */
int pgwf_get_ident(json_t *obj, const char *ctx, const char *key, int flags, size_t maxlen,
                   const char **out, char *errstr, size_t errlen);

/* An RFC 3339 date-time ("2025-11-28T21:39:11Z", optional fraction of up
 * to 9 digits, "Z" or "+hh:mm"), NUL-terminated. Calendar validity
 * (February 30) is left to Postgres. */
int pgwf_get_time(json_t *obj, const char *ctx, const char *key, int flags, const char **out,
                  char *errstr, size_t errlen);

/* A string of 1..20 decimal digits whose value fits a signed 64-bit
 * integer (GitHub's fullDatabaseId). */
int pgwf_get_id64(json_t *obj, const char *ctx, const char *key, int flags, int64_t *out,
                  char *errstr, size_t errlen);

/* An object / an array (borrowed). */
int pgwf_get_object(json_t *obj, const char *ctx, const char *key, int flags, json_t **out,
                    char *errstr, size_t errlen);
int pgwf_get_array(json_t *obj, const char *ctx, const char *key, int flags, json_t **out,
                   char *errstr, size_t errlen);

/* 1 if s[0..len) is valid UTF-8 without NUL bytes, else 0. */
int pgwf_is_clean(const char *s, size_t len);

/* Returns a malloc'd (caller frees), NUL-terminated copy of s[0..len) with
 * NUL bytes dropped and each byte that is not part of a valid UTF-8
 * sequence replaced by U+FFFD; its length in *outlen if outlen != NULL.
 * NULL only on allocation failure. */
char *pgwf_clean(const char *s, size_t len, size_t *outlen);

/* Same, as a new JSON string (new reference, caller decrefs); NULL only on
 * allocation failure. */
json_t *pgwf_clean_json(const char *s, size_t len);

/* A growing text buffer (the staged rows of an event, as COPY text).
 * Errors are sticky: append freely, check pgwf_buf_str once at the end.
 * Start from {0} (all zero); data is owned. */
struct pgwf_buf {
    struct dynbuf text; /* owned; text.data is NUL-terminated when non-NULL */
    int failed;         /* an append failed; the content is incomplete */
};

/* Appends n raw bytes. */
void pgwf_buf_raw(struct pgwf_buf *b, const char *s, size_t n);

/* Appends a raw NUL-terminated string. */
void pgwf_buf_lit(struct pgwf_buf *b, const char *s);

/* Appends a decimal integer. */
void pgwf_buf_int(struct pgwf_buf *b, int64_t v);

/* The NUL-terminated text (borrowed from b), or NULL if an append failed
 * (or nothing was appended). */
const char *pgwf_buf_str(const struct pgwf_buf *b);

/* Frees the text and resets b to empty. */
void pgwf_buf_free(struct pgwf_buf *b);

/* Empties b, keeping its memory (and clearing a failure). */
void pgwf_buf_reset(struct pgwf_buf *b);

/* Fields of a line of COPY text format (tab-separated, \N for NULL), each
 * appended with the tab that precedes it: */

/* s[0..len) cleaned (NUL bytes dropped, invalid UTF-8 bytes as U+FFFD),
 * with backslash, tab, newline and carriage return escaped. Always a valid
 * field whatever the input bytes. */
void pgwf_copy_text(struct pgwf_buf *b, const char *s, size_t len);

/* NULL. */
void pgwf_copy_null(struct pgwf_buf *b);

/* A decimal integer. */
void pgwf_copy_int(struct pgwf_buf *b, int64_t v);

/* s as it is (the caller vouches it needs no escaping). */
void pgwf_copy_lit(struct pgwf_buf *b, const char *s);

#endif
