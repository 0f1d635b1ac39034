/* fuzz_graphql: gh_parse_response (common/github_parse.c) on arbitrary
 * answers: HTTP status, the three rate-limit headers and the body.
 *
 * Input layout (so the corpus can hold real answers as they are):
 *
 *   byte 0        HTTP status: fuzz_status[byte % 16] (half of them 200)
 *   byte 1        bit 0: x-ratelimit-remaining, bit 1: x-ratelimit-reset,
 *                 bit 2: retry-after present
 *   per header    its value up to a '\n' (at most 31 bytes, as the HTTP
 *                 side keeps them), in that order
 *   the rest      the body, passed without a terminating NUL
 *
 * Checks: the status returned is the page's; header values are in range;
 * on success the records are an array of objects, hasNextPage comes with a
 * cursor, and that cursor is one a checkpoint can carry; on failure no
 * records and a reason; the records serialise (the worker publishes
 * them); nothing leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_check.h"
#include "github.h"

static const long fuzz_status[16] = {200, 200, 200, 200, 200, 200, 200, 200,
                                     401, 403, 429, 500, 502, 503, 504, 404};

/* Takes one header value from *p (up to '\n', at most 31 bytes). */
static const char *take_header(const uint8_t **p, const uint8_t *end, char out[32])
{
    size_t n = 0;
    while (*p < end && **p != '\n' && n < 31)
        out[n++] = (char)*(*p)++;
    if (*p < end && **p == '\n')
        (*p)++;
    out[n] = '\0';
    return out;
}

static void check_page(enum gh_status st, const struct gh_page *page)
{
    size_t i;
    json_t *rec;
    char *dump;

    FUZZ_CHECK(st == page->status);
    FUZZ_CHECK(memchr(page->error, '\0', sizeof page->error));
    FUZZ_CHECK(memchr(page->end_cursor, '\0', sizeof page->end_cursor));
    /* waits are computed from these: no negative retry-after, no reset
     * beyond what rateLimit.resetAt can say (9999-12-31T23:59:60Z) */
    FUZZ_CHECK(page->retry_after >= -1);
    FUZZ_CHECK(page->reset_at >= 0 && page->reset_at <= 253402300800);
    if (st != GH_OK) {
        FUZZ_CHECK(page->records == NULL && page->error[0] != '\0');
        FUZZ_CHECK(strcmp(gh_status_name(st), "unknown") != 0);
        return;
    }
    FUZZ_CHECK(json_is_array(page->records));
    FUZZ_CHECK(!page->has_next || page->end_cursor[0] != '\0');
    FUZZ_CHECK(strlen(page->end_cursor) <= CHECKPOINT_CURSOR_MAX);
    for (i = 0; page->end_cursor[i]; i++) /* checkpoint_encode refuses these */
        FUZZ_CHECK((unsigned char)page->end_cursor[i] >= 0x20);
    json_array_foreach(page->records, i, rec) {
        FUZZ_CHECK(json_is_object(rec));
        FUZZ_CHECK(json_is_string(json_object_get(rec, "githubId")));
        FUZZ_CHECK(json_is_integer(json_object_get(rec, "number")));
        FUZZ_CHECK(json_is_string(json_object_get(rec, "url")));
    }
    dump = json_dumps(page->records, JSON_COMPACT);
    FUZZ_CHECK(dump != NULL);
    free(dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char rem[32], reset[32], retry[32];
    const char *h_rem = NULL, *h_reset = NULL, *h_retry = NULL;
    struct gh_page page;
    enum gh_status st;
    long status;
    unsigned flags;

    if (size < 2)
        return 0;
    status = fuzz_status[p[0] % 16];
    flags = p[1];
    p += 2;
    if (flags & 1)
        h_rem = take_header(&p, end, rem);
    if (flags & 2)
        h_reset = take_header(&p, end, reset);
    if (flags & 4)
        h_retry = take_header(&p, end, retry);

    st = gh_parse_response(status, (const char *)p, (size_t)(end - p), h_rem, h_reset, h_retry,
                           &page);
    check_page(st, &page);
    gh_page_clear(&page);
    return 0;
}
