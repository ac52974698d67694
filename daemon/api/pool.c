/*
 * Thread-pool work for tasks (pool.h).
 *
 * One heap `pool_work` per call holds the uv_work_t and everything the pool
 * thread and the after-work callback need, so neither ever looks at the
 * task's stack. While the task waits, it owns the item: the after-work
 * callback marks it done and wakes the task, which reads the result and
 * frees it. When the task stops waiting (cancellation), it marks the item
 * abandoned and returns -ECANCELED at once; from then on the item belongs to
 * the after-work callback, which drops the result, calls release(arg) on the
 * loop thread and frees it. The item holds a task reference throughout, so
 * the callback never meets a freed task even if the task has long ended.
 *
 * The item also holds the task's plugin (plugin_hold): `work` and
 * `release` are that plugin's code, which a reload must not unload while a
 * pool thread may still run it or release is still to be called, even
 * though the cancelled task itself has long finished.
 *
 * An abandoned item that has not started yet is taken off the queue with
 * uv_cancel (its after-work callback then runs with UV_ECANCELED), so a
 * cancelled task does not keep a pool thread busy for nothing.
 */
#include "api/pool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <uv.h>

#include "alloc.h"
#include "core/coro.h"
#include "system/log.h"
#include "host/registry.h"
#include "core/sched.h"
#include "core/task.h"

typedef struct pool_work {
    /* The libuv request; its `data` is unused (container_of-free cast). */
    uv_work_t req;
    /* What the plugin asked for. `arg` is heap memory by contract. */
    int (*work)(void *arg);
    void (*release)(void *arg);
    void *arg;
    /* A reference to the task, dropped when the item is freed. */
    task *t;
    /* The plugin whose code work and release are, held likewise. */
    plugin *owner;
    /* work's return value, written by the pool thread before after-work. */
    int result;
    /* After-work ran; `status` is its libuv status (0 or UV_ECANCELED). */
    bool done;
    int status;
    /* The task stopped waiting: the after-work callback owns the item. */
    bool abandoned;
} pool_work;

static unsigned in_flight;

unsigned pool_in_flight(void) {
    return in_flight;
}

static void pool_work_free(pool_work *w) {
    task_unref(w->t);
    if (w->owner) {
        plugin_release(w->owner);
        plugin_unref(w->owner);
    }
    free(w);
}

/* On a pool thread: only the plugin's work function, nothing of ours. */
static void on_work(uv_work_t *req) {
    pool_work *w = (pool_work *)req;
    w->result = w->work(w->arg);
}

/* On the loop thread, after on_work returned or the request was cancelled. */
static void on_after_work(uv_work_t *req, int status) {
    pool_work *w = (pool_work *)req;
    in_flight--;
    if (w->abandoned) {
        log_task(LOG_DEBUG, w->t, "to_thread: %s; releasing its argument",
                 status == UV_ECANCELED ? "work never started (task cancelled)"
                                        : "late result of a cancelled task dropped");
        if (w->release)
            w->release(w->arg);
        pool_work_free(w);
        return;
    }
    w->done = true;
    w->status = status;
    sched_wake(w->t, 0);
}

int pool_to_thread(task *t, int (*work)(void *arg), void (*release)(void *arg), void *arg) {
    if (arg && coro_on_run_stack(arg)) {
        log_task(LOG_ERR, t,
                 "to_thread: arg %p points into the coroutine stack, which is copied aside "
                 "while the task waits; pass heap memory",
                 arg);
        return -EINVAL;
    }
    if (task_cancel_due(t)) {
        /* The same contract as a cancellation during the wait: after
         * -ECANCELED the task no longer owns arg. */
        if (release)
            release(arg);
        return -ECANCELED;
    }
    pool_work *w = alloc_calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->work = work;
    w->release = release;
    w->arg = arg;
    w->t = task_ref(t);
    w->owner = t->fn ? t->fn->owner : NULL;
    if (w->owner)
        plugin_hold(w->owner);
    int r = uv_queue_work(sched_loop(), &w->req, on_work, on_after_work);
    if (r < 0) {
        pool_work_free(w);
        return r;
    }
    in_flight++;

    /* Only on_after_work wakes us with 0; anything else is cancellation. */
    do
        r = sched_suspend(t);
    while (r == 0 && !w->done);
    if (!w->done) {
        w->abandoned = true;
        /* Fails with UV_EBUSY once a thread has picked it up; then it runs
         * to its end and on_after_work drops the result. */
        (void)uv_cancel((uv_req_t *)&w->req);
        return r;
    }
    r = w->status < 0 ? w->status : w->result;
    pool_work_free(w);
    return r;
}
