/*
 * asyncio's synchronisation primitives (sync.h), one struct for all six kinds. The logic follows
 * CPython's Lib/asyncio/locks.py (3.12/3.13) step by step, so that the orders its tests check
 * (FIFO hand-over, which waiter a cancel passes the wake-up to, when a woken task takes the lock)
 * come out the same:
 * - Lock: acquire is immediate only when unlocked and every queued waiter was cancelled; release
 *   sets the first waiter, which takes the lock when it runs; a waiter cancelled while the lock
 *   is free wakes the next one.
 * - Semaphore: the value is taken for a waiter at wake-up time (value - 1 when its future is
 *   set), given back if that waiter is cancelled before it runs; every acquire that ends wakes as
 *   many waiters as the value allows.
 * - Condition: wait releases the lock, waits for a notify, and takes the lock again even when
 *   cancelled (retrying until it has it); any failure passes one notification on.
 * - Barrier: asyncio's four states (filling, draining, resetting, broken). asyncio guards them
 *   with a Condition whose lock is never held across a suspension, so here every state change
 *   simply wakes every waiter, and each re-checks the state when it runs, as wait_for does.
 */
#include "api/sync.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/freelist.h"
#include "core/sched.h"
#include "core/task.h"

#define SYNC_MAGIC 0x73796e63u /* "sync" */

enum barrier_state { BARRIER_FILLING, BARRIER_DRAINING, BARRIER_RESETTING, BARRIER_BROKEN };

struct aiod_sync {
    /* SYNC_MAGIC while alive: a plugin passing some other pointer gets -EINVAL. */
    uint32_t magic;
    /* AIOD_SYNC_*. */
    uint32_t kind;
    /* Tasks inside a call that may suspend (acquire, wait, wait_for): sync_free refuses while
     * there are any, even when they were woken and have not run yet. */
    unsigned active;
    /* Conditions built on this lock (sync_new's `lock`): it outlives them. */
    unsigned users;
    /* Lock: held. Event: set. */
    bool flag;
    /* Condition: its own lock was made by sync_new (freed with it). */
    bool own_lock;
    /* Barrier: enum barrier_state. */
    uint8_t state;
    /* Semaphore: the counter; BoundedSemaphore: also `bound`, the initial value. */
    int64_t value, bound;
    /* Barrier: the parties, and how many tasks are inside wait (asyncio's _count). */
    int64_t parties, count;
    /* Condition: its lock (a AIOD_SYNC_LOCK). */
    struct aiod_sync *lock;
    /* The waiters: of the lock, the event, the semaphore, the condition (notify) or the
     * barrier (any state change). */
    sync_waitq waiters;
};

/* Waiter records come and go with every wait: keep some for reuse. */
static freelist waiter_blocks = FREELIST_INIT(sizeof(sync_waiter), 4096);

/* ---- waiter FIFOs (shared with queue.c) */

void sync_waitq_init(sync_waitq *q) {
    list_init(&q->head);
    q->n = 0;
}

int sync_waiter_add(sync_waitq *q, sync_waiter **ret_waiter) {
    sync_waiter *w = freelist_take(&waiter_blocks);
    if (!w)
        return -ENOMEM;
    w->f = fut_new();
    if (!w->f) {
        freelist_give(&waiter_blocks, w);
        return -ENOMEM;
    }
    list_insert_tail(&q->head, &w->link);
    q->n++;
    *ret_waiter = w;
    return 0;
}

int sync_waiter_await(task *t, sync_waiter *w) {
    return fut_await(t, w->f, NULL);
}

bool sync_waiter_woken(const sync_waiter *w) {
    return w->f->state == TASK_DONE;
}

static void unlink_waiter(sync_waitq *q, sync_waiter *w) {
    if (!list_linked(&w->link))
        return;
    list_remove(&w->link);
    q->n--;
}

void sync_waiter_free(sync_waitq *q, sync_waiter *w) {
    if (!w)
        return;
    unlink_waiter(q, w);
    fut_unref(w->f);
    freelist_give(&waiter_blocks, w);
}

sync_waiter *sync_waitq_first(const sync_waitq *q) {
    list *l = list_first(&q->head);
    return l ? container_of(l, sync_waiter, link) : NULL;
}

bool sync_waitq_pop_wake(sync_waitq *q) {
    sync_waiter *w;
    while ((w = sync_waitq_first(q))) {
        unlink_waiter(q, w);
        if (!fut_done(w->f)) {
            fut_set_result(w->f, NULL);
            return true;
        }
    }
    return false;
}

