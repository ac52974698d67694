/*
 * When and how often a task runs (plan.c): asyncio's call_later/call_at for
 * a whole task (a delay, a start time), Celery's retries with exponential
 * backoff and full jitter, and pueue's --after (run once other tasks are
 * done; DependencyFailed if one is not). A task's plan is struct task_plan
 * (task.h); a task without one starts at once and runs once.
 */
#ifndef AIOD_PLAN_H
#define AIOD_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "aiod-pb.h"
#include "base/forward.h"

/* Lets go of the tasks whose dependency ended but that the last turns left
 * to settle (at shutdown, before sched_done). */
void plan_done(void);

/*
 * Checks a client's schedule: retries at most LIMIT_RETRIES, times finite
 * and not negative, at most LIMIT_AFTER tasks to run after (whether they
 * exist, and may be seen by the client, is the caller's check). 0; -EINVAL
 * or -E2BIG with the reason in `why`. NULL is an empty schedule.
 */
int plan_check(const Aiod__Schedule *s, char *why, size_t why_len);

/* Gives the new, unstarted task `t` the checked schedule `s` (an empty one
 * gives no plan). 0, -ENOMEM. */
int plan_apply(task *t, const Aiod__Schedule *s);

/* Starts `t` when its plan allows: once the tasks it runs after are done
 * and its time has come (sched_start then), at once without a plan. */
void plan_start(task *t);

/*
 * The retry hook of task_finish (finish_set_retry_hook): if the running
 * task `t` failed with attempts left, records the attempt's error (kind
 * and message taken), sets it back to pending and starts it again after
 * its backoff; returns true. Otherwise false, and nothing is taken.
 */
bool plan_retry(task *t, char *kind, char *message);

/* Records an ended attempt of `t` (its plan made if it has none): kind and
 * message are copied. 0, -ENOMEM. */
int plan_add_attempt(task *t, uint32_t number, uint64_t started_usec, uint64_t finished_usec,
                     const char *kind, const char *message);

/* Gives `t` an empty plan if it has none. 0, -ENOMEM. */
int plan_ensure(task *t);

/* How many attempts the task may take (retries + 1), and the number of the
 * current or last one (at least 1 once started). */
unsigned plan_max_attempts(const task *t);
unsigned plan_attempt(const task *t);

#endif
