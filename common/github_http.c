/* github_http: the libcurl side of the GitHub client (see github.h). One
 * easy handle per client, kept alive so connections (and TLS sessions) are
 * reused across pages. Response bodies are capped at GH_BODY_MAX. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "github.h"

struct gh_client {
    CURL *curl;                  /* owned */
    struct curl_slist *headers;  /* owned; holds the Authorization header */
    char *url;                   /* owned */
    const atomic_int *cancel; /* borrowed, NULL = never cancel */
};

struct gh_response {
    char *body; /* owned, NUL-terminated */
    size_t len;
    size_t cap;
    int overflow;
    char remaining[32];
    char reset[32];
    char retry_after[32];
    int has_remaining, has_reset, has_retry_after;
};

static const char gh_query[] =
    "query Backfill($owner: String!, $name: String!, $first: Int!, $after: String) {\n"
    "  rateLimit { cost remaining resetAt limit }\n"
    "  repository(owner: $owner, name: $name) {\n"
    "    databaseId\n"
    "    pullRequests(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: "
    "DESC}) {\n"
    "      pageInfo { hasNextPage endCursor }\n"
    "      nodes {\n"
    "        fullDatabaseId number title body state isDraft merged\n"
    "        createdAt updatedAt closedAt mergedAt\n"
    "        additions deletions changedFiles\n"
    "        baseRefName headRefName url\n"
    "        author { __typename login avatarUrl ... on User { databaseId } ... on Bot { "
    "databaseId } }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static int gh_on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow);

const char *gh_query_document(void)
{
    return gh_query;
}

