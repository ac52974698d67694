/*
 * Plain callbacks on the loop (soon.h).
 */
#include "core/soon.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/list.h"

struct soon_handle {
    list node;
    /* When it became ready (soon_next_seq), to interleave with tasks. */
    uint64_t seq;
    /* For a handle on `due`: its time (soon_time seconds). */
    double when;
    soon_fn cb;
    void *data;
    unsigned refs;
    /* Waiting for a drain (on `ready`), waiting for its time (timer
     * armed), started, or cancelled. */
    bool queued, timed, ran, cancelled;
    uv_timer_t timer;
};

static uv_loop_t *loop;
static list ready = {&ready, &ready};
static size_t n_ready;
/* Callbacks whose time had come when they were scheduled (call_later with
 * a delay <= 0), by time: asyncio runs them after those already ready, in
 * the order of their times. */
static list due = {&due, &due};
/* Timers of call_later handles close asynchronously: the handle is freed
 * in the close callback. */
static uv_idle_t idle_handle;

static void on_idle(uv_idle_t *h) {
    (void)h; /* keeps the poll from blocking while callbacks are ready */
}

int soon_init(uv_loop_t *l) {
    loop = l;
    list_init(&ready);
    list_init(&due);
    n_ready = 0;
    uv_idle_init(loop, &idle_handle);
    return 0;
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

static void handle_unref(soon_handle *h) {
    assert(h->refs > 0);
    if (--h->refs > 0)
        return;
    if (h->timed) {
        h->timer.data = h;
        uv_close((uv_handle_t *)&h->timer, on_closed);
    } else
        free(h);
}

static uint64_t seq;

uint64_t soon_next_seq(void) {
    return ++seq;
}

/* What the drain runs: the callbacks that were ready when it began. */
static list batch = {&batch, &batch};

static void enqueue(soon_handle *h) {
    h->queued = true;
    h->seq = soon_next_seq();
    list_insert_tail(&ready, &h->node);
    if (n_ready++ == 0)
        uv_idle_start(&idle_handle, on_idle);
}

static void dequeue(soon_handle *h) {
    h->queued = false;
    list_remove(&h->node);
    if (--n_ready == 0)
        uv_idle_stop(&idle_handle);
}

void soon_done(void) {
    while (!list_empty(&due)) {
        list *first = list_first(&due);
        list_remove(first);
        list_insert_tail(&ready, first);
    }
    while (!list_empty(&ready)) {
        soon_handle *h = container_of(list_first(&ready), soon_handle, node);
        dequeue(h);
        h->cancelled = true;
        handle_unref(h);
    }
    uv_close((uv_handle_t *)&idle_handle, NULL);
}

static soon_handle *handle_new(soon_fn cb, void *data, soon_handle **ret_handle) {
    soon_handle *h = alloc_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cb = cb;
    h->data = data;
    h->refs = 1 + (ret_handle != NULL);
    list_init(&h->node);
    if (ret_handle)
        *ret_handle = h;
    return h;
}

int soon_call(soon_fn cb, void *data, soon_handle **ret_handle) {
    if (!cb)
        return -EINVAL;
    soon_handle *h = handle_new(cb, data, ret_handle);
    if (!h)
        return -ENOMEM;
    enqueue(h);
    return 0;
}

static void on_timer(uv_timer_t *t) {
    soon_handle *h = t->data;
    /* Due: it runs in the next drain, behind what is ready already. */
    enqueue(h);
}

static uint64_t timer_ms_at(uv_loop_t *l, double when);

/* soon_call_later and soon_call_at: `at` is the absolute time when it is
 * above `now`, else the call is due now (delay <= 0). */
static int call_later(double delay, double at, soon_fn cb, void *data, soon_handle **ret_handle) {
    if (!cb || isnan(delay))
        return -EINVAL;
    soon_handle *h = handle_new(cb, data, ret_handle);
    if (!h)
        return -ENOMEM;
    if (delay <= 0) {
        h->when = soon_time() + delay;
        list *pos = due.prev;
        while (pos != &due && container_of(pos, soon_handle, node)->when > h->when)
            pos = pos->prev;
        enqueue(h);
        /* enqueue put it on `ready`: move it to its place on `due`. */
        list_remove(&h->node);
        list_insert_tail(pos->next, &h->node);
        return 0;
    }
    h->timed = true;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_timer, timer_ms_at(loop, at), 0);
    return 0;
}

