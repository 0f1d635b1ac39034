/* test_pgw_batch: pg_writer with batches of many events, as the sink runs
 * it: a batch is written with one statement per table at commit, the
 * database's verdict on single events arrives through the skip handler,
 * and pgw_commit_start lets the next batch fill while COMMIT is in flight.
 * The end state must be what applying the events one by one gives. */
#define _POSIX_C_SOURCE 200809L

#include "test_pgw.h"

#define BASE 6000000000LL /* pull-request ids of this file */

static json_t *pr_at(json_t *ev, size_t i)
{
    return json_array_get(json_object_get(ev, "pullRequests"), i);
}

static json_t *progress_at(const char *owner, const char *name, long long seq,
                           const char *status, int chunk)
{
    json_t *ev = progress("bf-batch", seq, status, chunk * 3, chunk, 3, 1764360000123LL, "Yw",
                          NULL);

    retarget(ev, owner, name, 0);
    return ev;
}

/* Applies events[0..n) (names[i] for each) in one batch and commits it;
 * want[] are pgw_apply's expected codes. */
static void one_batch(pgw *w, const char *const *names, json_t **events, const int *want,
                      int n, int64_t offset)
{
    char err[512];
    int i, rc;

    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin: %s", err);
    for (i = 0; i < n; i++) {
        rc = pgw_apply(w, names[i], events[i], err, sizeof err);
        CHECK(rc == want[i], "event %d: %d, want %d (%s)", i, rc, want[i], err);
    }
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 3, offset, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(commit(w, err, sizeof err) == PGW_OK, "commit: %s", err);
}

/* Duplicates across events, stale and tied versions, authors, progress
 * out of order, and two events Postgres refuses in the middle. */
static void test_one_statement_per_table(pgw *w, PGconn *c, struct skips *k)
{
    const char *P = "backfill/pull_requests", *S = "backfill/progress.update";
    const char *names[10] = {P, "repository/backfill.initial", P, P, P, S, S, S, P, P};
    const int want[10] = {0, 0, 0, 0, PGW_EBADEVENT, 0, 0, 0, 0, 0};
    json_t *ev[10];
    int i;

    ev[0] = pr_event();
    retarget(ev[0], "batch", "one", BASE);
    ev[1] = load("{\"anything\":1}");
    ev[2] = pr_event(); /* the same pull requests, other versions */
    retarget(ev[2], "batch", "one", BASE);
    json_object_set_new(pr_at(ev[2], 0), "title", json_string("older"));
    json_object_set_new(pr_at(ev[2], 0), "updatedAt", json_string("2025-11-20T00:00:00Z"));
    json_object_set_new(pr_at(ev[2], 1), "title", json_string("newer"));
    json_object_set_new(pr_at(ev[2], 1), "updatedAt", json_string("2025-11-22T00:00:00Z"));
    json_object_set_new(pr_at(ev[2], 2), "title", json_string("tie, later event"));
    json_object_set_new(json_object_get(pr_at(ev[2], 1), "author"), "login",
                        json_string("dependabot-renamed"));
    json_object_set_new(json_object_get(pr_at(ev[2], 1), "author"), "avatarUrl", json_null());
    ev[3] = pr_event(); /* refused by Postgres: February 30 */
    retarget(ev[3], "batch", "ghost", BASE + 100);
    json_object_set_new(pr_at(ev[3], 0), "createdAt", json_string("2025-02-30T00:00:00Z"));
    ev[4] = pr_event(); /* refused by the C checks */
    json_object_set_new(ev[4], "seq", json_string("1"));
    ev[5] = progress_at("batch", "one", 3, "processing", 2);
    ev[6] = progress_at("batch", "one", 1, "started", 0);
    ev[7] = progress_at("batch", "one", 2, "processing", 1);
    ev[8] = pr_event(); /* refused by Postgres: (repository, number) taken by other ids */
    retarget(ev[8], "batch", "one", BASE + 200);
    ev[9] = pr_event(); /* a second repository, good; the bot renamed again */
    retarget(ev[9], "batch", "two", BASE + 300);
    json_object_set_new(json_object_get(pr_at(ev[9], 1), "author"), "login",
                        json_string("dependabot-final"));
    json_object_set_new(json_object_get(pr_at(ev[9], 1), "author"), "avatarUrl", json_null());

    k->n = 0;
    one_batch(w, names, ev, want, 10, 100);
    CHECK(k->n == 2 && k->ev[0] == 3 && k->ev[1] == 8, "skipped %d events: %zu %zu (%s)", k->n,
          k->ev[0], k->ev[1], k->why);
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE owner = 'batch'", "2");
    EXPECT_SQL(c, "SELECT string_agg(p.number || '=' || p.title, ',' ORDER BY p.number)"
                  "  FROM pull_requests p JOIN repositories r ON r.id = p.repository_id"
                  " WHERE r.name = 'one'",
               "1=First,2=newer,3=tie, later event");
    EXPECT_SQL(c, "SELECT username || ' ' || avatar_url FROM contributors"
                  " WHERE github_id = 49699333",
               "dependabot-final https://avatars.example/d");
    EXPECT_SQL(c, "SELECT count(*) FROM pull_requests p JOIN repositories r"
                  " ON r.id = p.repository_id WHERE r.name = 'two'",
               "3");
    EXPECT_SQL(c, "SELECT s.last_seq || ' ' || s.event_status || ' ' || s.processed_prs"
                  "  FROM progressive_backfill_state s JOIN repositories r"
                  "    ON r.id = s.repository_id WHERE r.name = 'one'",
               "3 processing 6");
    EXPECT_SQL(c, "SELECT string_agg(chunk_number::text, ',' ORDER BY chunk_number)"
                  "  FROM backfill_chunks WHERE backfill_id = 'bf-batch'",
               "1,2");
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 3", "100");

    for (i = 0; i < 10; i++)
        json_decref(ev[i]);
}

