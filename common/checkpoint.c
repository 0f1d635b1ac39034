/* checkpoint: see checkpoint.h. */
#include "checkpoint.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "json_field.h"

/* 1 if s holds no control character: encode refuses a cursor that does,
 * so decode must too (a checkpoint it accepts is one it can write back). */
static int checkpoint_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            return 0;
    return 1;
}

int checkpoint_encode(const struct checkpoint *cp, char *out, size_t outlen)
{
    json_t *o = json_object();
    char *s = NULL;
    int rc = -1;
    size_t cap = outlen < CHECKPOINT_MAX_BYTES ? outlen : CHECKPOINT_MAX_BYTES;

    if (!o)
        return -1;
    if (!checkpoint_printable(cp->cursor))
        goto done;
    if (json_object_set_new(o, "v", json_integer(1)) ||
        json_object_set_new(o, "id", json_string(cp->id)) ||
        json_object_set_new(o, "cursor", cp->cursor[0] ? json_string(cp->cursor) : json_null()) ||
        json_object_set_new(o, "fetched", json_integer(cp->fetched)) ||
        json_object_set_new(o, "chunk", json_integer(cp->chunk)) ||
        json_object_set_new(o, "seq", json_integer(cp->seq)) ||
        json_object_set_new(o, "cutoff", json_string(cp->cutoff)) ||
        json_object_set_new(o, "requests", json_integer(cp->requests)) ||
        json_object_set_new(o, "points", json_integer(cp->points)))
        goto done;
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s || strlen(s) + 1 > cap)
        goto done;
    memcpy(out, s, strlen(s) + 1);
    rc = (int)strlen(s);
done:
    free(s);
    json_decref(o);
    return rc;
}

static int checkpoint_int(json_t *o, const char *key, int64_t max, int64_t *out)
{
    return jfield_int(o, key, 0, max, out) == JF_OK ? 0 : -1;
}

int checkpoint_decode(const char *buf, size_t len, struct checkpoint *cp, char *errstr,
                      size_t errlen)
{
    json_error_t jerr;
    json_t *o, *id, *cursor, *cutoff;
    int64_t fetched, chunk;
    time_t t;
    int rc = -1;

    memset(cp, 0, sizeof *cp);
    if (!buf || len == 0 || len > CHECKPOINT_MAX_BYTES) {
        snprintf(errstr, errlen, "checkpoint empty or too long");
        return -1;
    }
    o = json_loadb(buf, len, 0, &jerr);
    if (!json_is_object(o)) {
        snprintf(errstr, errlen, "checkpoint is not a JSON object");
        goto done;
    }
    id = json_object_get(o, "id");
    cursor = json_object_get(o, "cursor");
    cutoff = json_object_get(o, "cutoff");
    if (!json_is_integer(json_object_get(o, "v")) ||
        json_integer_value(json_object_get(o, "v")) != 1 || !json_is_string(id) ||
        json_string_length(id) == 0 || json_string_length(id) > EVENT_ID_MAX ||
        !(json_is_null(cursor) ||
          (json_is_string(cursor) && json_string_length(cursor) <= CHECKPOINT_CURSOR_MAX &&
           checkpoint_printable(json_string_value(cursor)))) ||
        !json_is_string(cutoff) || isotime_parse(json_string_value(cutoff), &t) != 0 ||
        checkpoint_int(o, "fetched", 1000000, &fetched) ||
        checkpoint_int(o, "chunk", 1000000, &chunk) || checkpoint_int(o, "seq", INT64_MAX, &cp->seq) ||
        checkpoint_int(o, "requests", INT64_MAX, &cp->requests) ||
        checkpoint_int(o, "points", INT64_MAX, &cp->points)) {
        snprintf(errstr, errlen, "checkpoint fields missing or of the wrong type");
        goto done;
    }
    snprintf(cp->id, sizeof cp->id, "%s", json_string_value(id));
    if (json_is_string(cursor))
        snprintf(cp->cursor, sizeof cp->cursor, "%s", json_string_value(cursor));
    isotime_format(t, cp->cutoff);
    cp->fetched = (int)fetched;
    cp->chunk = (int)chunk;
    rc = 0;
done:
    if (rc)
        memset(cp, 0, sizeof *cp);
    json_decref(o);
    return rc;
}
