/* fuzz_checkpoint: checkpoint_decode (common/checkpoint.c) on arbitrary
 * bytes, as a worker reads the metadata of a committed offset.
 *
 * Checks: a rejected checkpoint is zeroed with a reason; an accepted one
 * holds in-range values and a cutoff that parses, and, because the worker
 * re-encodes what it resumed from at the next chunk, checkpoint_encode
 * takes it and checkpoint_decode gives it back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_check.h"

static int cp_equal(const struct checkpoint *a, const struct checkpoint *b)
{
    return !strcmp(a->id, b->id) && !strcmp(a->cursor, b->cursor) && a->fetched == b->fetched &&
           a->chunk == b->chunk && a->seq == b->seq && !strcmp(a->cutoff, b->cutoff) &&
           a->requests == b->requests && a->points == b->points;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct checkpoint zero;
    static struct checkpoint cp, back; /* ~2 KiB each: keep them off the stack */
    char err[256], err2[256], enc[CHECKPOINT_MAX_BYTES + 1];
    time_t t;
    int n;

    memset(err, 'x', sizeof err);
    if (checkpoint_decode((const char *)data, size, &cp, err, sizeof err) != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0] != '\0');
        FUZZ_CHECK(memcmp(&cp, &zero, sizeof cp) == 0);
        return 0;
    }
    FUZZ_CHECK(cp.id[0] && strlen(cp.id) <= EVENT_ID_MAX);
    FUZZ_CHECK(strlen(cp.cursor) <= CHECKPOINT_CURSOR_MAX);
    FUZZ_CHECK(cp.fetched >= 0 && cp.chunk >= 0 && cp.seq >= 0);
    FUZZ_CHECK(cp.requests >= 0 && cp.points >= 0);
    FUZZ_CHECK(strlen(cp.cutoff) == ISOTIME_LEN && isotime_parse(cp.cutoff, &t) == 0);

    n = checkpoint_encode(&cp, enc, sizeof enc);
    FUZZ_CHECK(n > 0 && (size_t)n == strlen(enc));
    FUZZ_CHECK(checkpoint_decode(enc, (size_t)n, &back, err2, sizeof err2) == 0);
    FUZZ_CHECK(cp_equal(&cp, &back));
    return 0;
}
