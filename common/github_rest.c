/* github_rest: see github_rest.h. */
#include "github_rest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "dynbuf.h"
#include <stdlib.h>

static size_t rest_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    size_t n = size * nmemb;
    return dynbuf_add(userdata, ptr, n) == 0 ? n : 0; /* over the cap: abort */
}

/* a->error from GitHub's `message` (or the HTTP status alone). */
static void rest_refusal(struct gh_rest_answer *a)
{
    const char *m = a->body ? json_string_value(json_object_get(a->body, "message")) : NULL;
    size_t i, n = 0;
    char clean[200];

    for (i = 0; m && m[i] && n < sizeof clean - 1; i++)
        clean[n++] = (unsigned char)m[i] < 0x20 || m[i] == 0x7f ? ' ' : m[i];
    clean[n] = '\0';
    if (n)
        snprintf(a->error, sizeof a->error, "%s (HTTP %ld)", clean, a->http_status);
    else
        snprintf(a->error, sizeof a->error, "HTTP %ld from GitHub", a->http_status);
}

int gh_rest_call(const char *base, const char *method, const char *path, const char *auth,
                 long connect_timeout_ms, long total_timeout_ms, struct gh_rest_answer *a)
{
    struct dynbuf body;
    struct curl_slist *h = NULL, *t;
    char url[GH_REST_URL_MAX], *hdr = NULL;
    size_t hlen = strlen(auth) + 32;
    CURL *c = NULL;
    CURLcode cc;
    int rc = -1;

    memset(a, 0, sizeof *a);
    dynbuf_init(&body, GH_REST_BODY_MAX);
    if ((size_t)snprintf(url, sizeof url, "%s%s", base, path) >= sizeof url) {
        snprintf(a->error, sizeof a->error, "REST URL too long");
        return -1;
    }
    c = curl_easy_init();
    hdr = malloc(hlen);
    if (!c || !hdr) {
        snprintf(a->error, sizeof a->error, "out of memory");
        goto done;
    }
    snprintf(hdr, hlen, "Authorization: %s", auth);
    t = curl_slist_append(NULL, "Accept: application/vnd.github+json");
    h = t;
    t = t ? curl_slist_append(h, "X-GitHub-Api-Version: 2022-11-28") : NULL;
    t = t ? curl_slist_append(h, hdr) : NULL;
    t = t && strcmp(method, "POST") == 0 ? curl_slist_append(h, "Content-Type: application/json")
                                         : t;
    memset(hdr, 0, hlen); /* curl_slist_append copied it */
    if (!t) {
        snprintf(a->error, sizeof a->error, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "backfill/1.0 (+libcurl)");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rest_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->http_status);
    if (cc != CURLE_OK) {
        a->http_status = 0;
        snprintf(a->error, sizeof a->error, "request failed: %s", curl_easy_strerror(cc));
        goto done;
    }
    if (body.len)
        a->body = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, NULL);
    if (a->http_status < 200 || a->http_status > 299) {
        rest_refusal(a);
        goto done;
    }
    if (!json_is_object(a->body)) {
        snprintf(a->error, sizeof a->error, "HTTP %ld from GitHub without a JSON object",
                 a->http_status);
        goto done;
    }
    rc = 0;
done:
    for (struct curl_slist *l = h; l; l = l->next) /* the Authorization header's copy */
        memset(l->data, 0, strlen(l->data));
    curl_slist_free_all(h);
    free(hdr);
    if (c)
        curl_easy_cleanup(c);
    dynbuf_free(&body);
    return rc;
}

void gh_rest_answer_clear(struct gh_rest_answer *a)
{
    json_decref(a->body);
    memset(a, 0, sizeof *a);
}

int gh_rest_base_for(const char *graphql_url, char *out, size_t outlen)
{
    size_t n = strlen(graphql_url);
    const char *suffix = "/graphql";
    size_t sl = strlen(suffix);

    while (n && graphql_url[n - 1] == '/')
        n--;
    if (n < sl || strncmp(graphql_url + n - sl, suffix, sl) != 0)
        return -1;
    n -= sl;
    if (n >= 4 && strncmp(graphql_url + n - 4, "/api", 4) == 0)
        return (size_t)snprintf(out, outlen, "%.*s/v3", (int)n, graphql_url) < outlen ? 0 : -1;
    return (size_t)snprintf(out, outlen, "%.*s", (int)n, graphql_url) < outlen ? 0 : -1;
}
