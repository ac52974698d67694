/*
 * Waiting for and watching file descriptors (fdwatch.h).
 */
#include "api/fdwatch.h"

#include <errno.h>
#include <stdlib.h>

#include <uv.h>

#include "alloc.h"
#include "base/hashmap.h"
#include "core/sched.h"
#include "core/task.h"

/* Both the wait of a task and a plugin's watch: a poll handle on the heap,
 * freed in its close callback. */
struct aiod_fdwatch {
    uv_poll_t poll;
    int fd;
    /* A task's wait (t) or a watch (cb). */
    task *t;
    void (*cb)(aiod_fdwatch *w, int fd, uint32_t revents, void *data);
    void *data;
    bool closing;
};

/* The fds polled now, to refuse a second poll of one. */
static hashmap *polled;

static int to_uv(uint32_t events) {
    return ((events & AIOD_FD_READ) ? UV_READABLE : 0) |
           ((events & AIOD_FD_WRITE) ? UV_WRITABLE : 0);
}

static uint32_t from_uv(int status, int ev) {
    uint32_t r = ((ev & UV_READABLE) ? AIOD_FD_READ : 0) |
                 ((ev & UV_WRITABLE) ? AIOD_FD_WRITE : 0) |
                 ((ev & UV_DISCONNECT) ? AIOD_FD_ERROR : 0);
    return status < 0 ? r | AIOD_FD_ERROR : r;
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

static int open_poll(int fd, aiod_fdwatch **ret) {
    if (fd < 0)
        return -EBADF;
    if (!polled && !(polled = hashmap_new(0)))
        return -ENOMEM;
    if (hashmap_get_u64(polled, (uint64_t)fd))
        return -EEXIST;
    aiod_fdwatch *w = alloc_calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int r = uv_poll_init(sched_loop(), &w->poll, fd);
    if (r < 0) {
        free(w);
        return r == UV_EBADF ? -EBADF : r == UV_EPERM ? -EPERM : r;
    }
    w->poll.data = w;
    w->fd = fd;
    if (hashmap_put_u64(polled, (uint64_t)fd, w) < 0) {
        uv_close((uv_handle_t *)&w->poll, on_closed);
        return -ENOMEM;
    }
    *ret = w;
    return 0;
}

static void close_poll(aiod_fdwatch *w) {
    if (w->closing)
        return;
    w->closing = true;
    hashmap_remove_u64(polled, (uint64_t)w->fd);
    uv_close((uv_handle_t *)&w->poll, on_closed);
    if (polled && hashmap_size(polled) == 0) {
        hashmap_free(polled);
        polled = NULL;
    }
}

static void on_ready_wait(uv_poll_t *p, int status, int events) {
    aiod_fdwatch *w = p->data;
    uv_poll_stop(p);
    sched_wake(w->t, (int)from_uv(status, events));
}

static void on_wait_timeout(uv_timer_t *h) {
    sched_wake(h->data, -ETIMEDOUT);
}

int fdwatch_wait(task *t, int fd, uint32_t events, double timeout) {
    if (!(events & (AIOD_FD_READ | AIOD_FD_WRITE)) || (events & ~(AIOD_FD_READ | AIOD_FD_WRITE)) ||
        !(timeout == timeout))
        return -EINVAL;
    if (task_cancel_due(t))
        return -ECANCELED;
    bool aio = t->aio;
    if (aio && timeout <= 0)
        timeout = 1e-9; /* expires at once, yet a ready fd still counts */
    if (timeout >= 1e9)
        timeout = 0;
    aiod_fdwatch *w = NULL;
    int r = open_poll(fd, &w);
    if (r < 0)
        return r;
    w->t = t;
    r = uv_poll_start(&w->poll, to_uv(events), on_ready_wait);
    if (r < 0) {
        close_poll(w);
        return r == UV_EBADF ? -EBADF : r;
    }
    r = timeout > 0 ? sched_start_timer(t, on_wait_timeout, timeout) : 0;
    if (r == 0) {
        r = sched_suspend(t);
        if (timeout > 0)
            sched_stop_timer(t);
    }
    close_poll(w);
    return r;
}

static void on_ready_watch(uv_poll_t *p, int status, int events) {
    aiod_fdwatch *w = p->data;
    if (!w->closing)
        w->cb(w, w->fd, from_uv(status, events), w->data);
}

int fdwatch_new(int fd, uint32_t events,
                void (*cb)(aiod_fdwatch *w, int fd, uint32_t revents, void *data), void *data,
                aiod_fdwatch **ret) {
    if (!cb || !ret || (events & ~(AIOD_FD_READ | AIOD_FD_WRITE | AIOD_FD_WEAK)))
        return -EINVAL;
    aiod_fdwatch *w = NULL;
    int r = open_poll(fd, &w);
    if (r < 0)
        return r;
    w->cb = cb;
    w->data = data;
    if (events & AIOD_FD_WEAK)
        uv_unref((uv_handle_t *)&w->poll);
    events &= ~AIOD_FD_WEAK;
    if (events && (r = uv_poll_start(&w->poll, to_uv(events), on_ready_watch)) < 0) {
        close_poll(w);
        return r == UV_EBADF ? -EBADF : r;
    }
    *ret = w;
    return 0;
}

int fdwatch_update(aiod_fdwatch *w, uint32_t events) {
    if (!w || w->closing || !w->cb || (events & ~(AIOD_FD_READ | AIOD_FD_WRITE)))
        return -EINVAL;
    if (!events)
        return uv_poll_stop(&w->poll);
    int r = uv_poll_start(&w->poll, to_uv(events), on_ready_watch);
    return r < 0 ? r : 0;
}

void fdwatch_close(aiod_fdwatch *w) {
    if (w && w->cb)
        close_poll(w);
}