gh_client *gh_new(const char *url, const char *token, long connect_timeout_ms,
                  long total_timeout_ms, char *errstr, size_t errlen)
{
    static int global_done;
    gh_client *gh;
    char *auth = NULL;
    struct curl_slist *h;

    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(errstr, errlen, "curl_global_init failed");
            return NULL;
        }
        global_done = 1;
    }
    gh = calloc(1, sizeof *gh);
    if (!gh)
        goto oom;
    gh->url = strdup(url);
    gh->curl = curl_easy_init();
    if (!gh->url || !gh->curl)
        goto oom;
    h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h)
        gh->headers = h;
    h = h ? curl_slist_append(gh->headers, "Accept: application/json") : NULL;
    h = h ? curl_slist_append(gh->headers, "Expect:") : NULL;
    if (h && token && token[0]) {
        size_t n = strlen(token) + 32;
        auth = malloc(n);
        if (!auth)
            goto oom;
        snprintf(auth, n, "Authorization: bearer %s", token);
        h = curl_slist_append(gh->headers, auth);
        memset(auth, 0, n); /* don't leave the token lying around */
        free(auth);
    }
    if (!h)
        goto oom;
    curl_easy_setopt(gh->curl, CURLOPT_URL, gh->url);
    curl_easy_setopt(gh->curl, CURLOPT_HTTPHEADER, gh->headers);
    curl_easy_setopt(gh->curl, CURLOPT_USERAGENT, "backfill/1.0 (+libcurl)");
    curl_easy_setopt(gh->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(gh->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(gh->curl, CURLOPT_TIMEOUT_MS, total_timeout_ms);
    curl_easy_setopt(gh->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(gh->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(gh->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(gh->curl, CURLOPT_XFERINFOFUNCTION, gh_on_progress);
    curl_easy_setopt(gh->curl, CURLOPT_XFERINFODATA, gh);
    curl_easy_setopt(gh->curl, CURLOPT_NOPROGRESS, 0L);
    return gh;
oom:
    snprintf(errstr, errlen, "out of memory creating the GitHub client");
    gh_free(gh);
    return NULL;
}

void gh_free(gh_client *gh)
{
    if (!gh)
        return;
    if (gh->curl)
        curl_easy_cleanup(gh->curl);
    curl_slist_free_all(gh->headers);
    free(gh->url);
    free(gh);
}

void gh_set_cancel_flag(gh_client *gh, const atomic_int *flag)
{
    gh->cancel = flag;
}

/* libcurl calls this about once a second and on every transfer event:
 * a nonzero return aborts the transfer. */
static int gh_on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
    const gh_client *gh = userdata;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return gh->cancel && atomic_load(gh->cancel) ? 1 : 0;
}

static size_t gh_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gh_response *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n + 1 > GH_BODY_MAX) {
        r->overflow = 1;
        return 0; /* aborts the transfer */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        char *nb;
        while (cap < r->len + n + 1)
            cap *= 2;
        nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies the value of header `name` if line is that header. */
static int gh_header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), vlen;
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return 0;
    line += nlen + 1;
    len -= nlen + 1;
    while (len && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    vlen = len < outlen - 1 ? len : outlen - 1;
    memcpy(out, line, vlen);
    out[vlen] = '\0';
    return 1;
}

static size_t gh_on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct gh_response *r = userdata;
    size_t n = size * nmemb;
    if (gh_header_value(line, n, "x-ratelimit-remaining", r->remaining, sizeof r->remaining))
        r->has_remaining = 1;
    else if (gh_header_value(line, n, "x-ratelimit-reset", r->reset, sizeof r->reset))
        r->has_reset = 1;
    else if (gh_header_value(line, n, "retry-after", r->retry_after, sizeof r->retry_after))
        r->has_retry_after = 1;
    return n;
}

static char *gh_request_body(const char *owner, const char *name, int first, const char *after)
{
    json_t *req = json_object(), *vars = json_object();
    char *s = NULL;
    if (!req || !vars)
        goto done;
    if (json_object_set_new(vars, "owner", json_string(owner)) ||
        json_object_set_new(vars, "name", json_string(name)) ||
        json_object_set_new(vars, "first", json_integer(first)) ||
        json_object_set_new(vars, "after", after && after[0] ? json_string(after) : json_null()) ||
        json_object_set_new(req, "query", json_string(gh_query)) ||
        json_object_set(req, "variables", vars))
        goto done;
    s = json_dumps(req, JSON_COMPACT);
done:
    json_decref(vars);
    json_decref(req);
    return s;
}

enum gh_status gh_fetch_page(gh_client *gh, const char *owner, const char *name, int first,
                             const char *after, struct gh_page *page)
{
    struct gh_response r;
    char *req;
    CURLcode cc;
    long http = 0;
    enum gh_status st;

    memset(&r, 0, sizeof r);
    memset(page, 0, sizeof *page);
    req = gh_request_body(owner, name, first, after);
    if (!req) {
        page->status = GH_TRANSIENT;
        snprintf(page->error, sizeof page->error, "out of memory building the request");
        return page->status;
    }
    curl_easy_setopt(gh->curl, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(gh->curl, CURLOPT_WRITEFUNCTION, gh_on_body);
    curl_easy_setopt(gh->curl, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(gh->curl, CURLOPT_HEADERFUNCTION, gh_on_header);
    curl_easy_setopt(gh->curl, CURLOPT_HEADERDATA, &r);
    cc = curl_easy_perform(gh->curl);
    curl_easy_getinfo(gh->curl, CURLINFO_RESPONSE_CODE, &http);
    if (cc != CURLE_OK) {
        page->status = GH_TRANSIENT;
        page->http_status = http;
        page->cost = page->remaining = page->retry_after = -1;
        snprintf(page->error, sizeof page->error, "request failed: %s%s",
                 cc == CURLE_ABORTED_BY_CALLBACK ? "request cancelled" : curl_easy_strerror(cc),
                 r.overflow ? " (response body over the size cap)" : "");
        st = page->status;
    } else {
        st = gh_parse_response(http, r.body ? r.body : "", r.len,
                               r.has_remaining ? r.remaining : NULL, r.has_reset ? r.reset : NULL,
                               r.has_retry_after ? r.retry_after : NULL, page);
    }
    curl_easy_setopt(gh->curl, CURLOPT_POSTFIELDS, NULL);
    free(req);
    free(r.body);
    return st;
}
