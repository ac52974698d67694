/*
 * The end of a task, in one fixed order, and cancellation.
 *
 * task_finish runs these steps, each once and in this order (asserted
 * through task.end_step):
 *   1. RECORDED  the state, result or error, time and counts (task.c);
 *   2. RELEASED  its concurrency slot (the next waiting task starts) and its
 *                hold on the plugin generation's code;
 *   3. UNLINKED  off its parent's list; an attached top-level task with an
 *                owner is pinned: its outcome is kept for that owner;
 *   4. CHILDREN  its unfinished, unshielded children are cancelled;
 *   5. OUTPUT    its output ends: every sink gets its end, so a follower
 *                sees every line before any reply that reports the end;
 *   6. WAITERS   the done-callbacks fire, in the order they were added;
 *   7. LOGGED    a top-level outcome goes to the log (log_outcomes);
 *   8. SETTLED   unless still pinned, it is retained or leaves the table.
 * A waiter may release the pin (task_release_pin) during step 6; the task
 * is then settled in step 8, never re-entrantly.
 */
#ifndef AIOD_FINISH_H
#define AIOD_FINISH_H

#include <stdbool.h>
#include <stdint.h>

#include "aiod-pb.h"
#include "base/forward.h"

enum task_end_step {
    TASK_END_NONE,
    TASK_END_RECORDED,
    TASK_END_RELEASED,
    TASK_END_UNLINKED,
    TASK_END_CHILDREN,
    TASK_END_OUTPUT,
    TASK_END_WAITERS,
    TASK_END_LOGGED,
    TASK_END_SETTLED,
};

/* Ends the unfinished task `t` in `state` with `result` (TASK_DONE) or
 * error `kind` and `message` (all taken). A finished task is left alone
 * (and the arguments freed). */
void task_finish(task *t, int state, Aiod__Value *result, char *kind, char *message);

/* Who may turn a failure into another attempt (core/plan.c's plan_retry):
 * called first by task_finish for TASK_FAILED; when it returns true it took
 * kind and message and the task goes on. */
void finish_set_retry_hook(bool (*retry)(task *t, char *kind, char *message));

/* The outcome of a pinned task was delivered to its owner, or the owner
 * goes: it joins the ordinary retention from now. */
void task_release_pin(task *t);

/* A task's unfinished children when it ends (or a failed attempt is
 * retried): unlinked and cancelled unless shielded; with `aio` (ABI 1.4)
 * they are handed to the task that holds it, and cancelled only when there
 * is none (a top-level task's end). */
void task_cancel_children(task *t);

/*
 * Requests cancellation. A pending task that has not started ends
 * cancelled at once. Otherwise, for a task of an older plugin: sticky (its
 * every later await point gives -ECANCELED) and spread to its unshielded
 * children. For an `aio` task, asyncio's Task.cancel: counted (cancelling),
 * passed to what it awaits if that takes it (the task keeps waiting), else
 * delivered once as -ECANCELED at its current or next await point, also
 * over a wake-up already queued. Spreads iteratively, never recursing.
 * True if the task was unfinished. `msg` (copied; may be NULL) becomes an
 * aio task's CancelledError message.
 */
bool task_cancel(task *t);
bool task_cancel_msg(task *t, const char *msg);

/* Task.uncancel: one request less; at zero a pending delivery is dropped.
 * The count left. */
uint32_t task_uncancel(task *t);

#endif
