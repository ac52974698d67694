/*
 * Working the queues: this host reads the streams of its queues' functions
 * through the consumer group, at most as many entries as it has free
 * capacity (cluster_capacity), and runs each as an ordinary local task.
 * Its output goes to the task's Redis stream, its outcome to the task's
 * hash, then the entry is acknowledged. It keeps its claim on the entries
 * it holds fresh, claims the entries of hosts that went silent, and
 * cancels a task when the cluster says so. docs/cluster.md has the whole
 * protocol.
 */
#ifndef AIOD_CLUSTER_WORKER_H
#define AIOD_CLUSTER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts working (after link_start; the queues from cfg). 0, -ENOMEM. */
int worker_start(void);
/* The command connection is up (again). */
void worker_link_up(void);
/* The cluster asks to cancel task `id`, if this host runs it. */
void worker_cancel(uint64_t id);
/* The subscription is back: cancels missed meanwhile are looked up in the
 * hashes of the tasks this host runs. */
void worker_check_cancels(void);
/* The plugins changed (reload): read the streams of the functions now
 * loaded. */
void worker_functions_changed(void);
/* Shutdown begins: no more entries are taken, those not started are left
 * to others, and outcomes that the stop's cancellation makes are not
 * written (the tasks stay running in Redis and follow on_interrupt). */
void worker_freeze(void);
/* Closes the reader and frees everything (the loop is about to end). */
void worker_stop(void);
/* Tasks of the cluster running here now. */
unsigned worker_running(void);
/* Tasks that ended here whose outcome Redis has not yet taken (waiting for
 * their last output lines, being written, or to be written once Redis is
 * back), also while Redis is unreachable: it may be back within the stop's
 * grace period, and a stop that ends without them says so. */
size_t worker_unwritten(void);

#endif
