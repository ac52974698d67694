/*
 * The scheduler: a FIFO ready queue of tasks drained from a libuv check
 * handle (an idle handle keeps the loop's poll from blocking while tasks are
 * ready), suspension and wake-up at await points, sleeping on loop timers,
 * awaiting and gathering children, and how cancellation spreads.
 *
 * A task's code runs only from sched's drain; everything else (timers,
 * connections, other tasks) wakes it by sched_wake, and the first wake-up
 * wins. Cancellation wakes a suspended task with -ECANCELED and is sticky:
 * every later suspension of that task returns -ECANCELED at once.
 */
#ifndef AIOD_SCHED_H
#define AIOD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/forward.h"
#include "pbvalue.h"

int sched_init(uv_loop_t *loop);
void sched_done(void);
uv_loop_t *sched_loop(void);

/* Queues a pending task to start (takes a reference while queued). */
void sched_start(task *t);

/* Wakes a suspended task with `status` (0 or a negative errno). Ignored if
 * the task is not suspended or already woken. */
void sched_wake(task *t, int status);

/* Requests cancellation: a pending task ends cancelled at once; a running
 * one is woken with -ECANCELED at its await point; its children are
 * cancelled too. Finished tasks are left alone. Returns true if the task was
 * unfinished. */
bool sched_cancel(task *t);

/* The task whose code is running now, or NULL. */
task *sched_current(void);

/* Inside a task: suspends until woken; returns the wake status. */
int sched_suspend(task *t);

/* Inside a task: sleeps (0 yields). 0 or -ECANCELED. */
int sched_sleep(task *t, double seconds);

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

/* Tasks in the ready queue. */
size_t sched_ready_count(void);

#endif
