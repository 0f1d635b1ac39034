/* json_field: see json_field.h. */
#include "json_field.h"

#include <string.h>

enum jfield_result jfield_int(const json_t *o, const char *key, int64_t lo, int64_t hi,
                              int64_t *out)
{
    json_t *v = json_object_get(o, key); /* borrowed */
    if (!v || json_is_null(v))
        return JF_ABSENT;
    if (!json_is_integer(v))
        return JF_WRONG_TYPE;
    if (json_integer_value(v) < lo || json_integer_value(v) > hi)
        return JF_OUT_OF_RANGE;
    *out = json_integer_value(v);
    return JF_OK;
}

const char *jfield_str(const json_t *o, const char *key, size_t max)
{
    json_t *v = json_object_get(o, key); /* borrowed */
    const char *s = json_string_value(v);
    size_t len = s ? json_string_length(v) : 0;
    if (!s || len == 0 || len > max || strlen(s) != len)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20)
            return NULL;
    return s;
}
