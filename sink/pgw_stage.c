/* pgw_stage: the write path of pg_writer. Events are staged as rows of a
 * temporary table, streamed in with COPY while the batch fills, and
 * written to the real tables with one statement per table for the whole
 * batch.
 *
 * Why: per event, a savepoint and three statements whose rows arrive as a
 * JSON parameter cost the server ~26 ms per 100 pull requests (json_lex
 * and a hash table per recordset object, executor start-up per statement)
 * and the sink a round trip per statement, with client and server taking
 * turns. Staged, the same rows cost COPY's text parsing, spread over the
 * time the batch takes to fill, and one pass per table.
 *
 * pg_temp.pgw_stage has one line per pull_requests event ('h': its
 * repository), per pull request ('p': with its author) and per progress
 * event ('s'), each tagged with ev (the event's index in the batch) and pos
 * (its place in the event). Whatever Postgres might refuse (timestamps)
 * stays text there, so COPY never fails on an event's data: the casts
 * happen in the statements, which take a range of events [$1, $2) -- the
 * whole batch, or one event under its own savepoint when the database
 * refused something in the batch.
 *
 * A batch written at once ends as if its events were applied one by one,
 * in order:
 *   repositories   inserted with the first event's spelling; github_id is
 *                  the last non-null one of the batch
 *   contributors   the last row of an author wins; its avatar is the last
 *                  non-null one (a missing avatar does not erase one)
 *   pull_requests  per GitHub id, the row with the newest updatedAt wins,
 *                  the later event on a tie (as "updatedAt >= stored")
 *   progress       round k applies every repository's k-th progress event
 *                  of the batch: one state row per repository and round,
 *                  so the seq / startedAt rule sees them in order
 * Sorting by key keeps the lock order of concurrent writers stable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgw_internal.h"

#define COPY_SQL "COPY pg_temp.pgw_stage FROM STDIN"

/* Column order is the order pgw_events.c writes them in. */
const char pgw_stage_ddl[] =
    "CREATE TEMP TABLE IF NOT EXISTS pgw_stage (\n"
    "  kind \"char\" NOT NULL, ev integer NOT NULL, pos integer NOT NULL,\n"
    "  owner text, name text, backfill_id text, repo_gid bigint,\n"
    "  gid bigint, state text, number integer, title text, body text, draft boolean,\n"
    "  merged boolean, created_at text, updated_at text, closed_at text, merged_at text,\n"
    "  additions integer, deletions integer, changed_files integer, base_branch text,\n"
    "  head_branch text, html_url text,\n"
    "  author_gid bigint, username text, avatar_url text, is_bot boolean,\n"
    "  status text, ev_status text, total integer, progress integer, cursor text,\n"
    "  processed boolean, error text, metadata text, seq bigint, started_at text,\n"
    "  chunk integer, chunk_size integer, requests bigint, points bigint\n"
    ") ON COMMIT DELETE ROWS";

#define RANGE "s.ev >= $1::integer AND s.ev < $2::integer"

