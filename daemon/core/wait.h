/*
 * A task waiting for its children: await (with or without a timeout),
 * asyncio.wait, as_completed and gather, and how cancellation spreads from
 * a waiter to what it waits for.
 */
#ifndef AIOD_WAIT_H
#define AIOD_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "pbvalue.h"

/* Inside a task: waits for `child`. 0 and a copy of the result; -EIO with
 * the child's error as t's pending error; -ECANCELED; -ENOMEM. */
int sched_await(task *t, task *child, Aiod__Value **ret_result);

/* Inside a task: wait_for semantics; see aiod_api.await_timeout. */
int sched_await_timeout(task *t, task *child, double timeout, bool cancel_on_timeout,
                        Aiod__Value **ret_result);

/* Inside a task: asyncio.wait; see aiod_api.wait. */
int sched_wait(task *t, task *const *children, size_t n, double timeout, uint32_t mode);

/* Inside a task: one step of asyncio.as_completed; see aiod_api.as_completed. */
int sched_as_completed(task *t, task *const *children, size_t n, unsigned char *seen,
                       double timeout, size_t *ret_index);

/* Inside a task: waits for all children; see aiod_api.gather. */
int sched_gather(task *t, task *const *children, size_t n, bool return_exceptions,
                 Aiod__Value **ret_list);

#endif
