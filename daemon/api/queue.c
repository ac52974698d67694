/*
 * asyncio's queues (queue.h), following CPython's Lib/asyncio/queues.py (3.13): getters and
 * putters are FIFOs of waiter futures; whoever makes room or adds an item pops the first waiter
 * that is not done and sets it, and the woken task checks again when it runs; a task cancelled
 * after it was woken passes the wake-up on. join waits on a flag that is set when the count of
 * unfinished items falls to zero (asyncio's _finished Event). shutdown wakes every waiter so that
 * each sees the shut-down state.
 *
 * The items, in the order of the queue's kind, are kept by qitems.c: priority queues order them by
 * (priority, arrival), so that equal priorities come out in FIFO order (asyncio compares the items
 * themselves; a C value has no order).
 */
#include "api/queue.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "api/qitems.h"
#include "api/sync.h"
#include "core/task.h"
#include "pbvalue.h"

#define QUEUE_MAGIC 0x71756575u /* "queu" */

struct aiod_queue {
    /* QUEUE_MAGIC while alive: a plugin passing some other pointer gets -EINVAL. */
    uint32_t magic;
    /* Items allowed at once; 0: unbounded. */
    int64_t maxsize;
    qitems items;
    /* asyncio's _getters, _putters, and the waiters of the _finished event (join). */
    sync_waitq getters, putters, joiners;
    /* Items put and not yet marked task_done. */
    uint64_t unfinished;
    /* asyncio's _finished event: set while nothing is unfinished. */
    bool finished;
    /* shutdown was called. */
    bool shut;
    /* Tasks inside put, get or join: queue_free refuses while there are any. */
    unsigned active;
};

static bool valid(const aiod_queue *q) {
    return q && q->magic == QUEUE_MAGIC;
}

static bool is_full(const aiod_queue *q) {
    return q->maxsize > 0 && q->items.n >= (uint64_t)q->maxsize;
}

/* asyncio's _finished.set(). */
static void set_finished(aiod_queue *q) {
    if (!q->finished) {
        q->finished = true;
        sync_waitq_wake_all(&q->joiners, false);
    }
}

/* One wait in put or get: awaits a new waiter on `ws`. On failure (cancelled) the future is
 * cancelled in case it was still pending, and a waiter that had been woken but cannot use it
 * passes the wake-up on when `can_use` (room to put, an item to get) still holds. */
static int wait_on(task *t, aiod_queue *q, sync_waitq *ws, bool putter) {
    sync_waiter *w = NULL;
    int r = sync_waiter_add(ws, &w);
    if (r < 0)
        return r;
    r = sync_waiter_await(t, w);
    if (r < 0) {
        fut_cancel(w->f, NULL);
        bool woken = sync_waiter_woken(w);
        sync_waiter_free(ws, w);
        bool can_use = putter ? !is_full(q) : q->items.n > 0;
        if (can_use && woken)
            sync_waitq_pop_wake(ws);
        return r;
    }
    sync_waiter_free(ws, w);
    return 0;
}

int api_queue_new(uint32_t kind, int64_t maxsize, aiod_queue **ret_queue) {
    if (!ret_queue || kind < AIOD_QUEUE_FIFO || kind > AIOD_QUEUE_PRIORITY)
        return -EINVAL;
    aiod_queue *q = alloc_calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->magic = QUEUE_MAGIC;
    qitems_init(&q->items, kind);
    /* <= 0 is unbounded, read back as 0: a negative maxsize could not be
     * told from the -EINVAL queue_maxsize gives for a bad queue. */
    q->maxsize = maxsize > 0 ? maxsize : 0;
    sync_waitq_init(&q->getters);
    sync_waitq_init(&q->putters);
    sync_waitq_init(&q->joiners);
    q->finished = true;
    *ret_queue = q;
    return 0;
}

int api_queue_free(aiod_queue *q) {
    if (!q)
        return 0;
    if (!valid(q))
        return -EINVAL;
    if (q->active > 0 || q->getters.n > 0 || q->putters.n > 0 || q->joiners.n > 0)
        return -EBUSY;
    qitems_clear(&q->items);
    q->magic = 0;
    free(q);
    return 0;
}

