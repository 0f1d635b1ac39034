/* group_watch: see group_watch.h. */
#include "group_watch.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static atomic_int group_joining; /* written by librdkafka's thread, read by ours */

/* Join states in which a JoinGroup or SyncGroup of ours may be in flight. */
static int group_state_is_joining(const char *state, size_t len)
{
    static const char *const joining[] = {"init", "wait-join", "wait-metadata", "wait-sync"};
    for (size_t i = 0; i < sizeof joining / sizeof joining[0]; i++)
        if (strlen(joining[i]) == len && strncmp(state, joining[i], len) == 0)
            return 1;
    return 0;
}

/* "Group "g" changed join state steady -> wait-join (state up)" */
static void group_note_line(const char *buf)
{
    const char *arrow = strstr(buf, "changed join state ");
    const char *to, *end;
    if (!arrow || !(arrow = strstr(arrow, " -> ")))
        return;
    to = arrow + 4;
    end = strchr(to, ' ');
    atomic_store(&group_joining, group_state_is_joining(to, end ? (size_t)(end - to) : strlen(to)));
}

static void group_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int ours = level <= 3 ? LOGL_ERROR : level == 4 ? LOGL_WARN : level <= 6 ? LOGL_INFO : LOGL_DEBUG;
    if (fac && strcmp(fac, "CGRPJOINSTATE") == 0)
        group_note_line(buf);
    log_msg(ours, "librdkafka %s %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

int group_watch_install(rd_kafka_conf_t *conf, char *errstr, size_t errlen)
{
    char cur[512], want[600];
    size_t n = sizeof cur;

    if (rd_kafka_conf_get(conf, "debug", cur, &n) != RD_KAFKA_CONF_OK)
        cur[0] = '\0';
    if (strstr(cur, "cgrp") || strstr(cur, "all"))
        snprintf(want, sizeof want, "%s", cur);
    else
        snprintf(want, sizeof want, "%s%scgrp", cur, cur[0] ? "," : "");
    if (rd_kafka_conf_set(conf, "debug", want, errstr, errlen) != RD_KAFKA_CONF_OK)
        return -1;
    rd_kafka_conf_set_log_cb(conf, group_log_cb);
    return 0;
}

int group_watch_joining(void)
{
    return atomic_load(&group_joining);
}
