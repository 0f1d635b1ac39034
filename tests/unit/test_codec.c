/* Unit tests: the job codec, the checkpoint codec and the GitHub response
 * parser — round trips, limits and hostile input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "checkpoint.h"
#include "codec.h"
#include "github.h"

static int decodes(const char *s)
{
    struct job j;
    char err[256];
    return job_decode(s, strlen(s), &j, err, sizeof err) == 0;
}

static void test_job(void)
{
    struct job j, back;
    char err[256], *s;

    job_init(&j, "EmberJS", "ember.js", "bulk_add_cli");
    j.max_prs = 150;
    s = job_encode(&j);
    CHECK(s != NULL);
    CHECK(job_decode(s, strlen(s), &back, err, sizeof err) == 0);
    CHECK(strcmp(back.id, j.id) == 0 && back.ts == j.ts);
    CHECK(strcmp(back.owner, "EmberJS") == 0 && strcmp(back.key, "emberjs/ember.js") == 0);
    CHECK(back.max_prs == 150 && back.since_days == 30);
    CHECK(strcmp(back.triggered_from, "bulk_add_cli") == 0);
    free(s);

    CHECK(decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                  "\"data\":{\"owner\":\"a\",\"name\":\"b\"}}"));
    CHECK(!decodes("not json"));
    CHECK(!decodes("[1,2]"));
    CHECK(!decodes("{\"name\":\"other\",\"id\":\"x\",\"ts\":1,\"v\":1,\"data\":{\"owner\":\"a\",\"name\":\"b\"}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                   "\"data\":{\"owner\":\"a\",\"name\":\"..\"}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                   "\"data\":{\"owner\":\"a\",\"name\":\"b\",\"maxPRs\":1001}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                   "\"data\":{\"owner\":\"a\",\"name\":\"b\",\"sinceDays\":\"30\"}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                   "\"data\":{\"owner\":\"a\\u0000b\",\"name\":\"b\"}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":2,"
                   "\"data\":{\"owner\":\"a\",\"name\":\"b\"}}"));
    CHECK(!decodes("{\"name\":\"repository/backfill.initial\",\"id\":\"x\",\"ts\":1,\"v\":1,"
                   "\"data\":{\"owner\":\"a\",\"name\":\"\xff\"}}"));
    CHECK(job_decode("", 0, &back, err, sizeof err) == -1);
}

/* The job envelope is written by hand: it must be the JSON jansson would
 * write for the same values, whatever text the trigger holds. */
static void test_job_encoding_matches_jansson(void)
{
    static const char *const triggers[] = {
        "", "bulk_add_cli", "quote \" backslash \\ slash /", "tab\t nl\n cr\r \x01\x1f del\x7f",
        "ünïcödé ✓ 漢字 🎉", "<b>&amp;</b>"};
    struct job j;
    json_error_t jerr;

    for (size_t i = 0; i < sizeof triggers / sizeof triggers[0]; i++) {
        json_t *data, *want, *got;
        char *s;
        job_init(&j, "Some-Org", "repo.name_1", triggers[i]);
        j.repository_id = i % 2 ? 0 : 123456789012345;
        s = job_encode(&j);
        CHECK(s != NULL);
        got = s ? json_loads(s, 0, &jerr) : NULL;
        data = json_pack("{s:s, s:s, s:i, s:i}", "owner", j.owner, "name", j.name, "maxPRs",
                         j.max_prs, "sinceDays", j.since_days);
        if (j.repository_id > 0)
            json_object_set_new(data, "repositoryId", json_integer(j.repository_id));
        if (j.triggered_from[0])
            json_object_set_new(data, "triggeredFrom", json_string(j.triggered_from));
        want = json_pack("{s:s, s:s, s:I, s:i, s:o}", "name", EVENT_JOB, "id", j.id, "ts",
                         (json_int_t)j.ts, "v", 1, "data", data);
        CHECK(got != NULL && json_equal(got, want));
        json_decref(got);
        json_decref(want);
        free(s);
    }
    job_init(&j, "a", "b", "");
    snprintf(j.triggered_from, sizeof j.triggered_from, "%s", "bad \xff utf-8");
    CHECK(job_encode(&j) == NULL);
}

