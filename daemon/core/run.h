/*
 * Running tasks: the drain of the ready queue from a libuv check handle,
 * one step of a task's coroutine at a time, and turning what the task
 * function returned into its outcome.
 */
#ifndef AIOD_RUN_H
#define AIOD_RUN_H

#include <uv.h>

/*
 * Starts draining the ready queue on `loop`. `api` is the plugin API table
 * every task function is called with (borrowed, lives until exit).
 * `after_drain` (may be NULL) runs after each drain, so that what the tasks
 * produced (replies) leaves in the same loop iteration.
 */
int run_init(uv_loop_t *loop, const void *api, void (*after_drain)(void));
void run_done(void);

#endif
