/* fuzz_pgw_text: the sink's text cleaning (sink/pgw_fields.c) on arbitrary
 * bytes, i.e. whatever a pull-request title or body can hold after jansson
 * with JSON_ALLOW_NUL (NUL bytes) or a producer that skipped validation
 * (invalid UTF-8).
 *
 * Checks that the three cleaners agree and that Postgres can take their
 * output: pgwf_clean gives valid UTF-8 without NUL, leaves clean text as
 * is and is idempotent; pgwf_clean_json holds the same text;
 * pgwf_copy_text writes one COPY text field (no raw tab, newline or
 * carriage return) that reads back to it. The typed getters run on the
 * same bytes as a string member. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pgw_fields.h"

static void check_getters(const char *s, size_t len, const char *clean, size_t clean_len)
{
    json_t *obj = json_object();
    char err[256];
    const char *out;
    int64_t id;
    size_t i;

    FUZZ_CHECK(obj != NULL);
    FUZZ_CHECK(json_object_set_new_nocheck(obj, "k", json_stringn_nocheck(s, len)) == 0);
    s = json_string_value(json_object_get(obj, "k")); /* NUL-terminated copy */
    if (pgwf_get_ident(obj, "pr", "k", PGWF_REQUIRED, 255, &out, err, sizeof err) > 0) {
        FUZZ_CHECK(strlen(out) == len && len == clean_len && !memcmp(out, clean, len));
        for (i = 0; i < len; i++)
            FUZZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    }
    if (pgwf_get_time(obj, "pr", "k", PGWF_REQUIRED, &out, err, sizeof err) > 0)
        FUZZ_CHECK(strlen(out) == len && strspn(out, "0123456789-:.TtZz+") == len);
    if (pgwf_get_id64(obj, "pr", "k", PGWF_REQUIRED, &id, err, sizeof err) > 0)
        FUZZ_CHECK(id >= 0 && strtoll(s, NULL, 10) == id && strspn(s, "0123456789") == len);
    json_decref(obj);
}

/* pgwf_copy_text's field (after its tab) as COPY reads it; 0 if it is
 * not one field or holds an escape pgwf_copy_text never writes. */
static int copy_unescape(const char *f, size_t n, char *out, size_t *outlen)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (f[i] == '\t' || f[i] == '\n' || f[i] == '\r')
            return 0;
        if (f[i] != '\\') {
            out[o++] = f[i];
            continue;
        }
        if (++i == n)
            return 0;
        if (f[i] == '\\')
            out[o++] = '\\';
        else if (f[i] == 't')
            out[o++] = '\t';
        else if (f[i] == 'n')
            out[o++] = '\n';
        else if (f[i] == 'r')
            out[o++] = '\r';
        else
            return 0;
    }
    *outlen = o;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct pgwf_buf b = {0};
    json_t *j;
    char *c, *c2, *u;
    size_t clen, c2len, ulen = 0;
    int clean = pgwf_is_clean(s, size);

    c = pgwf_clean(s, size, &clen);
    FUZZ_CHECK(c != NULL && c[clen] == '\0' && strlen(c) == clen);
    FUZZ_CHECK(pgwf_is_clean(c, clen));
    FUZZ_CHECK(!clean || (clen == size && !memcmp(c, s, size)));
    c2 = pgwf_clean(c, clen, &c2len);
    FUZZ_CHECK(c2 != NULL && c2len == clen && !memcmp(c2, c, clen));
    free(c2);

    j = pgwf_clean_json(s, size);
    FUZZ_CHECK(json_is_string(j) && json_string_length(j) == clen &&
               !memcmp(json_string_value(j), c, clen));
    json_decref(j);

    pgwf_copy_text(&b, s, size);
    FUZZ_CHECK(pgwf_buf_str(&b) != NULL && b.text.len >= 1 && b.text.data[0] == '\t');
    FUZZ_CHECK(pgwf_is_clean(b.text.data, b.text.len));
    u = malloc(b.text.len + 1);
    FUZZ_CHECK(u != NULL && copy_unescape(b.text.data + 1, b.text.len - 1, u, &ulen));
    FUZZ_CHECK(ulen == clen && !memcmp(u, c, clen));
    free(u);
    pgwf_buf_free(&b);

    check_getters(s, size, c, clen);
    free(c);
    return 0;
}
