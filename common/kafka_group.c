/* kafka_group: see kafka_group.h. */
#include "kafka_group.h"

#include <stdio.h>
#include <string.h>

#include "isotime.h"
#include "log.h"

const char *kafka_group_partition_list(const rd_kafka_topic_partition_list_t *parts, char *buf,
                                       size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && used + 12 < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%d", i ? "," : "", (int)parts->elems[i].partition);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

static void kafka_group_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    const struct kafka_group_hooks *h = opaque; /* borrowed */
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    char list[256];

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (h->before_assign)
            h->before_assign(h->ctx, rk, parts);
        log_info("assigned %d partitions [%s]", parts->cnt,
                 kafka_group_partition_list(parts, list, sizeof list));
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (h->after_assign)
            h->after_assign(h->ctx, rk, parts);
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        if (h->before_revoke)
            h->before_revoke(h->ctx, rk, parts, lost);
        log_info("revoked %d partitions [%s]%s", parts->cnt,
                 kafka_group_partition_list(parts, list, sizeof list),
                 lost ? " (assignment lost)" : "");
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        if (h->after_revoke)
            h->after_revoke(h->ctx, rk);
    }
    if (error) {
        log_error("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

void kafka_group_install(rd_kafka_conf_t *conf, const struct kafka_group_hooks *hooks)
{
    rd_kafka_conf_set_rebalance_cb(conf, kafka_group_on_rebalance);
    rd_kafka_conf_set_opaque(conf, (void *)hooks);
}

int kafka_group_close(rd_kafka_t *rk, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *e;
    int64_t deadline = isotime_now_ms() + timeout_ms;
    int closed;

    if (!q)
        return -1;
    if ((e = rd_kafka_consumer_close_queue(rk, q))) {
        log_warn("leaving the group: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_queue_destroy(q);
        return -1;
    }
    /* what rd_kafka_consumer_close does, with a deadline: serve the
     * rebalance callbacks the close causes until it is done */
    while (!(closed = rd_kafka_consumer_closed(rk)) && isotime_now_ms() < deadline)
        rd_kafka_queue_poll_callback(q, 100);
    rd_kafka_queue_destroy(q);
    if (!closed)
        log_error("could not leave the group within %d ms; exiting without it (the group "
                  "moves the partitions on after session.timeout.ms)", timeout_ms);
    return closed ? 0 : -1;
}
