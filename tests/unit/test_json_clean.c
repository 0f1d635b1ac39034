/* Unit tests: json_clean — lone surrogate escapes and invalid UTF-8 become
 * U+FFFD so jansson accepts the document; everything else is untouched. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_clean.h"

/* Cleans in; returns the repairs and the cleaned text in out (static). */
static int clean(const char *in, size_t len, const char **out)
{
    static char buf[4096];
    char *c = NULL;
    size_t clen = 0;
    int n = json_clean_text(in, len, &c, &clen);

    if (n > 0) {
        CHECK(clen < sizeof buf && strlen(c) == clen);
        memcpy(buf, c, clen + 1);
        free(c);
        *out = buf;
    } else {
        *out = in;
    }
    return n;
}

/* The title after clean + json_loads, or NULL if jansson still refuses. */
static char *title_of(const char *doc)
{
    static char buf[256];
    const char *c;
    json_error_t jerr;
    json_t *root;

    clean(doc, strlen(doc), &c);
    root = json_loads(c, JSON_ALLOW_NUL, &jerr);
    if (!json_is_string(json_object_get(root, "t"))) {
        json_decref(root);
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(root, "t")));
    json_decref(root);
    return buf;
}

static void test_untouched(void)
{
    const char *c;
    static const char *const good[] = {
        "{\"t\":\"plain\"}",
        "{\"t\":\"pair \\ud83d\\ude80 ok\"}",
        "{\"t\":\"esc \\\\ud800 is text\"}", /* an escaped backslash, then 'ud800' */
        "{\"t\":\"nul \\u0000 stays for the parser\"}",
        "{\"t\":\"caf\xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x8e\x89\"}",
        "not json at all \\",
        "\\u12",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(clean(good[i], strlen(good[i]), &c) == 0);
        CHECK(c == good[i]);
    }
    CHECK(json_clean_text(NULL, 0, NULL, NULL) == 0);
}

static void test_surrogates(void)
{
    const char *c;

    CHECK(clean("{\"t\":\"a\\ud800b\"}", 16, &c) == 1);
    CHECK(strcmp(c, "{\"t\":\"a\\ufffdb\"}") == 0);
    CHECK(clean("{\"t\":\"\\uDC00\"}", 14, &c) == 1); /* a lone low half, upper case */
    CHECK(strcmp(c, "{\"t\":\"\\ufffd\"}") == 0);
    CHECK(clean("{\"t\":\"\\ud800\\ud800\\udc00\"}", 26, &c) == 1); /* high, then a pair */
    CHECK(strcmp(c, "{\"t\":\"\\ufffd\\ud800\\udc00\"}") == 0);
    CHECK(clean("\"\\ud800", 7, &c) == 1); /* at the very end */
    CHECK(strcmp(title_of("{\"t\":\"x\\ud800y\"}"), "x\xef\xbf\xbdy") == 0);
    CHECK(title_of("{\"t\":\"x\\udfff\\ud800\"}") != NULL);
}

static void test_utf8(void)
{
    const char *c;

    CHECK(clean("{\"t\":\"\xff\"}", 9, &c) == 1);
    CHECK(strcmp(c, "{\"t\":\"\xef\xbf\xbd\"}") == 0);
    CHECK(clean("\xed\xa0\x80", 3, &c) == 3); /* an encoded surrogate: 3 bad bytes */
    CHECK(clean("\xc3", 1, &c) == 1);       /* truncated sequence */
    CHECK(clean("\xc0\xaf", 2, &c) == 2);   /* overlong '/' */
    CHECK(clean("\\\xff", 2, &c) == 1);     /* a backslash does not hide a bad byte */
    CHECK(strcmp(c, "\\\xef\xbf\xbd") == 0);
    CHECK(strcmp(title_of("{\"t\":\"a\xfe\xfe" "b\"}"), "a\xef\xbf\xbd\xef\xbf\xbd" "b") == 0);
    /* embedded NUL bytes in the text are not UTF-8 errors */
    CHECK(clean("a\0b", 3, &c) == 0);
}

int main(void)
{
    test_untouched();
    test_surrogates();
    test_utf8();
    return CHECK_DONE();
}
