/*
 * Ready queue, suspension, sleep, await, gather and cancellation (sched.h).
 */
#include "core/sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <aiod/plugin.h>

#include "alloc.h"
#include "api/api.h"
#include "net/conn.h"
#include "core/limit.h"
#include "base/aiod_limits.h"
#include "system/log.h"
#include "host/registry.h"
#include "system/policy.h"
#include "core/task.h"

static uv_loop_t *loop;
static uv_check_t check_handle;
static uv_idle_t idle_handle;
static list ready;
static size_t n_ready;
static task *current;

uv_loop_t *sched_loop(void) {
    return loop;
}

task *sched_current(void) {
    return current;
}

size_t sched_ready_count(void) {
    return n_ready;
}

/* Milliseconds of a cheap monotonic clock, for the slow-step report. */
static uint64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_idle(uv_idle_t *h) {
    (void)h; /* exists only to keep the poll phase from blocking */
}

static void enqueue(task *t) {
    if (t->run->queued)
        return;
    t->run->queued = true;
    task_ref(t);
    list_insert_tail(&ready, &t->run->ready_node);
    if (n_ready++ == 0)
        uv_idle_start(&idle_handle, on_idle);
}

void sched_start(task *t) {
    enqueue(t);
}

void sched_wake(task *t, int status) {
    /* A settled task has nothing left to wake (say, a process's exit
     * reported after its task was cancelled). */
    if (!t->run || !t->run->suspended || t->run->wake_pending)
        return;
    t->run->wake_pending = true;
    t->run->wake_status = status;
    enqueue(t);
}

int sched_suspend(task *t) {
    if (t->cancel_requested)
        return -ECANCELED;
    t->run->suspended = true;
    t->run->wake_pending = false;
    t->run->wake_status = 0;
    coro_yield();
    return t->run->wake_status;
}

static void task_main(void *arg) {
    task *t = arg;
    aiod_value *result = NULL;
    t->run->exit_code =
        t->fn->def->fn((aiod_task *)t, api_table(), (const aiod_value *const *)t->argv, &result);
    t->run->exit_value = (Aiod__Value *)result;
}

static char *dup_or_null(const char *s) {
    return s ? alloc_strdup(s) : NULL;
}

/* The coroutine returned: turn its exit code into the task's outcome. */
static void complete(task *t) {
    int r = t->run->exit_code;
    Aiod__Value *v = TAKE_PTR(t->run->exit_value);
    coro_free(t->run->co);
    t->run->co = NULL;
    if (r == 0) {
        uint32_t want = t->fn->def->result_type, have = pbvalue_type(v);
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
        task_finish(
            t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
            dup_or_null(t->cancel_requested ? "task was cancelled" : "awaited task was cancelled"));
        return;
    }
    char *kind = TAKE_PTR(t->run->pending_kind), *msg = TAKE_PTR(t->run->pending_message);
    if (!kind) {
        kind = alloc_strdup("OSError");
        msg = alloc_strdup(strerror(r < 0 && r > -4096 ? -r : EIO));
    }
    task_finish(t, TASK_FAILED, NULL, kind, msg);
}

static void step(task *t) {
    task_run *run = t->run;
    if (!run->co) {
        /* First step: a task gets its stack only when it starts. */
        if (t->cancel_requested) {
            task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                        alloc_strdup("task was cancelled before it started"));
            return;
        }
        /* Behind a concurrency limit: limit_release starts it later. */
        if (!limit_acquire(t))
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
    current = t;
    uint64_t start = coarse_ms();
    if (coro_resume(run->co) < 0) {
        current = NULL;
        log_task(LOG_ERR, t, "no memory to switch to the task; failing it");
        coro_free(run->co);
        run->co = NULL;
        task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                    alloc_strdup("no memory to save a coroutine stack"));
        return;
    }
    uint64_t took_ms = coarse_ms() - start;
    current = NULL;
    if (took_ms >= LIMIT_SLOW_STEP_MS)
        log_task(LOG_WARNING, t, "held the event loop for %llu ms without suspending",
                 (unsigned long long)took_ms);
    if (coro_finished(run->co))
        complete(t);
}

/* Runs the tasks that were ready when the drain began; those made ready
 * meanwhile run on the next loop iteration, as asyncio does. */
static void on_check(uv_check_t *h) {
    (void)h;
    size_t n = n_ready;
    while (n-- > 0 && !list_empty(&ready)) {
        task *t = task_of(list_first(&ready), ready_node);
        list_remove(&t->run->ready_node);
        t->run->queued = false;
        n_ready--;
        if (!task_finished(t))
            step(t);
        if (task_finished(t))
            task_settle(t); /* if it finished while queued */
        task_unref(t);
    }
    if (n_ready == 0)
        uv_idle_stop(&idle_handle);
    /* Replies of the tasks that just ran leave now, not after another turn
     * of the loop. */
    conn_flush_all();
}