static void test_checkpoint(void)
{
    struct checkpoint cp, back;
    char buf[CHECKPOINT_MAX_BYTES + 1], err[256];
    int n;

    memset(&cp, 0, sizeof cp);
    event_new_id(cp.id);
    strcpy(cp.cursor, "Y3Vyc29yOnYyOpK5MjAyNS0xMS0yOFQxMDowMDowMCswMDowMM4AAAAB");
    cp.fetched = 100;
    cp.chunk = 1;
    cp.seq = 3;
    cp.requests = 1;
    cp.points = 1;
    strcpy(cp.cutoff, "2026-10-29T21:39:11Z");
    n = checkpoint_encode(&cp, buf, sizeof buf);
    CHECK(n > 0 && n < 4096);
    CHECK(memchr(buf, '\0', (size_t)n) == NULL);
    CHECK(checkpoint_decode(buf, (size_t)n, &back, err, sizeof err) == 0);
    CHECK(memcmp(&cp, &back, sizeof cp) == 0);

    /* the largest possible checkpoint still fits under the broker's limit */
    memset(cp.cursor, 'A', CHECKPOINT_CURSOR_MAX);
    cp.cursor[CHECKPOINT_CURSOR_MAX] = '\0';
    memset(cp.id, 'f', EVENT_ID_MAX);
    cp.id[EVENT_ID_MAX] = '\0';
    cp.seq = cp.requests = cp.points = INT64_MAX;
    n = checkpoint_encode(&cp, buf, sizeof buf);
    CHECK(n > 0 && n < 4096);
    CHECK(checkpoint_decode(buf, (size_t)n, &back, err, sizeof err) == 0);
    CHECK(memcmp(&cp, &back, sizeof cp) == 0);

    cp.cursor[3] = '\n'; /* control characters are refused */
    CHECK(checkpoint_encode(&cp, buf, sizeof buf) == -1);
    CHECK(checkpoint_decode("{}", 2, &back, err, sizeof err) == -1);
    CHECK(checkpoint_decode("garbage", 7, &back, err, sizeof err) == -1);
    CHECK(checkpoint_decode("{\"v\":1,\"id\":\"x\",\"cursor\":null,\"fetched\":-1,\"chunk\":0,"
                            "\"seq\":0,\"cutoff\":\"2026-10-29T21:39:11Z\",\"requests\":0,\"points\":0}",
                            107, &back, err, sizeof err) == -1);

    /* What decode accepts, encode writes back the same (found by fuzz_checkpoint). */
#define CP_WITH(cursor, cutoff)                                                             \
    "{\"v\":1,\"id\":\"x\",\"cursor\":" cursor ",\"fetched\":1,\"chunk\":1,\"seq\":1,"        \
    "\"cutoff\":\"" cutoff "\",\"requests\":1,\"points\":1}"
    static const char ctl[] = CP_WITH("\"Y3Vy\\nc29y\"", "2026-10-29T21:39:11Z");
    static const char sign[] = CP_WITH("null", "+024-02-29T23:59:60Z");
    static const char old[] = CP_WITH("null", "0024-02-29T23:59:60Z");
#undef CP_WITH
    CHECK(checkpoint_decode(ctl, sizeof ctl - 1, &back, err, sizeof err) == -1);
    CHECK(checkpoint_decode(sign, sizeof sign - 1, &back, err, sizeof err) == -1);
    CHECK(checkpoint_decode(old, sizeof old - 1, &back, err, sizeof err) == 0);
    CHECK(strcmp(back.cutoff, "0024-03-01T00:00:00Z") == 0);
}

static enum gh_status parse(long http, const char *body, const char *retry_after,
                            struct gh_page *pg)
{
    return gh_parse_response(http, body, strlen(body), NULL, NULL, retry_after, pg);
}

