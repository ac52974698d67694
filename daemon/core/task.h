/*
 * Tasks and the task table: ids, states, owner, times, ownership (attached,
 * submitted, detached), results, retention of finished tasks, and the
 * done-callbacks ("waiters") that awaits, gathers and client requests hang on
 * a task. Running a task's code is run.c's business, and its end finish.c's.
 *
 * References: the table holds one while the task is unfinished or retained;
 * the scheduler holds one while the task is queued or running; child handles,
 * client requests and parents hold their own. Waiters hold none: they are
 * removed when they fire or by whoever registered them.
 */
#ifndef AIOD_TASK_H
#define AIOD_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "aiod-pb.h"
#include "core/coro.h"
#include "base/forward.h"
#include "base/list.h"

/* States: the protocol's numbers. */
enum {
    TASK_PENDING = AIOD__TASK_STATE__TASK_PENDING,
    TASK_RUNNING = AIOD__TASK_STATE__TASK_RUNNING,
    TASK_DONE = AIOD__TASK_STATE__TASK_DONE,
    TASK_FAILED = AIOD__TASK_STATE__TASK_FAILED,
    TASK_CANCELLED = AIOD__TASK_STATE__TASK_CANCELLED,
};

/* A done-callback on a task, fired once when the task ends (or at once
 * by task_add_waiter if it already has). */
struct waiter {
    list node;
    void (*fn)(waiter *w, task *t);
    void *data;
};

/*
 * What a task needs only while it runs, and until its outcome is delivered
 * or retained: its coroutine, its places on the scheduler's, limiter's,
 * parent's and connection's lists, its timer and its waiters. Freed when the
 * task settles (task_settle), so that a retained outcome keeps only the
 * small struct task. Lists link these nodes; `task` leads back.
 */
/* One of a future's waiters: a done-callback (future.c's fut_cb, t NULL)
 * or a task suspended in fut_await (its run part's own, task_run.fut_wait).
 * As in asyncio, where a task's wake-up is a done-callback like the others,
 * they go in the order they came. */
typedef struct fut_entry {
    list node;
    task *t;
} fut_entry;

struct task_run {
    task *task;
    /* The coroutine while started and unfinished (sched.c). */
    coro *co;
    /* What the task function returned, until the task is finished. */
    Aiod__Value *exit_value;
    /* Error set by api->fail, used if the task returns an error; or one a
     * waiting call raised (a failed child), used only if the task returns
     * the errno that call returned (pending_errno), as a Python exception
     * handled is gone. pending_errno 0: any errno. */
    char *pending_kind;
    char *pending_message;
    int pending_errno;
    int exit_code;

    /* Scheduling (sched.c). */
    list ready_node;
    /* Its place in the loop's FIFO of ready tasks and callbacks. */
    uint64_t ready_seq;
    bool queued;
    bool suspended;
    bool wake_pending;
    int wake_status;
    /* The task's own timer (sleeps, wait timeouts, the next attempt),
     * made on first use (sched_start_timer): most tasks never sleep, and
     * a libuv timer is a third of the run part's size. Closed and freed
     * apart from the run part. */
    uv_timer_t *timer;

    /* The unfinished children, which the parent cancels when it ends (or,
     * with `aio`, hands to its own holder: finish.c), the task's place on
     * its holder's list, and that holder (weak: an unfinished task). */
    list children;
    list child_node;
    task *up;
    /* Who an attached task belongs to (the request layer's session; weak:
     * the owner detaches its tasks when it goes), and its place on the
     * owner's list. */
    void *owner;
    list owner_node;
    /* Concurrency limit (limit.c): the limiter, whether the task holds a
     * slot, and its place in the limiter's queue while it waits. */
    void *limit;
    bool limit_slot;
    list limit_node;
    /* Who called the task's root (a reference, system/policy.h): the call
     * rules for what it spawns. NULL when not known (a task restored from
     * the state store, or made by root). */
    caller *caller;

    list waiters;

    /* asyncio's cancellation, for tasks with `aio` (finish.c): requests
     * not uncancelled, one requested but not yet delivered, and the
     * message of the last request (owned). */
    uint32_t cancels;
    bool must_cancel;
    char *cancel_msg;
    /* The message of the last cancellation this task was handed by what it
     * awaited (a cancelled child's or future's): an aio task that ends
     * cancelled without being cancelled itself ends with it (asyncio
     * re-raises that CancelledError, args and all). Owned. */
    char *seen_cancel_msg;
    /* While suspended: what the task waits on, told when the task is
     * cancelled; returns true if it passed the cancellation on (to the
     * child, future or group the task awaits), which then ends the wait. */
    bool (*on_cancel)(task *t, void *data);
    void *on_cancel_data;
    /* Its place among the waiters of the future it awaits (future.c). */
    fut_entry fut_wait;
    /* as_completed of an aio task: the iteration (its `seen` array) and
     * its deadline (loop seconds; 0 none, < 0 expired at once). */
    const void *ac_seen;
    double ac_deadline;
    /* That iteration's timeout has passed: every later step times out. */
    bool ac_expired;
    /* spawn_call: the body the task runs instead of its function's, and
     * its argument (borrowed). */
    void *call_fn;
    void *call_arg;
    /* The timeout scopes and task groups the task entered and has not
     * left, innermost last (open_scope). */
    list open_scopes;
};