int api_queue_put_nowait(aiod_queue *q, int64_t priority, aiod_value *item) {
    Aiod__Value *v = (Aiod__Value *)item;
    if (!valid(q)) {
        pbvalue_free(v);
        return -EINVAL;
    }
    if (q->shut) {
        pbvalue_free(v);
        return -EPIPE;
    }
    if (is_full(q)) {
        pbvalue_free(v);
        return -EAGAIN;
    }
    int r = qitems_push(&q->items, priority, v);
    if (r < 0) {
        pbvalue_free(v);
        return r;
    }
    q->unfinished++;
    q->finished = false;
    sync_waitq_pop_wake(&q->getters);
    return 0;
}

int api_queue_put(aiod_task *at, aiod_queue *q, int64_t priority, aiod_value *item) {
    if (!sync_task_running(at) || !valid(q)) {
        pbvalue_free((Aiod__Value *)item);
        return -EINVAL;
    }
    int r = 0;
    q->active++;
    while (is_full(q)) {
        if (q->shut) {
            r = -EPIPE;
            break;
        }
        r = wait_on((task *)at, q, &q->putters, true);
        if (r < 0)
            break;
    }
    q->active--;
    if (r < 0) {
        pbvalue_free((Aiod__Value *)item);
        return r;
    }
    return api_queue_put_nowait(q, priority, item);
}

int api_queue_get_nowait(aiod_queue *q, aiod_value **ret_item) {
    if (!valid(q) || !ret_item)
        return -EINVAL;
    if (q->items.n == 0)
        return q->shut ? -EPIPE : -EAGAIN;
    int r = qitems_take(&q->items, (Aiod__Value **)ret_item);
    if (r < 0)
        return r;
    sync_waitq_pop_wake(&q->putters);
    return 0;
}

int api_queue_get(aiod_task *at, aiod_queue *q, aiod_value **ret_item) {
    if (!sync_task_running(at) || !valid(q) || !ret_item)
        return -EINVAL;
    int r = 0;
    q->active++;
    while (q->items.n == 0) {
        if (q->shut) {
            r = -EPIPE;
            break;
        }
        r = wait_on((task *)at, q, &q->getters, false);
        if (r < 0)
            break;
    }
    q->active--;
    if (r < 0)
        return r;
    return api_queue_get_nowait(q, ret_item);
}

int api_queue_task_done(aiod_queue *q) {
    if (!valid(q) || q->unfinished == 0)
        return -EINVAL;
    if (--q->unfinished == 0)
        set_finished(q);
    return 0;
}

int api_queue_join(aiod_task *at, aiod_queue *q) {
    if (!sync_task_running(at) || !valid(q))
        return -EINVAL;
    if (q->unfinished == 0 || q->finished)
        return 0;
    sync_waiter *w = NULL;
    int r = sync_waiter_add(&q->joiners, &w);
    if (r < 0)
        return r;
    q->active++;
    r = sync_waiter_await((task *)at, w);
    q->active--;
    sync_waiter_free(&q->joiners, w);
    return r;
}

size_t api_queue_size(const aiod_queue *q) {
    return valid(q) ? q->items.n : 0;
}

int64_t api_queue_maxsize(const aiod_queue *q) {
    return valid(q) ? q->maxsize : -EINVAL;
}

int api_queue_shutdown(aiod_queue *q, int immediate) {
    if (!valid(q))
        return -EINVAL;
    q->shut = true;
    if (immediate) {
        /* The dropped items count as done. */
        q->unfinished -= q->items.n < q->unfinished ? q->items.n : q->unfinished;
        qitems_clear(&q->items);
        if (q->unfinished == 0)
            set_finished(q);
    }
    /* Every getter and putter checks the state again. */
    sync_waitq_wake_all(&q->getters, true);
    sync_waitq_wake_all(&q->putters, true);
    return 0;
}