const struct pgw_stmt pgw_stage_stmts[] = {
    /* Insert the repositories or find them; github_id is filled in or
     * corrected when an event knows it. */
    {"pgw_repos",
     "INSERT INTO repositories AS r (owner, name, github_id)\n"
     "SELECT DISTINCT ON (lower(q.owner), lower(q.name)) q.owner, q.name, q.gid\n"
     "  FROM (SELECT s.owner, s.name, s.ev,\n"
     "               first_value(s.repo_gid) OVER (PARTITION BY lower(s.owner), lower(s.name)\n"
     "                   ORDER BY s.repo_gid IS NULL, s.ev DESC) AS gid\n"
     "          FROM pg_temp.pgw_stage s WHERE s.kind IN ('h', 's') AND " RANGE ") q\n"
     " ORDER BY lower(q.owner), lower(q.name), q.ev\n"
     "ON CONFLICT ((lower(owner)), (lower(name))) DO UPDATE\n"
     "   SET github_id = EXCLUDED.github_id, updated_at = now()\n"
     " WHERE EXCLUDED.github_id IS NOT NULL\n"
     "   AND r.github_id IS DISTINCT FROM EXCLUDED.github_id",
     2},
    /* Authors GitHub gave an id for, one row each. */
    {"pgw_contribs",
     "INSERT INTO contributors AS c (github_id, username, avatar_url, is_bot)\n"
     "SELECT DISTINCT ON (a.author_gid) a.author_gid, a.username, a.avatar, a.is_bot\n"
     "  FROM (SELECT s.author_gid, s.username, s.is_bot, s.ev, s.pos,\n"
     "               first_value(s.avatar_url) OVER (PARTITION BY s.author_gid\n"
     "                   ORDER BY s.avatar_url IS NULL, s.ev DESC, s.pos DESC) AS avatar\n"
     "          FROM pg_temp.pgw_stage s\n"
     "         WHERE s.kind = 'p' AND s.author_gid IS NOT NULL AND " RANGE ") a\n"
     " ORDER BY a.author_gid, a.ev DESC, a.pos DESC\n"
     "ON CONFLICT (github_id) DO UPDATE\n"
     "   SET username = EXCLUDED.username,\n"
     "       avatar_url = coalesce(EXCLUDED.avatar_url, c.avatar_url),\n"
     "       is_bot = EXCLUDED.is_bot,\n"
     "       updated_at = now()\n"
     " WHERE (c.username, c.avatar_url, c.is_bot) IS DISTINCT FROM\n"
     "       (EXCLUDED.username, coalesce(EXCLUDED.avatar_url, c.avatar_url), EXCLUDED.is_bot)",
     2},
    /* The pull requests. backfill_id is the backfill that last changed the
     * row, so it is not part of the "did anything change" test. */
    {"pgw_prs",
     "INSERT INTO pull_requests AS p\n"
     "  (github_id, repository_id, number, title, body, state, author_id, created_at,\n"
     "   updated_at, closed_at, merged_at, merged, draft, additions, deletions,\n"
     "   changed_files, base_branch, head_branch, html_url, backfill_id)\n"
     "SELECT DISTINCT ON (x.gid)\n"
     "       x.gid, r.id, x.number, x.title, x.body, x.state, c.id, x.created_at::timestamptz,\n"
     "       x.upd, x.closed_at::timestamptz, x.merged_at::timestamptz, x.merged, x.draft,\n"
     "       x.additions, x.deletions, x.changed_files, x.base_branch, x.head_branch,\n"
     "       x.html_url, x.backfill_id\n"
     "  FROM (SELECT s.*, s.updated_at::timestamptz AS upd FROM pg_temp.pgw_stage s\n"
     "         WHERE s.kind = 'p' AND " RANGE ") x\n"
     "  JOIN repositories r ON lower(r.owner) = lower(x.owner) AND lower(r.name) = lower(x.name)\n"
     "  LEFT JOIN contributors c ON c.github_id = x.author_gid\n"
     " ORDER BY x.gid, x.upd DESC, x.ev DESC, x.pos DESC\n"
     "ON CONFLICT (github_id) DO UPDATE SET\n"
     "  repository_id = EXCLUDED.repository_id, number = EXCLUDED.number,\n"
     "  title = EXCLUDED.title, body = EXCLUDED.body, state = EXCLUDED.state,\n"
     "  author_id = EXCLUDED.author_id, created_at = EXCLUDED.created_at,\n"
     "  updated_at = EXCLUDED.updated_at, closed_at = EXCLUDED.closed_at,\n"
     "  merged_at = EXCLUDED.merged_at, merged = EXCLUDED.merged, draft = EXCLUDED.draft,\n"
     "  additions = EXCLUDED.additions, deletions = EXCLUDED.deletions,\n"
     "  changed_files = EXCLUDED.changed_files, base_branch = EXCLUDED.base_branch,\n"
     "  head_branch = EXCLUDED.head_branch, html_url = EXCLUDED.html_url,\n"
     "  backfill_id = EXCLUDED.backfill_id, updated_in_db_at = now()\n"
     "WHERE p.updated_at <= EXCLUDED.updated_at\n"
     "  AND (p.repository_id, p.number, p.title, p.body, p.state, p.author_id,\n"
     "       p.created_at, p.updated_at, p.closed_at, p.merged_at, p.merged, p.draft,\n"
     "       p.additions, p.deletions, p.changed_files, p.base_branch, p.head_branch,\n"
     "       p.html_url)\n"
     "      IS DISTINCT FROM\n"
     "      (EXCLUDED.repository_id, EXCLUDED.number, EXCLUDED.title, EXCLUDED.body,\n"
     "       EXCLUDED.state, EXCLUDED.author_id, EXCLUDED.created_at, EXCLUDED.updated_at,\n"
     "       EXCLUDED.closed_at, EXCLUDED.merged_at, EXCLUDED.merged, EXCLUDED.draft,\n"
     "       EXCLUDED.additions, EXCLUDED.deletions, EXCLUDED.changed_files,\n"
     "       EXCLUDED.base_branch, EXCLUDED.head_branch, EXCLUDED.html_url)",
     2},
    /* Round $3 of the progress events: every repository's $3-th. The state
     * row only if the event is newer than the stored one; a backfill_chunks
     * row for a processing chunk. Answers how many events later rounds
     * have. */
    {"pgw_progress",
     "WITH q AS (\n"
     "  SELECT s.*, row_number() OVER (PARTITION BY lower(s.owner), lower(s.name)\n"
     "                                 ORDER BY s.ev) AS k\n"
     "    FROM pg_temp.pgw_stage s WHERE s.kind = 's' AND " RANGE "),\n"
     "e AS (\n"
     "  SELECT q.*, r.id AS rid FROM q\n"
     "    JOIN repositories r ON lower(r.owner) = lower(q.owner) AND lower(r.name) = lower(q.name)\n"
     "   WHERE q.k = $3::bigint),\n"
     "st AS (\n"
     "  INSERT INTO progressive_backfill_state AS t\n"
     "    (repository_id, backfill_id, status, event_status, total_prs, processed_prs,\n"
     "     last_processed_cursor, last_processed_at, error, metadata, last_seq, started_at,\n"
     "     finished_at)\n"
     "  SELECT e.rid, e.backfill_id, e.status, e.ev_status, e.total, e.progress, e.cursor,\n"
     "         CASE WHEN e.processed THEN now() END, e.error, e.metadata::jsonb, e.seq,\n"
     "         e.started_at::timestamptz,\n"
     "         CASE WHEN e.status IN ('completed', 'failed') THEN now() END\n"
     "    FROM e ORDER BY e.rid\n"
     "  ON CONFLICT (repository_id) DO UPDATE SET\n"
     "    backfill_id = EXCLUDED.backfill_id, status = EXCLUDED.status,\n"
     "    event_status = EXCLUDED.event_status, total_prs = EXCLUDED.total_prs,\n"
     "    processed_prs = EXCLUDED.processed_prs,\n"
     "    last_processed_cursor = EXCLUDED.last_processed_cursor,\n"
     "    last_processed_at = coalesce(EXCLUDED.last_processed_at,\n"
     "        CASE WHEN t.backfill_id = EXCLUDED.backfill_id THEN t.last_processed_at END),\n"
     "    error = EXCLUDED.error, metadata = EXCLUDED.metadata, last_seq = EXCLUDED.last_seq,\n"
     "    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,\n"
     "    updated_at = now()\n"
     "  WHERE (t.backfill_id = EXCLUDED.backfill_id AND EXCLUDED.last_seq > t.last_seq)\n"
     "     OR (t.backfill_id <> EXCLUDED.backfill_id AND EXCLUDED.started_at > t.started_at)),\n"
     "ch AS (\n"
     "  INSERT INTO backfill_chunks (backfill_id, chunk_number, repository_id, pr_count,\n"
     "                               processed_prs, cursor, api_requests, api_points)\n"
     "  SELECT e.backfill_id, e.chunk, e.rid, e.chunk_size, e.progress, e.cursor, e.requests,\n"
     "         e.points\n"
     "    FROM e WHERE e.ev_status = 'processing' AND e.chunk >= 1 ORDER BY e.ev\n"
     "  ON CONFLICT (backfill_id, chunk_number) DO NOTHING)\n"
     "SELECT count(*) FROM q WHERE q.k > $3::bigint",
     3},
};
const size_t pgw_stage_nstmts = sizeof pgw_stage_stmts / sizeof pgw_stage_stmts[0];

