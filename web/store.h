/* store: backfill-web's side of Postgres — a small pool of connections
 * shared by the request threads, and the few statements the API needs
 * (the files of web/sql/, compiled in). Answers come back as JSON text built by
 * Postgres itself. Every error message has the password masked. */
#ifndef BACKFILL_WEB_STORE_H
#define BACKFILL_WEB_STORE_H

#include <stddef.h>

typedef struct store store;

/* Up to `size` connections to conninfo, opened when first needed. */
store *store_new(const char *conninfo, int size);
void store_free(store *s);

/* The repositories of a bulk add as a JSON array of {owner, name,
 * backfillId (null: recorded only), startedAt (ms), total}: records them
 * and writes a 'queued' state row for each queued one (record.sql).
 * Returns 0, or -1 with a reason. */
int store_record(store *s, const char *entries_json, char *errstr, size_t errlen);

/* JSON array of backfill rows (backfills.sql); status and key ("" = any)
 * filter; history adds each one's chunks. Returns a malloc'd string, or
 * NULL with a reason. */
char *store_backfills(store *s, const char *status, const char *key, int history, char *errstr,
                      size_t errlen);

/* The estimate object (estimate.sql), malloc'd; NULL with a reason. */
char *store_estimate(store *s, char *errstr, size_t errlen);

/* 0 when Postgres answers and has our tables, else -1 with a reason. */
int store_ping(store *s, char *errstr, size_t errlen);

#endif
