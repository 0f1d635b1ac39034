/* test_pg_writer: integration test of pg_writer against a real Postgres,
 * driven the way the sink drives it (pgw_begin, pgw_apply, pgw_set_offset,
 * pgw_commit_start, pgw_commit_poll; refused events through pgw_on_skip).
 *
 *   test_pg_writer [CONNINFO]            run the checks; exit 0 if all pass
 *   test_pg_writer CONNINFO --bench N    also time N pull requests (chunks
 *                                        of 100, one progress event each)
 *
 * CONNINFO (else the environment's BACKFILL_TEST_PG; neither: exit 77,
 * "skipped", for ctest -L pg) names a server where the role may CREATE
 * DATABASE. The test works in databases of its own (pgw_test_<pid>[_race])
 * and drops them at the end (PGW_TEST_KEEP=1 keeps the main one for a
 * look), so it can run repeatedly and in parallel with other tests.
 * Batches of many events and commits in flight are tested in
 * test_pgw_batch.c. */
#define _POSIX_C_SOURCE 200809L

#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg_conn.h"
#include "pg_writer.h"
#include "pgw_migrations.h"
#include "test_pgw.h"

/* conninfo of the same server with another dbname (malloc'd). Values are
 * quoted for the key=value syntax. */
static char *conninfo_for(const char *base, const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(base, NULL), *o;
    size_t cap = 64 + strlen(dbname) * 2;
    char *out, *p;
    const char *v;

    if (!opts)
        return NULL;
    for (o = opts; o->keyword; o++)
        if (o->val)
            cap += strlen(o->keyword) + 2 * strlen(o->val) + 4;
    if (!(out = malloc(cap))) {
        PQconninfoFree(opts);
        return NULL;
    }
    p = out;
    for (o = opts; o->keyword; o++) {
        v = !strcmp(o->keyword, "dbname") ? NULL : o->val;
        if (!v)
            continue;
        p += sprintf(p, "%s='", o->keyword);
        for (; *v; v++) {
            if (*v == '\'' || *v == '\\')
                *p++ = '\\';
            *p++ = *v;
        }
        *p++ = '\'';
        *p++ = ' ';
    }
    sprintf(p, "dbname='%s'", dbname);
    PQconninfoFree(opts);
    return out;
}

/* Runs one batch of a single event plus an offset; returns pgw_apply's
 * code (the batch is committed unless it was PGW_EDB), or PGW_EBADEVENT
 * if the database refused the event at commit. */
