/* pgw_fields: see pgw_fields.h. Strict on types, lenient on text: a wrong
 * type rejects the event, a NUL byte or a broken UTF-8 sequence in free
 * text is repaired, because Postgres text can hold neither. */
#include "pgw_fields.h"
#include "json_field.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(char *errstr, size_t errlen, const char *ctx, const char *key, const char *why)
{
    snprintf(errstr, errlen, "%s%s%s: %s", ctx, *ctx ? "." : "", key, why);
}

/* Common part of every getter: 1 with *v set, 0 absent/null allowed, -1. */
static int lookup(json_t *obj, const char *ctx, const char *key, int flags, json_t **v,
                  char *errstr, size_t errlen)
{
    *v = json_is_object(obj) ? json_object_get(obj, key) : NULL; /* borrowed */
    if (!*v) {
        if (flags & PGWF_REQUIRED) {
            fail(errstr, errlen, ctx, key, "missing");
            return -1;
        }
        return 0;
    }
    if (json_is_null(*v)) {
        if (flags & PGWF_NULLABLE)
            return 0;
        fail(errstr, errlen, ctx, key, "must not be null");
        return -1;
    }
    return 1;
}

int pgwf_get_int(json_t *obj, const char *ctx, const char *key, int flags, int64_t lo, int64_t hi,
                 int64_t *out, char *errstr, size_t errlen)
{
    json_t *v;
    char why[96];
    int rc = lookup(obj, ctx, key, flags, &v, errstr, errlen);

    if (rc <= 0)
        return rc;
    switch (jfield_int(obj, key, lo, hi, out)) {
    case JF_OK:
        return 1;
    case JF_OUT_OF_RANGE:
        snprintf(why, sizeof why, "%lld out of range [%lld, %lld]",
                 (long long)json_integer_value(v), (long long)lo, (long long)hi);
        fail(errstr, errlen, ctx, key, why);
        return -1;
    default:
        fail(errstr, errlen, ctx, key, "expected an integer");
        return -1;
    }
}

int pgwf_get_bool(json_t *obj, const char *ctx, const char *key, int flags, int *out,
                  char *errstr, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, ctx, key, flags, &v, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v)) {
        fail(errstr, errlen, ctx, key, "expected a boolean");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int pgwf_get_text(json_t *obj, const char *ctx, const char *key, int flags, const char **out,
                  size_t *len, char *errstr, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, ctx, key, flags, &v, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_string(v)) {
        fail(errstr, errlen, ctx, key, "expected a string");
        return -1;
    }
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 1;
}

int pgwf_get_ident(json_t *obj, const char *ctx, const char *key, int flags, size_t maxlen,
                   const char **out, char *errstr, size_t errlen)
{
    const char *s;
    size_t len, i;
    int rc = pgwf_get_text(obj, ctx, key, flags, &s, &len, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (len == 0 || len > maxlen) {
        fail(errstr, errlen, ctx, key, len ? "too long" : "empty");
        return -1;
    }
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            fail(errstr, errlen, ctx, key, "contains a control character");
            return -1;
        }
    }
    if (!pgwf_is_clean(s, len)) {
        fail(errstr, errlen, ctx, key, "invalid UTF-8");
        return -1;
    }
    *out = s;
    return 1;
}

/* n decimal digits at s, value into *v. */
static int digits(const char *s, int n, int *v)
{
    int i;

    *v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+hh:mm|-hh:mm), nothing more. */
static int is_rfc3339(const char *s, size_t len)
{
    int y, mo, d, h, mi, sec, oh, om;
    size_t i = 19, f;

    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    if (s[i] == '.') {
        for (f = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == f || i - f > 9)
            return 0;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z'))
        return 1;
    if (i + 6 != len || (s[i] != '+' && s[i] != '-') || !digits(s + i + 1, 2, &oh) ||
        s[i + 3] != ':' || !digits(s + i + 4, 2, &om))
        return 0;
    return oh <= 23 && om <= 59;
}

int pgwf_get_time(json_t *obj, const char *ctx, const char *key, int flags, const char **out,
                  char *errstr, size_t errlen)
{
    const char *s;
    size_t len;
    int rc = pgwf_get_text(obj, ctx, key, flags, &s, &len, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!is_rfc3339(s, len)) {
        fail(errstr, errlen, ctx, key, "expected an RFC 3339 date-time");
        return -1;
    }
    *out = s;
    return 1;
}

int pgwf_get_id64(json_t *obj, const char *ctx, const char *key, int flags, int64_t *out,
                  char *errstr, size_t errlen)
{
    const char *s;
    size_t len, i;
    uint64_t v = 0;
    int rc = pgwf_get_text(obj, ctx, key, flags, &s, &len, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (len < 1 || len > 20) {
        fail(errstr, errlen, ctx, key, "expected 1 to 20 decimal digits");
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned dg = (unsigned char)s[i] - '0';

        if (dg > 9) {
            fail(errstr, errlen, ctx, key, "expected 1 to 20 decimal digits");
            return -1;
        }
        if (v > ((uint64_t)INT64_MAX - dg) / 10) {
            fail(errstr, errlen, ctx, key, "does not fit a signed 64-bit integer");
            return -1;
        }
        v = v * 10 + dg;
    }
    *out = (int64_t)v;
    return 1;
}

int pgwf_get_object(json_t *obj, const char *ctx, const char *key, int flags, json_t **out,
                    char *errstr, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, ctx, key, flags, &v, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_object(v)) {
        fail(errstr, errlen, ctx, key, "expected an object");
        return -1;
    }
    *out = v;
    return 1;
}

int pgwf_get_array(json_t *obj, const char *ctx, const char *key, int flags, json_t **out,
                   char *errstr, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, ctx, key, flags, &v, errstr, errlen);

    if (rc <= 0)
        return rc;
    if (!json_is_array(v)) {
        fail(errstr, errlen, ctx, key, "expected an array");
        return -1;
    }
    *out = v;
    return 1;
}

