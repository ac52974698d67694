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
/* Timers of call_later handles close asynchronously: the handle is freed
 * in the close callback. */
static uv_idle_t idle_handle;

static void on_idle(uv_idle_t *h) {
    (void)h; /* keeps the poll from blocking while callbacks are ready */
}

int soon_init(uv_loop_t *l) {
    loop = l;
    list_init(&ready);
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

static void enqueue(soon_handle *h) {
    h->queued = true;
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

int soon_call_later(double delay, soon_fn cb, void *data, soon_handle **ret_handle) {
    if (!cb || isnan(delay))
        return -EINVAL;
    if (delay <= 0)
        return soon_call(cb, data, ret_handle);
    soon_handle *h = handle_new(cb, data, ret_handle);
    if (!h)
        return -ENOMEM;
    h->timed = true;
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    double ms = ceil(delay * 1000.0);
    uv_timer_start(&h->timer, on_timer,
                   ms > (double)LIMIT_TIMER_MAX_MS ? LIMIT_TIMER_MAX_MS : (uint64_t)ms, 0);
    return 0;
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

size_t soon_ready_count(void) {
    return n_ready;
}

size_t soon_run_ready(void) {
    /* Those scheduled before this drain: taken aside, so that what they
     * schedule waits for the next one. A cancel still finds them there. */
    list batch;
    list_move_all(&batch, &ready);
    size_t done = 0;
    while (!list_empty(&batch)) {
        soon_handle *h = container_of(list_first(&batch), soon_handle, node);
        dequeue(h);
        h->ran = true;
        h->cb(h->data);
        handle_unref(h);
        done++;
    }
    return done;
}