/* Reads what is left of a COPY's results; stops at anything but a
 * finished result (a broken connection must not loop here). */
static void drain(pgw *w)
{
    PGresult *r;
    int i;

    for (i = 0; i < 8 && (r = PQgetResult(w->conn)); i++) {
        ExecStatusType st = PQresultStatus(r);

        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
            break;
    }
}

/* Starts COPY if it is not running. */
static int copy_begin(pgw *w, char *errstr, size_t errlen)
{
    PGresult *r;

    if (w->copy_open)
        return PGW_OK;
    r = PQexec(w->conn, COPY_SQL);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        pgw_result_error(w, r, errstr, errlen, "staging (COPY)");
        PQclear(r);
        return PGW_EDB;
    }
    PQclear(r);
    w->copy_open = 1;
    return PGW_OK;
}

static int copy_put(pgw *w, const struct pgwf_buf *b, char *errstr, size_t errlen)
{
    const char *rows = pgwf_buf_str(b);

    if (!rows) {
        snprintf(errstr, errlen, "out of memory");
        return PGW_EDB;
    }
    if (copy_begin(w, errstr, errlen))
        return PGW_EDB;
    if (PQputCopyData(w->conn, rows, (int)b->len) != 1) {
        pgw_result_error(w, NULL, errstr, errlen, "staging (COPY)");
        return PGW_EDB;
    }
    return PGW_OK;
}

