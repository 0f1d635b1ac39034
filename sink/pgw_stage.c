/* pgw_stage: see pgw_stage.h.
 *
 * Why staging: per event, a savepoint and three statements whose rows
 * arrive as a JSON parameter cost the server ~26 ms per 100 pull requests
 * (json_lex and a hash table per recordset object, executor start-up per
 * statement) and the sink a round trip per statement, with client and
 * server taking turns. Staged, the same rows cost COPY's text parsing,
 * spread over the time the batch takes to fill, and one pass per table
 * (the statements and the staging table: schemas/pg_writer/).
 *
 * Writing a range of events [from, to) takes pgw_repos, then, if the
 * range holds a pull_requests event, pgw_contribs and pgw_prs, then one
 * pgw_progress per round (the most progress events one repository has in
 * the range). */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include "pgw_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgw_internal.h"
#include "pgw_sql.h"

/* ---- the batch's record ---- */

static int batch_add(struct pgw_batch *b)
{
    size_t kinds_cap = b->cap; /* kinds and keys grow together; b->cap is the smaller */
    if (dynbuf_grow_array(&b->kinds, &kinds_cap, b->n + 1, sizeof *b->kinds) ||
        dynbuf_grow_array(&b->keys, &b->cap, b->n + 1, sizeof *b->keys))
        return -1;
    b->kinds[b->n] = 0;
    b->keys[b->n++] = 0;
    return 0;
}

void pgws_batch_clear(struct pgw_batch *b)
{
    size_t i;

    for (i = 0; i < b->noffs; i++) {
        free(b->offs[i].group);
        free(b->offs[i].topic);
    }
    b->n = b->noffs = 0;
}

void pgws_batch_free(struct pgw_batch *b)
{
    pgws_batch_clear(b);
    free(b->kinds);
    free(b->keys);
    free(b->offs);
    memset(b, 0, sizeof *b);
}

static struct pgw_offset *find_offset(const struct pgw_batch *b, const char *group,
                                      const char *topic, int partition)
{
    size_t i;

    for (i = 0; i < b->noffs; i++)
        if (b->offs[i].partition == partition && !strcmp(b->offs[i].group, group) &&
            !strcmp(b->offs[i].topic, topic))
            return &b->offs[i];
    return NULL;
}

int pgws_offset(const struct pgw_stage *s, const char *group, const char *topic, int partition,
                int64_t *next)
{
    const struct pgw_offset *o = find_offset(&s->cur, group, topic, partition);

    if (o)
        *next = o->next;
    return o != NULL;
}

int pgws_set_offset(struct pgw_stage *s, const char *group, const char *topic, int partition,
                    int64_t next)
{
    struct pgw_batch *b = &s->cur;
    struct pgw_offset *o = find_offset(b, group, topic, partition);

    if (o) {
        o->next = next;
        return 0;
    }
    if (dynbuf_grow_array(&b->offs, &b->offs_cap, b->noffs + 1, sizeof *b->offs))
        return -1;
    o = &b->offs[b->noffs];
    o->group = strdup(group);
    o->topic = strdup(topic);
    if (!o->group || !o->topic) {
        free(o->group);
        free(o->topic);
        return -1;
    }
    o->partition = partition;
    o->next = next;
    b->noffs++;
    return 0;
}

int pgws_next_event(struct pgw_stage *s)
{
    return batch_add(&s->cur);
}

void pgws_take(struct pgw_stage *s, struct pgw_batch *into)
{
    struct pgw_batch t = *into;

    *into = s->cur;
    s->cur = t;
    pgws_batch_clear(&s->cur);
}

/* ---- staging the rows ---- */

void pgws_open(struct pgw_stage *s, int hold)
{
    pgws_clear(s);
    s->holding = hold;
}

void pgws_clear(struct pgw_stage *s)
{
    pgws_batch_clear(&s->cur);
    pgwf_buf_reset(&s->held);
    s->holding = 0;
}

void pgws_free(struct pgw_stage *s)
{
    pgws_batch_free(&s->cur);
    pgwf_buf_free(&s->rows);
    pgwf_buf_free(&s->held);
    memset(s, 0, sizeof *s);
}

