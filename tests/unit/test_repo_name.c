/* Unit tests: GitHub owner/name validation, addresses, keys, lists. */
#include <string.h>

#include "check.h"
#include "repo_list.h"
#include "repo_name.h"

/* entry parses to want ("owner/name"), or fails when want is NULL */
static int entry_is(const char *entry, const char *want)
{
    char o[REPO_OWNER_MAX + 1], n[REPO_NAME_MAX + 1], err[256], got[REPO_FULL_MAX + 2];
    if (repo_parse_entry(entry, o, n, err, sizeof err))
        return want == NULL;
    snprintf(got, sizeof got, "%s/%s", o, n);
    return want && strcmp(got, want) == 0;
}

struct rejects {
    int n;
    char last[256];
};

static void count_reject(void *ctx, const char *where, const char *entry, const char *reason)
{
    struct rejects *r = ctx;
    (void)where;
    r->n++;
    snprintf(r->last, sizeof r->last, "%s: %s", entry, reason);
}

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

    /* addresses as people paste them */
    CHECK(entry_is("sveltejs/svelte", "sveltejs/svelte"));
    CHECK(entry_is("https://github.com/sveltejs/svelte", "sveltejs/svelte"));
    CHECK(entry_is("https://github.com/sveltejs/svelte.git", "sveltejs/svelte"));
    CHECK(entry_is("https://github.com/sveltejs/svelte/", "sveltejs/svelte"));
    CHECK(entry_is("https://github.com/sveltejs/svelte/pulls?q=is%3Aopen", "sveltejs/svelte"));
    CHECK(entry_is("HTTPS://GitHub.com/EmberJS/ember.js#readme", "EmberJS/ember.js"));
    CHECK(entry_is("http://www.github.com/lit/lit/tree/main/packages", "lit/lit"));
    CHECK(entry_is("github.com/lit/lit", "lit/lit"));
    CHECK(entry_is("git@github.com:hotwired/turbo.git", "hotwired/turbo"));
    CHECK(entry_is("https://gitlab.com/a/b", NULL));
    CHECK(entry_is("https://github.com/a", NULL));
    CHECK(entry_is("https://github.com//b", NULL));
    CHECK(entry_is("https://github.com/-a/b", NULL));
    CHECK(entry_is("ftp://github.com/a/b", NULL));
    CHECK(entry_is("a/b.git", "a/b.git")); /* not an address: kept as typed */

    /* a list: addresses and names of one repository count once */
    struct repo_list l;
    struct rejects rj = {0};
    repo_list_init(&l);
    l.on_reject = count_reject;
    l.reject_ctx = &rj;
    CHECK(repo_list_add(&l, " sveltejs/svelte ", "t") == REPO_ADDED);
    CHECK(repo_list_add(&l, "https://github.com/SvelteJS/Svelte.git", "t") == REPO_DUPLICATE);
    CHECK(repo_list_add(&l, "<b>x</b>/y", "t") == REPO_REJECTED);
    CHECK(rj.n == 1 && strstr(rj.last, "<b>x</b>/y: invalid owner") == rj.last);
    CHECK(repo_list_add(&l, "git@github.com:lit/lit", "t") == REPO_ADDED);
    CHECK(l.n == 2 && l.duplicates == 1 && l.rejected == 1);
    CHECK(strcmp(l.jobs[1].key, "lit/lit") == 0 && l.jobs[1].max_prs == 200);
    char big[REPO_ENTRY_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(repo_list_add(&l, big, "t") == REPO_REJECTED && strstr(rj.last, "longer than"));
    repo_list_free(&l);
    return CHECK_DONE();
}
