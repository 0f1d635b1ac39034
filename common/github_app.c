/* github_app: see github_app.h. JWT = base64url(header) "." base64url(
 * claims) "." base64url(RSASSA-PKCS1-v1_5 SHA-256 signature of the first
 * two parts), RFC 7519 / 7518. */
#include "github_app.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gh_app {
    char id[GH_APP_ID_MAX + 1];
    EVP_PKEY *key; /* owned */
};

gh_app *gh_app_new(const char *app_id, const char *pem_path, char *errstr, size_t errlen)
{
    gh_app *app;
    FILE *f;
    size_t n = app_id ? strlen(app_id) : 0;

    if (n == 0 || n > GH_APP_ID_MAX) {
        snprintf(errstr, errlen, "GITHUB_APP_ID must be 1..%d characters", GH_APP_ID_MAX);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (app_id[i] <= ' ' || app_id[i] > '~' || app_id[i] == '"' || app_id[i] == '\\') {
            snprintf(errstr, errlen, "GITHUB_APP_ID holds a character an id cannot have");
            return NULL;
        }
    f = fopen(pem_path, "r");
    if (!f) {
        snprintf(errstr, errlen, "cannot read the App's private key file %s: %m", pem_path);
        return NULL;
    }
    app = calloc(1, sizeof *app);
    if (app)
        app->key = PEM_read_PrivateKey(f, NULL, NULL, (void *)""); /* no passphrase prompt */
    fclose(f);
    if (!app) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (!app->key || EVP_PKEY_base_id(app->key) != EVP_PKEY_RSA) {
        snprintf(errstr, errlen, "%s holds no RSA private key in PEM form (GitHub's App keys "
                 "are \"BEGIN RSA PRIVATE KEY\" files)", pem_path);
        gh_app_free(app);
        return NULL;
    }
    memcpy(app->id, app_id, n + 1);
    return app;
}

void gh_app_free(gh_app *app)
{
    if (!app)
        return;
    EVP_PKEY_free(app->key);
    free(app);
}

const char *gh_app_id(const gh_app *app)
{
    return app->id;
}

/* base64url without padding of in[0..n) appended at out[*at]; -1 if it
 * does not fit (with its NUL). */
static int b64url(const unsigned char *in, size_t n, char *out, size_t outlen, size_t *at)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        if (*at + chars + 1 > outlen)
            return -1;
        for (size_t k = 0; k < chars; k++)
            out[(*at)++] = tab[(v >> (18 - 6 * k)) & 63];
    }
    out[*at] = '\0';
    return 0;
}

int gh_app_jwt(const gh_app *app, time_t now, char *out, size_t outlen)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char claims[160];
    unsigned char sig[1024];
    size_t at = 0, siglen = sizeof sig;
    int n, rc = -1;
    EVP_MD_CTX *md;

    /* a numeric App id goes out as a number, a client id ("Iv1.…") as a string */
    n = snprintf(claims, sizeof claims,
                 strspn(app->id, "0123456789") == strlen(app->id)
                     ? "{\"iat\":%lld,\"exp\":%lld,\"iss\":%s}"
                     : "{\"iat\":%lld,\"exp\":%lld,\"iss\":\"%s\"}",
                 (long long)now - 60, (long long)now + 540, app->id);
    if (n < 0 || (size_t)n >= sizeof claims)
        return -1;
    if (b64url((const unsigned char *)header, sizeof header - 1, out, outlen, &at) ||
        at + 2 > outlen)
        return -1;
    out[at++] = '.';
    if (b64url((const unsigned char *)claims, (size_t)n, out, outlen, &at) || at + 2 > outlen)
        return -1;
    md = EVP_MD_CTX_new();
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, app->key) == 1 &&
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)out, at) == 1) {
        out[at++] = '.';
        rc = b64url(sig, siglen, out, outlen, &at);
    }
    EVP_MD_CTX_free(md);
    if (rc)
        out[0] = '\0';
    return rc;
}
