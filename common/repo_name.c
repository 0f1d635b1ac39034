/* repo_name: see repo_name.h. */
#include "repo_name.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool repo_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool repo_owner_valid(const char *owner, size_t len)
{
    if (len == 0 || len > REPO_OWNER_MAX)
        return false;
    if (owner[0] == '-' || owner[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (owner[i] == '-') {
            if (owner[i + 1] == '-')
                return false;
        } else if (!repo_is_alnum(owner[i])) {
            return false;
        }
    }
    return true;
}

bool repo_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > REPO_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!repo_is_alnum(c) && c != '.' && c != '-' && c != '_')
            return false;
    }
    return true;
}

int repo_parse(const char *full, char owner[REPO_OWNER_MAX + 1], char name[REPO_NAME_MAX + 1],
               char *errstr, size_t errlen)
{
    const char *slash = strchr(full, '/');
    size_t olen, nlen;

    if (!slash) {
        snprintf(errstr, errlen, "expected owner/name");
        return -1;
    }
    olen = (size_t)(slash - full);
    nlen = strlen(slash + 1);
    if (!repo_owner_valid(full, olen)) {
        snprintf(errstr, errlen,
                 "invalid owner: 1-39 letters, digits or single hyphens, not starting or ending "
                 "with a hyphen");
        return -1;
    }
    if (!repo_name_valid(slash + 1, nlen)) {
        snprintf(errstr, errlen,
                 "invalid repository name: 1-100 letters, digits, '.', '-' or '_', not '.' or '..'");
        return -1;
    }
    memcpy(owner, full, olen);
    owner[olen] = '\0';
    memcpy(name, slash + 1, nlen);
    name[nlen] = '\0';
    return 0;
}

/* The rest of s after prefix (ASCII case ignored), or NULL. */
static const char *repo_after(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncasecmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* Where owner/name starts in a GitHub address, NULL when entry is not an
 * address; *foreign set when it is an address of another host. */
static const char *repo_address_path(const char *entry, int *foreign)
{
    const char *p = repo_after(entry, "https://"), *q;
    *foreign = 0;
    if (!p)
        p = repo_after(entry, "http://");
    if ((q = repo_after(entry, "git@github.com:")))
        return q;
    if (!p) /* no scheme: only a bare github.com host counts as an address */
        p = entry;
    if ((q = repo_after(p, "www.")))
        p = q;
    if ((q = repo_after(p, "github.com/")))
        return q;
    *foreign = p != entry;
    return NULL;
}

int repo_parse_entry(const char *entry, char owner[REPO_OWNER_MAX + 1],
                     char name[REPO_NAME_MAX + 1], char *errstr, size_t errlen)
{
    char buf[REPO_FULL_MAX + 2];
    int foreign;
    const char *path = repo_address_path(entry, &foreign), *slash, *end;
    size_t olen, nlen;

    if (foreign) {
        snprintf(errstr, errlen, "not a github.com address");
        return -1;
    }
    if (!path)
        return repo_parse(entry, owner, name, errstr, errlen);
    slash = strchr(path, '/');
    if (!slash) {
        snprintf(errstr, errlen, "expected github.com/owner/name");
        return -1;
    }
    end = slash + 1 + strcspn(slash + 1, "/?#");
    olen = (size_t)(slash - path);
    nlen = (size_t)(end - slash - 1);
    if (nlen > 4 && strncasecmp(end - 4, ".git", 4) == 0)
        nlen -= 4;
    if (olen + 1 + nlen >= sizeof buf) {
        snprintf(errstr, errlen, "longer than owner/name can be");
        return -1;
    }
    memcpy(buf, path, olen + 1);
    memcpy(buf + olen + 1, slash + 1, nlen);
    buf[olen + 1 + nlen] = '\0';
    return repo_parse(buf, owner, name, errstr, errlen);
}

void repo_key(const char *owner, const char *name, char out[REPO_FULL_MAX + 1])
{
    size_t n = 0;
    for (const char *p = owner; *p && n < REPO_OWNER_MAX; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    out[n++] = '/';
    for (const char *p = name; *p && n < REPO_FULL_MAX; p++)
        out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
}