static int batch1(pgw *w, const char *name, json_t *data, int64_t offset)
{
    char err[512];
    int rc;

    if (pgw_begin(w, err, sizeof err)) {
        fprintf(stderr, "begin: %s\n", err);
        return PGW_EDB;
    }
    rc = pgw_apply(w, name, data, err, sizeof err);
    if (rc)
        fprintf(stderr, "  (apply %s: %d: %s)\n", name, rc, err);
    skips.n = 0;
    if (rc != PGW_EDB && (pgw_set_offset(w, GROUP, TOPIC, 0, offset, err, sizeof err) ||
                          commit(w, err, sizeof err))) {
        fprintf(stderr, "offset/commit: %s\n", err);
        pgw_rollback(w);
        return PGW_EDB;
    }
    if (rc == PGW_EDB)
        pgw_rollback(w);
    return rc == PGW_OK && skips.n ? PGW_EBADEVENT : rc;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* ---- the checks ---- */

static void test_secrets(void)
{
    char err[512];
    pgw *w = pgw_new("postgresql://someone:S3cretPW@127.0.0.1:1/nodb?connect_timeout=2", err,
                     sizeof err);

    CHECK(!w, "connected to port 1?");
    CHECK(!strstr(err, "S3cretPW"), "password in message: %s", err);
    pgw_free(w);
    w = pgw_new("host=127.0.0.1 password=S3cretPW S3cretPWtoo", err, sizeof err);
    CHECK(!w, "parsed a broken conninfo");
    CHECK(!strstr(err, "S3cretPW") && *err, "password in message: %s", err);
    pgw_free(w);
    w = pgw_new("postgresql://someone:S3cret%zzPW@127.0.0.1:1/nodb", err, sizeof err);
    CHECK(!w && !strstr(err, "S3cret"), "password in message: %s", err);
    pgw_free(w);
    /* PGPASSWORD is masked in every message, even at the cut. */
    setenv("PGPASSWORD", "S3cretPW", 1);
    pg_conn_msg(NULL, "server said", "auth for S3cretPW\nfailed", err, sizeof err);
    CHECK(!strcmp(err, "server said: auth for ******** failed"), "masked: %s", err);
    pg_conn_msg(NULL, "x", "S3cretPW", err, 6);
    CHECK(!strcmp(err, "x: **"), "masked at the cut: %s", err);
    w = pgw_new("host=127.0.0.1 port=1 connect_timeout=2", err, sizeof err);
    CHECK(!w && !strstr(err, "S3cretPW") && strstr(err, "cannot connect"), "%s", err);
    pgw_free(w);
    unsetenv("PGPASSWORD");
}

static void test_migrate(pgw *w, PGconn *c)
{
    char err[512];
    int rc;

    CHECK(pgw_begin(w, err, sizeof err) == PGW_EDB, "begin before migrate should fail");
    CHECK(pgw_ok(w), "connection should survive a failed prepare");
    rc = pgw_migrate(w, err, sizeof err);
    CHECK(rc == (int)pgw_migrations_count, "first migrate applied %d of %zu: %s", rc,
          pgw_migrations_count, err);
    rc = pgw_migrate(w, err, sizeof err);
    CHECK(rc == 0, "second migrate applied %d: %s", rc, err);
    {
        char want[1024] = "";
        size_t used = 0, i;
        for (i = 0; i < pgw_migrations_count && used < sizeof want; i++)
            used += (size_t)snprintf(want + used, sizeof want - used, "%s%d:%s", i ? "," : "",
                                     pgw_migrations[i].version, pgw_migrations[i].name);
        CHECK(pgw_migrations_count >= 1 && !strcmp(pgw_migrations[0].name, "001_init"),
              "001_init is not the first migration");
        EXPECT_SQL(c,
                   "SELECT string_agg(version || ':' || name, ',' ORDER BY version)"
                   " FROM schema_migrations",
                   want);
    }
}

/* Several sinks migrating one empty database at the same moment. */
static void test_migrate_race(const char *base_conninfo, PGconn *admin)
{
    char db[64], sql[160];
    char *ci;
    pid_t pids[6];
    int i, status, ok = 0;

    snprintf(db, sizeof db, "pgw_test_%ld_race", (long)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!sql_ok(admin, sql) || !(ci = conninfo_for(base_conninfo, db))) {
        CHECK(0, "cannot create %s", db);
        return;
    }
    for (i = 0; i < 6; i++) {
        if ((pids[i] = fork()) == 0) {
            char err[512];
            pgw *w = pgw_new(ci, err, sizeof err);
            int rc = w ? pgw_migrate(w, err, sizeof err) : PGW_EDB;

            if (rc < 0)
                fprintf(stderr, "racer: %s\n", err);
            pgw_free(w);
            free(ci); /* leak-free children under valgrind */
            _exit(rc < 0 ? 1 : rc == (int)pgw_migrations_count ? 10 : rc == 0 ? 0 : 2);
        }
    }
    for (i = 0; i < 6; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status)) {
            CHECK(WEXITSTATUS(status) != 1, "racer %d failed", i);
            CHECK(WEXITSTATUS(status) != 2, "racer %d applied only some migrations", i);
            ok += WEXITSTATUS(status) == 10;
        }
    }
    CHECK(ok == 1, "%d racers applied the migrations, want exactly 1", ok);
    free(ci);
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
    sql_ok(admin, sql);
}

