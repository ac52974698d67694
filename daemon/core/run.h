/*
 * Running tasks: the drain of the ready queue from a libuv check handle,
 * one step of a task's coroutine at a time, and turning what the task
 * function returned into its outcome.
 */
#ifndef AIOD_RUN_H
#define AIOD_RUN_H

#include <stdbool.h>

#include <uv.h>

#include "base/forward.h"

/*
 * Starts draining the ready queue on `loop`. `api` is the plugin API table
 * every task function is called with (borrowed, lives until exit).
 * `after_drain` (may be NULL) runs after each drain, so that what the tasks
 * produced (replies) leaves in the same loop iteration.
 */
int run_init(uv_loop_t *loop, const void *api, void (*after_drain)(void));
void run_done(void);

/* Whether a task may start its first step now (core/persist.c: a durable
 * task's attempt must be committed first). A gate that returns false
 * starts the task later with sched_start. NULL: always. */
void run_set_start_gate(bool (*gate)(task *t));

/* The error kind of a failure with errno `r` (< 0) and no error of its
 * own: Python's name for the errno (its OSError subclasses), else
 * "OSError". Static text. */
const char *run_errno_kind(int r);

#endif
