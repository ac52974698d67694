/*
 * The drain, a task's step and its completion (run.h).
 */
#include "core/run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <aiod/plugin.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "core/coro.h"
#include "core/finish.h"
#include "core/limit.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"
#include "host/registry.h"
#include "macro.h"
#include "system/log.h"
#include "system/policy.h"
#include "system/stall.h"

static uv_check_t check_handle;
static const struct aiod_api *api;
static void (*after)(void);
static bool (*start_gate)(task *t);

void run_set_start_gate(bool (*gate)(task *t)) {
    start_gate = gate;
}

/* Milliseconds of a cheap monotonic clock, for the slow-step report. */
static uint64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef int (*call_body)(aiod_task *child, const struct aiod_api *api, void *arg,
                         aiod_value **ret_result);

static void task_main(void *arg) {
    task *t = arg;
    aiod_value *result = NULL;
    if (t->run->call_fn)
        t->run->exit_code =
            ((call_body)t->run->call_fn)((aiod_task *)t, api, t->run->call_arg, &result);
    else
        t->run->exit_code =
            t->fn->def->fn((aiod_task *)t, api, (const aiod_value *const *)t->argv, &result);
    t->run->exit_value = (Aiod__Value *)result;
}

/* An aio task that returned a result with a cancellation requested but
 * not yet delivered ends cancelled (asyncio: the CancelledError replaces
 * its result; an error it raises stays), as does one that returned
 * -ECANCELED. */
static void end_cancelled(task *t) {
    const char *msg = t->run->cancel_msg;
    if (!msg && !t->cancel_requested)
        msg = t->run->seen_cancel_msg; /* what it awaited raised it */
    if (!msg)
        msg = t->cancel_requested ? "task was cancelled" : "awaited task was cancelled";
    task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"), alloc_strdup(msg));
}

const char *run_errno_kind(int r) {
    switch (-r) {
    case ETIMEDOUT:
        return "TimeoutError";
    case ENOENT:
        return "FileNotFoundError";
    case EEXIST:
        return "FileExistsError";
    case EACCES:
    case EPERM:
        return "PermissionError";
    case ECONNREFUSED:
        return "ConnectionRefusedError";
    case ECONNRESET:
        return "ConnectionResetError";
    case ECONNABORTED:
        return "ConnectionAbortedError";
    case EPIPE:
        return "BrokenPipeError";
    case ENOMEM:
        return "MemoryError";
    default:
        return "OSError";
    }
}

static char *dup_or_null(const char *s) {
    return s ? alloc_strdup(s) : NULL;
}

/* The coroutine returned: turn its exit code into the task's outcome. */
static void complete(task *t) {
    size_t left = task_close_open_scopes(t);
    if (left)
        log_task(LOG_WARNING, t,
                 "returned inside %zu timeout scope%s or task group%s it did not leave "
                 "(timeout_exit, group_wait): aiod closed %s, and cancelled the groups' "
                 "unfinished tasks",
                 left, left == 1 ? "" : "s", left == 1 ? "" : "s", left == 1 ? "it" : "them");
    int r = t->run->exit_code;
    Aiod__Value *v = TAKE_PTR(t->run->exit_value);
    coro_free(t->run->co);
    t->run->co = NULL;
    if (t->aio && (r == -ECANCELED || (r == 0 && t->run->must_cancel))) {
        pbvalue_free(v);
        end_cancelled(t);
        return;
    }
    if (r == 0) {
        /* A spawn_call helper shares its caller's function but not its
         * declared result: asyncio.create_task(coro()) types nothing. */
        uint32_t want = t->run->call_fn ? AIOD_TYPE_ANY : t->fn->def->result_type;
        uint32_t have = pbvalue_type(v);
        if (v && !pbvalue_type_fits(want, have)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "%s returned %s, but declares %s", t->fn->full_name,
                     pbvalue_type_name(have), pbvalue_type_name(want));
            pbvalue_free(v);
            task_finish(t, TASK_FAILED, NULL, alloc_strdup("TypeError"), alloc_strdup(msg));
            return;
        }
        /* Only what goes to a client is bounded: a child's result stays in
         * the daemon and its parent decides what to keep. */
        size_t size = v && t->parent_id == 0 ? protobuf_c_message_get_packed_size(&v->base) : 0;
        if (size > policy_lim.max_result) {
            char msg[300];
            snprintf(msg, sizeof(msg), "%s returned %zu bytes, over the limit max_result (%u)",
                     t->fn->full_name, size, policy_lim.max_result);
            pbvalue_free(v);
            task_finish(t, TASK_FAILED, NULL, alloc_strdup("LimitError"), alloc_strdup(msg));
            return;
        }
        const char *why = NULL;
        if (v && pbvalue_check(v, LIMIT_VALUE_DEPTH, &why) < 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "%s returned an invalid value: %s", t->fn->full_name, why);
            pbvalue_free(v);
            task_finish(t, TASK_FAILED, NULL, alloc_strdup("ValueError"), alloc_strdup(msg));
            return;
        }
        task_finish(t, TASK_DONE, v, NULL, NULL);
        return;
    }
    pbvalue_free(v);
    if (r == -ECANCELED) {
        const char *msg = !t->cancel_requested ? "awaited task was cancelled"
                          : t->run->cancel_msg ? t->run->cancel_msg
                                               : "task was cancelled";
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"), dup_or_null(msg));
        return;
    }
    const char *pending_msg;
    char *kind = NULL, *msg = NULL;
    if (task_pending_kind(t, r, &pending_msg)) {
        kind = TAKE_PTR(t->run->pending_kind);
        msg = TAKE_PTR(t->run->pending_message);
    } else {
        kind = alloc_strdup(run_errno_kind(r));
        msg = alloc_strdup(strerror(r < 0 && r > -4096 ? -r : EIO));
    }
    task_finish(t, TASK_FAILED, NULL, kind, msg);
}

