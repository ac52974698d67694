/*
 * Ready queue, suspension, sleep, await, gather and cancellation (sched.h).
 */
#include "sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "api.h"
#include "limits.h"
#include "log.h"
#include "plugin.h"
#include "task.h"

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

static void on_idle(uv_idle_t *h) {
    (void)h; /* exists only to keep the poll phase from blocking */
}

static void enqueue(task *t) {
    if (t->queued)
        return;
    t->queued = true;
    task_ref(t);
    list_insert_tail(&ready, &t->ready_node);
    if (n_ready++ == 0)
        uv_idle_start(&idle_handle, on_idle);
}

void sched_start(task *t) {
    enqueue(t);
}

void sched_wake(task *t, int status) {
    if (!t->suspended || t->wake_pending)
        return;
    t->wake_pending = true;
    t->wake_status = status;
    enqueue(t);
}

int sched_suspend(task *t) {
    if (t->cancel_requested)
        return -ECANCELED;
    t->suspended = true;
    t->wake_pending = false;
    t->wake_status = 0;
    coro_yield();
    return t->wake_status;
}

static void task_main(void *arg) {
    task *t = arg;
    aiod_value *result = NULL;
    t->exit_code = t->fn->def->fn((aiod_task *)t, api_table(), (const aiod_value *const *)t->argv,
                                  &result);
    t->exit_value = (Aiod__Value *)result;
}

static char *dup_or_null(const char *s) {
    return s ? alloc_strdup(s) : NULL;
}

/* The coroutine returned: turn its exit code into the task's outcome. */
static void complete(task *t) {
    int r = t->exit_code;
    Aiod__Value *v = TAKE_PTR(t->exit_value);
    coro_free(t->co);
    t->co = NULL;
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
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                    dup_or_null(t->cancel_requested ? "task was cancelled" : "awaited task was cancelled"));
        return;
    }
    char *kind = TAKE_PTR(t->pending_kind), *msg = TAKE_PTR(t->pending_message);
    if (!kind) {
        kind = alloc_strdup("OSError");
        msg = alloc_strdup(strerror(r < 0 && r > -4096 ? -r : EIO));
    }
    task_finish(t, TASK_FAILED, NULL, kind, msg);
}

static void step(task *t) {
    if (!t->co) {
        /* First step: a task gets its stack only when it starts. */
        if (t->cancel_requested) {
            task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                        alloc_strdup("task was cancelled before it started"));
            return;
        }
        if (coro_new(task_main, t, &t->co) < 0) {
            task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                        alloc_strdup("no memory for a coroutine stack"));
            return;
        }
        coro_set_user(t->co, t);
        task_set_running(t);
    }
    t->suspended = false;
    current = t;
    uint64_t start = uv_hrtime();
    if (coro_resume(t->co) < 0) {
        current = NULL;
        log_task(LOG_ERR, t, "no memory to switch to the task; failing it");
        coro_free(t->co);
        t->co = NULL;
        task_finish(t, TASK_FAILED, NULL, alloc_strdup("MemoryError"),
                    alloc_strdup("no memory to save a coroutine stack"));
        return;
    }
    uint64_t took_ms = (uv_hrtime() - start) / 1000000u;
    current = NULL;
    if (took_ms >= LIMIT_SLOW_STEP_MS)
        log_task(LOG_WARNING, t,
                 "held the event loop for %llu ms without suspending",
                 (unsigned long long)took_ms);
    if (coro_finished(t->co))
        complete(t);
}

/* Runs the tasks that were ready when the drain began; those made ready
 * meanwhile run on the next loop iteration, as asyncio does. */
static void on_check(uv_check_t *h) {
    (void)h;
    size_t n = n_ready;
    while (n-- > 0 && !list_empty(&ready)) {
        task *t = container_of(list_first(&ready), task, ready_node);
        list_remove(&t->ready_node);
        t->queued = false;
        n_ready--;
        if (!task_finished(t))
            step(t);
        task_unref(t);
    }
    if (n_ready == 0)
        uv_idle_stop(&idle_handle);
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
        task *t = container_of(list_first(&ready), task, ready_node);
        list_remove(&t->ready_node);
        t->queued = false;
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
    list_foreach_safe(pos, tmp, &t->children) sched_cancel(container_of(pos, task, child_node));
    if (!t->co && t->state == TASK_PENDING)
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                    alloc_strdup("task was cancelled before it started"));
    else
        sched_wake(t, -ECANCELED);
    return true;
}