static void test_pull_requests(pgw *w, PGconn *c)
{
    json_t *ev = pr_event();
    char *before, *after;
    int64_t off = -1;
    char err[512];

    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 0, &off, err, sizeof err) == 1, "offset: %s", err);
    CHECK(batch1(w, "backfill/pull_requests", ev, 1) == PGW_OK, "first apply");
    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 0, &off, err, sizeof err) == 0 && off == 1,
          "offset %lld", (long long)off);

    EXPECT_SQL(c, "SELECT count(*) FROM pull_requests", "3");
    EXPECT_SQL(c, "SELECT owner || '/' || name || ' ' || github_id FROM repositories",
               "OctoCat/Hello-World 1296269");
    EXPECT_SQL(c, "SELECT number || ' ' || (author_id IS NULL) || ' ' || backfill_id"
                  "  FROM pull_requests WHERE github_id = 9223372036854775807",
               "1 true bf-1");
    EXPECT_SQL(c, "SELECT c.username || ' ' || c.is_bot || ' ' || p.state || ' ' || p.merged"
                  "  FROM pull_requests p JOIN contributors c ON c.id = p.author_id"
                  " WHERE p.number = 2",
               "dependabot[bot] true merged true");
    EXPECT_SQL(c, "SELECT title FROM pull_requests WHERE number = 2", "Bump deps \xe2\x9c\xa8");
    EXPECT_SQL(c, "SELECT updated_at = '2025-11-19T11:00:00.5Z' FROM pull_requests"
                  " WHERE number = 2",
               "t");
    EXPECT_SQL(c, "SELECT title FROM pull_requests WHERE number = 3", "ab");
    EXPECT_SQL(c, "SELECT body FROM pull_requests WHERE number = 3",
               "ok \xef\xbf\xbd mid \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd");
    EXPECT_SQL(c, "SELECT draft || ' ' || (additions IS NULL) || ' ' || c.username"
                  "  FROM pull_requests p JOIN contributors c ON c.id = p.author_id"
                  " WHERE number = 3",
               "true true Octo");
    EXPECT_SQL(c, "SELECT count(*) FROM contributors", "2");

    /* The same event again: nothing may change, not even xmin. */
    before = snapshot(c);
    CHECK(batch1(w, "backfill/pull_requests", ev, 2) == PGW_OK, "second apply");
    after = snapshot(c);
    CHECK(before && after && !strcmp(before, after), "replay changed rows:\n %s\n %s", before,
          after);
    free(before);
    free(after);

    /* An older version of PR 1 (updatedAt earlier) must not overwrite it;
     * a newer one does. */
    {
        json_t *pr1 = json_array_get(json_object_get(ev, "pullRequests"), 0);

        json_object_set_new(pr1, "title", json_string("Stale"));
        json_object_set_new(pr1, "updatedAt", json_string("2025-11-20T12:00:00Z"));
        CHECK(batch1(w, "backfill/pull_requests", ev, 3) == PGW_OK, "stale apply");
        EXPECT_SQL(c, "SELECT title FROM pull_requests WHERE number = 1", "First");
        /* JSON escaping of what the title may hold: quotes, backslash,
         * control characters, 4-byte UTF-8. */
        json_object_set_new(pr1, "title",
                            json_string("Renamed \"q\" \\ \x01\t\xf0\x9f\x98\x80"));
        json_object_set_new(pr1, "updatedAt", json_string("2025-11-22T12:00:00Z"));
        CHECK(batch1(w, "backfill/pull_requests", ev, 4) == PGW_OK, "newer apply");
        EXPECT_SQL(c, "SELECT title = 'Renamed \"q\" \\ ' || chr(1) || chr(9) || chr(128512)"
                      "  FROM pull_requests WHERE number = 1",
                   "t");
    }
    json_decref(ev);
}