int pgw_stage(pgw *w, int kind, uint64_t key, char *errstr, size_t errlen)
{
    if (w->started) {
        if (copy_put(w, &w->rows, errstr, errlen))
            return PGW_EDB;
    } else {
        pgwf_buf_raw(&w->held, w->rows.data, w->rows.len);
        if (w->held.failed) {
            snprintf(errstr, errlen, "out of memory");
            return PGW_EDB;
        }
    }
    w->cur.kinds[w->cur.n - 1] = (char)kind;
    w->cur.keys[w->cur.n - 1] = key;
    return PGW_OK;
}

int pgw_stage_held(pgw *w, char *errstr, size_t errlen)
{
    int rc = w->held.len ? copy_put(w, &w->held, errstr, errlen) : PGW_OK;

    pgwf_buf_reset(&w->held);
    return rc;
}

int pgw_copy_end(pgw *w, char *errstr, size_t errlen)
{
    PGresult *r;
    int ok;

    if (!w->copy_open)
        return PGW_OK;
    w->copy_open = 0;
    if (PQputCopyEnd(w->conn, NULL) != 1) {
        pgw_result_error(w, NULL, errstr, errlen, "staging (end of COPY)");
        drain(w);
        return PGW_EDB;
    }
    r = PQgetResult(w->conn);
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pgw_result_error(w, r, errstr, errlen, "staging (end of COPY)");
    PQclear(r);
    drain(w);
    return ok ? PGW_OK : PGW_EDB;
}

