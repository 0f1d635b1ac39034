/* group_lag_metrics: see group_lag_metrics.h. */
#include "group_lag_metrics.h"

#include <stdio.h>
#include <string.h>

#include "group_lag.h"
#include "log.h"
#include "metrics.h"

static struct metric_family *glm_lag, *glm_members, *glm_up;

static void glm_register(void)
{
    struct metrics *m = metrics_default();
    if (glm_lag || !m)
        return;
    glm_lag = metrics_family(m, METRIC_GAUGE, "backfill_consumer_group_lag",
                             "Messages of the partition the group has not committed yet, "
                             "asked of Kafka.", "group,topic,partition", NULL, 0);
    glm_members = metrics_family(m, METRIC_GAUGE, "backfill_consumer_group_members",
                                 "Members of the consumer group now.", "group", NULL, 0);
    glm_up = metrics_family(m, METRIC_GAUGE, "backfill_consumer_group_up",
                            "1 when Kafka described the group, else 0.", "group", NULL, 0);
}

/* How many partitions each group's series were set for, so that a group
 * Kafka cannot describe any more hides its own series (and only those). */
#define GLM_GROUPS 8
static struct {
    char group[256], topic[256];
    size_t n;
} glm_seen[GLM_GROUPS];

static size_t *glm_seen_count(const char *group, const char *topic)
{
    for (int i = 0; i < GLM_GROUPS; i++) {
        if (!glm_seen[i].group[0]) {
            snprintf(glm_seen[i].group, sizeof glm_seen[i].group, "%s", group);
            snprintf(glm_seen[i].topic, sizeof glm_seen[i].topic, "%s", topic);
        }
        if (strcmp(glm_seen[i].group, group) == 0 && strcmp(glm_seen[i].topic, topic) == 0)
            return &glm_seen[i].n;
    }
    return NULL;
}

/* Hides the lag series of partitions from..n-1 of group on topic. */
static void glm_hide(const char *group, const char *topic, size_t from, size_t n)
{
    char part[24];
    const char *labels[3] = {group, topic, part};
    for (size_t i = from; i < n; i++) {
        snprintf(part, sizeof part, "%zu", i);
        metrics_hide(metrics_series(glm_lag, labels));
    }
}

int glag_metrics_update(rd_kafka_t *rk, const char *group, const char *topic)
{
    struct glag_report *r = NULL;
    char err[512], part[24];
    int rc;

    size_t *seen;

    glm_register();
    seen = glm_seen_count(group, topic);
    rc = glag_query(rk, group, topic, GLAG_TIMEOUT_MS, &r, err, sizeof err);
    metric_set(metrics_series1(glm_up, group), rc == GLAG_OK);
    if (rc != GLAG_OK) {
        log_debug("consumer-group lag of %s: %s", group, err);
        metric_set(metrics_series1(glm_members, group), 0);
        if (seen) {
            glm_hide(group, topic, 0, *seen);
            *seen = 0;
        }
        return rc;
    }
    metric_set(metrics_series1(glm_members, group), r->members);
    for (size_t i = 0; i < r->n; i++) {
        const struct glag_partition *p = &r->parts[i];
        const char *labels[3] = {group, topic, part};
        snprintf(part, sizeof part, "%d", (int)p->partition);
        metric_set(metrics_series(glm_lag, labels),
                   (double)(p->lag >= 0 ? p->lag : p->end - p->start));
    }
    if (seen) {
        glm_hide(group, topic, r->n, *seen); /* a topic never shrinks; belt and braces */
        *seen = r->n;
    }
    glag_free(r);
    return rc;
}