static void test_progress(pgw *w, PGconn *c)
{
    const long long t1 = 1764360000123LL, t2 = t1 + 3600000;
    json_t *ev;
    char *before, *after;

#define APPLY_PROGRESS(off, ...)                                                         \
    do {                                                                                 \
        ev = progress(__VA_ARGS__);                                                      \
        CHECK(batch1(w, "backfill/progress.update", ev, (off)) == PGW_OK, "progress");   \
        json_decref(ev);                                                                 \
    } while (0)

    APPLY_PROGRESS(10, "bf-1", 1, "started", 0, 0, 0, t1, NULL, NULL);
    EXPECT_SQL(c, "SELECT status || ' ' || event_status || ' ' || last_seq || ' ' ||"
                  " (last_processed_at IS NULL) FROM progressive_backfill_state",
               "active started 1 true");
    EXPECT_SQL(c, "SELECT started_at = '2025-11-28T20:00:00.123Z' FROM progressive_backfill_state",
               "t");
    APPLY_PROGRESS(11, "bf-1", 3, "processing", 3, 1, 3, t1, "Y3Vyc29y", NULL);
    APPLY_PROGRESS(12, "bf-1", 2, "rate_limited", 2, 1, 2, t1, "b2xk", NULL);
    EXPECT_SQL(c, "SELECT status || ' ' || processed_prs || '/' || total_prs || ' ' || last_seq"
                  " || ' ' || last_processed_cursor || ' ' || (last_processed_at IS NOT NULL)"
                  "  FROM progressive_backfill_state",
               "active 3/200 3 Y3Vyc29y true");
    EXPECT_SQL(c, "SELECT metadata->>'chunk' || ' ' || (metadata->'apiCost'->>'points') || ' ' ||"
                  " (metadata->>'cutoffDate') || ' ' || (metadata->>'reachedTimeLimit')"
                  "  FROM progressive_backfill_state",
               "1 6 2025-10-29T00:00:00Z false");
    EXPECT_SQL(c, "SELECT string_agg(chunk_number || ':' || pr_count || ':' || processed_prs ||"
                  " ':' || cursor || ':' || api_requests || ':' || api_points, ',')"
                  "  FROM backfill_chunks",
               "1:3:3:Y3Vyc29y:3:6");

    APPLY_PROGRESS(13, "bf-1", 4, "completed", 3, 1, 0, t1, "Y3Vyc29y", NULL);
    EXPECT_SQL(c, "SELECT status || ' ' || processed_prs || ' ' || (finished_at IS NOT NULL)"
                  "  FROM progressive_backfill_state",
               "completed 3 true");
    /* The invariant a reader relies on. */
    EXPECT_SQL(c, "SELECT s.processed_prs = (SELECT count(*) FROM pull_requests p"
                  "                          WHERE p.repository_id = s.repository_id)"
                  "  FROM progressive_backfill_state s WHERE s.status = 'completed'",
               "t");

    /* Replays: the completed event and an old chunk change nothing. */
    before = snapshot(c);
    APPLY_PROGRESS(14, "bf-1", 4, "completed", 3, 1, 0, t1, "Y3Vyc29y", NULL);
    APPLY_PROGRESS(15, "bf-1", 3, "processing", 3, 1, 3, t1, "Y3Vyc29y", NULL);
    after = snapshot(c);
    CHECK(before && after && !strcmp(before, after), "replay changed rows:\n %s\n %s", before,
          after);
    free(before);
    free(after);

    /* A newer backfill replaces the row; the old one replayed never does. */
    APPLY_PROGRESS(16, "bf-2", 1, "started", 0, 0, 0, t2, NULL, NULL);
    APPLY_PROGRESS(17, "bf-1", 5, "failed", 3, 1, 0, t1, NULL, "late replay");
    EXPECT_SQL(c, "SELECT backfill_id || ' ' || status || ' ' || last_seq || ' ' ||"
                  " (error IS NULL) || ' ' || (finished_at IS NULL)"
                  "  FROM progressive_backfill_state",
               "bf-2 active 1 true true");
    /* error text with a broken UTF-8 tail: cleaned, not fatal */
    ev = progress("bf-2", 2, "failed", 0, 0, 0, t2, NULL, NULL);
    json_object_set_new(ev, "error", json_stringn_nocheck("NOT_FOUND: gone\xc3", 16));
    CHECK(batch1(w, "backfill/progress.update", ev, 18) == PGW_OK, "failed event");
    json_decref(ev);
    EXPECT_SQL(c, "SELECT status || ' ' || error FROM progressive_backfill_state",
               "failed NOT_FOUND: gone\xef\xbf\xbd");
    EXPECT_SQL(c, "SELECT count(*) FROM progressive_backfill_state", "1");
#undef APPLY_PROGRESS
}

