/* github_parse: turns a GitHub GraphQL answer into a gh_page (see
 * github.h): classifies errors per GitHub's documented behaviour and
 * converts pull-request nodes into our record shape. Everything in the
 * body is untrusted: each field is type-checked before use. */
#define _GNU_SOURCE /* strcasestr */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "github.h"
#include "isotime.h"
#include "json_clean.h"
#include "json_field.h"

#define GH_RESET_MAX 253402300799L /* 9999-12-31T23:59:59Z, the latest rateLimit.resetAt */

const char *gh_status_name(enum gh_status st)
{
    static const char *const names[] = {"ok",           "not_found",    "forbidden",
                                        "unauthorized", "rate_limited", "secondary_limit",
                                        "server_error", "transient",    "invalid"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

void gh_page_clear(struct gh_page *page)
{
    json_decref(page->records);
    memset(page, 0, sizeof *page);
}

static enum gh_status gh_fail(struct gh_page *page, enum gh_status st, const char *fmt,
                              const char *detail)
{
    page->status = st;
    snprintf(page->error, sizeof page->error, fmt, detail ? detail : "");
    return st;
}

/* A header's decimal value if it is in [0, max], else dflt: a garbled
 * header must become neither a negative count nor a time that overflows
 * the arithmetic of whoever waits for it. */
static long gh_parse_long(const char *s, long dflt, long max)
{
    char *end;
    long v;
    if (!s)
        return dflt;
    v = strtol(s, &end, 10);
    return end != s && v >= 0 && v <= max ? v : dflt;
}

/* Copies a string field or sets null; non-string non-null is an error. */
static int gh_copy_str(json_t *dst, const char *dkey, json_t *node, const char *skey, int required)
{
    json_t *v = json_object_get(node, skey); /* borrowed */
    if (json_is_string(v))
        return json_object_set(dst, dkey, v);
    if (required || (v && !json_is_null(v)))
        return -1;
    return json_object_set_new(dst, dkey, json_null());
}

static int gh_copy_int(json_t *dst, const char *dkey, json_t *node, const char *skey)
{
    json_t *v = json_object_get(node, skey);
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_object_set(dst, dkey, v);
    if (v && !json_is_null(v))
        return -1;
    return json_object_set_new(dst, dkey, json_null());
}

static int gh_is_time(json_t *v, int nullable)
{
    time_t t;
    if (nullable && (!v || json_is_null(v)))
        return 1;
    return json_is_string(v) && isotime_parse(json_string_value(v), &t) == 0;
}

static json_t *gh_convert_author(json_t *a)
{
    json_t *out, *type = json_object_get(a, "__typename"), *id = json_object_get(a, "databaseId");
    if (!json_is_object(a))
        return json_null();
    if (!json_is_string(json_object_get(a, "login")) ||
        json_string_length(json_object_get(a, "login")) == 0)
        return NULL;
    out = json_object();
    if (!out)
        return NULL;
    if (json_object_set(out, "login", json_object_get(a, "login")) ||
        json_object_set_new(out, "githubId",
                            json_is_integer(id) ? json_integer(json_integer_value(id)) : json_null()) ||
        gh_copy_str(out, "avatarUrl", a, "avatarUrl", 0) ||
        json_object_set_new(out, "isBot",
                            json_boolean(json_is_string(type) &&
                                         strcmp(json_string_value(type), "Bot") == 0))) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static const char *gh_state(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    if (strcmp(s, "OPEN") == 0)
        return "open";
    if (strcmp(s, "CLOSED") == 0)
        return "closed";
    if (strcmp(s, "MERGED") == 0)
        return "merged";
    return NULL;
}

/* Converts one pullRequest node into a record; NULL if malformed. */
static json_t *gh_convert_pr(json_t *n)
{
    json_t *r, *id = json_object_get(n, "fullDatabaseId"), *num = json_object_get(n, "number");
    json_t *author;
    const char *state = gh_state(json_object_get(n, "state"));
    size_t idlen = json_string_length(id);

    if (!json_is_string(id) || idlen == 0 || idlen > 19 ||
        strspn(json_string_value(id), "0123456789") != idlen || !json_is_integer(num) ||
        json_integer_value(num) < 1 || !state || !json_is_boolean(json_object_get(n, "merged")) ||
        !json_is_boolean(json_object_get(n, "isDraft")) ||
        !gh_is_time(json_object_get(n, "createdAt"), 0) ||
        !gh_is_time(json_object_get(n, "updatedAt"), 0) ||
        !gh_is_time(json_object_get(n, "closedAt"), 1) ||
        !gh_is_time(json_object_get(n, "mergedAt"), 1))
        return NULL;
    author = gh_convert_author(json_object_get(n, "author"));
    r = json_object();
    if (!author || !r)
        goto bad;
    if (json_object_set(r, "githubId", id) || json_object_set(r, "number", num) ||
        gh_copy_str(r, "title", n, "title", 1) || gh_copy_str(r, "body", n, "body", 0) ||
        json_object_set_new(r, "state", json_string(state)) ||
        json_object_set(r, "draft", json_object_get(n, "isDraft")) ||
        json_object_set(r, "merged", json_object_get(n, "merged")) ||
        gh_copy_str(r, "createdAt", n, "createdAt", 1) ||
        gh_copy_str(r, "updatedAt", n, "updatedAt", 1) ||
        gh_copy_str(r, "closedAt", n, "closedAt", 0) ||
        gh_copy_str(r, "mergedAt", n, "mergedAt", 0) ||
        gh_copy_int(r, "additions", n, "additions") ||
        gh_copy_int(r, "deletions", n, "deletions") ||
        gh_copy_int(r, "changedFiles", n, "changedFiles") ||
        gh_copy_str(r, "baseBranch", n, "baseRefName", 0) ||
        gh_copy_str(r, "headBranch", n, "headRefName", 0) || gh_copy_str(r, "url", n, "url", 1) ||
        json_object_set(r, "author", author))
        goto bad;
    json_decref(author);
    return r;
bad:
    json_decref(author);
    json_decref(r);
    return NULL;
}

/* Looks at the `errors` array; returns GH_OK when none is relevant. */
static enum gh_status gh_classify_errors(json_t *errors, struct gh_page *page)
{
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (!msg)
            msg = "(no message)";
        if (type && (strcmp(type, "RATE_LIMITED") == 0 || strcmp(type, "RATE_LIMIT") == 0))
            return gh_fail(page, GH_RATE_LIMITED, "primary rate limit: %s", msg);
        if (type && strcmp(type, "NOT_FOUND") == 0)
            return gh_fail(page, GH_NOT_FOUND, "repository not found on GitHub: %s", msg);
        if (type && strcmp(type, "FORBIDDEN") == 0)
            return gh_fail(page, GH_FORBIDDEN, "access to the repository is forbidden: %s", msg);
        if (strstr(msg, "Something went wrong"))
            return gh_fail(page, GH_SERVER_ERROR, "GitHub server error: %s", msg);
        if (strcasestr(msg, "secondary rate limit"))
            return gh_fail(page, GH_SECONDARY_LIMIT, "secondary rate limit: %s", msg);
        if (strcasestr(msg, "timeout") || strcasestr(msg, "timed out"))
            return gh_fail(page, GH_SERVER_ERROR, "GitHub query timeout: %s", msg);
        return gh_fail(page, GH_INVALID, "GitHub rejected the query: %s", msg);
    }
    return GH_OK;
}

static enum gh_status gh_http_status(long http, const char *body, struct gh_page *page)
{
    if (http == 401) {
        /* GitHub says why ("Bad credentials"); the token itself is never echoed */
        json_t *j = json_loads(body, 0, NULL);
        const char *why = jfield_str(j, "message", 200);
        gh_fail(page, GH_UNAUTHORIZED, "%s", why ? why : "HTTP 401 without a reason");
        json_decref(j);
        return GH_UNAUTHORIZED;
    }
    if ((http == 403 || http == 429) &&
        (page->retry_after >= 0 || strcasestr(body, "secondary rate limit")))
        return gh_fail(page, GH_SECONDARY_LIMIT, "secondary rate limit (HTTP %s)",
                       http == 403 ? "403" : "429");
    if ((http == 403 || http == 429) && page->remaining == 0)
        return gh_fail(page, GH_RATE_LIMITED, "primary rate limit (HTTP %s)",
                       http == 403 ? "403" : "429");
    if (http == 429)
        return gh_fail(page, GH_SECONDARY_LIMIT, "too many requests (HTTP 429)%s", NULL);
    if (http == 403)
        return gh_fail(page, GH_FORBIDDEN, "GitHub refused access (HTTP 403)%s", NULL);
    if (http == 502 || http == 504 || http == 500 || http == 503)
        return gh_fail(page, GH_SERVER_ERROR, "GitHub server error (HTTP %s)",
                       http == 502 ? "502" : http == 504 ? "504" : http == 500 ? "500" : "503");
    return gh_fail(page, GH_TRANSIENT, "unexpected HTTP status from GitHub%s", NULL);
}

/* 1 if endCursor is a string the worker can store in a checkpoint: at most
 * GH_CURSOR_MAX bytes and no control character (NUL included), which
 * checkpoint_encode refuses; such a cursor would stall the job. */
static int gh_cursor_ok(json_t *cursor)
{
    const char *s = json_string_value(cursor);
    size_t i, n = json_string_length(cursor);

    if (!s || n > GH_CURSOR_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

static enum gh_status gh_parse_connection(json_t *repo, struct gh_page *page)
{
    json_t *conn = json_object_get(repo, "pullRequests");
    json_t *info = json_object_get(conn, "pageInfo"), *nodes = json_object_get(conn, "nodes");
    json_t *cursor = json_object_get(info, "endCursor"), *id = json_object_get(repo, "databaseId");
    json_t *node;
    size_t i;

    if (!json_is_boolean(json_object_get(info, "hasNextPage")) || !json_is_array(nodes) ||
        !(json_is_null(cursor) || gh_cursor_ok(cursor)))
        return gh_fail(page, GH_TRANSIENT, "malformed pullRequests connection in the response%s",
                       NULL);
    page->has_next = json_is_true(json_object_get(info, "hasNextPage"));
    if (json_is_string(cursor))
        snprintf(page->end_cursor, sizeof page->end_cursor, "%s", json_string_value(cursor));
    if (page->has_next && !page->end_cursor[0])
        return gh_fail(page, GH_TRANSIENT, "hasNextPage without an endCursor%s", NULL);
    page->repository_id = json_is_integer(id) ? json_integer_value(id) : 0;
    page->records = json_array();
    if (!page->records)
        return gh_fail(page, GH_TRANSIENT, "out of memory%s", NULL);
    json_array_foreach(nodes, i, node) {
        json_t *rec;
        if (json_is_null(node))
            continue; /* GitHub may return null nodes (e.g. hidden items) */
        rec = gh_convert_pr(node);
        if (!rec || json_array_append_new(page->records, rec))
            return gh_fail(page, GH_TRANSIENT, "malformed pull request node in the response%s",
                           NULL);
    }
    page->status = GH_OK;
    return GH_OK;
}

static void gh_parse_rate(json_t *root, struct gh_page *page)
{
    json_t *rl = json_object_get(json_object_get(root, "data"), "rateLimit");
    json_t *cost = json_object_get(rl, "cost"), *rem = json_object_get(rl, "remaining");
    json_t *reset = json_object_get(rl, "resetAt");
    time_t t;
    if (json_is_integer(cost))
        page->cost = (int)json_integer_value(cost);
    if (json_is_integer(rem))
        page->remaining = (int)json_integer_value(rem);
    if (json_is_string(reset) && isotime_parse(json_string_value(reset), &t) == 0 && t > 0)
        page->reset_at = t; /* a reset before 1970 is as good as none */
}

enum gh_status gh_parse_response(long http_status, const char *body, size_t len,
                                 const char *h_remaining, const char *h_reset,
                                 const char *h_retry_after, struct gh_page *page)
{
    json_error_t jerr;
    json_t *root = NULL, *data, *repo;
    enum gh_status st;

    memset(page, 0, sizeof *page);
    page->http_status = http_status;
    page->cost = -1;
    page->remaining = (int)gh_parse_long(h_remaining, -1, INT_MAX);
    page->reset_at = (time_t)gh_parse_long(h_reset, 0, GH_RESET_MAX);
    page->retry_after = (int)gh_parse_long(h_retry_after, -1, INT_MAX);
    if (http_status != 200) {
        char tmp[512];
        size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
        memcpy(tmp, body ? body : "", body ? n : 0);
        tmp[body ? n : 0] = '\0';
        return gh_http_status(http_status, tmp, page);
    }
    {
        /* A lone surrogate escape or a bad UTF-8 byte in one title would make
         * jansson refuse the whole page: it becomes U+FFFD instead. */
        char *clean = NULL; /* owned */
        size_t clean_len = 0;
        int repaired = json_clean_text(body, len, &clean, &clean_len);
        root = json_loadb(repaired > 0 ? clean : body, repaired > 0 ? clean_len : len,
                          JSON_ALLOW_NUL, &jerr);
        free(clean);
    }
    if (!json_is_object(root)) {
        st = gh_fail(page, GH_TRANSIENT, "response is not a JSON object: %s", jerr.text);
        goto done;
    }
    gh_parse_rate(root, page);
    st = gh_classify_errors(json_object_get(root, "errors"), page);
    if (st != GH_OK)
        goto done;
    data = json_object_get(root, "data");
    repo = json_object_get(data, "repository");
    if (json_is_object(data) && json_is_null(repo)) {
        st = gh_fail(page, GH_NOT_FOUND, "repository not found on GitHub%s", NULL);
        goto done;
    }
    if (!json_is_object(repo)) {
        st = gh_fail(page, GH_TRANSIENT, "response has no data.repository%s", NULL);
        goto done;
    }
    st = gh_parse_connection(repo, page);
done:
    if (st != GH_OK) {
        json_decref(page->records);
        page->records = NULL;
    }
    json_decref(root);
    return st;
}
