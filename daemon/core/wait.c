/*
 * Waits of a task on its children (wait.h).
 */
#include "core/wait.h"

#include <errno.h>
#include <stdlib.h>

#include <aiod/plugin.h>

#include "alloc.h"
#include "macro.h"
#include "core/finish.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"
#include "core/timeout.h"

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
        task_raise(t, -EIO, child->error_kind ? child->error_kind : "Error",
                   child->error_message ? child->error_message : "");
        return -EIO;
    default:
        task_note_cancel(t, child->error_message);
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
    /* The child, copied: the caller's array may be on its coroutine
     * stack, which is elsewhere while the task is suspended. */
    task *child;
} watch_item;

struct watch {
    task *t;
    uint32_t mode;
    /* Watched children still unfinished. */
    size_t remaining;
    /* The first watched child to fail or be cancelled, in time; and the
     * first to fail. */
    task *first_failed, *first_raised;
    /* For an aio task: a cancellation of the waiting task goes to the
     * children (await, gather) and took effect on one; and the wake-up
     * comes one loop iteration late, through call_soon, as asyncio's
     * done-callbacks do for wait and gather (`hop`). */
    bool pass_cancel, cancel_passed, hop;
    soon_handle *hop_handle;
    size_t n;
    watch_item items[];
};

/* Or'ed into AIOD_FIRST_EXCEPTION by asyncio's wait: only a child that
 * failed ends the wait, not one cancelled (gather counts both). */
#define WATCH_RAISED_ONLY 0x100u

static bool watch_satisfied(const watch *wb, bool any_finished) {
    switch (wb->mode & ~WATCH_RAISED_ONLY) {
    case AIOD_FIRST_COMPLETED:
        return any_finished || wb->remaining == 0;
    case AIOD_FIRST_EXCEPTION:
        return ((wb->mode & WATCH_RAISED_ONLY) ? wb->first_raised : wb->first_failed) ||
               wb->remaining == 0;
    default:
        return wb->remaining == 0;
    }
}

static void on_hop(void *data) {
    watch *wb = data;
    soon_release(wb->hop_handle);
    wb->hop_handle = NULL;
    sched_wake(wb->t, 0);
}

static void on_watched_done(waiter *w, task *child) {
    watch *wb = ((watch_item *)w)->wb;
    wb->remaining--;
    if (child->state != TASK_DONE && !wb->first_failed)
        wb->first_failed = child;
    if (child->state == TASK_FAILED && !wb->first_raised)
        wb->first_raised = child;
    if (!watch_satisfied(wb, true))
        return;
    if (wb->hop && !wb->hop_handle && soon_call(on_hop, wb, &wb->hop_handle) == 0)
        return;
    if (!wb->hop_handle)
        sched_wake(wb->t, 0);
}

static void on_wait_timeout(uv_timer_t *h) {
    sched_wake(h->data, -ETIMEDOUT);
}

/* The waiting aio task is cancelled: so are the unfinished unshielded
 * children it awaits; it goes on waiting if that took effect on one. */
static bool pass_cancel(task *t, void *data) {
    watch *wb = data;
    bool took = false;
    for (size_t i = 0; i < wb->n; i++) {
        task *c = wb->items[i].child;
        if (!c || c->shielded)
            continue;
        if (task_cancel_msg(c, t->run->cancel_msg))
            took = true;
    }
    wb->cancel_passed |= took;
    return took;
}

/*
 * Suspends `t` until `mode` (AIOD_FIRST_COMPLETED, AIOD_FIRST_EXCEPTION,
 * AIOD_ALL_COMPLETED) holds for children[i] with !skip[i], or `timeout`
 * seconds pass (<= 0: no limit). 0, -ETIMEDOUT, -ECANCELED, -ENOMEM.
 * *ret_first_failed (may be NULL) gets the first watched child that failed:
 * in time while waiting, else the lowest index already failed. With
 * `pass`, an aio task's cancellation goes to the children
 * (*ret_passed: it took effect on one).
 */