/*
 * Something a task enters and must leave before it returns: a timeout
 * scope (timeout.c) or a task group (group.c), on its run's open_scopes
 * from entry to exit. `async with` makes returning inside one impossible
 * in Python; a C plugin can forget the exit call. Then the run's end
 * closes what is left, innermost first: `close` (after the node is
 * unlinked) frees it and lets go of what it holds.
 */
typedef struct open_scope open_scope;
struct open_scope {
    list node;
    void (*close)(open_scope *s);
};

/* Puts `s` on the open scopes of t (running). */
void task_scope_entered(task *t, open_scope *s);
/* Takes `s` off its task's list (left as it should be). */
void task_scope_left(open_scope *s);
/* Closes the scopes t's function returned inside of; how many. */
size_t task_close_open_scopes(task *t);

/*
 * When and how often a task runs (core/plan.c): a delay or start time,
 * retries with backoff, tasks it runs after, and its ended attempts. Only
 * tasks submitted with a Schedule have one.
 */
struct task_plan {
    uint32_t retries;
    uint32_t attempt; /* attempts started */
    double backoff, backoff_max;
    /* Wall-clock microseconds before which the next attempt does not
     * start (0: none). */
    uint64_t next_run_usec;
    uint64_t *after;
    uint32_t n_after;
    /* Those of `after` that ended done so far (room for n_after; NULL
     * until the first): stored, so that a restart does not look them up
     * again, when their outcomes may be gone. */
    uint64_t *after_done;
    uint32_t n_after_done;
    /* Waiters on the dependencies that have not fired yet. */
    uint32_t after_left;
    /* Every dependency ended done. */
    bool after_met;
    /* A dependency was cut off by the stop: not met, not failed either; it
     * is waited for again after the restart. */
    bool after_cut;
    /* Restarts of the daemon that interrupted this task (on_interrupt =
     * retry); bounded by LIMIT_INTERRUPT_RETRIES. */
    uint32_t interrupted;
    /* Ended attempts, oldest first (owned, with their strings). */
    Aiod__Attempt **attempts;
    size_t n_attempts;
    /* Waiters on the dependencies, while they are awaited. */
    waiter *after_waiters;
    /* The next attempt's timer is armed (the run part's timer). */
    bool timer_armed;
    /* The plan ends the task itself (DependencyFailed, Interrupted): no
     * retry then. */
    bool no_retry;
};

/* finish.h's TASK_END_SETTLED, which task.c (below finish.c) cannot name;
 * finish.c asserts that they agree. */
#define TASK_END_SETTLED_VALUE 8

/* What the state store is told of a durable task (task_set_store_hook). */
enum task_store_event {
    TASK_STORE_CHANGED, /* its record must be written again */
    TASK_STORE_DROPPED, /* it left the table: its record goes */
};

/*
 * A task: its identity and outcome, all that a retained outcome keeps.
 * 160 bytes; the rest is in `run` while the task needs it.
 */
/* store_flags: the task ended because the stop cut it off (persist.c sets
 * it; plan.c reads it, for tasks that run after it). */
#define TASK_STORE_CUT_OFF (1u << 5)