/* One batch mixing good, invalid and DB-rejected events. */
static void test_bad_events(pgw *w, PGconn *c)
{
    char err[512];
    json_t *ev;
    int rc;

    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin: %s", err);

    ev = pr_event(); /* wrong type */
    json_object_set_new(json_array_get(json_object_get(ev, "pullRequests"), 1), "number",
                        json_string("2"));
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_EBADEVENT && strstr(err, "pullRequests[1].number"), "%d %s", rc, err);
    json_decref(ev);

    ev = pr_event(); /* id beyond INT64_MAX */
    json_object_set_new(json_array_get(json_object_get(ev, "pullRequests"), 0), "githubId",
                        json_string("9223372036854775808"));
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_EBADEVENT && strstr(err, "githubId"), "%d %s", rc, err);
    json_decref(ev);

    ev = pr_event(); /* identifiers are not cleaned but refused */
    json_object_set_new(ev, "backfillId", json_stringn("bf\0x", 4));
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_EBADEVENT && strstr(err, "backfillId"), "%d %s", rc, err);
    json_decref(ev);

    ev = load("[1]"); /* not an object */
    CHECK(pgw_apply(w, "backfill/progress.update", ev, err, sizeof err) == PGW_EBADEVENT,
          "array data accepted");
    json_decref(ev);

    ev = progress("bf-3", 1, "exploded", 0, 0, 0, 1, NULL, NULL); /* bad enum */
    CHECK(pgw_apply(w, "backfill/progress.update", ev, err, sizeof err) == PGW_EBADEVENT,
          "bad status accepted");
    json_object_set_new(ev, "status", json_string("started"));
    json_object_set_new(ev, "repository", json_string("someone/else"));
    CHECK(pgw_apply(w, "backfill/progress.update", ev, err, sizeof err) == PGW_EBADEVENT,
          "repository/owner mismatch accepted");
    json_decref(ev);

    /* Passes the C checks, rejected by Postgres at commit (February 30):
     * the new repository the event created must be rolled back with it. */
    ev = pr_event();
    json_object_set_new(ev, "repository", json_string("ghost/rollback"));
    json_object_set_new(ev, "owner", json_string("ghost"));
    json_object_set_new(ev, "name", json_string("rollback"));
    json_object_set_new(json_array_get(json_object_get(ev, "pullRequests"), 0), "createdAt",
                        json_string("2025-02-30T00:00:00Z"));
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_OK, "valid to C: %d %s", rc, err);
    json_decref(ev);

    /* Same repository and number as an existing PR, another GitHub id. */
    ev = pr_event();
    json_object_set_new(json_array_get(json_object_get(ev, "pullRequests"), 2), "githubId",
                        json_string("2000000099"));
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_OK, "valid to C: %d %s", rc, err);
    json_decref(ev);

    ev = load("{\"anything\":1}"); /* not ours */
    CHECK(pgw_apply(w, "repository/backfill.initial", ev, err, sizeof err) == PGW_OK,
          "unknown event not ignored");
    json_decref(ev);

    /* A good event after all that still lands. */
    ev = pr_event();
    retarget(ev, "octocat", "Spoon-Knife", 3000000000LL);
    /* an author GitHub gave no id: PR stored, author_id NULL */
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(ev, "pullRequests"), 2), "author"),
        "githubId", json_null());
    rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);
    CHECK(rc == PGW_OK, "good event after bad ones: %d %s", rc, err);
    json_decref(ev);

    CHECK(pgw_set_offset(w, GROUP, TOPIC, 1, 7, err, sizeof err) == PGW_OK, "offset: %s", err);
    skips.n = 0;
    CHECK(commit(w, err, sizeof err) == PGW_OK, "commit: %s", err);
    /* the 7th and 8th pgw_apply calls: refused by the database */
    CHECK(skips.n == 2 && skips.ev[0] == 6 && skips.ev[1] == 7 && strstr(skips.why, "[23505]"),
          "skipped %d: %zu %zu (%s)", skips.n, skips.ev[0], skips.ev[1], skips.why);

    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE owner = 'ghost'", "0");
    EXPECT_SQL(c, "SELECT count(*) || ' ' || count(author_id) FROM pull_requests p"
                  " JOIN repositories r ON r.id = p.repository_id WHERE r.name = 'Spoon-Knife'",
               "3 1");
    EXPECT_SQL(c, "SELECT github_id IS NULL FROM repositories WHERE name = 'Spoon-Knife'", "t");
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 1", "7");
}