static void on_sleep_timer(uv_timer_t *h) {
    sched_wake(h->data, 0);
}

int sched_sleep(task *t, double seconds) {
    if (!(seconds >= 0) || !isfinite(seconds))
        return -EINVAL;
    if (t->cancel_requested)
        return -ECANCELED;
    if (seconds == 0) {
        /* Yield: go to the back of the ready queue. */
        t->suspended = true;
        t->wake_pending = false;
        sched_wake(t, 0);
        coro_yield();
        return t->wake_status;
    }
    if (!t->timer_init) {
        uv_timer_init(loop, &t->timer);
        t->timer_init = true;
    }
    t->timer.data = t;
    double ms = ceil(seconds * 1000.0);
    uv_timer_start(&t->timer, on_sleep_timer, ms > 1e15 ? (uint64_t)1e15 : (uint64_t)ms, 0);
    int r = sched_suspend(t);
    uv_timer_stop(&t->timer);
    return r;
}

static void wake_on_done(waiter *w, task *done) {
    (void)done;
    sched_wake(w->data, 0);
}

/* The outcome of a finished child as seen by the awaiting task. */
static int child_outcome(task *t, task *child, Aiod__Value **ret_result) {
    switch (child->state) {
    case TASK_DONE: {
        Aiod__Value *v = pbvalue_copy(child->result);
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

int sched_await(task *t, task *child, Aiod__Value **ret_result) {
    if (!task_finished(child)) {
        /* In the task struct, not on the coroutine stack: the child's list
         * is walked while this coroutine's frames are copied aside. */
        waiter *w = &t->await_waiter;
        w->fn = wake_on_done;
        w->data = t;
        task_add_waiter(child, w);
        int r = sched_suspend(t);
        task_remove_waiter(w);
        if (r < 0) {
            /* Like asyncio: cancelling the awaiter cancels what it awaits. */
            if (r == -ECANCELED)
                sched_cancel(child);
            return r;
        }
        if (!task_finished(child))
            return -EIO; /* woken by something else: cannot happen */
    }
    return child_outcome(t, child, ret_result);
}

typedef struct gather_state {
    task *t;
    size_t remaining;
    bool return_exceptions;
    /* The first child to fail, in time. */
    task *first_failed;
} gather_state;

typedef struct gather_waiter {
    waiter w;
    gather_state *gs;
} gather_waiter;

/* The state and the waiters of one gather, on the heap (see sched_await). */
typedef struct gather_block {
    gather_state gs;
    gather_waiter ws[];
} gather_block;

static void on_gathered(waiter *w, task *child) {
    gather_state *gs = ((gather_waiter *)w)->gs;
    gs->remaining--;
    if (child->state != TASK_DONE && !gs->return_exceptions && !gs->first_failed) {
        gs->first_failed = child;
        sched_wake(gs->t, 0);
    } else if (gs->remaining == 0)
        sched_wake(gs->t, 0);
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
    gather_block *b = alloc_calloc(1, sizeof(*b) + (n ? n : 1) * sizeof(b->ws[0]));
    int r = 0;
    if (!b)
        return -ENOMEM;
    gather_state *gs = &b->gs;
    gather_waiter *ws = b->ws;
    gs->t = t;
    gs->return_exceptions = return_exceptions;
    for (size_t i = 0; i < n; i++) {
        list_init(&ws[i].w.node);
        if (task_finished(children[i])) {
            if (children[i]->state != TASK_DONE && !return_exceptions && !gs->first_failed)
                gs->first_failed = children[i];
            continue;
        }
        ws[i].w.fn = on_gathered;
        ws[i].gs = gs;
        gs->remaining++;
        task_add_waiter(children[i], &ws[i].w);
    }
    if (gs->remaining > 0 && !gs->first_failed)
        r = sched_suspend(t);
    for (size_t i = 0; i < n; i++)
        task_remove_waiter(&ws[i].w);
    task *first_failed = gs->first_failed;
    free(b);
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            sched_cancel(children[i]);
        return r;
    }
    if (first_failed) {
        Aiod__Value *unused = NULL;
        return child_outcome(t, first_failed, &unused);
    }
    Aiod__Value *results = pbvalue_list();
    if (!results)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const task *c = children[i];
        Aiod__Value *item = c->state == TASK_DONE ? pbvalue_copy(c->result) : error_entry(c);
        if (!item || pbvalue_list_append(results, item) < 0) {
            pbvalue_free(results);
            return -ENOMEM;
        }
    }
    *ret_list = results;
    return 0;
}