struct task {
    /* First, together: what evicting a retained outcome reads. By then the
     * task is long out of the cache, and each further line is a miss. */
    /* On the table's retention list once finished and retained. */
    list retain_node;
    uint64_t id;
    /* On the table's list of all its tasks, in id order (paged listing). */
    list order_node;
    /* Wall-clock microseconds. */
    uint64_t finished_usec;
    unsigned refs;
    uint8_t state;
    uint8_t ownership; /* AIOD__OWNERSHIP__* */
    bool in_table;
    /* Finished, attached, and its outcome not yet delivered to its still
     * open connection: kept outside the retention list (task_release_pin). */
    bool pinned;
    bool cancel_requested;
    /* asyncio.shield: not cancelled through its awaiters or its parent. */
    bool shielded;
    /* How far task_finish got (finish.h, enum task_end_step). */
    uint8_t end_step;
    /* Kept in the state store (a submitted or detached client task while
     * the store is on), and core/persist.c's flags for it. */
    bool durable;
    uint8_t store_flags;
    /* Built for ABI 1.4 or later: asyncio's cancellation (aiod/plugin.h). */
    bool aio;
    /* The order of ends sharing one finished_usec (the coarse clock gives
     * thousands of ends the same one): task_ended_before. Wraps. */
    uint16_t end_seq;
    uid_t uid;
    /* About how many bytes its arguments and outcome hold, once it ended
     * (for a task the retention may keep), and with the struct and its
     * output once retained: counted against retain_bytes, and what says
     * whether its values are freed on the pool (reclaim.h). At most 4 GiB,
     * far above what one task can hold. */
    uint32_t retained_bytes;
    /* About how many bytes its arguments hold (pbvalue_footprint), sized
     * once when it is made: counted against max_task_bytes_per_uid while it
     * is unfinished, and part of retained_bytes once it ended (which count
     * against it in turn while the outcome is pinned). */
    uint32_t arg_bytes;
    /* persist.c: the batch holding the task's latest record while that
     * batch is being committed (its sequence number's low 32 bits, 2 for
     * 0), else 0. */
    uint32_t store_seq;
    fn_entry *fn;
    /* One value per parameter (owned). */
    Aiod__Value **argv;
    /* Outcome. result is NULL for a null result (task_result). */
    Aiod__Value *result;
    char *error_kind;
    char *error_message;
    /* The task's output: NULL until first used (task_output), and again
     * once retained having printed nothing with nobody following. */
    output *out;
    /* NULL once settled (task_settle). */
    task_run *run;
    uint32_t argc;
    pid_t pid;
    uint64_t created_usec;
    uint64_t started_usec;
    /* The spawning task's id (0 for a client's task). */
    uint64_t parent_id;
    /* Schedule and attempts (owned), or NULL. */
    task_plan *plan;
    /* Set by the plugin (api set_name; owned), or NULL for "Task-<id>". */
    char *name;
};

/* Creates the table. 0, -ENOMEM. */
int task_table_init(uv_loop_t *loop);

/*
 * Where ids come from. `reserve` hands out a block [*first, *end) that no
 * one else will ever use (idstore.c keeps it on disk); it is called now, and
 * again whenever the block is used up. Without a source (unit tests), ids
 * count up from 1. 0, or reserve's negative errno.
 */
typedef int (*task_id_reserve_fn)(uint64_t *first, uint64_t *end);
int task_set_id_source(task_id_reserve_fn reserve);
/* Drops every task (at shutdown, after the loop stopped running them). */
void task_table_done(void);
/* Frees the structs kept for reuse (when idle, and by task_table_done). */
void task_cache_release(void);

/*
 * A new pending task for `fn` with the checked argument vector (taken, also
 * on failure), entered into the table. Its output is `out` (a new reference
 * is taken: a child shares its root's) or, when NULL, one of its own made on
 * first use (task_output). -EAGAIN when the task limit (max_tasks) is reached, -EDQUOT
 * when the user's (max_tasks_per_uid), -ENOBUFS when its unfinished tasks'
 * arguments would hold more than max_task_bytes_per_uid, -E2BIG when this
 * task's alone would (neither for root); -ENOMEM.
 */
int task_new(fn_entry *fn, Aiod__Value **argv, size_t argc, int ownership, uid_t uid, pid_t pid,
             output *out, task **ret);

/*
 * A task read back from the state store at start, pending, with the id and
 * creation time it had; argv is taken, also on failure. With `ended` it
 * gets no run part: task_restore_ended must follow. It counts toward the
 * limits like a new one, but is never refused by them. 0, -EEXIST (the id
 * is in the table), -ENOMEM.
 */
int task_restore(fn_entry *fn, Aiod__Value **argv, size_t argc, uint64_t id, int ownership,
                 uid_t uid, pid_t pid, uint64_t created_usec, bool ended, task **ret);

/*
 * A restored task (task_restore with `ended`) that had ended before the
 * restart: its outcome (result, kind and message taken) and times are set,
 * and it joins the retained outcomes (or leaves the table, if detached)
 * without a log line or a store write.
 */
void task_restore_ended(task *t, int state, Aiod__Value *result, char *kind, char *message,
                        uint64_t started_usec, uint64_t finished_usec);

/* The unfinished task's record changed: tells the store hook, if it is
 * durable. */
void task_changed(task *t);
/* Who hears of durable tasks' changes (core/persist.c), or NULL. */
void task_set_store_hook(void (*hook)(task *t, int event));

/* A running task whose attempt failed goes back to pending for another
 * (core/plan.c): the counts are set back, its start time kept until the
 * next attempt starts. */
