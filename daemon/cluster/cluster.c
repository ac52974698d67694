/*
 * The cluster's start, stop and events (cluster.h).
 */
#include "cluster/cluster.h"

#include <errno.h>
#include <string.h>

#include "cluster/link.h"
#include "cluster/ops.h"
#include "cluster/worker.h"
#include "system/config.h"
#include "system/log.h"

static void on_up(void) {
    log_info("cluster: connected to Redis at %s:%d as host %s", link_url()->host, link_url()->port,
             link_host());
    worker_link_up();
    ops_ask_again();
}

static void on_event(const char *kind, uint64_t id) {
    if (strcmp(kind, "done") == 0)
        ops_task_ended(id);
    else if (strcmp(kind, "cancel") == 0)
        worker_cancel(id);
}

static void on_subscribed(void) {
    worker_check_cancels();
    ops_ask_again();
}

static const link_hooks hooks = {.up = on_up, .subscribed = on_subscribed, .event = on_event};

int cluster_start(uv_loop_t *loop) {
    if (!cfg.cluster)
        return 0;
    int r = ops_start(loop);
    if (r >= 0)
        r = link_start(loop, &hooks);
    if (r >= 0)
        r = worker_start();
    if (r < 0) {
        link_stop();
        worker_stop();
        ops_stop();
        return r;
    }
    return 0;
}

bool cluster_enabled(void) {
    return link_started();
}

void cluster_freeze(void) {
    if (link_started())
        worker_freeze();
}

size_t cluster_outcomes_unwritten(void) {
    return link_started() ? worker_unwritten() : 0;
}

void cluster_stop(void) {
    if (!link_started())
        return;
    /* The connections first: what was in flight gets its empty reply
     * while the jobs and ops are still there. */
    link_stop();
    worker_stop();
    ops_stop();
}

void cluster_plugins_changed(void) {
    if (link_started())
        worker_functions_changed();
}