/* A batch replayed changes nothing, not even xmin: written at once, and
 * written event by event because Postgres refuses one of them. */
static void test_replay(pgw *w, PGconn *c, struct skips *k)
{
    const char *P = "backfill/pull_requests", *S = "backfill/progress.update";
    const char *names[4] = {P, S, P, S};
    const int want[4] = {0, 0, 0, 0};
    json_t *ev[4];
    char *before, *after;
    int i, round;

    ev[0] = pr_event();
    retarget(ev[0], "replay", "one", BASE + 800);
    ev[1] = progress_at("replay", "one", 2, "processing", 1);
    ev[2] = pr_event();
    retarget(ev[2], "replay", "ghost", BASE + 900);
    json_object_set_new(pr_at(ev[2], 1), "mergedAt", json_string("2025-02-30T00:00:00Z"));
    ev[3] = progress_at("replay", "one", 3, "completed", 1);
    for (round = 0; round < 2; round++) { /* without, then with the refused event */
        one_batch(w, names, ev, want, round ? 4 : 2, 200);
        before = snapshot(c);
        k->n = 0;
        one_batch(w, names, ev, want, round ? 4 : 2, 200);
        after = snapshot(c);
        CHECK(before && after && !strcmp(before, after), "replay changed rows:\n %s\n %s",
              before, after);
        CHECK(k->n == round, "replay skipped %d", k->n);
        free(before);
        free(after);
    }
    EXPECT_SQL(c, "SELECT s.status || ' ' || s.processed_prs || ' ' || (SELECT count(*)"
                  "  FROM pull_requests p WHERE p.repository_id = s.repository_id)"
                  "  FROM progressive_backfill_state s JOIN repositories r"
                  "    ON r.id = s.repository_id WHERE r.owner = 'replay'",
               "completed 3 3");
    for (i = 0; i < 4; i++)
        json_decref(ev[i]);
}

/* pgw_commit_start: the next batch fills (and is held) while COMMIT is in
 * flight; a refused event in the batch in flight is reported by
 * pgw_commit_poll with that batch's index. */