void task_set_pending_again(task *t);

task *task_ref(task *t);
/* Returns NULL; accepts NULL. */
task *task_unref(task *t);

/* The task with this id in the table (unfinished or retained), or NULL. */
task *task_lookup(uint64_t id);

bool task_finished(const task *t);

/* Registers a done-callback. If the task already ended, fires at once. */
void task_add_waiter(task *t, waiter *w);
/* Unregisters a callback that has not fired. Safe to call twice. */
void task_remove_waiter(waiter *w);

/*
 * The first step of a task's end (finish.c runs the rest): records the
 * state, with result (when done) or error kind/message, each taken, the
 * time, and updates the counts. The task must be unfinished.
 */
/* What a task cancelled before its (next) attempt started ends with:
 * "task was cancelled before it started", or, for one that ran and waits
 * to run again (--retries), that it waited for its next attempt. Static. */
const char *task_unstarted_cancel_message(const task *t);

/* Whether finished task `a` ended before finished task `b`. */
bool task_ended_before(const task *a, const task *b);

void task_record_end(task *t, int state, Aiod__Value *result, char *kind, char *message);

/* A pending task starts running (run.c, on its first step). */
void task_set_running(task *t);

/* A pinned outcome (finish.c) starts (+1) or stops (-1) counting against
 * its owner's max_task_bytes_per_uid, by its retained_bytes. */
void task_count_pinned(const task *t, int delta);

/* A finished task either joins the retained outcomes (top-level, not
 * detached) or leaves the table. */
void task_retain_or_drop(task *t);

/* A new task that never started, not durable, and that no one waits for
 * (the earlier items of a gather refused whole) leaves as if it had never
 * been made: no outcome, no log line, its id unused from now on. The
 * caller's reference stays the caller's. */
void task_discard(task *t);

/* t was handed a cancellation by something it awaited, with `msg` (may be
 * NULL): kept as its own should it end cancelled (run.c). */
void task_note_cancel(task *t, const char *msg);

/* retain_count or retain_seconds changed (reload): evicts what is now due
 * and re-arms the expiry timer for the new period. */
void task_retention_changed(void);

/* Sets an error as the one the unfinished task will fail with (api->fail).
 * 0, -ENOMEM, -EINVAL once the task is settled. */
int task_set_pending_error(task *t, const char *kind, const char *message);

/* The same for an error a waiting call raises in the task (a failed child,
 * a refused spawn), which returns `err` (< 0): used only if the task then
 * returns `err`. 0, -ENOMEM, -EINVAL once the task is settled. */
int task_raise(task *t, int err, const char *kind, const char *message);

/* The kind (and *ret_message) the unfinished task fails with if it returns
 * `err`; NULL when there is none for that errno. Borrowed. */
const char *task_pending_kind(const task *t, int err, const char **ret_message);

/* Fills an Outcome for the task (borrowing its result: do not free the
 * result through the outcome). */
void task_outcome(const task *t, Aiod__Outcome *o);

/* A done task's result (a shared null value when it returned nothing);
 * borrowed. NULL if the task is not done. */
const Aiod__Value *task_result(const task *t);

/* The task's output (borrowed), made on first use: most tasks never print
 * or are followed. NULL when out of memory. */
output *task_output(task *t);

/* Lines the task printed so far and how many of them were dropped: 0 for a
 * child task, which prints into its root's output. */
uint64_t task_output_lines(const task *t);
uint64_t task_output_dropped(const task *t);

/* Counts for status and statistics. */
size_t task_count_unfinished(void);
size_t task_count_running(void);
uint64_t task_count_finished_total(void);

/* The table's tasks in id order: the first (NULL when empty), and the one
 * after `t` (NULL at the end). `t` must be in the table, as for
 * task_before. */
task *task_first(void);
task *task_after(const task *t);
/* The last task (NULL when empty), and the one before `t` (NULL at the
 * start). */
task *task_last(void);
task *task_before(const task *t);

/* Makes `owner` the holder of the unfinished attached task, at the end of
 * `owner_list`. */
void task_attach_owner(task *t, void *owner, list *owner_list);
/* Detaches an attached task from its owner (the owner goes, or the task's
 * outcome was delivered). */
void task_detach_owner(task *t);

/* Frees the task's run part if nothing needs it any more: the task is
 * finished, its outcome not pinned, and it is not in the ready queue. The
 * scheduler calls it when it takes a finished task off that queue. */
void task_settle(task *t);

/* The task a run part belongs to, through one of its list nodes. */
#define task_of(node, member) (container_of(node, task_run, member)->task)

const char *task_state_name(int state);

/* Wall-clock now, in microseconds. */
uint64_t task_now_usec(void);

#endif