static void test_rollback_and_reconnect(pgw *w, PGconn *c)
{
    char err[512];
    int64_t off = -1;
    json_t *ev = pr_event();

    /* Rolled back: neither rows nor offset. */
    retarget(ev, "rolled", "back", 4000000000LL);
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin: %s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 0, 999, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 0, &off, err, sizeof err) == 0 && off == 999,
          "in-batch offset %lld", (long long)off);
    pgw_rollback(w);
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE owner = 'rolled'", "0");
    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 0, &off, err, sizeof err) == 0 && off == 18,
          "offset after rollback %lld", (long long)off);

    /* The server kills our session mid-batch. */
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin: %s", err);
    CHECK(sql_ok(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'backfill-sink'"
                    "   AND datname = current_database()"),
          "terminate");
    /* Found out while streaming the rows, or at the latest at commit. */
    {
        int rc = pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err);

        if (rc == PGW_OK)
            rc = pgw_set_offset(w, GROUP, TOPIC, 0, 999, err, sizeof err);
        if (rc == PGW_OK)
            rc = commit(w, err, sizeof err);
        CHECK(rc == PGW_EDB, "a batch on a dead connection: %d", rc);
    }
    CHECK(!pgw_ok(w), "pgw_ok after the kill");
    pgw_rollback(w);
    CHECK(pgw_reconnect(w, err, sizeof err) == PGW_OK, "reconnect: %s", err);
    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 0, &off, err, sizeof err) == 0 && off == 18,
          "offset after reconnect %lld: %s", (long long)off, err);
    CHECK(batch1(w, "backfill/pull_requests", ev, 19) == PGW_OK, "batch after reconnect");
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE owner = 'rolled'", "1");
    json_decref(ev);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* n PRs in chunks of 100 (pull_requests + progress per chunk), 10 chunks
 * per batch, 10 repositories, each author seen many times. */
