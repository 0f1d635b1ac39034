/* checkpoint: the chunk checkpoint a worker stores in the metadata of the
 * job message's committed offset:
 *
 *   {"v":1,"id":"<job event id>","cursor":"…"|null,"fetched":N,"chunk":N,
 *    "seq":N,"cutoff":"<ISO-8601>","requests":N,"points":N}
 *
 * It must stay well under the broker's 4096-byte metadata limit and never
 * contain a NUL byte; encode refuses anything that would not. */
#ifndef BACKFILL_CHECKPOINT_H
#define BACKFILL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "isotime.h"

#define CHECKPOINT_CURSOR_MAX 1024
#define CHECKPOINT_MAX_BYTES 4000 /* broker limit is 4096 */

struct checkpoint {
    char id[EVENT_ID_MAX + 1];                 /* the job's event id */
    char cursor[CHECKPOINT_CURSOR_MAX + 1];    /* "" = start from the first page */
    int fetched;                               /* PRs published so far */
    int chunk;                                 /* chunks published so far */
    int64_t seq;                               /* last seq published */
    char cutoff[ISOTIME_LEN + 1];              /* window cutoff fixed at job start */
    int64_t requests;                          /* GraphQL requests so far */
    int64_t points;                            /* GraphQL points so far */
};

/* Serialises cp into out (NUL-terminated). Returns the length, or -1 if
 * it would not fit in min(outlen, CHECKPOINT_MAX_BYTES) or a field holds a
 * character that cannot appear (cursor with control bytes). */
int checkpoint_encode(const struct checkpoint *cp, char *out, size_t outlen);

/* Parses metadata written by checkpoint_encode. Returns 0 and fills *cp,
 * or -1 with a reason (cp zeroed). Never crashes on any input. */
int checkpoint_decode(const char *buf, size_t len, struct checkpoint *cp, char *errstr,
                      size_t errlen);

#endif
