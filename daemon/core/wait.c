/*
 * Waits of a task on its children (wait.h).
 */
#include "core/wait.h"

#include <errno.h>
#include <stdlib.h>

#include <aiod/plugin.h>

#include "alloc.h"
#include "core/finish.h"
#include "core/sched.h"
#include "core/task.h"

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
            task_cancel(children[i]);
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
            sched_start_timer(t, on_wait_timeout, timeout);
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
        task_cancel(child);
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