static void bench(pgw *w, long n)
{
    char err[512], owner[32], full[48], id[24], title[64];
    long chunk, chunks = (n + 99) / 100, i, done = 0;
    double t0 = now_s(), in_pgw = 0, t;
    json_t *tmpl = pr_event(), *pr0 = json_array_get(json_object_get(tmpl, "pullRequests"), 1);

    for (chunk = 0; chunk < chunks; chunk++) {
        json_t *ev = json_deep_copy(tmpl), *prs = json_array(), *pg;
        long repo = chunk % 10, seq = chunk / 10 + 1;

        snprintf(owner, sizeof owner, "bench%ld", repo);
        snprintf(full, sizeof full, "%s/hello-world", owner);
        json_object_set_new(ev, "repository", json_string(full));
        json_object_set_new(ev, "owner", json_string(owner));
        json_object_set_new(ev, "seq", json_integer(seq * 2));
        json_object_set_new(ev, "chunk", json_integer(seq));
        for (i = 0; i < 100 && done < n; i++, done++) {
            json_t *pr = json_deep_copy(pr0);

            snprintf(id, sizeof id, "%ld", 5000000000L + done);
            snprintf(title, sizeof title, "PR %ld of the benchmark", done);
            json_object_set_new(pr, "githubId", json_string(id));
            json_object_set_new(pr, "number", json_integer(done + 1));
            json_object_set_new(pr, "title", json_string(title));
            json_object_set_new(json_object_get(pr, "author"), "githubId",
                                json_integer(100 + done % 50));
            json_array_append_new(prs, pr);
        }
        json_object_set_new(ev, "pullRequests", prs);
        pg = progress("bf-bench", seq * 2 + 1, "processing", (int)i, (int)seq, (int)i, 1, "c",
                      NULL);
        json_object_set_new(pg, "repository", json_string(full));
        json_object_set_new(pg, "owner", json_string(owner));
        json_object_set_new(pg, "backfillId", json_string(owner));
        json_object_set_new(ev, "backfillId", json_string(owner));
        t = now_s();
        if (chunk % 10 == 0 && pgw_begin(w, err, sizeof err))
            fprintf(stderr, "bench begin: %s\n", err);
        if (pgw_apply(w, "backfill/pull_requests", ev, err, sizeof err) ||
            pgw_apply(w, "backfill/progress.update", pg, err, sizeof err))
            fprintf(stderr, "bench apply: %s\n", err);
        if ((chunk % 10 == 9 || chunk == chunks - 1) &&
            (pgw_set_offset(w, GROUP, "bench", 0, chunk, err, sizeof err) ||
             commit(w, err, sizeof err)))
            fprintf(stderr, "bench commit: %s\n", err);
        in_pgw += now_s() - t;
        json_decref(ev);
        json_decref(pg);
    }
    json_decref(tmpl);
    t = now_s() - t0;
    printf("bench: %ld PRs in %ld chunks, 10 chunks per batch: %.3f s, %.3f s of it in pgw_*"
           " (%.0f PRs/s)\n",
           n, chunks, t, in_pgw, n / in_pgw);
}

int main(int argc, char **argv)
{
    char db[64], sql[128], err[512];
    char *ci = NULL;
    const char *conninfo = argc >= 2 ? argv[1] : getenv("BACKFILL_TEST_PG");
    PGconn *admin, *c = NULL;
    pgw *w = NULL;

    if (argc > 2 && !(argc == 4 && !strcmp(argv[2], "--bench"))) {
        fprintf(stderr, "usage: %s [CONNINFO [--bench N]]\n", argv[0]);
        return 2;
    }
    if (!conninfo || !*conninfo) {
        printf("skipped: no Postgres (give a conninfo or set BACKFILL_TEST_PG)\n");
        return 77;
    }
    admin = PQconnectdb(conninfo);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return 2;
    }
    PQsetNoticeProcessor(admin, quiet, NULL);
    snprintf(db, sizeof db, "pgw_test_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (!sql_ok(admin, sql) || !(ci = conninfo_for(conninfo, db))) {
        PQfinish(admin);
        return 2;
    }
    c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to %s: %s", db, PQerrorMessage(c));
        failures++;
        goto out;
    }

    test_secrets();
    test_migrate_race(conninfo, admin); /* before pgw_new: its racers fork */
    w = pgw_new(ci, err, sizeof err);
    CHECK(w != NULL, "pgw_new: %s", err);
    if (!w)
        goto out;
    pgw_on_skip(w, record_skip, &skips);
    test_migrate(w, c);
    test_pull_requests(w, c);
    test_progress(w, c);
    test_bad_events(w, c);
    test_rollback_and_reconnect(w, c);
    test_batching(w, c);
    if (argc == 4)
        bench(w, strtol(argv[3], NULL, 10));

out:
    pgw_free(w);
    PQfinish(c);
    if (getenv("PGW_TEST_KEEP")) { /* for debugging: leave the database behind */
        fprintf(stderr, "kept database %s\n", db);
    } else {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        sql_ok(admin, sql);
    }
    PQfinish(admin);
    free(ci);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "OK", failures);
    return failures ? 1 : 0;
}