void pgw_copy_abort(pgw *w)
{
    if (!w->copy_open)
        return;
    w->copy_open = 0;
    if (PQputCopyEnd(w->conn, "batch abandoned") == 1)
        drain(w);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Rounds of pgw_progress the progress events among [from, to) of b need:
 * the most events of one repository. The keys are ASCII-case-folded
 * hashes: a collision only costs an empty round, and names that differ
 * only in non-ASCII case (the same repository to Postgres's lower()) make
 * the batch statement fail, and the events are written one by one. */
static long progress_rounds(const struct pgw_batch *b, size_t from, size_t to)
{
    uint64_t *k;
    size_t i, n = 0, run = 0;
    long best = 0;

    for (i = from; i < to; i++)
        n += b->kinds[i] == PGW_KIND_PROGRESS;
    if (n <= 1 || !(k = malloc(n * sizeof *k)))
        return (long)n; /* out of memory: one round per event is never too few */
    for (i = from, n = 0; i < to; i++)
        if (b->kinds[i] == PGW_KIND_PROGRESS)
            k[n++] = b->keys[i];
    qsort(k, n, sizeof *k, cmp_u64);
    for (i = 0; i < n; i++) {
        run = i && k[i] == k[i - 1] ? run + 1 : 1;
        best = (long)run > best ? (long)run : best;
    }
    free(k);
    return best;
}

/* Runs prepared statement stmt now, or queues it when pipe is set. */
static int run(pgw *w, int pipe, const char *what, const char *stmt, int nparams,
               const char *const *params, char *errstr, size_t errlen)
{
    if (!pipe)
        return pgw_exec(w, what, stmt, nparams, params, NULL, errstr, errlen);
    if (!PQsendQueryPrepared(w->conn, stmt, nparams, params, NULL, NULL, 0)) {
        pgw_result_error(w, NULL, errstr, errlen, what);
        return PGW_EDB;
    }
    return PGW_OK;
}

/* Writes (or queues, pipe) the statements for the staged events [from,
 * to) of b; *n counts them. */
static int write_range(pgw *w, int pipe, const struct pgw_batch *b, size_t from, size_t to,
                       size_t *n, char *errstr, size_t errlen)
{
    char lo[24], hi[24], k[24];
    const char *p[3] = {lo, hi, k};
    long round, rounds = progress_rounds(b, from, to);
    int prs = 0, rc;
    size_t i;

    for (i = from; i < to; i++)
        prs |= b->kinds[i] == PGW_KIND_HEAD;
    snprintf(lo, sizeof lo, "%zu", from);
    snprintf(hi, sizeof hi, "%zu", to);
    *n = 0;
    if ((rc = run(w, pipe, "repository upsert", "pgw_repos", 2, p, errstr, errlen)))
        return rc;
    ++*n;
    if (prs && (rc = run(w, pipe, "contributors upsert", "pgw_contribs", 2, p, errstr, errlen)))
        return rc;
    *n += prs;
    if (prs && (rc = run(w, pipe, "pull_requests upsert", "pgw_prs", 2, p, errstr, errlen)))
        return rc;
    *n += prs;
    for (round = 1; round <= rounds; round++) {
        snprintf(k, sizeof k, "%ld", round);
        if ((rc = run(w, pipe, "backfill state upsert", "pgw_progress", 3, p, errstr, errlen)))
            return rc;
        ++*n;
    }
    return PGW_OK;
}

/* Writes staged event ev of b alone under savepoint pgw_ev; on
 * PGW_EBADEVENT its writes are undone. */
static int write_one(pgw *w, const struct pgw_batch *b, size_t ev, char *errstr, size_t errlen)
{
    char why[256];
    size_t n;
    int rc;

    if ((rc = pgw_savepoint(w, errstr, errlen)))
        return rc;
    w->guarded = 1;
    rc = write_range(w, 0, b, ev, ev + 1, &n, errstr, errlen);
    w->guarded = 0;
    if (rc == PGW_EBADEVENT &&
        pgw_cmd(w, "ROLLBACK TO SAVEPOINT pgw_ev", "rollback to savepoint", why, sizeof why)) {
        snprintf(errstr, errlen, "%s", why);
        rc = PGW_EDB;
    }
    return rc;
}

/* Each staged event of [from, to) alone, reporting the refused ones. */
static int write_each(pgw *w, const struct pgw_batch *b, size_t from, size_t to, char *errstr,
                      size_t errlen)
{
    char why[512];
    size_t ev;
    int rc;

    for (ev = from; ev < to; ev++) {
        if (!b->kinds[ev])
            continue;
        rc = write_one(w, b, ev, why, sizeof why);
        if (rc == PGW_EDB) {
            snprintf(errstr, errlen, "%s", why);
            return rc;
        }
        if (rc == PGW_EBADEVENT) {
            w->skipped++;
            if (w->on_skip)
                w->on_skip(w->skip_ctx, ev, why);
        }
    }
    return PGW_OK;
}

static int any_staged(const struct pgw_batch *b, size_t from, size_t to)
{
    for (; from < to; from++)
        if (b->kinds[from])
            return 1;
    return 0;
}

int pgw_write_events(pgw *w, const struct pgw_batch *b, size_t from, size_t to, int each,
                     char *errstr, size_t errlen)
{
    size_t n;
    int rc;

    if (!any_staged(b, from, to))
        return PGW_OK;
    if (each)
        return write_each(w, b, from, to, errstr, errlen);
    if (pgw_cmd(w, "SAVEPOINT pgw_batch", "savepoint", errstr, errlen))
        return PGW_EDB;
    w->guarded = 1;
    rc = write_range(w, 0, b, from, to, &n, errstr, errlen);
    w->guarded = 0;
    if (rc == PGW_EBADEVENT &&
        pgw_cmd(w, "ROLLBACK TO SAVEPOINT pgw_batch", "rollback to savepoint", errstr, errlen))
        return PGW_EDB;
    return rc;
}

int pgw_send_events(pgw *w, const struct pgw_batch *b, size_t from, size_t to, size_t *nsent,
                    char *errstr, size_t errlen)
{
    size_t n;

    *nsent = 0;
    if (!any_staged(b, from, to))
        return PGW_OK;
    if (!PQsendQueryParams(w->conn, "SAVEPOINT pgw_batch", 0, NULL, NULL, NULL, NULL, 0)) {
        pgw_result_error(w, NULL, errstr, errlen, "savepoint");
        return PGW_EDB;
    }
    if (write_range(w, 1, b, from, to, &n, errstr, errlen))
        return PGW_EDB;
    *nsent = n + 1;
    return PGW_OK;
}

int pgw_flush(pgw *w, char *errstr, size_t errlen)
{
    size_t from = w->flushed, to = w->cur.n, ev;
    int rc = PGW_OK;

    if (pgw_copy_end(w, errstr, errlen))
        return PGW_EDB;
    w->flushed = to;
    if (!w->defer) { /* one event: its verdict is pgw_apply's */
        for (ev = from; ev < to && rc == PGW_OK; ev++)
            if (w->cur.kinds[ev])
                rc = write_one(w, &w->cur, ev, errstr, errlen);
        return rc;
    }
    rc = pgw_write_events(w, &w->cur, from, to, 0, errstr, errlen);
    if (rc == PGW_EBADEVENT)
        rc = pgw_write_events(w, &w->cur, from, to, 1, errstr, errlen);
    return rc;
}
