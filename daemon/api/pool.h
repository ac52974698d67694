/*
 * Work handed to libuv's thread pool on behalf of a task (asyncio.to_thread),
 * with late results of cancelled tasks dropped safely.
 *
 * The work request lives on the heap and belongs to whoever is still
 * interested in it: the waiting task while it waits, the loop's after-work
 * callback once the task has stopped waiting (cancelled). Nothing of the
 * task's stack is ever handed to a pool thread: the run stack is shared by
 * every coroutine and a suspended task's frames are copied aside, so `arg`
 * must point to the heap (pool_to_thread refuses a run-stack pointer).
 */
#ifndef AIOD_POOL_H
#define AIOD_POOL_H

#include "base/forward.h"

/*
 * Inside a task: runs work(arg) on the thread pool and suspends until it
 * returns; returns what work returned. See aiod_api.to_thread.
 *
 * -ECANCELED when the task is cancelled (before or during the wait): the
 * work item is abandoned; if it had not started it never runs, otherwise it
 * runs to its end on its thread and its result is dropped; either way
 * release(arg) (when not NULL) is called on the loop thread afterwards (at
 * once if the task was already cancelled before the call). -EINVAL when arg
 * points into the coroutine run stack. -ENOMEM. In those two cases release
 * is not called and the caller keeps arg.
 */
int pool_to_thread(task *t, int (*work)(void *arg), void (*release)(void *arg), void *arg);

/* Work items queued or running on the pool (statistics and tests). */
unsigned pool_in_flight(void);

#endif
