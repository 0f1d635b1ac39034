/* test_pgw: the helpers test_pg_writer.c and test_pgw_batch.c share
 * (declared in test_pgw.h): the failure count, the skip handler's record,
 * committing as the sink does, SQL on the test's own connection, and the
 * test events. */
#define _POSIX_C_SOURCE 200809L

#include "test_pgw.h"

int failures;
struct skips skips;

/* pgw_skip_fn: notes an event the database refused. */
void record_skip(void *ctx, size_t event, const char *why)
{
    struct skips *k = ctx;

    if (k->n < 16)
        k->ev[k->n++] = event;
    snprintf(k->why, sizeof k->why, "%s", why);
}

int commit(pgw *w, char *err, size_t errlen)
{
    if (pgw_commit_start(w, err, errlen) != PGW_OK)
        return PGW_EDB;
    return pgw_commit_poll(w, 1, err, errlen);
}

/* ---- SQL helpers on the test's own connection ---- */

/* First column of the first row as a malloc'd string, "<null>", "<none>"
 * or "<error: ...>". */
char *q1(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char buf[512];

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        snprintf(buf, sizeof buf, "<error: %s>", PQresultErrorMessage(r));
    else if (PQntuples(r) == 0)
        snprintf(buf, sizeof buf, "<none>");
    else if (PQgetisnull(r, 0, 0))
        snprintf(buf, sizeof buf, "<null>");
    else
        snprintf(buf, sizeof buf, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return strdup(buf);
}

int sql_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "SQL failed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* Fingerprint of every row of the written tables, including xmin, which
 * changes on any UPDATE, even one that writes identical values. */
char *snapshot(PGconn *c)
{
    return q1(c, "SELECT concat_ws(',',"
                 " (SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                 "    FROM (SELECT xmin::text AS x, * FROM repositories) t),"
                 " (SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                 "    FROM (SELECT xmin::text AS x, * FROM contributors) t),"
                 " (SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                 "    FROM (SELECT xmin::text AS x, * FROM pull_requests) t),"
                 " (SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                 "    FROM (SELECT xmin::text AS x, * FROM progressive_backfill_state) t),"
                 " (SELECT md5(string_agg(t::text, '|' ORDER BY t::text))"
                 "    FROM (SELECT xmin::text AS x, * FROM backfill_chunks) t))");
}

/* ---- events ---- */

static const char *PR_EVENT =
    "{\"repository\":\"octocat/hello-world\",\"owner\":\"OctoCat\",\"name\":\"Hello-World\","
    "\"repositoryId\":1296269,\"backfillId\":\"bf-1\",\"seq\":2,\"chunk\":1,"
    "\"startedAt\":1764360000123,\"pullRequests\":["
    /* null author, largest possible id */
    "{\"githubId\":\"9223372036854775807\",\"number\":1,\"title\":\"First\",\"body\":null,"
    "\"state\":\"open\",\"draft\":false,\"merged\":false,"
    "\"createdAt\":\"2025-11-20T10:00:00Z\",\"updatedAt\":\"2025-11-21T10:00:00Z\","
    "\"closedAt\":null,\"mergedAt\":null,\"additions\":1,\"deletions\":0,\"changedFiles\":1,"
    "\"baseBranch\":\"main\",\"headBranch\":\"f1\","
    "\"url\":\"https://github.com/OctoCat/Hello-World/pull/1\",\"author\":null},"
    /* a bot */
    "{\"githubId\":\"2000000001\",\"number\":2,\"title\":\"Bump deps \\u2728\",\"body\":\"auto\","
    "\"state\":\"merged\",\"draft\":false,\"merged\":true,"
    "\"createdAt\":\"2025-11-19T10:00:00Z\",\"updatedAt\":\"2025-11-19T12:00:00.5+01:00\","
    "\"closedAt\":\"2025-11-19T11:00:00Z\",\"mergedAt\":\"2025-11-19T11:00:00Z\","
    "\"additions\":10,\"deletions\":10,\"changedFiles\":2,\"baseBranch\":\"main\","
    "\"headBranch\":\"deps\",\"url\":\"https://github.com/OctoCat/Hello-World/pull/2\","
    "\"author\":{\"login\":\"dependabot[bot]\",\"githubId\":49699333,"
    "\"avatarUrl\":\"https://avatars.example/d\",\"isBot\":true}},"
    /* NUL in the title; the body gets invalid UTF-8 below */
    "{\"githubId\":\"2000000002\",\"number\":3,\"title\":\"a\\u0000b\",\"body\":\"x\","
    "\"state\":\"closed\",\"draft\":true,\"merged\":false,"
    "\"createdAt\":\"2025-11-18T10:00:00Z\",\"updatedAt\":\"2025-11-18T10:00:00Z\","
    "\"closedAt\":\"2025-11-18T11:00:00Z\",\"mergedAt\":null,\"additions\":null,"
    "\"deletions\":null,\"changedFiles\":null,\"baseBranch\":null,\"headBranch\":null,"
    "\"url\":\"https://github.com/OctoCat/Hello-World/pull/3\","
    "\"author\":{\"login\":\"Octo\",\"githubId\":583231,\"avatarUrl\":null,\"isBot\":false}}"
    "]}";