size_t sync_waitq_wake_all(sync_waitq *q, bool pop) {
    size_t woken = 0;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &q->head) {
        sync_waiter *w = container_of(pos, sync_waiter, link);
        if (pop)
            unlink_waiter(q, w);
        if (!fut_done(w->f)) {
            fut_set_result(w->f, NULL);
            woken++;
        }
    }
    return woken;
}

bool sync_task_running(const aiod_task *t) {
    return t && sched_current() == (const task *)t;
}

/* Queues a waiter on s, awaits it and frees it. When `woken` is not NULL it says whether the
 * future had been set (the task may also have been cancelled after that). */
static int wait_turn(task *t, aiod_sync *s, bool *woken) {
    sync_waiter *w = NULL;
    int r = sync_waiter_add(&s->waiters, &w);
    if (r < 0)
        return r;
    r = sync_waiter_await(t, w);
    if (woken)
        *woken = sync_waiter_woken(w);
    sync_waiter_free(&s->waiters, w);
    return r;
}

static bool valid(const aiod_sync *s) {
    return s && s->magic == SYNC_MAGIC;
}

static bool is_kind(const aiod_sync *s, uint32_t kind) {
    return valid(s) && s->kind == kind;
}

static bool is_semaphore(const aiod_sync *s) {
    return valid(s) && (s->kind == AIOD_SYNC_SEMAPHORE || s->kind == AIOD_SYNC_BOUNDED_SEMAPHORE);
}

/* Lock and Condition: the lock whose state counts. */
static aiod_sync *lock_of(aiod_sync *s) {
    if (is_kind(s, AIOD_SYNC_LOCK))
        return s;
    if (is_kind(s, AIOD_SYNC_CONDITION))
        return s->lock;
    return NULL;
}

/* ---- Lock */

/* asyncio's Lock._wake_up_first: only the head of the FIFO is looked at; if it is done it is
 * already about to run (or to pass the wake-up on, when cancelled). */
static void lock_wake_first(aiod_sync *l) {
    sync_waiter *w = sync_waitq_first(&l->waiters);
    if (w && !fut_done(w->f))
        fut_set_result(w->f, NULL);
}

static bool all_cancelled(const sync_waitq *q) {
    list *pos;
    for (pos = q->head.next; pos != &q->head; pos = pos->next)
        if (container_of(pos, sync_waiter, link)->f->state != TASK_CANCELLED)
            return false;
    return true;
}

static int lock_acquire(task *t, aiod_sync *l) {
    /* Fair: a free lock is taken at once only if nobody queued before is still due. */
    if (!l->flag && all_cancelled(&l->waiters)) {
        l->flag = true;
        return 0;
    }
    int r = wait_turn(t, l, NULL);
    if (r < 0) {
        /* Whoever woke us (or would have) expects the lock to be taken: pass it on. */
        if (!l->flag)
            lock_wake_first(l);
        return r;
    }
    l->flag = true;
    return 0;
}

static int lock_release(aiod_sync *l) {
    if (!l->flag)
        return -EPERM;
    l->flag = false;
    lock_wake_first(l);
    return 0;
}

/* ---- Semaphore */

static bool sem_locked(const aiod_sync *s) {
    if (s->value == 0)
        return true;
    list *pos;
    for (pos = s->waiters.head.next; pos != &s->waiters.head; pos = pos->next)
        if (container_of(pos, sync_waiter, link)->f->state != TASK_CANCELLED)
            return true;
    return false;
}

/* asyncio's Semaphore._wake_up_next: the value is taken on the woken waiter's behalf. */
static bool sem_wake_next(aiod_sync *s) {
    list *pos;
    for (pos = s->waiters.head.next; pos != &s->waiters.head; pos = pos->next) {
        sync_waiter *w = container_of(pos, sync_waiter, link);
        if (!fut_done(w->f)) {
            s->value--;
            fut_set_result(w->f, NULL);
            return true;
        }
    }
    return false;
}

static int sem_acquire(task *t, aiod_sync *s) {
    if (!sem_locked(s)) {
        s->value--;
        return 0;
    }
    bool woken = false;
    int r = wait_turn(t, s, &woken);
    /* Woken (the value was taken for us) but not acquiring after all: give it back. */
    if (r < 0 && woken)
        s->value++;
    /* Others may have queued behind us while the value was positive (FIFO): wake as many as
     * the value allows. */
    while (s->value > 0 && sem_wake_next(s))
        ;
    return r;
}

static int sem_release(aiod_sync *s) {
    if (s->kind == AIOD_SYNC_BOUNDED_SEMAPHORE && s->value >= s->bound)
        return -EOVERFLOW;
    s->value++;
    sem_wake_next(s);
    return 0;
}

/* ---- Condition */

