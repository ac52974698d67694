/*
 * Ready queue, suspension, wake-up and sleep (sched.h).
 */
#include "core/sched.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/hashmap.h"
#include "core/coro.h"
#include "core/reclaim.h"
#include "core/soon.h"
#include "core/task.h"

/*
 * The ready queue is fair between users: each owner uid has its own queue
 * (FIFO, as asyncio's), and the drain takes one task from each user's queue
 * in turn. A user who makes a million tasks ready at once (cancelling
 * them, say) delays another user's next task by one step each, not by a
 * million steps.
 */
typedef struct runq {
    /* Its tasks (task_run.ready_node), oldest first. */
    list tasks;
    /* On `active` while it has tasks. */
    list node;
    uid_t uid;
} runq;

static uv_loop_t *loop;
static uv_idle_t idle_handle;
/* The queues with tasks, in the order they take turns; all of them by uid
 * (kept when empty: there are as many as users who ran tasks). */
static list active;
static hashmap *queues;
static runq *last_q;
static size_t n_ready;
static task *current;

uv_loop_t *sched_loop(void) {
    return loop;
}

task *sched_current(void) {
    return current;
}

void sched_set_current(task *t) {
    assert(!t || !current);
    current = t;
}

size_t sched_ready_count(void) {
    return n_ready;
}

static void on_idle(uv_idle_t *h) {
    (void)h; /* exists only to keep the poll phase from blocking */
}

static runq *queue_of(uid_t uid) {
    if (last_q && last_q->uid == uid)
        return last_q;
    runq *q = queues ? hashmap_get_u64(queues, uid) : NULL;
    if (!q) {
        if (!queues && !(queues = hashmap_new(0)))
            return NULL;
        q = alloc_calloc(1, sizeof(*q));
        if (!q)
            return NULL;
        list_init(&q->tasks);
        list_init(&q->node);
        q->uid = uid;
        if (hashmap_put_u64(queues, uid, q) < 0) {
            free(q);
            return NULL;
        }
    }
    return last_q = q;
}

/* Without memory for a user's queue, tasks go to a shared one. */
static runq fallback = {.tasks = {&fallback.tasks, &fallback.tasks},
                        .node = {&fallback.node, &fallback.node}};

static void enqueue(task *t) {
    if (t->run->queued)
        return;
    t->run->queued = true;
    task_ref(t);
    runq *q = queue_of(t->uid);
    if (!q)
        q = &fallback;
    if (list_empty(&q->tasks))
        list_insert_tail(&active, &q->node);
    t->run->ready_seq = soon_next_seq();
    list_insert_tail(&q->tasks, &t->run->ready_node);
    if (n_ready++ == 0)
        uv_idle_start(&idle_handle, on_idle);
}

void sched_start(task *t) {
    enqueue(t);
}

bool sched_peek_ready(uint64_t *ret_seq) {
    if (list_empty(&active))
        return false;
    runq *q = container_of(list_first(&active), runq, node);
    *ret_seq = task_of(list_first(&q->tasks), ready_node)->run->ready_seq;
    return true;
}