static void test_commit_in_flight(pgw *w, PGconn *c, struct skips *k)
{
    json_t *a = pr_event(), *bad = pr_event(), *b = pr_event();
    char err[512];
    int rc;

    retarget(a, "flight", "one", BASE + 400);
    retarget(bad, "flight", "ghost", BASE + 500);
    json_object_set_new(pr_at(bad, 2), "updatedAt", json_string("2025-02-30T00:00:00Z"));
    retarget(b, "flight", "two", BASE + 600);
    k->n = 0;
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin: %s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", a, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", bad, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 4, 10, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_commit_start(w, err, sizeof err) == PGW_OK, "commit_start: %s", err);
    CHECK(pgw_commit_pending(w), "nothing in flight");
    /* the next batch, while the first is in flight */
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin 2: %s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", b, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 4, 11, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_load_offsets(w, GROUP, TOPIC, 4, &(int64_t){0}, err, sizeof err) == PGW_EDB,
          "load_offsets during a commit in flight");
    rc = pgw_commit_poll(w, 1, err, sizeof err);
    CHECK(rc == PGW_OK, "commit_poll: %d %s", rc, err);
    CHECK(k->n == 1 && k->ev[0] == 1 && strstr(k->why, "[22008]"), "skips %d: %s", k->n,
          k->why);
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 4", "10");
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE owner = 'flight'", "1");
    CHECK(commit(w, err, sizeof err) == PGW_OK, "commit 2: %s", err);
    EXPECT_SQL(c, "SELECT count(*) FROM pull_requests p JOIN repositories r"
                  " ON r.id = p.repository_id WHERE r.owner = 'flight'",
               "6");
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 4", "11");

    /* The server kills the session while COMMIT is in flight (held up by
     * a lock, so it is surely still in flight): lost, the stored offset
     * says where to start again, and the connection is usable after
     * pgw_reconnect. */
    retarget(a, "flight", "lost", BASE + 700);
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin 3: %s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", a, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 4, 12, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(sql_ok(c, "BEGIN") && sql_ok(c, "LOCK TABLE kafka_offsets IN ACCESS EXCLUSIVE MODE"),
          "lock");
    CHECK(pgw_commit_start(w, err, sizeof err) == PGW_OK, "commit_start 3: %s", err);
    CHECK(pgw_commit_poll(w, 0, err, sizeof err) == 1, "in flight behind a lock");
    CHECK(sql_ok(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'backfill-sink'"
                    "   AND datname = current_database()") &&
              sql_ok(c, "ROLLBACK"),
          "terminate");
    rc = pgw_commit_poll(w, 1, err, sizeof err);
    CHECK(rc == PGW_EDB, "commit on a dead connection: %d", rc);
    pgw_rollback(w);
    CHECK(!pgw_ok(w), "pgw_ok after the kill");
    CHECK(pgw_reconnect(w, err, sizeof err) == PGW_OK, "reconnect: %s", err);
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 4", "11");
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE name = 'lost'", "0");
    CHECK(pgw_begin(w, err, sizeof err) == PGW_OK, "begin 4: %s", err);
    CHECK(pgw_apply(w, "backfill/pull_requests", a, err, sizeof err) == PGW_OK, "%s", err);
    CHECK(pgw_set_offset(w, GROUP, TOPIC, 4, 12, err, sizeof err) == PGW_OK, "%s", err);
    rc = pgw_commit_start(w, err, sizeof err);
    CHECK(rc == PGW_OK && pgw_commit_poll(w, 1, err, sizeof err) == PGW_OK, "redo: %s", err);
    EXPECT_SQL(c, "SELECT next_offset FROM kafka_offsets WHERE partition = 4", "12");
    EXPECT_SQL(c, "SELECT count(*) FROM repositories WHERE name = 'lost'", "1");
    json_decref(a);
    json_decref(bad);
    json_decref(b);
}

void test_batching(pgw *w, PGconn *c)
{
    test_one_statement_per_table(w, c, &skips);
    test_replay(w, c, &skips);
    test_commit_in_flight(w, c, &skips);
}