static void test_github(void)
{
    struct gh_page pg;
    static const char ok_body[] =
        "{\"data\":{\"rateLimit\":{\"cost\":1,\"remaining\":4999,\"resetAt\":\"2026-11-28T22:00:00Z\","
        "\"limit\":5000},\"repository\":{\"databaseId\":42,\"pullRequests\":{\"pageInfo\":"
        "{\"hasNextPage\":true,\"endCursor\":\"abc\"},\"nodes\":[null,{\"fullDatabaseId\":"
        "\"9223372036854775807\",\"number\":7,\"title\":\"t \\u003c \\ud83d\\ude00\",\"body\":\"\","
        "\"state\":\"MERGED\",\"isDraft\":false,\"merged\":true,\"createdAt\":\"2026-11-20T10:00:00Z\","
        "\"updatedAt\":\"2026-11-21T10:00:00Z\",\"closedAt\":\"2026-11-21T10:00:00Z\",\"mergedAt\":"
        "\"2026-11-21T10:00:00Z\",\"additions\":1,\"deletions\":2,\"changedFiles\":3,\"baseRefName\":"
        "\"main\",\"headRefName\":\"x\",\"url\":\"https://github.com/a/b/pull/7\",\"author\":"
        "{\"__typename\":\"Bot\",\"login\":\"dependabot\",\"avatarUrl\":\"u\",\"databaseId\":9}}]}}}}";

    CHECK(parse(200, ok_body, NULL, &pg) == GH_OK);
    CHECK(json_array_size(pg.records) == 1 && pg.has_next && strcmp(pg.end_cursor, "abc") == 0);
    CHECK(pg.cost == 1 && pg.remaining == 4999 && pg.reset_at > 0 && pg.repository_id == 42);
    json_t *r = json_array_get(pg.records, 0);
    CHECK(strcmp(json_string_value(json_object_get(r, "githubId")), "9223372036854775807") == 0);
    CHECK(strcmp(json_string_value(json_object_get(r, "state")), "merged") == 0);
    CHECK(json_is_true(json_object_get(json_object_get(r, "author"), "isBot")));
    gh_page_clear(&pg);

    CHECK(parse(200, "{\"data\":{\"repository\":null},\"errors\":[{\"type\":\"NOT_FOUND\","
                     "\"message\":\"Could not resolve to a Repository with the name 'a/b'.\"}]}",
                NULL, &pg) == GH_NOT_FOUND);
    CHECK(strstr(pg.error, "Could not resolve") != NULL);
    gh_page_clear(&pg);
    CHECK(parse(200, "{\"errors\":[{\"type\":\"RATE_LIMITED\",\"message\":\"x\"}]}", NULL, &pg) ==
          GH_RATE_LIMITED);
    CHECK(parse(200, "{\"errors\":[{\"type\":\"RATE_LIMIT\",\"message\":\"x\"}]}", NULL, &pg) ==
          GH_RATE_LIMITED);
    CHECK(parse(200, "{\"data\":null,\"errors\":[{\"message\":\"Something went wrong while "
                     "executing your query.\"}]}", NULL, &pg) == GH_SERVER_ERROR);
    CHECK(parse(502, "<html>bad gateway</html>", NULL, &pg) == GH_SERVER_ERROR);
    /* a cursor no checkpoint can carry (found by fuzz_graphql) */
    CHECK(parse(200, "{\"data\":{\"repository\":{\"pullRequests\":{\"pageInfo\":{\"hasNextPage\":"
                     "true,\"endCursor\":\"Y3Vy\\r\\nc29y\"},\"nodes\":[]}}}}", NULL, &pg) ==
          GH_TRANSIENT);
    /* out-of-range headers count as absent (a wait must not overflow) */
    CHECK(gh_parse_response(429, "{}", 2, "-1", "99999999999999999999", "4294967296", &pg) ==
              GH_SECONDARY_LIMIT &&
          pg.remaining == -1 && pg.reset_at == 0 && pg.retry_after == -1);
    CHECK(parse(504, "", NULL, &pg) == GH_SERVER_ERROR);
    CHECK(parse(403, "{\"message\":\"You have exceeded a secondary rate limit.\"}", NULL, &pg) ==
          GH_SECONDARY_LIMIT);
    CHECK(parse(429, "{}", "30", &pg) == GH_SECONDARY_LIMIT && pg.retry_after == 30);
    CHECK(parse(401, "{\"message\":\"Bad credentials\"}", NULL, &pg) == GH_UNAUTHORIZED);
    CHECK(parse(200, "{\"data\":{\"repository\":{\"pullRe", NULL, &pg) == GH_TRANSIENT);
    CHECK(parse(200, "", NULL, &pg) == GH_TRANSIENT);
    CHECK(parse(200, "{\"errors\":[{\"type\":\"INVALID_CURSOR_ARGUMENTS\",\"message\":\"bad\"}]}",
                NULL, &pg) == GH_INVALID);
    CHECK(parse(200, "{\"data\":{\"repository\":{\"pullRequests\":{\"pageInfo\":{\"hasNextPage\":"
                     "false,\"endCursor\":null},\"nodes\":[{\"number\":\"x\"}]}}}}",
                NULL, &pg) == GH_TRANSIENT);
    CHECK(pg.records == NULL);
}

int main(void)
{
    test_job();
    test_job_encoding_matches_jansson();
    test_checkpoint();
    test_github();
    return CHECK_DONE();
}