task *sched_take_ready(void) {
    if (list_empty(&active))
        return NULL;
    runq *q = container_of(list_first(&active), runq, node);
    task *t = task_of(list_first(&q->tasks), ready_node);
    list_remove(&t->run->ready_node);
    /* The next turn is the next user's. */
    list_remove(&q->node);
    if (!list_empty(&q->tasks))
        list_insert_tail(&active, &q->node);
    t->run->queued = false;
    if (--n_ready == 0)
        uv_idle_stop(&idle_handle);
    return t;
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

bool task_cancel_due(task *t) {
    if (!t->aio)
        return t->cancel_requested;
    if (!t->run->must_cancel)
        return false;
    t->run->must_cancel = false;
    return true;
}

/* What a suspension returns: the wake-up's status, unless a cancellation
 * came while that wake-up was queued (finish.c's deliver) and was not taken
 * back by an uncancel since. */
static int resumed(task *t) {
    task_run *r = t->run;
    if (t->aio && r->must_cancel) {
        r->must_cancel = false;
        return -ECANCELED;
    }
    return r->wake_status;
}

int sched_suspend(task *t) {
    assert(t == current);
    task_run *r = t->run;
    if (!t->aio && t->cancel_requested)
        return -ECANCELED;
    r->suspended = true;
    r->wake_pending = false;
    r->wake_status = 0;
    if (t->aio && r->must_cancel) {
        /* asyncio: a cancellation requested while the task ran goes to
         * what it now starts to wait on, if that takes it (the task then
         * waits for it as usual); else the task gets -ECANCELED. Either
         * way through the ready queue: passing it on may already have
         * woken the task. */
        r->must_cancel = false;
        if (!(r->on_cancel && r->on_cancel(t, r->on_cancel_data))) {
            if (r->wake_pending)
                r->wake_status = -ECANCELED;
            else
                sched_wake(t, -ECANCELED);
        }
    }
    coro_yield();
    return resumed(t);
}

int sched_init(uv_loop_t *l) {
    loop = l;
    reclaim_set_loop(l);
    list_init(&active);
    uv_idle_init(loop, &idle_handle);
    return soon_init(loop);
}

void sched_done(void) {
    task *t;
    while ((t = sched_take_ready()))
        task_unref(t);
    soon_done();
    uv_close((uv_handle_t *)&idle_handle, NULL);
    size_t st = 0;
    void *cur = NULL;
    runq *q;
    while (queues && (q = hashmap_next(queues, &st, &cur)))
        free(q);
    hashmap_free(queues);
    queues = NULL;
    last_q = NULL;
}

int sched_start_timer(task *t, uv_timer_cb cb, double seconds) {
    task_run *run = t->run;
    if (!run->timer) {
        run->timer = alloc_malloc(sizeof(*run->timer));
        if (!run->timer)
            return -ENOMEM;
        uv_timer_init(loop, run->timer);
    }
    run->timer->data = t;
    sched_timer_start(run->timer, cb, seconds);
    return 0;
}

void sched_timer_start(uv_timer_t *timer, uv_timer_cb cb, double seconds) {
    uv_timer_start(timer, cb, soon_timer_ms(timer->loop, seconds), 0);
}

void sched_stop_timer(task *t) {
    if (t->run->timer)
        uv_timer_stop(t->run->timer);
}

static void on_sleep_timer(uv_timer_t *h) {
    sched_wake(h->data, 0);
}

int sched_sleep(task *t, double seconds) {
    /* asyncio.sleep takes a delay <= 0 as a yield: sleep(deadline - now)
     * once the deadline passed. Older plugins got -EINVAL. */
    if (t->aio && seconds < 0 && isfinite(seconds))
        seconds = 0;
    if (!(seconds >= 0) || !isfinite(seconds))
        return -EINVAL;
    task_run *run = t->run;
    if (task_cancel_due(t)) {
        if (!t->aio)
            return -ECANCELED;
        /* asyncio: the cancellation comes back through the ready queue
         * (the sleep's future is cancelled, its wake-up scheduled): what
         * was ready to run before runs first. */
        run->suspended = true;
        run->wake_pending = false;
        sched_wake(t, -ECANCELED);
        coro_yield();
        return resumed(t); /* one more cancel meanwhile is taken with it */
    }
    if (seconds == 0) {
        /* Yield: go to the back of the ready queue. */
        run->suspended = true;
        run->wake_pending = false;
        sched_wake(t, 0);
        coro_yield();
        return resumed(t);
    }
    int r = sched_start_timer(t, on_sleep_timer, seconds);
    if (r < 0)
        return r;
    r = sched_suspend(t);
    sched_stop_timer(t);
    return r;
}