int sched_init(uv_loop_t *l) {
    loop = l;
    list_init(&ready);
    uv_check_init(loop, &check_handle);
    uv_idle_init(loop, &idle_handle);
    uv_check_start(&check_handle, on_check);
    /* The check handle alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)&check_handle);
    return 0;
}

void sched_done(void) {
    while (!list_empty(&ready)) {
        task *t = task_of(list_first(&ready), ready_node);
        list_remove(&t->run->ready_node);
        t->run->queued = false;
        task_unref(t);
    }
    n_ready = 0;
    uv_close((uv_handle_t *)&check_handle, NULL);
    uv_close((uv_handle_t *)&idle_handle, NULL);
}

bool sched_cancel(task *t) {
    if (task_finished(t))
        return false;
    t->cancel_requested = true;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &t->run->children) {
        task *c = task_of(pos, child_node);
        if (!c->shielded)
            sched_cancel(c);
    }
    if (!t->run->co && t->state == TASK_PENDING)
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                    alloc_strdup("task was cancelled before it started"));
    else
        sched_wake(t, -ECANCELED);
    return true;
}

/* Starts the task's timer, made on first use, to call `cb` with the task
 * after `seconds`. */
static void start_timer(task *t, uv_timer_cb cb, double seconds) {
    task_run *run = t->run;
    if (!run->timer_init) {
        uv_timer_init(loop, &run->timer);
        run->timer_init = true;
    }
    run->timer.data = t;
    double ms = ceil(seconds * 1000.0);
    uv_timer_start(&run->timer, cb, ms > 1e15 ? (uint64_t)1e15 : (uint64_t)ms, 0);
}

static void on_sleep_timer(uv_timer_t *h) {
    sched_wake(h->data, 0);
}

int sched_sleep(task *t, double seconds) {
    if (!(seconds >= 0) || !isfinite(seconds))
        return -EINVAL;
    if (t->cancel_requested)
        return -ECANCELED;
    task_run *run = t->run;
    if (seconds == 0) {
        /* Yield: go to the back of the ready queue. */
        run->suspended = true;
        run->wake_pending = false;
        sched_wake(t, 0);
        coro_yield();
        return run->wake_status;
    }
    start_timer(t, on_sleep_timer, seconds);
    int r = sched_suspend(t);
    uv_timer_stop(&run->timer);
    return r;
}

/* The outcome of a finished child as seen by the awaiting task. */
static int child_outcome(task *t, task *child, Aiod__Value **ret_result) {
    switch (child->state) {
    case TASK_DONE: {
        Aiod__Value *v = pbvalue_copy(task_result(child));
        if (!v)
            return -ENOMEM;
        *ret_result = v;
        return 0;
    }
    case TASK_FAILED:
        task_set_pending_error(t, child->error_kind ? child->error_kind : "Error",
                               child->error_message ? child->error_message : "");
        return -EIO;
    default:
        return -ECANCELED;
    }
}

/* Cancellation spreading from a waiter to what it waits for (asyncio's
 * await and gather), unless the child is shielded. */
static void cancel_unshielded(task *const *children, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!children[i]->shielded)
            sched_cancel(children[i]);
}

/*
 * One wait of a task on some of its children, on the heap (not on the
 * coroutine stack, which is copied aside while the task is suspended).
 */
typedef struct watch watch;
typedef struct watch_item {
    waiter w;
    watch *wb;
} watch_item;

struct watch {
    task *t;
    uint32_t mode;
    /* Watched children still unfinished. */
    size_t remaining;
    /* The first watched child to fail or be cancelled, in time. */
    task *first_failed;
    watch_item items[];
};

static bool watch_satisfied(const watch *wb, bool any_finished) {
    switch (wb->mode) {
    case AIOD_FIRST_COMPLETED:
        return any_finished || wb->remaining == 0;
    case AIOD_FIRST_EXCEPTION:
        return wb->first_failed || wb->remaining == 0;
    default:
        return wb->remaining == 0;
    }
}

static void on_watched_done(waiter *w, task *child) {
    watch *wb = ((watch_item *)w)->wb;
    wb->remaining--;
    if (child->state != TASK_DONE && !wb->first_failed)
        wb->first_failed = child;
    if (watch_satisfied(wb, true))
        sched_wake(wb->t, 0);
}

static void on_wait_timeout(uv_timer_t *h) {
    sched_wake(h->data, -ETIMEDOUT);
}

/*
 * Suspends `t` until `mode` (AIOD_FIRST_COMPLETED, AIOD_FIRST_EXCEPTION,
 * AIOD_ALL_COMPLETED) holds for children[i] with !skip[i], or `timeout`
 * seconds pass (<= 0: no limit). 0, -ETIMEDOUT, -ECANCELED, -ENOMEM.
 * *ret_first_failed (may be NULL) gets the first watched child that failed:
 * in time while waiting, else the lowest index already failed.
 */