int pgwf_is_clean(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < len) {
        if (p[i] == 0)
            return 0;
        if (p[i] < 0x80) { /* fast path for ASCII */
            i++;
            continue;
        }
        if (!(k = utf8_seq_len(p + i, len - i)))
            return 0;
        i += k;
    }
    return 1;
}

char *pgwf_clean(const char *s, size_t len, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, k;
    char *out;

    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    out = malloc(len * 3 + 1); /* worst case: every byte becomes U+FFFD */
    if (!out)
        return NULL;
    while (i < len) {
        if (p[i] == 0) {
            i++;
        } else if ((k = utf8_seq_len(p + i, len - i)) != 0) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

json_t *pgwf_clean_json(const char *s, size_t len)
{
    json_t *j;
    char *c;
    size_t clen;

    if (pgwf_is_clean(s, len))
        return json_stringn(s, len);
    c = pgwf_clean(s, len, &clen);
    if (!c)
        return NULL;
    j = json_stringn(c, clen);
    free(c);
    return j;
}

#define BUF_MAX ((size_t)1 << 30) /* Postgres cannot take a larger parameter */

void pgwf_buf_raw(struct pgwf_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > BUF_MAX - 1 - b->text.len || dynbuf_add(&b->text, s, n))
        b->failed = 1;
}

void pgwf_buf_lit(struct pgwf_buf *b, const char *s)
{
    pgwf_buf_raw(b, s, strlen(s));
}

void pgwf_buf_int(struct pgwf_buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);

    pgwf_buf_raw(b, tmp, (size_t)n);
}

const char *pgwf_buf_str(const struct pgwf_buf *b)
{
    return b->failed ? NULL : b->text.data;
}

void pgwf_buf_free(struct pgwf_buf *b)
{
    dynbuf_free(&b->text);
    b->failed = 0;
}

void pgwf_buf_reset(struct pgwf_buf *b)
{
    dynbuf_reset(&b->text);
    b->failed = 0;
}

void pgwf_copy_text(struct pgwf_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run, k;

    pgwf_buf_raw(b, "\t", 1);
    while (i < len && !b->failed) {
        /* copy the longest run that needs no escaping in one go */
        for (run = i; run < len; run += k) {
            k = p[run] && p[run] != '\\' && p[run] != '\t' && p[run] != '\n' && p[run] != '\r'
                    ? utf8_seq_len(p + run, len - run)
                    : 0;
            if (!k)
                break;
        }
        pgwf_buf_raw(b, s + i, run - i);
        if ((i = run) >= len)
            break;
        if (p[i] == '\\')
            pgwf_buf_raw(b, "\\\\", 2);
        else if (p[i] == '\t')
            pgwf_buf_raw(b, "\\t", 2);
        else if (p[i] == '\n')
            pgwf_buf_raw(b, "\\n", 2);
        else if (p[i] == '\r')
            pgwf_buf_raw(b, "\\r", 2);
        else if (p[i] != 0) /* NUL is dropped */
            pgwf_buf_raw(b, "\xEF\xBF\xBD", 3); /* not the start of valid UTF-8 */
        i++;
    }
}

void pgwf_copy_null(struct pgwf_buf *b)
{
    pgwf_buf_raw(b, "\t\\N", 3);
}

void pgwf_copy_int(struct pgwf_buf *b, int64_t v)
{
    pgwf_buf_raw(b, "\t", 1);
    pgwf_buf_int(b, v);
}

void pgwf_copy_lit(struct pgwf_buf *b, const char *s)
{
    pgwf_buf_raw(b, "\t", 1);
    pgwf_buf_lit(b, s);
}