int soon_call_never(soon_fn cb, void *data, soon_handle **ret_handle) {
    if (!cb)
        return -EINVAL;
    if (!ret_handle)
        return 0;
    soon_handle *h = handle_new(cb, data, ret_handle);
    if (!h)
        return -ENOMEM;
    h->refs = 1; /* the caller's: the loop never holds it */
    h->when = INFINITY;
    return 0;
}

int soon_call_later(double delay, soon_fn cb, void *data, soon_handle **ret_handle) {
    return call_later(delay, soon_time() + delay, cb, data, ret_handle);
}

int soon_call_at(double when, soon_fn cb, void *data, soon_handle **ret_handle) {
    /* Armed from the time itself, not from a delay measured against a
     * second clock read: calls for one time share one due millisecond, and
     * fire in one timers phase, in the order armed (two nested timeouts of
     * one deadline both expire, as asyncio's do). */
    return call_later(when - soon_time(), when, cb, data, ret_handle);
}

bool soon_cancel(soon_handle *h) {
    if (!h || h->ran || h->cancelled)
        return false;
    h->cancelled = true;
    if (h->queued) {
        dequeue(h);
        handle_unref(h); /* the loop's reference */
    } else if (h->timed) {
        uv_timer_stop(&h->timer);
        handle_unref(h);
    }
    return true;
}

void soon_release(soon_handle *h) {
    if (h)
        handle_unref(h);
}

double soon_time(void) {
    return (double)uv_hrtime() / 1e9;
}

/* The timeout that makes libuv fire at absolute time `when` (soon_time's
 * clock) or just after. */
static uint64_t timer_ms_at(uv_loop_t *l, double when) {
    /* libuv fires once its clock (whole milliseconds, truncated, maybe the
     * coarse clock: never ahead of uv_hrtime) reaches uv_now + timeout: a
     * due time rounded up on the precise clock is never early, whatever
     * uv_now was (no uv_update_time). */
    double ms = ceil(when * 1000.0) - (double)uv_now(l);
    if (!(ms > 0))
        return 0;
    return ms > (double)LIMIT_TIMER_MAX_MS ? LIMIT_TIMER_MAX_MS : (uint64_t)ms;
}

uint64_t soon_timer_ms(uv_loop_t *l, double seconds) {
    return timer_ms_at(l, soon_time() + seconds); /* one clock read */
}

size_t soon_ready_count(void) {
    return n_ready;
}

void soon_batch_begin(void) {
    /* Due ones join behind everything ready (asyncio moves its due timers
     * to the end of the ready queue as an iteration begins). */
    while (!list_empty(&due)) {
        list *first = list_first(&due);
        list_remove(first);
        container_of(first, soon_handle, node)->seq = soon_next_seq();
        list_insert_tail(&ready, first);
    }
    while (!list_empty(&ready)) {
        list *first = list_first(&ready);
        list_remove(first);
        list_insert_tail(&batch, first);
    }
}

bool soon_batch_peek(uint64_t *ret_seq) {
    if (list_empty(&batch))
        return false;
    *ret_seq = container_of(list_first(&batch), soon_handle, node)->seq;
    return true;
}

void soon_batch_run_one(void) {
    soon_handle *h = container_of(list_first(&batch), soon_handle, node);
    dequeue(h);
    h->ran = true;
    h->cb(h->data);
    handle_unref(h);
}

size_t soon_run_ready(void) {
    soon_batch_begin();
    size_t done = 0;
    uint64_t s;
    while (soon_batch_peek(&s)) {
        soon_batch_run_one();
        done++;
    }
    return done;
}
