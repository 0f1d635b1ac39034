/* test_pgw: what the files of test_pg_writer share. test_pgw.c defines
 * the helpers, test_pgw_batch.c test_batching; test_pg_writer.c (main)
 * calls both, and they call nothing of it. */
#ifndef BACKFILL_TEST_PGW_H
#define BACKFILL_TEST_PGW_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_writer.h"

#define GROUP "backfill-sink"
#define TOPIC "backfill.progress"

extern int failures;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            failures++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
        }                                                                                \
    } while (0)

#define EXPECT_SQL(c, sql, want)                                                         \
    do {                                                                                 \
        char *got_ = q1((c), (sql));                                                     \
        CHECK(got_ && !strcmp(got_, (want)), "%s\n    want %s\n    got  %s", (sql),      \
              (want), got_ ? got_ : "(oom)");                                            \
        free(got_);                                                                      \
    } while (0)

/* First column of the first row as a malloc'd string, "<null>", "<none>"
 * or "<error: ...>". */
char *q1(PGconn *c, const char *sql);
/* Runs sql; 1 if it worked. */
int sql_ok(PGconn *c, const char *sql);
/* Fingerprint of every row of the written tables, xmin included. */
char *snapshot(PGconn *c);
/* Parses test JSON (exits on a typo). */
json_t *load(const char *text);
/* The 3-PR event of octocat/hello-world (new reference). */
json_t *pr_event(void);
/* A progress event of octocat/hello-world (new reference). */
json_t *progress(const char *bf, long long seq, const char *status, int prog, int chunk,
                 int chunk_size, long long started, const char *cursor, const char *error);
/* Moves an event to owner/name with pull-request ids id_base, id_base+1.. */
void retarget(json_t *ev, const char *owner, const char *name, long long id_base);

/* What the skip handler (pgw_on_skip) was told, since the last reset of
 * n: the events the database refused. */
struct skips {
    size_t ev[16];
    int n;
    char why[256];
};
extern struct skips skips;

/* pgw_skip_fn that records into the struct skips ctx points to. */
void record_skip(void *ctx, size_t event, const char *why);

/* Commits the open batch as the sink does: pgw_commit_start, then
 * pgw_commit_poll waiting for the outcome. PGW_OK or PGW_EDB (err says
 * why; the batch is rolled back). */
int commit(pgw *w, char *err, size_t errlen);

/* test_pgw_batch.c: batches of many events, commits in flight. */
void test_batching(pgw *w, PGconn *c);

#endif
