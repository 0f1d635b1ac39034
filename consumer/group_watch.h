/* group_watch: knows whether this process's consumer is in the middle of
 * joining its group, so that the worker does not commit then.
 *
 * Why: librdkafka before 2.10 (Debian 12 ships 2.0.2) sends an offset
 * commit issued while its own JoinGroup is outstanding with the old
 * generation; the broker answers ILLEGAL_GENERATION once the join
 * completes, and librdkafka then declares the whole assignment lost
 * (confluentinc/librdkafka#4059, fixed by #4908). With a commit after
 * every chunk that happened to a third of the members each time one
 * joined. librdkafka has no API for the join state, so this module turns
 * on the `cgrp` debug context and watches its "changed join state A -> B"
 * lines (logged in librdkafka's thread just before each request is sent).
 * Every line is still forwarded to our logger (debug lines show with -vv).
 * If the format ever changes, the watch never fires and the worker simply
 * commits as before (and retries a failed commit). One consumer per
 * process. */
#ifndef BACKFILL_GROUP_WATCH_H
#define BACKFILL_GROUP_WATCH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* Installs the log callback on conf and adds `cgrp` to its `debug`
 * property (keeping what the user set). 0, or -1 with a reason. */
int group_watch_install(rd_kafka_conf_t *conf, char *errstr, size_t errlen);

/* 1 between sending a JoinGroup and receiving the SyncGroup answer (join
 * states init, wait-join, wait-metadata, wait-sync): a commit sent now
 * could cost the assignment. 0 otherwise, including inside a rebalance
 * callback, where committing is safe. */
int group_watch_joining(void);

#endif
