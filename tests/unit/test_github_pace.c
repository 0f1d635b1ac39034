/* Unit tests: the group's share of GitHub's secondary limits
 * (github_pace.h) — a simulation of workers that send whenever their pace
 * lets them, checked against a 60 s sliding window and the in-flight cap;
 * shares that change; a share of nothing — and the App's JWT
 * (github_app.h): its three parts, claims and a signature that libcrypto
 * verifies with the public half of the key. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "github_app.h"
#include "github_pace.h"
#include "github_rest.h"

/* n workers, each with share 1/n, send 1-point requests of 0.05 s as
 * fast as their pace allows for 300 s; no 60 s window may hold more than
 * the limit, and never more than the concurrency in flight (or one a
 * worker, when there are more workers than that). */
static void test_group_stays_under(int n, int limit, int conc)
{
    enum { STEPS = 30000 };
    static int sent_at[STEPS]; /* requests sent in each 10 ms step */
    struct gh_pace p[8];
    double done_at[8][64];
    int inflight_max = 0, window = 0, window_max = 0, total = 0;

    memset(sent_at, 0, sizeof sent_at);
    for (int w = 0; w < n; w++) {
        gh_pace_init(&p[w]);
        gh_pace_share(&p[w], limit, conc, 1.0 / n, 0);
        for (int k = 0; k < 64; k++)
            done_at[w][k] = -1;
    }
    for (int s = 0; s < STEPS; s++) {
        double t = s * 0.01;
        int inflight = 0;
        for (int w = 0; w < n; w++) {
            for (int k = 0; k < 64; k++)
                if (done_at[w][k] >= 0 && done_at[w][k] <= t) {
                    gh_pace_done(&p[w]);
                    done_at[w][k] = -1;
                }
            while (gh_pace_wait(&p[w], 1, t) == 0) {
                int k = 0;
                while (k < 64 && done_at[w][k] >= 0)
                    k++;
                if (k == 64)
                    break;
                gh_pace_take(&p[w], 1, t);
                done_at[w][k] = t + 0.05;
                sent_at[s]++;
                total++;
            }
            inflight += p[w].in_flight;
        }
        if (inflight > inflight_max)
            inflight_max = inflight;
        window += sent_at[s];
        if (s >= 6000)
            window -= sent_at[s - 6000];
        if (window > window_max)
            window_max = window;
    }
    printf("pace: %d workers, limit %d/min, %d in flight: busiest minute %d, most in flight %d, "
           "%d sent in 300 s\n", n, limit, conc, window_max, inflight_max, total);
    CHECK(window_max <= limit);
    CHECK(window_max >= limit * 9 / 10); /* and it does use what it may */
    CHECK(inflight_max <= (conc > n ? conc : n)); /* each worker may have one, whatever its share */
}

static void test_share_changes(void)
{
    struct gh_pace p;
    gh_pace_init(&p);
    CHECK(gh_pace_wait(&p, 1, 0) > 0); /* no share yet: nothing goes */
    gh_pace_share(&p, 1200, 10, 1.0, 0);
    CHECK(p.max_in_flight == 10);
    CHECK(gh_pace_wait(&p, 1, 0) == 0);
    gh_pace_share(&p, 1200, 10, 0.25, 0);
    CHECK(p.max_in_flight == 2);
    CHECK(p.tokens <= p.capacity); /* a smaller share keeps no bigger bucket */
    gh_pace_share(&p, 1200, 10, 0.0, 0);
    CHECK(p.max_in_flight == 1);
    while (gh_pace_wait(&p, 1, 0) == 0)
        gh_pace_take(&p, 1, 0), gh_pace_done(&p);
    CHECK(gh_pace_wait(&p, 1, 100) > 0); /* a share of nothing never refills */
    gh_pace_share(&p, 0, 0, 0.5, 0);     /* limits off */
    for (int i = 0; i < 1000; i++)
        gh_pace_take(&p, 1, 0);
    CHECK(gh_pace_wait(&p, 1, 0) == 0);

    /* a worker's order: a share of nothing until its first assignment, then
     * its share, with the bucket full (two seconds' worth at once) */
    gh_pace_init(&p);
    gh_pace_share(&p, 1800, 90, 0.0, 0);
    gh_pace_share(&p, 1800, 90, 1.0, 5);
    CHECK(p.tokens == p.capacity && p.capacity == 60);
    for (int i = 0; i < 60; i++) {
        CHECK(gh_pace_wait(&p, 1, 5) == 0);
        gh_pace_take(&p, 1, 5);
    }
    CHECK(gh_pace_wait(&p, 1, 5) > 0);
    /* a share that shrinks and grows again keeps what was spent */
    gh_pace_share(&p, 1800, 90, 0.5, 5);
    gh_pace_share(&p, 1800, 90, 1.0, 5);
    CHECK(p.tokens < 1);
}

