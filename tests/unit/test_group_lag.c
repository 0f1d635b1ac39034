/* group_lag's JSON (backfill-status --lag --json, GET /api/lag) and
 * lag_table's text (backfill-status --lag), on hand-made reports: no
 * Kafka needed. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "group_lag.h"
#include "lag_table.h"

/* A report like the sink's after a kill: partition 0 owned and behind,
 * partition 1 never committed (3 messages from its start at 2), partition
 * 2 caught up and unowned. */
static struct glag_report *sample(void)
{
    struct glag_report *r = calloc(1, sizeof *r);
    r->group = strdup("backfill-sink");
    r->topic = strdup("backfill.progress");
    r->state = strdup("Stable");
    r->members = 1;
    r->n = 3;
    r->parts = calloc(3, sizeof *r->parts);
    r->parts[0] = (struct glag_partition){0, 12, 0, 40, 28, strdup("rdkafka-abc"),
                                          strdup("/127.0.0.1"), strdup("backfill-sink")};
    r->parts[1] = (struct glag_partition){1, -1, 2, 5, -1, NULL, NULL, NULL};
    r->parts[2] = (struct glag_partition){2, 7, 0, 7, 0, NULL, NULL, NULL};
    r->total_lag = 28 + 3;
    r->uncommitted = 1;
    return r;
}

static void test_json(void)
{
    struct glag_report *r = sample();
    json_t *o = glag_json(r), *p;
    CHECK(o != NULL);
    CHECK(strcmp(json_string_value(json_object_get(o, "group")), "backfill-sink") == 0);
    CHECK(strcmp(json_string_value(json_object_get(o, "topic")), "backfill.progress") == 0);
    CHECK(strcmp(json_string_value(json_object_get(o, "state")), "Stable") == 0);
    CHECK(json_integer_value(json_object_get(o, "members")) == 1);
    CHECK(json_integer_value(json_object_get(o, "totalLag")) == 31);
    CHECK(json_integer_value(json_object_get(o, "uncommittedPartitions")) == 1);
    CHECK(json_array_size(json_object_get(o, "partitions")) == 3);
    p = json_array_get(json_object_get(o, "partitions"), 0);
    CHECK(json_integer_value(json_object_get(p, "partition")) == 0);
    CHECK(json_integer_value(json_object_get(p, "currentOffset")) == 12);
    CHECK(json_integer_value(json_object_get(p, "logEndOffset")) == 40);
    CHECK(json_integer_value(json_object_get(p, "logStartOffset")) == 0);
    CHECK(json_integer_value(json_object_get(p, "lag")) == 28);
    CHECK(strcmp(json_string_value(json_object_get(p, "consumerId")), "rdkafka-abc") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "host")), "/127.0.0.1") == 0);
    CHECK(strcmp(json_string_value(json_object_get(p, "clientId")), "backfill-sink") == 0);
    p = json_array_get(json_object_get(o, "partitions"), 1);
    CHECK(json_is_null(json_object_get(p, "currentOffset")));
    CHECK(json_is_null(json_object_get(p, "lag")));
    CHECK(json_is_null(json_object_get(p, "consumerId")));
    CHECK(json_is_null(json_object_get(p, "host")));
    CHECK(json_is_null(json_object_get(p, "clientId")));
    CHECK(json_integer_value(json_object_get(p, "logStartOffset")) == 2);
    json_decref(o);
    glag_free(r);
    glag_free(NULL);
}

static void test_json_error(void)
{
    json_t *o = glag_json_error("g", "t", GLAG_ENOGROUP, "group g does not exist");
    CHECK(o && strcmp(json_string_value(json_object_get(o, "error")), "group g does not exist") == 0);
    CHECK(json_is_false(json_object_get(o, "exists")));
    CHECK(json_object_get(o, "partitions") == NULL);
    json_decref(o);
    o = glag_json_error("g", "t", GLAG_EKAFKA, "cannot reach Kafka at h:1: connection refused");
    CHECK(o && json_object_get(o, "exists") == NULL);
    CHECK(strcmp(json_string_value(json_object_get(o, "group")), "g") == 0);
    json_decref(o);
}

/* the whitespace-separated fields of line i of text */
static int fields(const char *text, int line, char out[][64], int max)
{
    const char *s = text;
    int n = 0;
    for (int i = 0; i < line && s; i++)
        if ((s = strchr(s, '\n')))
            s++;
    while (s && *s && *s != '\n' && n < max) {
        size_t len;
        while (*s == ' ')
            s++;
        len = strcspn(s, " \n");
        if (!len)
            break;
        snprintf(out[n++], 64, "%.*s", (int)len, s);
        s += len;
    }
    return n;
}

static void test_table(void)
{
    struct glag_report *r = sample();
    char *text = lagt_render(r), f[12][64];
    CHECK(text != NULL);
    CHECK(fields(text, 0, f, 12) == 9 && strcmp(f[0], "GROUP") == 0 &&
          strcmp(f[3], "CURRENT-OFFSET") == 0 && strcmp(f[8], "CLIENT-ID") == 0);
    CHECK(fields(text, 2, f, 12) == 9 && strcmp(f[2], "0") == 0 && strcmp(f[3], "12") == 0 &&
          strcmp(f[4], "40") == 0 && strcmp(f[5], "28") == 0 && strcmp(f[6], "rdkafka-abc") == 0);
    CHECK(fields(text, 3, f, 12) == 9 && strcmp(f[3], "-") == 0 && strcmp(f[4], "5") == 0 &&
          strcmp(f[5], "-") == 0 && strcmp(f[6], "-") == 0 && strcmp(f[8], "-") == 0);
    CHECK(strstr(text, "\nbackfill-sink: state Stable, 1 member, total lag 31 on 3 partitions "
                       "(1 with no committed offset, counted from their log start)\n") != NULL);
    free(text);
    glag_free(r);
}

int main(void)
{
    test_json();
    test_json_error();
    test_table();
    return CHECK_DONE();
}
