/*
 * hiredis on the loop (rloop.h).
 */
#include "cluster/rloop.h"

#include <stdlib.h>

#include "alloc.h"

typedef struct rloop {
    uv_poll_t poll;
    /* NULL once hiredis cleaned up (the poll is closing). */
    redisAsyncContext *ac;
    int events;
} rloop;

static void on_poll(uv_poll_t *h, int status, int events) {
    rloop *p = h->data;
    if (status < 0) {
        /* libuv stopped the poll. hiredis finds the error in its next
         * system call on the socket and disconnects (calling back). */
        if (p->ac && !(p->ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(p->ac);
        else if (p->ac)
            redisAsyncHandleRead(p->ac);
        return;
    }
    if (p->ac && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void update(rloop *p) {
    if (p->events)
        uv_poll_start(&p->poll, p->events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void add_read(void *data) {
    rloop *p = data;
    p->events |= UV_READABLE;
    update(p);
}

static void del_read(void *data) {
    rloop *p = data;
    p->events &= ~UV_READABLE;
    update(p);
}

static void add_write(void *data) {
    rloop *p = data;
    p->events |= UV_WRITABLE;
    update(p);
}

static void del_write(void *data) {
    rloop *p = data;
    p->events &= ~UV_WRITABLE;
    update(p);
}

static void on_closed(uv_handle_t *h) {
    free(h->data);
}

static void cleanup(void *data) {
    rloop *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, on_closed);
}

int rloop_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data)
        return REDIS_ERR;
    rloop *p = alloc_calloc(1, sizeof(*p));
    if (!p)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return REDIS_OK;
}