/* `start` is coarse_ms() now, read once for the stall detector and this. */
static void step(task *t, uint64_t start) {
    task_run *run = t->run;
    if (!run->co) {
        /* First step: a task gets its stack only when it starts. An `aio`
         * task cancelled while queued ends here unless uncancelled since. */
        if (t->aio ? run->must_cancel : t->cancel_requested) {
            const char *msg = run->cancel_msg ? run->cancel_msg : task_unstarted_cancel_message(t);
            task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"), alloc_strdup(msg));
            return;
        }
        /* Behind a concurrency limit: limit_release starts it later. */
        if (!limit_acquire(t))
            return;
        /* A durable task starts only once the store says so (its attempt
         * recorded); the gate starts it again then. */
        if (start_gate && !start_gate(t))
            return;
        if (coro_new(task_main, t, &run->co) < 0) {
            task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                        alloc_strdup("no memory for a coroutine stack"));
            return;
        }
        coro_set_user(run->co, t);
        task_set_running(t);
    }
    run->suspended = false;
    sched_set_current(t);
    if (coro_resume(run->co) < 0) {
        sched_set_current(NULL);
        log_task(LOG_ERR, t, "no memory to switch to the task; failing it");
        coro_free(run->co);
        run->co = NULL;
        task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                    alloc_strdup("no memory to save a coroutine stack"));
        return;
    }
    uint64_t took_ms = coarse_ms() - start;
    sched_set_current(NULL);
    if (took_ms >= LIMIT_SLOW_STEP_MS)
        log_task(LOG_WARNING, t, "held the event loop for %llu ms without suspending",
                 (unsigned long long)took_ms);
    if (coro_finished(run->co))
        complete(t);
}

/* Runs the tasks that were ready when the drain began; those made ready
 * meanwhile run on the next loop iteration, as asyncio does. A drain stops
 * after LIMIT_DRAIN_SLICE_MS (looked at every 16 steps), leaving the rest
 * ready: the loop polls for I/O and runs timers in between, so that ten
 * thousand cancelled tasks ending at once do not hold every client. */
/* One drain: the tasks and callbacks that were ready when it began, in
 * their FIFO order; true if it stepped a task. Stops early past
 * `deadline`, leaving the rest of the tasks ready. */
static bool drain(uint64_t deadline) {
    /* The callbacks (call_soon, done-callbacks) ready now run in their
     * FIFO place among the task steps. */
    soon_batch_begin();
    size_t n = sched_ready_count(), done = 0;
    bool stepped = false;
    task *t;
    for (;;) {
        uint64_t cb_seq, task_seq;
        bool cb = soon_batch_peek(&cb_seq);
        if (cb && !(n > 0 && sched_peek_ready(&task_seq) && task_seq < cb_seq)) {
            soon_batch_run_one();
            continue;
        }
        if (n == 0 || (++done % 16 == 0 && coarse_ms() >= deadline)) {
            if (!cb)
                break;
            n = 0; /* out of time for tasks; the callbacks still run */
            continue;
        }
        n--;
        if (!(t = sched_take_ready()))
            continue;
        if (!task_finished(t)) {
            stepped = true;
            /* The stall detector names the task while its step holds the
             * loop (one publish per step: the next step's replaces it, and
             * the drain's end clears it). */
            uint64_t now = coarse_ms();
            stall_enter_task(t->id, t->fn->full_name, now);
            step(t, now);
        }
        if (task_finished(t))
            task_settle(t); /* if it finished while queued */
        task_unref(t);
    }
    return stepped;
}

/* The drains of one loop iteration (LIMIT_DRAINS_PER_POLL). */
static void on_check(uv_check_t *h) {
    (void)h;
    uint64_t deadline = coarse_ms() + LIMIT_DRAIN_SLICE_MS;
    bool stepped = false;
    for (unsigned i = 0; i < LIMIT_DRAINS_PER_POLL; i++) {
        stepped |= drain(deadline);
        if ((sched_ready_count() == 0 && soon_ready_count() == 0) || coarse_ms() >= deadline)
            break;
    }
    if (stepped)
        stall_leave();
    if (after)
        after();
}

int run_init(uv_loop_t *loop, const void *table, void (*after_drain)(void)) {
    api = table;
    after = after_drain;
    uv_check_init(loop, &check_handle);
    uv_check_start(&check_handle, on_check);
    /* The check handle alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&check_handle);
    return 0;
}

void run_done(void) {
    uv_close((uv_handle_t *)&check_handle, NULL);
}
