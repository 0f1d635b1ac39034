/* json_field: typed, range-checked reads of one field of a JSON object
 * (jansson), for everything we decode from the network or from Kafka:
 * a wrong type or an out-of-range value is an answer, never a crash. */
#ifndef BACKFILL_JSON_FIELD_H
#define BACKFILL_JSON_FIELD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum jfield_result {
    JF_OK = 0,
    JF_ABSENT = 1,        /* no such field, or null (or o is not an object) */
    JF_WRONG_TYPE = -1,
    JF_OUT_OF_RANGE = -2
};

/* Reads integer field `key` of o in [lo, hi] into *out (untouched unless
 * JF_OK). */
enum jfield_result jfield_int(const json_t *o, const char *key, int64_t lo, int64_t hi,
                              int64_t *out);

/* The string field `key` of o (borrowed from o) when it is 1..max bytes
 * with no NUL and no control character; NULL otherwise. */
const char *jfield_str(const json_t *o, const char *key, size_t max);

#endif
