/*
 * What a client asks of queued tasks, on any host: submit, show, await,
 * cancel and follow (request/remote.c makes the requests), and the events
 * that cluster.c hands on to them.
 */
#ifndef AIOD_CLUSTER_OPS_H
#define AIOD_CLUSTER_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "aiod-pb.h"
#include "system/policy.h"

/* Every id from here up names a cluster task (2^48 + the cluster's count). */
#define CLUSTER_ID_BASE (UINT64_C(1) << 48)

static inline bool cluster_is_id(uint64_t id) {
    return id >= CLUSTER_ID_BASE;
}

/* A cluster task as its hash holds it; every pointer is borrowed for the
 * callback only. Strings are "" when not set. */
typedef struct cluster_task {
    uint64_t id;
    int state; /* TASK_PENDING (queued), TASK_RUNNING, TASK_DONE, ... */
    const char *queue, *function, *host, *owner_host, *kind, *msg;
    uid_t uid;
    uint32_t attempt;
    uint64_t created_usec, started_usec, finished_usec, lines, dropped;
    /* Set when done (NULL for a null result). */
    const Aiod__Value *result;
    /* The call as submitted, or NULL if it does not decode. */
    const Aiod__QueuedTask *qt;
} cluster_task;

/* What a request gets back. */
typedef struct cluster_answer {
    /* 0, or -EHOSTUNREACH (Redis unreachable or failing), -ENOENT (no such
     * task; for a submit, no host serves the function on the queue),
     * -EPERM (not the peer's task), -EBUSY (a replica did not confirm). */
    int err;
    const char *why;
    /* Submit: the new id. */
    uint64_t id;
    /* Show, await, the end of a follow: the task. */
    const cluster_task *task;
    /* Cancel: 1 if the task was queued or running and is asked to cancel,
     * 0 if it had finished. */
    int cancelled;
} cluster_answer;

typedef void (*cluster_cb)(void *data, const cluster_answer *a);
/* A line of a followed task: its position, stream (1 out, 2 err) and
 * text (borrowed). */
typedef void (*cluster_line_cb)(void *data, uint64_t seq, int stream, const char *line);

typedef struct cluster_op cluster_op;

/*
 * Each starts a request and returns 0, with `cb` called once later (unless
 * cluster_op_cancel first), and *ret the handle; or a negative errno with
 * the reason in `why` and no call: -EINVAL (not a cluster host, a bad
 * queue name or call), -EHOSTUNREACH (Redis is down now), -EPERM (call
 * rules), -ENOENT (an unknown function), -ENOMEM. `p` is copied as needed.
 */
int cluster_submit(const char *queue, const Aiod__Call *call, int ownership, const peer *p,
                   cluster_cb cb, void *data, cluster_op **ret, char *why, size_t why_len);
int cluster_show(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret, char *why,
                 size_t why_len);
/* Answers once the task has ended. */
int cluster_await(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret,
                  char *why, size_t why_len);
int cluster_cancel(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret,
                   char *why, size_t why_len);
/* The task's output kept in Redis, line by line through `line`, then (with
 * `follow`, once it ended) `cb` with the task. -EDQUOT: too many readers
 * of queued tasks' output on this host, or of this (non-admin) user
 * (LIMIT_CLUSTER_FOLLOWERS, …_PER_UID): each holds a Redis connection. */
int cluster_follow(uint64_t id, const peer *p, bool follow, cluster_line_cb line, cluster_cb cb,
                   void *data, cluster_op **ret, char *why, size_t why_len);
/* The request's owner goes: no callback will come. */
void cluster_op_cancel(cluster_op *op);

int ops_start(uv_loop_t *loop);
void ops_stop(void);
/* A task that someone here awaits ended ("done ID"). */
void ops_task_ended(uint64_t id);
/* The subscription or the command connection is back: every task awaited
 * is asked for again (its end may have been missed meanwhile). */
void ops_ask_again(void);

#endif
