/*
 * Timeout scopes (asyncio.timeout, asyncio.timeout_at): a deadline that
 * cancels the task, and, at the scope's exit, turns the cancellation it
 * caused into -ETIMEDOUT. Also what await_timeout (asyncio.wait_for) is
 * built on for tasks with `aio`.
 */
#ifndef AIOD_TIMEOUT_H
#define AIOD_TIMEOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/forward.h"

typedef struct tmo tmo;

/* Times at or past this many seconds mean "never". */
#define TMO_FOREVER 1e9

/* Enters a scope of the unfinished task t with the deadline `when` (loop
 * seconds, soon_time(); >= TMO_FOREVER: none; already past: the task is
 * cancelled from the next drain). 0, -ENOMEM, -EINVAL. */
int tmo_enter(task *t, double when, tmo **ret);
/* A new deadline; -EINVAL once expired or exited. */
int tmo_reschedule(tmo *tm, double when);
/* The task whose scope it is. */
task *tmo_task(const tmo *tm);
/* The deadline (TMO_FOREVER or more for none). */
double tmo_when(const tmo *tm);
/* The deadline has cancelled the task. */
bool tmo_expired(const tmo *tm);
/* Leaves the scope with the status the block ended with; returns
 * -ETIMEDOUT for the -ECANCELED that the scope's own expiry caused, else
 * `status`. Frees tm. */
int tmo_exit(tmo *tm, int status);

#endif
