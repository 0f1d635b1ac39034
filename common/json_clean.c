/* json_clean: see json_clean.h. One routine serves both passes: first with
 * no output buffer to count repairs and the output length, then (only if
 * there is something to repair) with an exactly sized buffer. */
#include "json_clean.h"
#include "utf8.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REPLACEMENT_ESC "\\ufffd"   /* same length as the escape it replaces */
#define REPLACEMENT_UTF8 "\xEF\xBF\xBD"

static int jc_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of a "\uXXXX" escape at p (n bytes left), or -1. */
static long jc_escape(const unsigned char *p, size_t n)
{
    long v = 0;

    if (n < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    for (int i = 2; i < 6; i++) {
        int h = jc_hex(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Copies n bytes to out (if any) and advances the output length. */
static void jc_put(char *out, size_t *o, const void *s, size_t n)
{
    if (out)
        memcpy(out + *o, s, n);
    *o += n;
}

/* One pass over the input; out NULL = count only. Returns the repairs. */
static size_t jc_pass(const unsigned char *p, size_t len, char *out, size_t *outlen)
{
    size_t i = 0, o = 0, repairs = 0, k;

    while (i < len) {
        if (p[i] == '\\') {
            long u = jc_escape(p + i, len - i), lo;
            if (u >= 0xD800 && u <= 0xDBFF) {
                lo = jc_escape(p + i + 6, len - i - 6);
                if (lo >= 0xDC00 && lo <= 0xDFFF) { /* a valid pair */
                    jc_put(out, &o, p + i, 12);
                    i += 12;
                } else {
                    jc_put(out, &o, REPLACEMENT_ESC, 6);
                    i += 6;
                    repairs++;
                }
            } else if (u >= 0xDC00 && u <= 0xDFFF) { /* a low half with no high before it */
                jc_put(out, &o, REPLACEMENT_ESC, 6);
                i += 6;
                repairs++;
            } else if (i + 1 < len && p[i + 1] < 0x80) {
                /* any other escape (\", \\, \n, \u0041, ...) as is, so an
                 * escaped backslash is never read as the start of one */
                jc_put(out, &o, p + i, 2);
                i += 2;
            } else {
                jc_put(out, &o, p + i, 1); /* the byte after it is checked as UTF-8 */
                i++;
            }
        } else if (p[i] < 0x80) {
            jc_put(out, &o, p + i, 1);
            i++;
        } else if ((k = utf8_seq_len(p + i, len - i)) != 0) {
            jc_put(out, &o, p + i, k);
            i += k;
        } else {
            jc_put(out, &o, REPLACEMENT_UTF8, 3);
            i++;
            repairs++;
        }
    }
    *outlen = o;
    return repairs;
}

int json_clean_text(const char *buf, size_t len, char **out, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t need, got, repairs;
    char *copy;

    if (!buf || len == 0)
        return 0;
    if (len > (SIZE_MAX - 1) / 3) /* the output may grow to 3 bytes per input byte */
        return -1;
    repairs = jc_pass(p, len, NULL, &need);
    if (repairs == 0)
        return 0;
    copy = malloc(need + 1);
    if (!copy)
        return -1;
    jc_pass(p, len, copy, &got);
    copy[got] = '\0';
    *out = copy;
    *outlen = got;
    return repairs > INT_MAX ? INT_MAX : (int)repairs;
}