/* Condition._notify: sets up to n waiters that are not done yet, oldest first. */
static void cond_notify(aiod_sync *c, size_t n) {
    size_t woken = 0;
    list *pos;
    for (pos = c->waiters.head.next; pos != &c->waiters.head && woken < n; pos = pos->next) {
        sync_waiter *w = container_of(pos, sync_waiter, link);
        if (!fut_done(w->f)) {
            woken++;
            fut_set_result(w->f, NULL);
        }
    }
}

static int cond_wait(task *t, aiod_sync *c) {
    aiod_sync *l = c->lock;
    if (!l->flag)
        return -EPERM;
    /* The future first: running out of memory must leave the lock held. */
    sync_waiter *w = NULL;
    int r = sync_waiter_add(&c->waiters, &w);
    if (r < 0)
        return r;
    lock_release(l);
    r = sync_waiter_await(t, w);
    sync_waiter_free(&c->waiters, w);
    /* The lock is held again on return, also when cancelled: retry until it is; the last
     * cancellation seen is what the call returns. */
    int err = 0;
    for (;;) {
        int a = lock_acquire(t, l);
        if (a == 0)
            break;
        err = a;
        if (a != -ECANCELED)
            break; /* out of memory: returned without the lock */
    }
    if (err < 0 || r < 0) {
        /* This task may have been notified before it failed: another one gets the wake-up
         * instead (a spurious wake-up is allowed). */
        cond_notify(c, 1);
        return err < 0 ? err : r;
    }
    return 0;
}

/* ---- Barrier */

static int barrier_wait(task *t, aiod_sync *b) {
    int r = 0;
    /* Blocked while the barrier drains or resets. */
    while (b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING) {
        r = wait_turn(t, b, NULL);
        if (r < 0)
            return r;
    }
    if (b->state == BARRIER_BROKEN)
        return -EPIPE;
    int64_t index = b->count++;
    if (index + 1 == b->parties) {
        /* The last party releases the others. */
        b->state = BARRIER_DRAINING;
        sync_waitq_wake_all(&b->waiters, false);
    } else {
        while (b->state == BARRIER_FILLING) {
            r = wait_turn(t, b, NULL);
            if (r < 0)
                break;
        }
        if (r == 0 && (b->state == BARRIER_BROKEN || b->state == BARRIER_RESETTING))
            r = -EPIPE;
    }
    /* Leaving: the last one out ends the draining or the reset. */
    if (--b->count == 0) {
        if (b->state == BARRIER_RESETTING || b->state == BARRIER_DRAINING)
            b->state = BARRIER_FILLING;
        sync_waitq_wake_all(&b->waiters, false);
    }
    if (r < 0)
        return r;
    return index > INT32_MAX ? INT32_MAX : (int)index;
}

/* ---- the api table's entries */

int api_sync_new(uint32_t kind, int64_t value, aiod_sync *lock, aiod_sync **ret_sync) {
    if (!ret_sync || kind < AIOD_SYNC_EVENT || kind > AIOD_SYNC_BARRIER)
        return -EINVAL;
    if (lock && (kind != AIOD_SYNC_CONDITION || !is_kind(lock, AIOD_SYNC_LOCK)))
        return -EINVAL;
    switch (kind) {
    case AIOD_SYNC_SEMAPHORE:
    case AIOD_SYNC_BOUNDED_SEMAPHORE:
        if (value < 0)
            return -EINVAL;
        break;
    case AIOD_SYNC_BARRIER:
        if (value <= 0)
            return -EINVAL;
        break;
    default:
        if (value != 0)
            return -EINVAL;
        break;
    }
    aiod_sync *s = alloc_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->magic = SYNC_MAGIC;
    s->kind = kind;
    s->value = s->bound = value;
    s->parties = value;
    s->state = BARRIER_FILLING;
    sync_waitq_init(&s->waiters);
    if (kind == AIOD_SYNC_CONDITION) {
        if (lock) {
            s->lock = lock;
        } else {
            int r = api_sync_new(AIOD_SYNC_LOCK, 0, NULL, &s->lock);
            if (r < 0) {
                free(s);
                return r;
            }
            s->own_lock = true;
        }
        s->lock->users++;
    }
    *ret_sync = s;
    return 0;
}

int api_sync_free(aiod_sync *s) {
    if (!s)
        return 0;
    if (!valid(s))
        return -EINVAL;
    if (s->active > 0 || s->users > 0 || s->waiters.n > 0 ||
        (s->own_lock && (s->lock->active > 0 || s->lock->waiters.n > 0)))
        return -EBUSY;
    if (s->lock) {
        s->lock->users--;
        if (s->own_lock)
            api_sync_free(s->lock);
    }
    s->magic = 0;
    free(s);
    return 0;
}