json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);

    if (!j) {
        fprintf(stderr, "bad test JSON: %s at %d\n", e.text, e.position);
        exit(2);
    }
    return j;
}

/* The 3-PR event; PR 3's body holds invalid UTF-8 (a lone 0xff, a
 * truncated sequence) that JSON text cannot carry, so it is set directly. */
json_t *pr_event(void)
{
    static const char body[] = "ok \xff mid \xe2\x82 end \xc3";
    json_t *d = load(PR_EVENT);
    json_t *pr3 = json_array_get(json_object_get(d, "pullRequests"), 2);

    if (json_object_set_new(pr3, "body", json_stringn_nocheck(body, sizeof body - 1))) {
        fprintf(stderr, "oom\n");
        exit(2);
    }
    return d;
}

json_t *progress(const char *bf, long long seq, const char *status, int prog, int chunk,
                        int chunk_size, long long started, const char *cursor, const char *error)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:i, s:i, s:i, s:s?, s:s,"
                          " s:I, s:b, s:s?, s:{s:i, s:i, s:i, s:s}}",
                          "repository", "octocat/hello-world", "owner", "OctoCat", "name",
                          "Hello-World", "backfillId", bf, "seq", (json_int_t)seq, "status",
                          status, "progress", prog, "total", 200, "chunk", chunk, "chunkSize",
                          chunk_size, "cursor", cursor, "cutoffDate", "2025-10-29T00:00:00Z",
                          "startedAt", (json_int_t)started, "reachedTimeLimit", 0, "error",
                          error, "apiCost", "requests", seq, "points", (int)seq * 2, "remaining",
                          4990, "resetAt", "2025-11-28T22:00:00Z");

    if (!d) {
        fprintf(stderr, "json_pack failed\n");
        exit(2);
    }
    return d;
}

/* Moves an event to another repository with fresh pull-request ids. */
void retarget(json_t *ev, const char *owner, const char *name, long long id_base)
{
    json_t *prs = json_object_get(ev, "pullRequests");
    char full[128], id[24];
    size_t i;

    snprintf(full, sizeof full, "%s/%s", owner, name);
    json_object_set_new(ev, "repository", json_string(full));
    json_object_set_new(ev, "owner", json_string(owner));
    json_object_set_new(ev, "name", json_string(name));
    json_object_del(ev, "repositoryId");
    for (i = 0; i < json_array_size(prs); i++) {
        snprintf(id, sizeof id, "%lld", id_base + (long long)i);
        json_object_set_new(json_array_get(prs, i), "githubId", json_string(id));
    }
}