static int watch_children(task *t, task *const *children, size_t n, const unsigned char *skip,
                          uint32_t mode, double timeout, bool pass, bool hop,
                          task **ret_first_failed, bool *ret_passed) {
    watch *wb = alloc_calloc(1, sizeof(*wb) + (n ? n : 1) * sizeof(wb->items[0]));
    int r = 0;
    if (!wb)
        return -ENOMEM;
    wb->t = t;
    wb->mode = mode;
    wb->n = n;
    wb->pass_cancel = pass && t->aio;
    wb->hop = hop && t->aio;
    bool any_finished = false;
    for (size_t i = 0; i < n; i++) {
        list_init(&wb->items[i].w.node);
        if (skip && skip[i])
            continue;
        if (task_finished(children[i])) {
            any_finished = true;
            if (children[i]->state != TASK_DONE && !wb->first_failed)
                wb->first_failed = children[i];
            if (children[i]->state == TASK_FAILED && !wb->first_raised)
                wb->first_raised = children[i];
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
            wb->items[i].child = children[i];
            task_add_waiter(children[i], &wb->items[i].w);
        }
        r = timeout > 0 ? sched_start_timer(t, on_wait_timeout, timeout) : 0;
        if (r == 0) {
            if (wb->pass_cancel) {
                t->run->on_cancel = pass_cancel;
                t->run->on_cancel_data = wb;
            }
            r = sched_suspend(t);
            t->run->on_cancel = NULL;
            t->run->on_cancel_data = NULL;
            if (timeout > 0)
                sched_stop_timer(t);
        }
        for (size_t i = 0; i < n; i++)
            task_remove_waiter(&wb->items[i].w);
        if (wb->hop_handle) {
            soon_cancel(wb->hop_handle);
            soon_release(wb->hop_handle);
        }
    } else if (wb->hop && n > 0) {
        /* Satisfied already, yet asyncio's wait and gather await all the
         * same (their waiter, their outer future): what is ready runs
         * first, and a cancellation pending for this task is delivered
         * here, not at its next await. */
        r = sched_sleep(t, 0);
    }
    if (ret_first_failed)
        *ret_first_failed = wb->first_failed;
    if (ret_passed)
        *ret_passed = wb->cancel_passed;
    free(wb);
    return r;
}

/* asyncio.wait_for for an aio task: a timeout of 0 or less cancels the
 * child at once; otherwise a timeout scope around the await. Either way
 * the child is waited for after its cancellation, and what it ends with
 * counts: a result it returns after swallowing the cancel, or an error it
 * raises while cancelling; only its cancellation becomes -ETIMEDOUT. */
static int await_for(task *t, task *child, double timeout, Aiod__Value **ret_result) {
    int r;
    if (timeout <= 0) {
        /* Done before: its outcome as it is, a cancellation included
         * (asyncio: `if fut.done(): return fut.result()`). */
        if (task_finished(child))
            return child_outcome(t, child, ret_result);
        if (child->shielded)
            return -ETIMEDOUT; /* the shield ends, not the child */
        task_cancel(child);
        r = watch_children(t, &child, 1, NULL, AIOD_ALL_COMPLETED, 0, false, false, NULL, NULL);
        if (r < 0)
            return r;
        r = child_outcome(t, child, ret_result);
        return r == -ECANCELED ? -ETIMEDOUT : r;
    }
    tmo *tm = NULL;
    r = tmo_enter(t, timeout >= TMO_FOREVER ? TMO_FOREVER : soon_time() + timeout, &tm);
    if (r < 0)
        return r;
    r = watch_children(t, &child, 1, NULL, AIOD_ALL_COMPLETED, 0, true, false, NULL, NULL);
    if (r == 0)
        r = child_outcome(t, child, ret_result);
    return tmo_exit(tm, r);
}

int sched_await_timeout(task *t, task *child, double timeout, bool cancel_on_timeout,
                        Aiod__Value **ret_result) {
    if (t->aio && cancel_on_timeout)
        return await_for(t, child, timeout, ret_result);
    if (t->aio && timeout <= 0 && !task_finished(child))
        return -ETIMEDOUT;
    if (t->aio && timeout >= TMO_FOREVER)
        timeout = 0;
    int r =
        watch_children(t, &child, 1, NULL, AIOD_ALL_COMPLETED, timeout, false, false, NULL, NULL);
    if (r == -ETIMEDOUT && cancel_on_timeout)
        task_cancel(child);
    if (r == -ECANCELED && !t->aio)
        cancel_unshielded(&child, 1);
    if (r < 0)
        return r;
    return child_outcome(t, child, ret_result);
}

int sched_await(task *t, task *child, Aiod__Value **ret_result) {
    if (!t->aio)
        return sched_await_timeout(t, child, 0, false, ret_result);
    /* asyncio's await task: a cancellation goes to the child, and the
     * await reports how the child ends. */
    int r = watch_children(t, &child, 1, NULL, AIOD_ALL_COMPLETED, 0, true, false, NULL, NULL);
    if (r < 0)
        return r;
    return child_outcome(t, child, ret_result);
}

/* An aio task's timeout: <= 0 expires at once, AIOD_FOREVER never. As a
 * watch_children timeout: -1 for "at once", 0 for none. */
static double aio_timeout(const task *t, double timeout) {
    if (!t->aio)
        return timeout;
    if (timeout >= TMO_FOREVER)
        return 0;
    return timeout <= 0 ? -1 : timeout;
}