static int watch_children(task *t, task *const *children, size_t n, const unsigned char *skip,
                          uint32_t mode, double timeout, task **ret_first_failed) {
    watch *wb = alloc_calloc(1, sizeof(*wb) + (n ? n : 1) * sizeof(wb->items[0]));
    int r = 0;
    if (!wb)
        return -ENOMEM;
    wb->t = t;
    wb->mode = mode;
    bool any_finished = false;
    for (size_t i = 0; i < n; i++) {
        list_init(&wb->items[i].w.node);
        if (skip && skip[i])
            continue;
        if (task_finished(children[i])) {
            any_finished = true;
            if (children[i]->state != TASK_DONE && !wb->first_failed)
                wb->first_failed = children[i];
            continue;
        }
        wb->remaining++;
    }
    if (!watch_satisfied(wb, any_finished)) {
        for (size_t i = 0; i < n; i++) {
            if ((skip && skip[i]) || task_finished(children[i]))
                continue;
            wb->items[i].w.fn = on_watched_done;
            wb->items[i].wb = wb;
            task_add_waiter(children[i], &wb->items[i].w);
        }
        if (timeout > 0)
            start_timer(t, on_wait_timeout, timeout);
        r = sched_suspend(t);
        if (timeout > 0)
            uv_timer_stop(&t->run->timer);
        for (size_t i = 0; i < n; i++)
            task_remove_waiter(&wb->items[i].w);
    }
    if (ret_first_failed)
        *ret_first_failed = wb->first_failed;
    free(wb);
    return r;
}

int sched_await_timeout(task *t, task *child, double timeout, bool cancel_on_timeout,
                        Aiod__Value **ret_result) {
    int r = watch_children(t, &child, 1, NULL, AIOD_ALL_COMPLETED, timeout, NULL);
    if (r == -ETIMEDOUT && cancel_on_timeout)
        sched_cancel(child);
    if (r == -ECANCELED)
        cancel_unshielded(&child, 1);
    if (r < 0)
        return r;
    return child_outcome(t, child, ret_result);
}

int sched_await(task *t, task *child, Aiod__Value **ret_result) {
    return sched_await_timeout(t, child, 0, false, ret_result);
}

int sched_wait(task *t, task *const *children, size_t n, double timeout, uint32_t mode) {
    int r = watch_children(t, children, n, NULL, mode, timeout, NULL);
    if (r < 0 && r != -ETIMEDOUT)
        return r;
    int done = 0;
    for (size_t i = 0; i < n; i++)
        done += task_finished(children[i]);
    return done;
}

int sched_as_completed(task *t, task *const *children, size_t n, unsigned char *seen,
                       double timeout, size_t *ret_index) {
    for (;;) {
        bool left = false;
        for (size_t i = 0; i < n; i++) {
            if (seen[i])
                continue;
            if (task_finished(children[i])) {
                seen[i] = 1;
                *ret_index = i;
                return 0;
            }
            left = true;
        }
        if (!left)
            return -ENOENT;
        int r = watch_children(t, children, n, seen, AIOD_FIRST_COMPLETED, timeout, NULL);
        if (r < 0)
            return r;
    }
}

static Aiod__Value *error_entry(const task *child) {
    Aiod__Value *m = pbvalue_map();
    const char *kind = child->error_kind ? child->error_kind : "Error";
    const char *msg = child->error_message ? child->error_message : "";
    if (m && (pbvalue_map_set(m, "error", pbvalue_string(kind)) < 0 ||
              pbvalue_map_set(m, "message", pbvalue_string(msg)) < 0)) {
        pbvalue_free(m);
        return NULL;
    }
    return m;
}

int sched_gather(task *t, task *const *children, size_t n, bool return_exceptions,
                 Aiod__Value **ret_list) {
    task *first_failed = NULL;
    int r = watch_children(t, children, n, NULL,
                           return_exceptions ? AIOD_ALL_COMPLETED : AIOD_FIRST_EXCEPTION, 0,
                           &first_failed);
    if (r == -ECANCELED)
        cancel_unshielded(children, n); /* cancelling a gather cancels its children */
    if (r < 0)
        return r;
    if (!return_exceptions && first_failed) {
        Aiod__Value *unused = NULL;
        return child_outcome(t, first_failed, &unused);
    }
    Aiod__Value *results = pbvalue_list();
    if (!results)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const task *c = children[i];
        Aiod__Value *item = c->state == TASK_DONE ? pbvalue_copy(task_result(c)) : error_entry(c);
        if (!item || pbvalue_list_append(results, item) < 0) {
            pbvalue_free(results);
            return -ENOMEM;
        }
    }
    *ret_list = results;
    return 0;
}
