/* github_app: what a GitHub App signs to authenticate as itself: a JSON
 * Web Token (RS256) over {iat, exp, iss}, made with OpenSSL's libcrypto
 * from the App's private key. The key is read once from a PEM file
 * (PKCS#1 "RSA PRIVATE KEY", as GitHub hands it out, or PKCS#8) and kept
 * in memory; neither it nor a token ever reaches a message. */
#ifndef BACKFILL_GITHUB_APP_H
#define BACKFILL_GITHUB_APP_H

#include <stddef.h>
#include <time.h>

#define GH_APP_ID_MAX 64
#define GH_APP_JWT_MAX 2048

typedef struct gh_app gh_app;

/* Loads the App's key from pem_path; app_id is the App's id or client id
 * (copied; 1..GH_APP_ID_MAX printable characters). NULL with a reason in
 * errstr when the id is bad, the file cannot be read, or it holds no RSA
 * private key. */
gh_app *gh_app_new(const char *app_id, const char *pem_path, char *errstr, size_t errlen);
void gh_app_free(gh_app *app);

/* The App's id as given (borrowed from app). */
const char *gh_app_id(const gh_app *app);

/* Signs a JWT valid from now - 60 s (GitHub's advice against clock drift)
 * to now + 9 minutes (GitHub allows at most 10) into out. Returns 0, or -1
 * when signing fails or out is too small. */
int gh_app_jwt(const gh_app *app, time_t now, char *out, size_t outlen);

#endif
