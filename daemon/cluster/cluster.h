/*
 * The cluster (docs/cluster.md): hosts that share queues through one
 * Redis. This header is what the rest of the daemon sees: start and stop
 * (app/main.c), the plugins' changes (app/reload.c), and the requests a
 * client makes of queued tasks on any host (request/remote.c): submit,
 * show, await, cancel and follow (cluster/ops.h). Every one of them
 * answers later, through a callback, once Redis has answered.
 */
#ifndef AIOD_CLUSTER_H
#define AIOD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "cluster/ops.h"

/* With the `cluster` setting: connects (in the background, retrying) and
 * starts working the queues. 0 without one. -EINVAL, -EIO (logged: the
 * password file), -ENOMEM. */
int cluster_start(uv_loop_t *loop);
/* Whether this host is part of a cluster. */
bool cluster_enabled(void);
/* Shutdown begins (worker_freeze). */
void cluster_freeze(void);
/* Outcomes of tasks that ended here that Redis has not taken yet (a stop
 * waits for them, within shutdown_grace). 0 without a cluster. */
size_t cluster_outcomes_unwritten(void);
/* Closes every connection and frees everything; callbacks of requests
 * still open are not called (their owners abandon them first). Safe to
 * call twice, or without cluster_start. */
void cluster_stop(void);
/* The plugins changed (a reload). */
void cluster_plugins_changed(void);

#endif