int api_sync_acquire(aiod_task *at, aiod_sync *s) {
    if (!sync_task_running(at) || !valid(s))
        return -EINVAL;
    aiod_sync *l = lock_of(s);
    if (!l && !is_semaphore(s))
        return -EINVAL;
    aiod_sync *owner = l ? l : s;
    owner->active++;
    int r = l ? lock_acquire((task *)at, l) : sem_acquire((task *)at, s);
    owner->active--;
    return r;
}

int api_sync_release(aiod_sync *s) {
    aiod_sync *l = lock_of(s);
    if (l)
        return lock_release(l);
    if (is_semaphore(s))
        return sem_release(s);
    return -EINVAL;
}

int api_sync_locked(const aiod_sync *s) {
    aiod_sync *l = lock_of((aiod_sync *)s);
    if (l)
        return l->flag;
    if (is_semaphore(s))
        return sem_locked(s);
    return -EINVAL;
}

int api_sync_set(aiod_sync *s) {
    if (!is_kind(s, AIOD_SYNC_EVENT))
        return -EINVAL;
    if (!s->flag) {
        s->flag = true;
        sync_waitq_wake_all(&s->waiters, false);
    }
    return 0;
}

int api_sync_clear(aiod_sync *s) {
    if (!is_kind(s, AIOD_SYNC_EVENT))
        return -EINVAL;
    s->flag = false;
    return 0;
}

int api_sync_is_set(const aiod_sync *s) {
    if (!is_kind(s, AIOD_SYNC_EVENT))
        return -EINVAL;
    return s->flag;
}

int api_sync_wait(aiod_task *at, aiod_sync *s) {
    if (!sync_task_running(at) || !valid(s))
        return -EINVAL;
    task *t = (task *)at;
    int r;
    switch (s->kind) {
    case AIOD_SYNC_EVENT:
        if (s->flag)
            return 0;
        s->active++;
        r = wait_turn(t, s, NULL);
        s->active--;
        return r;
    case AIOD_SYNC_CONDITION:
        s->active++;
        s->lock->active++;
        r = cond_wait(t, s);
        s->lock->active--;
        s->active--;
        return r;
    case AIOD_SYNC_BARRIER:
        s->active++;
        r = barrier_wait(t, s);
        s->active--;
        return r;
    default:
        return -EINVAL;
    }
}

int api_sync_wait_for(aiod_task *at, aiod_sync *s, int (*pred)(void *data), void *data) {
    if (!sync_task_running(at) || !is_kind(s, AIOD_SYNC_CONDITION) || !pred)
        return -EINVAL;
    s->active++;
    s->lock->active++;
    int r = 0;
    /* The predicate first, as asyncio does: true at once needs no lock. */
    while (!pred(data)) {
        r = cond_wait((task *)at, s);
        if (r < 0)
            break;
    }
    s->lock->active--;
    s->active--;
    return r;
}

int api_sync_notify(aiod_sync *s, size_t n) {
    if (!is_kind(s, AIOD_SYNC_CONDITION))
        return -EINVAL;
    if (!s->lock->flag)
        return -EPERM;
    cond_notify(s, n);
    return 0;
}

int api_sync_reset(aiod_sync *s) {
    if (!is_kind(s, AIOD_SYNC_BARRIER))
        return -EINVAL;
    if (s->count > 0)
        s->state = BARRIER_RESETTING;
    else
        s->state = BARRIER_FILLING;
    sync_waitq_wake_all(&s->waiters, false);
    return 0;
}

int api_sync_abort(aiod_sync *s) {
    if (!is_kind(s, AIOD_SYNC_BARRIER))
        return -EINVAL;
    s->state = BARRIER_BROKEN;
    sync_waitq_wake_all(&s->waiters, false);
    return 0;
}

int64_t api_sync_count(const aiod_sync *s, uint32_t what) {
    if (!valid(s))
        return -EINVAL;
    switch (what) {
    case AIOD_COUNT_WAITING:
        if (s->kind == AIOD_SYNC_BARRIER)
            return s->state == BARRIER_FILLING ? s->count : 0; /* Barrier.n_waiting */
        return (int64_t)s->waiters.n;
    case AIOD_COUNT_VALUE:
        return is_semaphore(s) ? s->value : -EINVAL;
    case AIOD_COUNT_PARTIES:
        return s->kind == AIOD_SYNC_BARRIER ? s->parties : -EINVAL;
    case AIOD_COUNT_BROKEN:
        return s->kind == AIOD_SYNC_BARRIER ? s->state == BARRIER_BROKEN : -EINVAL;
    default:
        return -EINVAL;
    }
}