static json_t *b64url_json(const char *s, size_t n)
{
    unsigned char out[512];
    char in[700];
    size_t m = 0;
    int len;
    if (n > 600)
        return NULL;
    for (size_t i = 0; i < n; i++)
        in[m++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (m % 4)
        in[m++] = '=';
    len = EVP_DecodeBlock(out, (unsigned char *)in, (int)m);
    if (len < 0)
        return NULL;
    while (len > 0 && out[len - 1] == '\0') /* EVP_DecodeBlock counts padding as zeros */
        len--;
    return json_loadb((char *)out, (size_t)len, 0, NULL);
}

static void test_jwt(void)
{
    char key_path[] = "/tmp/test_github_app_XXXXXX", jwt[GH_APP_JWT_MAX], err[256];
    int fd = mkstemp(key_path);
    EVP_PKEY *key = EVP_RSA_gen(2048);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    gh_app *app;
    const char *dot1, *dot2;

    CHECK(key && f);
    if (!key || !f)
        return;
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    CHECK(gh_app_new("12 34", key_path, err, sizeof err) == NULL);
    CHECK(gh_app_new("123", "/nonexistent/key.pem", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/key.pem") != NULL);
    app = gh_app_new("123", key_path, err, sizeof err);
    CHECK(app != NULL);
    if (app && gh_app_jwt(app, 1764360000, jwt, sizeof jwt) == 0) {
        json_t *h, *c;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char sig[512];
        char b64[700];
        size_t n, m = 0;
        int siglen;
        dot1 = strchr(jwt, '.');
        dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        CHECK(dot1 && dot2 && !strchr(dot2 + 1, '.') && !strchr(jwt, '='));
        if (dot1 && dot2) {
            h = b64url_json(jwt, (size_t)(dot1 - jwt));
            c = b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
            CHECK(h && strcmp(json_string_value(json_object_get(h, "alg")), "RS256") == 0);
            CHECK(c && json_integer_value(json_object_get(c, "iss")) == 123);
            CHECK(c && json_integer_value(json_object_get(c, "iat")) == 1764360000 - 60);
            CHECK(c && json_integer_value(json_object_get(c, "exp")) == 1764360000 + 540);
            json_decref(h);
            json_decref(c);
            n = strlen(dot2 + 1);
            for (size_t i = 0; i < n && m < sizeof b64 - 4; i++)
                b64[m++] = dot2[1 + i] == '-' ? '+' : dot2[1 + i] == '_' ? '/' : dot2[1 + i];
            while (m % 4)
                b64[m++] = '=';
            siglen = EVP_DecodeBlock(sig, (unsigned char *)b64, (int)m);
            CHECK(siglen >= 256); /* 2048-bit: 256 bytes (EVP_DecodeBlock counts the padding) */
            CHECK(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
                  EVP_DigestVerify(md, sig, 256, (unsigned char *)jwt,
                                   (size_t)(dot2 - jwt)) == 1);
        }
        EVP_MD_CTX_free(md);
    } else {
        CHECK(0);
    }
    gh_app_free(app);
    app = gh_app_new("Iv1.abc", key_path, err, sizeof err); /* a client id: iss as a string */
    CHECK(app && gh_app_jwt(app, 1764360000, jwt, sizeof jwt) == 0);
    if (app) {
        dot1 = strchr(jwt, '.');
        dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        json_t *c = dot2 ? b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1)) : NULL;
        CHECK(c && json_is_string(json_object_get(c, "iss")));
        json_decref(c);
    }
    CHECK(gh_app_jwt(app, 1764360000, jwt, 40) == -1); /* too small: refused, not cut */
    gh_app_free(app);
    EVP_PKEY_free(key);
    unlink(key_path);
}

static void test_rest_base(void)
{
    char out[256];
    CHECK(gh_rest_base_for("https://api.github.com/graphql", out, sizeof out) == 0 &&
          strcmp(out, "https://api.github.com") == 0);
    CHECK(gh_rest_base_for("https://ghe.example/api/graphql", out, sizeof out) == 0 &&
          strcmp(out, "https://ghe.example/api/v3") == 0);
    CHECK(gh_rest_base_for("http://127.0.0.1:9/graphql/", out, sizeof out) == 0 &&
          strcmp(out, "http://127.0.0.1:9") == 0);
    CHECK(gh_rest_base_for("http://127.0.0.1:9/query", out, sizeof out) == -1);
    CHECK(gh_rest_base_for("https://api.github.com/graphql", out, 8) == -1);
}

int main(void)
{
    test_group_stays_under(1, 2000, 100);
    test_group_stays_under(5, 2000, 100);
    test_group_stays_under(8, 1800, 90);
    test_group_stays_under(3, 60, 2);
    test_share_changes();
    test_jwt();
    test_rest_base();
    return CHECK_DONE();
}