static int count_finished(task *const *children, size_t n) {
    int done = 0;
    for (size_t i = 0; i < n; i++)
        done += task_finished(children[i]);
    return done;
}

static int by_address(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (task *const *)a, y = (uintptr_t) * (task *const *)b;
    return (x > y) - (x < y);
}

/* asyncio.wait takes a set: a child given twice is one finished child.
 * Over 32 children sorted, not compared pairwise, as a wait may name
 * thousands; without the memory to sort, pairwise all the same. */
static int count_finished_distinct(task *const *children, size_t n) {
    /* Up to 32 children, pairwise: no allocation on a common wait. */
    _cleanup_free_ task **ended = n > 32 ? alloc_malloc(n * sizeof(*ended)) : NULL;
    if (!ended) {
        int done = 0;
        for (size_t i = 0; i < n; i++) {
            bool first = task_finished(children[i]);
            for (size_t j = 0; first && j < i; j++)
                first = children[j] != children[i];
            done += first;
        }
        return done;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (task_finished(children[i]))
            ended[m++] = children[i];
    qsort(ended, m, sizeof(*ended), by_address);
    int done = 0;
    for (size_t i = 0; i < m; i++)
        done += i == 0 || ended[i] != ended[i - 1];
    return done;
}

int sched_wait(task *t, task *const *children, size_t n, double timeout, uint32_t mode) {
    if (t->aio && n == 0)
        return -EINVAL;
    timeout = aio_timeout(t, timeout);
    if (t->aio && mode == AIOD_FIRST_EXCEPTION)
        mode |= WATCH_RAISED_ONLY;
    if (timeout >= 0) {
        int r = watch_children(t, children, n, NULL, mode, timeout, false, true, NULL, NULL);
        if (r < 0 && r != -ETIMEDOUT)
            return r;
    } else {
        /* Expired at once, yet asyncio's wait awaits its waiter all the
         * same: what was ready to run (a child just created) runs first. */
        int r = sched_sleep(t, 0);
        if (r < 0)
            return r;
    }
    return t->aio ? count_finished_distinct(children, n) : count_finished(children, n);
}

int sched_as_completed(task *t, task *const *children, size_t n, unsigned char *seen,
                       double timeout, size_t *ret_index) {
    if (t->aio) {
        /* The timeout covers the whole iteration: it counts from the
         * call that starts one (no child marked seen yet). */
        bool first = true;
        for (size_t i = 0; i < n && first; i++)
            first = !seen[i];
        timeout = aio_timeout(t, timeout);
        if (first || t->run->ac_seen != seen) {
            t->run->ac_seen = seen;
            t->run->ac_deadline = timeout > 0 ? soon_time() + timeout : timeout;
            t->run->ac_expired = false;
        } else if (t->run->ac_expired) {
            /* asyncio: past the iteration's timeout every step is a
             * TimeoutError, also for a child that ended since. */
            return -ETIMEDOUT;
        }
        timeout = t->run->ac_deadline;
        if (timeout > 0) {
            timeout -= soon_time();
            if (timeout <= 0)
                timeout = -1;
        }
    }
    for (;;) {
        /* Of the children that ended, the one that ended first (asyncio's
         * queue is fed by their done-callbacks, in the order they end). */
        size_t best = n;
        bool left = false;
        for (size_t i = 0; i < n; i++) {
            if (seen[i])
                continue;
            left = true;
            const task *c = children[i];
            if (task_finished(c) && (best == n || task_ended_before(c, children[best])))
                best = i;
        }
        if (best < n) {
            /* A child given twice is one step (asyncio makes a set). */
            for (size_t i = best; i < n; i++)
                if (children[i] == children[best])
                    seen[i] = 1;
            *ret_index = best;
            return 0;
        }
        if (!left)
            return -ENOENT;
        if (timeout < 0) {
            if (t->aio)
                t->run->ac_expired = true;
            return -ETIMEDOUT;
        }
        int r = watch_children(t, children, n, seen, AIOD_FIRST_COMPLETED, timeout, false, true,
                               NULL, NULL);
        if (r == -ETIMEDOUT && t->aio)
            t->run->ac_expired = true;
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
    bool passed = false;
    int r = watch_children(t, children, n, NULL,
                           return_exceptions ? AIOD_ALL_COMPLETED : AIOD_FIRST_EXCEPTION, 0, true,
                           true, &first_failed, &passed);
    if (r == -ECANCELED && !t->aio)
        cancel_unshielded(children, n); /* cancelling a gather cancels its children */
    if (r < 0)
        return r;
    if (!return_exceptions && first_failed) {
        Aiod__Value *unused = NULL;
        return child_outcome(t, first_failed, &unused);
    }
    /* asyncio: a gather that was cancelled ends cancelled once its
     * children have ended, whatever they returned. */
    if (passed)
        return -ECANCELED;
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
