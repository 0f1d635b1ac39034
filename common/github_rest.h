/* github_rest: the few REST calls a credential pool makes to GitHub (who
 * a token belongs to, which App installation covers a repository, an
 * installation's access token). One blocking request per call on its own
 * libcurl handle: these calls are rare (once per token, per repository
 * owner, per token renewal), so nothing is kept alive between them.
 *
 * The Authorization value is sent only in its header; no error message
 * ever contains it. Answers are capped at GH_REST_BODY_MAX bytes; the
 * reason of a refusal is GitHub's own `message`, cleaned of control
 * characters and cut to fit. */
#ifndef BACKFILL_GITHUB_REST_H
#define BACKFILL_GITHUB_REST_H

#include <jansson.h>
#include <stddef.h>

#define GH_REST_BODY_MAX (1u << 20)
#define GH_REST_URL_MAX 2048

struct gh_rest_answer {
    long http_status; /* 0 when no answer came (network error, timeout) */
    json_t *body;     /* owned: the parsed JSON answer, NULL when it was not JSON */
    char error[300];  /* when not 2xx: GitHub's message or what went wrong */
};

/* Sends `method` (GET or POST, the latter with an empty JSON object) to
 * base + path with "Authorization: <auth>" (e.g. "Bearer <jwt>", "token
 * <pat>"; borrowed, never copied into a message). Always fills *a (clear
 * it with gh_rest_answer_clear). Returns 0 for a 2xx answer with a JSON
 * object body, -1 otherwise (the reason in a->error). */
int gh_rest_call(const char *base, const char *method, const char *path, const char *auth,
                 long connect_timeout_ms, long total_timeout_ms, struct gh_rest_answer *a);

void gh_rest_answer_clear(struct gh_rest_answer *a);

/* The REST base URL that goes with a GraphQL endpoint: ".../graphql" with
 * its last segment dropped, and GitHub Enterprise's ".../api" turned into
 * ".../api/v3" (https://api.github.com/graphql -> https://api.github.com,
 * https://ghe.example/api/graphql -> https://ghe.example/api/v3). Returns
 * 0, or -1 when the URL does not end in /graphql or does not fit. */
int gh_rest_base_for(const char *graphql_url, char *out, size_t outlen);

#endif
