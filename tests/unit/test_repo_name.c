/* Unit tests: GitHub owner/name validation and keys. */
#include <string.h>

#include "check.h"
#include "repo_name.h"

static int ok(const char *s)
{
    char o[REPO_OWNER_MAX + 1], n[REPO_NAME_MAX + 1], err[256];
    return repo_parse(s, o, n, err, sizeof err) == 0;
}

int main(void)
{
    char key[REPO_FULL_MAX + 1], o[REPO_OWNER_MAX + 1], n[REPO_NAME_MAX + 1], err[256];
    char long_owner[64], long_name[128];

    CHECK(ok("emberjs/ember.js"));
    CHECK(ok("stimulus-use/stimulus-use"));
    CHECK(ok("sveltejs/svelte"));
    CHECK(ok("a/b"));
    CHECK(ok("my_org-x/.github") == 0); /* underscore not allowed in owners */
    CHECK(ok("org/.github"));
    CHECK(ok("org/repo_name-1.x"));
    CHECK(!ok("../x"));
    CHECK(!ok("a//b"));
    CHECK(!ok("-a/b"));
    CHECK(!ok("a-/b"));
    CHECK(!ok("a--b/c"));
    CHECK(!ok("a/."));
    CHECK(!ok("a/.."));
    CHECK(!ok("a/b/c"));
    CHECK(!ok("a"));
    CHECK(!ok("/b"));
    CHECK(!ok("a/"));
    CHECK(!ok("a/b c"));
    CHECK(!ok("a/b\xc3\xa9"));
    CHECK(!ok(" a/b"));
    memset(long_owner, 'a', 40);
    strcpy(long_owner + 40, "/b");
    CHECK(!ok(long_owner)); /* 40 > 39 */
    long_owner[39] = '/';
    long_owner[40] = 'b';
    long_owner[41] = '\0';
    CHECK(ok(long_owner)); /* exactly 39 */
    memset(long_name, 'n', sizeof long_name);
    long_name[0] = 'o';
    long_name[1] = '/';
    long_name[102] = '\0';
    CHECK(ok(long_name)); /* 100 */
    long_name[102] = 'n';
    long_name[103] = '\0';
    CHECK(!ok(long_name)); /* 101 */

    CHECK(repo_parse("EmberJS/Ember.JS", o, n, err, sizeof err) == 0);
    CHECK(strcmp(o, "EmberJS") == 0 && strcmp(n, "Ember.JS") == 0);
    repo_key(o, n, key);
    CHECK(strcmp(key, "emberjs/ember.js") == 0);
    CHECK(repo_parse("-a/b", o, n, err, sizeof err) == -1 && strstr(err, "owner") != NULL);
    return CHECK_DONE();
}