/* Streams the text of b (whole lines) into COPY. */
static int put_rows(struct pgw_conn *c, const struct pgwf_buf *b, char *errstr, size_t errlen)
{
    const char *rows = pgwf_buf_str(b);

    if (!rows) {
        snprintf(errstr, errlen, "out of memory");
        return PGW_EDB;
    }
    return pgwc_copy_put(c, rows, b->text.len, errstr, errlen);
}

int pgws_release(struct pgw_stage *s, struct pgw_conn *c, char *errstr, size_t errlen)
{
    int rc = s->held.text.len ? put_rows(c, &s->held, errstr, errlen) : PGW_OK;

    pgwf_buf_reset(&s->held);
    s->holding = 0;
    return rc;
}

long pgw_event_index(const pgw *w)
{
    return (long)w->st.cur.n - 1;
}

struct pgwf_buf *pgw_rows(pgw *w)
{
    return &w->st.rows;
}

int pgw_stage(pgw *w, int kind, uint64_t key, char *errstr, size_t errlen)
{
    struct pgw_stage *s = &w->st;

    if (!s->holding) {
        if (put_rows(&w->conn, &s->rows, errstr, errlen))
            return PGW_EDB;
    } else {
        pgwf_buf_raw(&s->held, s->rows.text.data, s->rows.text.len);
        if (s->held.failed) {
            snprintf(errstr, errlen, "out of memory");
            return PGW_EDB;
        }
    }
    s->cur.kinds[s->cur.n - 1] = (char)kind;
    s->cur.keys[s->cur.n - 1] = key;
    return PGW_OK;
}

/* ---- writing staged events ---- */

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

/* Does [from, to) of b hold a pull_requests event? */
static int range_has_prs(const struct pgw_batch *b, size_t from, size_t to)
{
    size_t i;

    for (i = from; i < to; i++)
        if (b->kinds[i] == PGW_KIND_HEAD)
            return 1;
    return 0;
}

int pgws_statement_table(const struct pgw_batch *b, size_t from, size_t to, size_t stmt)
{
    /* write_range's order: repositories, then contributors and
     * pull_requests if there are pull requests, then the progress rounds */
    if (stmt == 0)
        return PGW_TABLE_REPOSITORIES;
    if (stmt <= 2 && range_has_prs(b, from, to))
        return stmt == 1 ? PGW_TABLE_CONTRIBUTORS : PGW_TABLE_PULL_REQUESTS;
    return -1;
}

/* Runs prepared statement stmt now, or queues it when pipe is set. Run
 * now, the rows it inserted or changed are added to *rows (may be NULL). */
static int run(struct pgw_conn *c, int pipe, const char *what, const char *stmt, int nparams,
               const char *const *params, int64_t *rows, char *errstr, size_t errlen)
{
    PGresult *r = NULL;
    int rc;

    if (pipe)
        return pgwc_send(c, what, stmt, nparams, params, errstr, errlen);
    rc = pgwc_exec(c, what, stmt, nparams, params, &r, errstr, errlen);
    if (rc == PGW_OK && rows)
        *rows += strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
}

/* Writes (or queues, pipe) the statements for the staged events [from,
 * to) of b; *n counts them. Run now, a refused one is PGW_EBADEVENT, and
 * rows (enum pgw_table; NULL when pipe) gets what each statement wrote
 * (pgws_statement_table says which is which when queued). */
static int write_range(struct pgw_conn *c, int pipe, const struct pgw_batch *b, size_t from,
                       size_t to, size_t *n, int64_t *rows, char *errstr, size_t errlen)
{
    char lo[24], hi[24], k[24];
    const char *p[3] = {lo, hi, k};
    long round, rounds = progress_rounds(b, from, to);
    int prs = range_has_prs(b, from, to), rc;

    snprintf(lo, sizeof lo, "%zu", from);
    snprintf(hi, sizeof hi, "%zu", to);
    *n = 0;
    if ((rc = run(c, pipe, "repository upsert", PGW_SQL_REPOS, 2, p,
                  rows ? &rows[PGW_TABLE_REPOSITORIES] : NULL, errstr, errlen)))
        return rc;
    ++*n;
    if (prs && (rc = run(c, pipe, "contributors upsert", PGW_SQL_CONTRIBS, 2, p,
                         rows ? &rows[PGW_TABLE_CONTRIBUTORS] : NULL, errstr, errlen)))
        return rc;
    *n += prs;
    if (prs && (rc = run(c, pipe, "pull_requests upsert", PGW_SQL_PRS, 2, p,
                         rows ? &rows[PGW_TABLE_PULL_REQUESTS] : NULL, errstr, errlen)))
        return rc;
    *n += prs;
    for (round = 1; round <= rounds; round++) {
        snprintf(k, sizeof k, "%ld", round);
        if ((rc = run(c, pipe, "backfill state upsert", PGW_SQL_PROGRESS, 3, p, NULL, errstr,
                      errlen)))
            return rc;
        ++*n;
    }
    return PGW_OK;
}

