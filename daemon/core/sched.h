/*
 * The scheduler's primitives: a FIFO ready queue (run.c drains it from a
 * libuv check handle; an idle handle keeps the loop's poll from blocking
 * while tasks are ready), suspension and wake-up at await points, and
 * sleeping on loop timers.
 *
 * A task's code runs only from run.c's drain; everything else (timers,
 * connections, other tasks) wakes it by sched_wake, and the first wake-up
 * wins. Cancellation (finish.h) wakes a suspended task with -ECANCELED and
 * is sticky: every later suspension of that task returns -ECANCELED at once.
 */
#ifndef AIOD_SCHED_H
#define AIOD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/forward.h"

int sched_init(uv_loop_t *loop);
void sched_done(void);
uv_loop_t *sched_loop(void);

/* Arms a one-shot timer `seconds` from now, never firing before
 * loop_time() (soon_time) has reached that, as asyncio never runs a timer
 * early (soon_timer_ms). */
void sched_timer_start(uv_timer_t *timer, uv_timer_cb cb, double seconds);

/* Queues a pending task to start (takes a reference while queued). */
void sched_start(task *t);

/* Takes the first task off the ready queue, with the queue's reference, or
 * NULL when none is ready (run.c's drain). */
task *sched_take_ready(void);
/* The FIFO position (soon.h) of the task sched_take_ready would take;
 * false when none is ready. */
bool sched_peek_ready(uint64_t *ret_seq);

/* Wakes a suspended task with `status` (0 or a negative errno). Ignored if
 * the task is not suspended or already woken. */
void sched_wake(task *t, int status);

/* The task whose code is running now, or NULL; set by run.c around each
 * step. */
task *sched_current(void);
void sched_set_current(task *t);

/* At an await point: whether -ECANCELED is due now. For a task of an
 * older plugin, once cancellation was requested (sticky); for an `aio`
 * task, a requested cancellation not yet delivered, which this takes. */
bool task_cancel_due(task *t);

/* Inside a task: suspends until woken; returns the wake status, or
 * -ECANCELED at once if task_cancel_due. */
int sched_suspend(task *t);

/* Inside a task: sleeps (0 yields). 0 or -ECANCELED. */
int sched_sleep(task *t, double seconds);

/* Starts the task's own timer (made on first use) to call `cb` with the
 * task as handle data after `seconds`, capped at LIMIT_TIMER_MAX_MS. 0, or
 * -ENOMEM (no timer: the caller must not wait for it). */
int sched_start_timer(task *t, uv_timer_cb cb, double seconds);
/* Stops it, if the task has one. */
void sched_stop_timer(task *t);

/* Tasks in the ready queue. */
size_t sched_ready_count(void);

#endif
