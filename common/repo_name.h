/* repo_name: GitHub's rules for "owner/name".
 *
 * owner: 1..39 letters, digits or single hyphens, not starting or ending
 * with a hyphen. name: 1..100 letters, digits, '.', '-', '_', and not "."
 * or "..". The Kafka key of a repository is its lower-cased "owner/name". */
#ifndef BACKFILL_REPO_NAME_H
#define BACKFILL_REPO_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define REPO_OWNER_MAX 39
#define REPO_NAME_MAX 100
#define REPO_FULL_MAX (REPO_OWNER_MAX + 1 + REPO_NAME_MAX)

bool repo_owner_valid(const char *owner, size_t len);
bool repo_name_valid(const char *name, size_t len);

/* Splits and validates "owner/name" (surrounding blanks are not allowed).
 * On success returns 0 and fills owner and name (NUL-terminated, case
 * kept). On failure returns -1, writes a reason to errstr and leaves owner
 * and name unspecified. */
int repo_parse(const char *full, char owner[REPO_OWNER_MAX + 1], char name[REPO_NAME_MAX + 1],
               char *errstr, size_t errlen);

/* Like repo_parse, but also takes the repository's GitHub address, as
 * people paste it: https://github.com/owner/name (http, www., no scheme,
 * or git@github.com:owner/name), with an optional ".git", trailing slash,
 * further path, query or fragment. Any other host is refused. */
int repo_parse_entry(const char *entry, char owner[REPO_OWNER_MAX + 1],
                     char name[REPO_NAME_MAX + 1], char *errstr, size_t errlen);

/* Writes the lower-cased "owner/name" key into out (size >= REPO_FULL_MAX+1). */
void repo_key(const char *owner, const char *name, char out[REPO_FULL_MAX + 1]);

#endif
