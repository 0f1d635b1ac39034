/* fuzz_job: job_decode (common/codec.c) on arbitrary bytes, as the worker
 * sees a message of the jobs topic.
 *
 * Checks beyond "no crash, no leak": a rejected message leaves the job
 * zeroed and says why; an accepted one holds only valid, in-range values
 * and survives job_encode -> job_decode unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fuzz_check.h"

static int job_equal(const struct job *a, const struct job *b)
{
    return !strcmp(a->id, b->id) && a->ts == b->ts && !strcmp(a->owner, b->owner) &&
           !strcmp(a->name, b->name) && !strcmp(a->key, b->key) &&
           a->repository_id == b->repository_id && a->max_prs == b->max_prs &&
           a->since_days == b->since_days && !strcmp(a->triggered_from, b->triggered_from);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct job zero;
    struct job job, back;
    char err[256], err2[256];
    char *enc;

    memset(err, 'x', sizeof err);
    if (job_decode((const char *)data, size, &job, err, sizeof err) != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0] != '\0');
        FUZZ_CHECK(memcmp(&job, &zero, sizeof job) == 0);
        return 0;
    }
    FUZZ_CHECK(job.id[0] && strlen(job.id) <= EVENT_ID_MAX && job.ts >= 0);
    FUZZ_CHECK(repo_owner_valid(job.owner, strlen(job.owner)));
    FUZZ_CHECK(repo_name_valid(job.name, strlen(job.name)));
    FUZZ_CHECK(job.max_prs >= 1 && job.max_prs <= 1000);
    FUZZ_CHECK(job.since_days >= 1 && job.since_days <= 365);
    FUZZ_CHECK(job.repository_id >= 0);

    enc = job_encode(&job);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(job_decode(enc, strlen(enc), &back, err2, sizeof err2) == 0);
    FUZZ_CHECK(job_equal(&job, &back));
    free(enc);
    return 0;
}
