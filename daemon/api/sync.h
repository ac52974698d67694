/*
 * asyncio's Event, Lock, Semaphore, BoundedSemaphore, Condition and Barrier for plugins
 * (aiod/plugin.h, ABI 1.4), built on core futures (core/future.h). The api table's entries.
 *
 * Every primitive keeps, as asyncio's locks.py does, a FIFO of waiter futures: a task that must
 * wait appends a new pending future and awaits it; whoever frees the resource sets the first
 * waiter that is not done yet; a task that is cancelled while it waits leaves the FIFO and, where
 * it had already been woken, passes its wake-up on. The FIFO (sync_waitq) is shared with
 * queue.c, whose getters, putters and joiners are the same kind of waiters.
 *
 * The objects belong to the loop, not to a task: any task of any plugin may use them, and they
 * are freed only by sync_free (-EBUSY while a task is inside a call on them). Waiter records are
 * on the heap, never on a task's stack, which is saved elsewhere while the task is suspended.
 */
#ifndef AIOD_API_SYNC_H
#define AIOD_API_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include <aiod/plugin.h>

#include "base/forward.h"
#include "base/list.h"
#include "core/future.h"

/* One suspended call: asyncio's future in a waiters deque. */
typedef struct sync_waiter {
    /* In a sync_waitq while queued; unlinked by whoever pops it (a queue's wake-up) or by the
     * waiting task when it resumes. */
    list link;
    /* The future the task awaits (one reference, dropped by sync_waiter_free). */
    fut *f;
} sync_waiter;

/* A FIFO of waiters and its length (asyncio's len(_waiters)). */
typedef struct sync_waitq {
    list head;
    size_t n;
} sync_waitq;

void sync_waitq_init(sync_waitq *q);

/* Appends a waiter with a new pending future; the caller owns it (sync_waiter_free).
 * 0, -ENOMEM. */
int sync_waiter_add(sync_waitq *q, sync_waiter **ret_waiter);

/* Awaits the waiter's future from task t: fut_await's status (0, -ECANCELED, -ENOMEM). */
int sync_waiter_await(task *t, sync_waiter *w);

/* Whether the waiter's future was set (woken) rather than cancelled or still pending. */
bool sync_waiter_woken(const sync_waiter *w);

/* Takes w off q if it is still queued there, drops its future and frees it. Accepts NULL. */
void sync_waiter_free(sync_waitq *q, sync_waiter *w);

/* The first queued waiter, or NULL. */
sync_waiter *sync_waitq_first(const sync_waitq *q);

/* asyncio's Queue._wakeup_next: pops waiters until one is not done and sets that one. True if
 * one was woken. */
bool sync_waitq_pop_wake(sync_waitq *q);

/* Sets every queued waiter that is not done (Event.set, Condition.notify_all); with `pop`, also
 * takes every waiter off the FIFO (Queue.shutdown). Returns how many were woken. */
size_t sync_waitq_wake_all(sync_waitq *q, bool pop);

/* Whether `t` is the task whose code runs now: calls that suspend are valid only there. */
bool sync_task_running(const aiod_task *t);

int api_sync_new(uint32_t kind, int64_t value, aiod_sync *lock, aiod_sync **ret_sync);
int api_sync_free(aiod_sync *s);
int api_sync_acquire(aiod_task *task, aiod_sync *s);
int api_sync_release(aiod_sync *s);
int api_sync_locked(const aiod_sync *s);
int api_sync_set(aiod_sync *s);
int api_sync_clear(aiod_sync *s);
int api_sync_is_set(const aiod_sync *s);
int api_sync_wait(aiod_task *task, aiod_sync *s);
int api_sync_wait_for(aiod_task *task, aiod_sync *s, int (*pred)(void *data), void *data);
int api_sync_notify(aiod_sync *s, size_t n);
int api_sync_reset(aiod_sync *s);
int api_sync_abort(aiod_sync *s);
int64_t api_sync_count(const aiod_sync *s, uint32_t what);

#endif
