/*
 * A wake-up another thread sends to the event loop (wake.h).
 */
#include "system/wake.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void on_readable(uv_poll_t *h, int status, int events) {
    (void)status;
    (void)events;
    loop_wake *w = h->data;
    uint64_t n;
    /* Drained first, then the flag cleared: a send after the clear writes
     * again, so what it published is taken by this callback or the next. */
    while (read(w->fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    atomic_store(&w->sent, false);
    w->cb(w);
}

int loop_wake_init(uv_loop_t *loop, loop_wake *w, void (*cb)(loop_wake *w)) {
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->fd < 0)
        return -errno;
    atomic_init(&w->sent, false);
    w->cb = cb;
    int r = uv_poll_init(loop, &w->poll, w->fd);
    if (r < 0) {
        close(w->fd);
        w->fd = -1;
        return r;
    }
    w->poll.data = w;
    r = uv_poll_start(&w->poll, UV_READABLE, on_readable);
    if (r < 0) {
        uv_close((uv_handle_t *)&w->poll, NULL);
        close(w->fd);
        w->fd = -1;
        return r;
    }
    uv_unref((uv_handle_t *)&w->poll);
    return 0;
}

void loop_wake_send(loop_wake *w) {
    if (atomic_exchange(&w->sent, true))
        return;
    uint64_t one = 1;
    /* An eventfd's counter does not fill up with wake-ups this rare (one
     * write per time the loop takes them), so EAGAIN cannot come. */
    while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

void loop_wake_close(loop_wake *w) {
    if (w->fd < 0)
        return;
    /* uv_close stops the poll (the descriptor leaves epoll) at once, so the
     * descriptor may go now. */
    if (!uv_is_closing((uv_handle_t *)&w->poll))
        uv_close((uv_handle_t *)&w->poll, NULL);
    close(w->fd);
    w->fd = -1;
}
