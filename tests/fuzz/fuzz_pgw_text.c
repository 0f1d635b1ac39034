/* fuzz_pgw_text: the sink's text cleaning (sink/pgw_fields.c) on arbitrary
 * bytes, i.e. whatever a pull-request title or body can hold after jansson
 * with JSON_ALLOW_NUL (NUL bytes) or a producer that skipped validation
 * (invalid UTF-8).
 *
 * Checks that the three cleaners agree and that Postgres can take their
 * output: pgwf_clean gives valid UTF-8 without NUL, leaves clean text as
 * is and is idempotent; pgwf_clean_json holds the same text;
 * pgwf_buf_text writes a JSON string literal that parses back to it. The
 * typed getters run on the same bytes as a string member. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct pgwf_buf b = {0};
    json_error_t jerr;
    json_t *j, *parsed;
    char *c, *c2;
    size_t clen, c2len;
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

    pgwf_buf_text(&b, s, size);
    FUZZ_CHECK(pgwf_buf_str(&b) != NULL);
    parsed = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
    FUZZ_CHECK(json_is_string(parsed) && json_string_length(parsed) == clen &&
               !memcmp(json_string_value(parsed), c, clen));
    json_decref(parsed);
    pgwf_buf_free(&b);

    check_getters(s, size, c, clen);
    free(c);
    return 0;
}