int pgws_send_events(struct pgw_conn *c, const struct pgw_batch *b, size_t *nsent, char *errstr,
                     size_t errlen)
{
    size_t i, n;

    *nsent = 0;
    for (i = 0; i < b->n && !b->kinds[i]; i++)
        ;
    if (i == b->n) /* nothing staged */
        return PGW_OK;
    if (pgwc_send_sql(c, "savepoint", "SAVEPOINT pgw_batch", errstr, errlen) ||
        write_range(c, 1, b, 0, b->n, &n, NULL, errstr, errlen))
        return PGW_EDB;
    *nsent = n + 1;
    return PGW_OK;
}

/* Staged event ev of b alone under savepoint pgw_ev (opened, or, sp set,
 * released and opened again); on PGW_EBADEVENT its writes are undone.
 * rows: what its statements wrote (enum pgw_table), counted from zero. */
static int write_one(struct pgw_conn *c, const struct pgw_batch *b, size_t ev, int sp,
                     int64_t rows[PGW_NTABLES], char *errstr, size_t errlen)
{
    char why[256];
    size_t n;
    int rc;

    memset(rows, 0, PGW_NTABLES * sizeof *rows);
    if (pgwc_cmd(c, sp ? "RELEASE SAVEPOINT pgw_ev; SAVEPOINT pgw_ev" : "SAVEPOINT pgw_ev",
                 "savepoint", errstr, errlen))
        return PGW_EDB;
    rc = write_range(c, 0, b, ev, ev + 1, &n, rows, errstr, errlen);
    if (rc == PGW_EBADEVENT &&
        pgwc_cmd(c, "ROLLBACK TO SAVEPOINT pgw_ev", "rollback to savepoint", why, sizeof why)) {
        snprintf(errstr, errlen, "%s", why);
        rc = PGW_EDB;
    }
    return rc;
}

int pgws_write_each(struct pgw_conn *c, const struct pgw_batch *b, pgw_skip_fn *on_skip,
                    void *ctx, int64_t rows[PGW_NTABLES], char *errstr, size_t errlen)
{
    char why[512];
    int64_t ev_rows[PGW_NTABLES];
    size_t ev;
    int rc, sp = 0, t;

    for (ev = 0; ev < b->n; ev++) {
        if (!b->kinds[ev])
            continue;
        rc = write_one(c, b, ev, sp, ev_rows, why, sizeof why);
        sp = 1;
        if (rc == PGW_EDB) {
            snprintf(errstr, errlen, "%s", why);
            return rc;
        }
        if (rc == PGW_EBADEVENT && on_skip)
            on_skip(ctx, ev, why);
        if (rc == PGW_OK)
            for (t = 0; t < PGW_NTABLES; t++)
                rows[t] += ev_rows[t];
    }
    return PGW_OK;
}

int pgws_offsets(struct pgw_conn *c, int pipe, const struct pgw_batch *b, char *errstr,
                 size_t errlen)
{
    size_t i;

    for (i = 0; i < b->noffs; i++) {
        char pb[24], ob[24];
        const char *p[4] = {b->offs[i].group, b->offs[i].topic, pb, ob};

        snprintf(pb, sizeof pb, "%d", b->offs[i].partition);
        snprintf(ob, sizeof ob, "%lld", (long long)b->offs[i].next);
        /* no savepoint covers it: any failure loses the batch */
        if (run(c, pipe, "storing offset", PGW_SQL_OFFSET_SET, 4, p, NULL, errstr, errlen))
            return PGW_EDB;
    }
    return PGW_OK;
}
