/* test_pgw: what the two files of test_pg_writer share (test_pg_writer.c
 * defines all of it but test_batching). */
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

/* test_pgw_batch.c: batching mode (pgw_defer, pgw_commit_start). */
void test_batching(pgw *w, PGconn *c);

#endif
