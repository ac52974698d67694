/*
 * Task sockets (sock.h): TCP and Unix stream connections whose connect, read
 * and write suspend the calling task, and name resolution on libuv's thread
 * pool.
 *
 * The one rule everything here follows: a suspended task's stack is copied
 * aside (coro.c), so no libuv callback may touch memory a plugin handed us.
 * Reads land in a per-socket heap buffer and are copied to the caller's
 * buffer only when the task runs again; write data is copied to the heap
 * before the task suspends (except what the kernel takes at once through
 * uv_try_write, while the task still runs). Every handle and request lives in
 * a heap struct that outlives any wait on it:
 *
 * - A socket (struct aiod_sock) holds its stream and two timers (one for the
 *   reader, one for the writer or the connect). sock_close closes the three
 *   handles; the struct is freed when the last close callback has run and no
 *   task is still inside a call on it.
 * - A write or a resolution that a task stops waiting for (timeout,
 *   cancellation) is abandoned: its task pointer is cleared and its callback,
 *   which libuv always runs, frees it. A resolution is also uv_cancel'led so
 *   it leaves the thread pool's queue if it has not started.
 * - A connect that is given up closes the handle; libuv then calls the
 *   connect callback with UV_ECANCELED before the close callback.
 *
 * Reads: libuv reads straight into the receive buffer (on_alloc hands out
 * its free tail). Reading stops while SOCK_RBUF_HIGH bytes wait unread, so a
 * peer that sends faster than the task reads is held back by TCP flow
 * control instead of by our memory, and restarts when the task has read.
 *
 * One task may read and another write the same socket at the same time; a
 * second concurrent reader (or writer) gets -EBUSY.
 */
#include "api/sock.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <uv.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/list.h"
#include "macro.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"

/* The receive buffer starts at SOCK_RBUF_MIN bytes and doubles up to
 * SOCK_RBUF_MAX; reading pauses while SOCK_RBUF_HIGH bytes wait unread
 * (aiod_limits.h says why these sizes). */
#define SOCK_RBUF_MIN LIMIT_SOCK_READ_BUFFER_MIN
#define SOCK_RBUF_MAX LIMIT_SOCK_READ_BUFFER
#define SOCK_RBUF_HIGH (SOCK_RBUF_MAX / 2)
#define SOCK_WRITE_CHUNK LIMIT_SOCK_WRITE_CHUNK

struct aiod_sock {
    /* The stream: a TCP socket or a Unix-domain pipe. Its data is the sock. */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    /* Timeouts of the reader and of the writer (or connect, or the name
     * resolution of tcp_connect). Their data is the sock. */
    uv_timer_t rtimer;
    uv_timer_t wtimer;
    uv_connect_t connect_req;
    /* The tasks suspended in a read and in a write or connect, or NULL. */
    task *reader;
    task *writer;
    /* Handles not yet through their close callback (3 until sock_close). */
    unsigned open_handles;
    /* sock_close was called: the handles are closing. */
    bool closing;
    /* The connect callback ran, with this status. */
    bool connect_done;
    int connect_status;
    /* uv_read_start is in effect. */
    bool reading;
    /* The peer ended its side of the stream. */
    bool eof;
    /* A read error (negative errno), reported once the buffer is drained. */
    int rerr;
    /* Receive buffer: unread bytes are rbuf[rstart, rend). */
    char *rbuf;
    size_t rcap;
    size_t rstart;
    size_t rend;
};

/* One uv_write of a heap copy of the caller's data. */
typedef struct write_req {
    uv_write_t req;
    /* The waiting task; NULL once it stopped waiting (then on_write frees). */
    task *t;
    bool done;
    int status;
    char data[];
} write_req;

/* One uv_getaddrinfo. */
typedef struct resolve_req {
    uv_getaddrinfo_t req;
    /* The waiting task; NULL once it stopped waiting (then on_resolved frees
     * the request and its result). */
    task *t;
    bool done;
    int status;
    struct addrinfo *res;
} resolve_req;

/* ---------------------------------------------------------------- waiting */

/* A deadline in loop milliseconds for `timeout` seconds (<= 0 or infinite:
 * none, 0). */
static uint64_t deadline_after(double timeout) {
    if (!(timeout > 0) || isinf(timeout))
        return 0;
    /* From now, not from the start of the loop iteration, and never
     * before loop_time() reached it (soon_timer_ms). */
    uint64_t ms = soon_timer_ms(sched_loop(), timeout);
    return uv_now(sched_loop()) + (ms ? ms : 1);
}

/*
 * Suspends `t` until something wakes it or `deadline` (0: none) passes, in
 * which case `timer` (whose callback `cb` wakes the task with -ETIMEDOUT)
 * fires. Returns the wake status: 0 from the operation's callback,
 * -ETIMEDOUT, -ECANCELED, or -EBADF when the socket was closed meanwhile.
 */
static int wait_until(task *t, uv_timer_t *timer, uv_timer_cb cb, uint64_t deadline) {
    if (deadline) {
        uv_update_time(sched_loop());
        uint64_t now = uv_now(sched_loop());
        if (now >= deadline)
            return -ETIMEDOUT;
        uv_timer_start(timer, cb, deadline - now, 0);
    }
    int r = sched_suspend(t);
    if (deadline)
        uv_timer_stop(timer);
    return r;
}

static void on_rtimer(uv_timer_t *h) {
    aiod_sock *s = h->data;
    if (s->reader)
        sched_wake(s->reader, -ETIMEDOUT);
}

static void on_wtimer(uv_timer_t *h) {
    aiod_sock *s = h->data;
    if (s->writer)
        sched_wake(s->writer, -ETIMEDOUT);
}

/* ---------------------------------------------------------------- life cycle */

static void maybe_free(aiod_sock *s) {
    if (s->open_handles > 0 || s->reader || s->writer)
        return;
    free(s->rbuf);
    free(s);
}

static void on_handle_closed(uv_handle_t *h) {
    aiod_sock *s = h->data;
    s->open_handles--;
    maybe_free(s);
}

static int sock_new(bool is_pipe, aiod_sock **ret) {
    aiod_sock *s = alloc_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    uv_loop_t *loop = sched_loop();
    int r = is_pipe ? uv_pipe_init(loop, &s->h.pipe, 0) : uv_tcp_init(loop, &s->h.tcp);
    if (r < 0) {
        free(s);
        return r;
    }
    uv_timer_init(loop, &s->rtimer);
    uv_timer_init(loop, &s->wtimer);
    s->h.handle.data = s;
    s->rtimer.data = s;
    s->wtimer.data = s;
    s->open_handles = 3;
    *ret = s;
    return 0;
}

/* Closes the handles (once); tasks waiting on the socket wake with -EBADF
 * (a pending write's callback runs first, with UV_ECANCELED). */
static void close_sock(aiod_sock *s) {
    if (s->closing)
        return;
    s->closing = true;
    uv_close(&s->h.handle, on_handle_closed);
    uv_close((uv_handle_t *)&s->rtimer, on_handle_closed);
    uv_close((uv_handle_t *)&s->wtimer, on_handle_closed);
    if (s->reader)
        sched_wake(s->reader, -EBADF);
    if (s->writer)
        sched_wake(s->writer, -EBADF);
}

void sock_close(task *t, aiod_sock *s) {
    (void)t;
    close_sock(s);
}

/* ---------------------------------------------------------------- resolving */

/* getaddrinfo's errors as errno values (libuv already maps EAI_SYSTEM). */
static int eai_to_errno(int r) {
    switch (r) {
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_ADDRFAMILY:
    case UV_EAI_SERVICE:
        return -ENOENT;
    case UV_EAI_AGAIN:
        return -EAGAIN;
    case UV_EAI_MEMORY:
        return -ENOMEM;
    case UV_EAI_CANCELED:
        return -ECANCELED;
    case UV_EAI_BADFLAGS:
    case UV_EAI_BADHINTS:
    case UV_EAI_FAMILY:
    case UV_EAI_SOCKTYPE:
    case UV_EAI_PROTOCOL:
        return -EINVAL;
    case UV_EAI_OVERFLOW:
        return -ENAMETOOLONG;
    case UV_EAI_FAIL:
        return -EIO;
    default:
        return r;
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    resolve_req *q = container_of(req, resolve_req, req);
    if (!q->t) {
        uv_freeaddrinfo(res);
        free(q);
        return;
    }
    q->done = true;
    q->status = status;
    q->res = res;
    sched_wake(q->t, 0);
}

/*
 * Resolves host (and port, may be NULL) to TCP addresses on the thread pool.
 * `timer`/`cb`/`deadline` as for wait_until (timer may be NULL without a
 * deadline). 0 and *ret_res (free with uv_freeaddrinfo), or a negative errno.
 */
static int resolve(task *t, const char *host, const char *port, uv_timer_t *timer, uv_timer_cb cb,
                   uint64_t deadline, struct addrinfo **ret_res) {
    const struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
    };
    resolve_req *q = alloc_calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->t = t;
    /* libuv copies host, port and hints before returning. */
    int r = uv_getaddrinfo(sched_loop(), &q->req, on_resolved, host, port, &hints);
    if (r < 0) {
        free(q);
        return eai_to_errno(r);
    }
    do
        r = wait_until(t, timer, cb, deadline);
    while (r == 0 && !q->done);
    if (!q->done) {
        /* Abandoned: on_resolved frees it, sooner if it never started. */
        q->t = NULL;
        uv_cancel((uv_req_t *)&q->req);
        return r;
    }
    int status = q->status;
    struct addrinfo *res = q->res;
    free(q);
    if (r == -ECANCELED || status < 0) {
        uv_freeaddrinfo(res);
        return r == -ECANCELED ? r : eai_to_errno(status);
    }
    if (!res)
        return -ENOENT;
    *ret_res = res;
    return 0;
}

int sock_resolve(task *t, const char *host, Aiod__Value **ret_list) {
    if (task_cancel_due(t))
        return -ECANCELED;
    struct addrinfo *res = NULL;
    int r = resolve(t, host, NULL, NULL, NULL, 0, &res);
    if (r < 0)
        return r;
    Aiod__Value *names = pbvalue_list();
    r = names ? 0 : -ENOMEM;
    for (const struct addrinfo *ai = res; ai && r == 0; ai = ai->ai_next) {
        char name[INET6_ADDRSTRLEN] = "";
        if (ai->ai_family == AF_INET)
            r = uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, name, sizeof(name));
        else if (ai->ai_family == AF_INET6)
            r = uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, name, sizeof(name));
        else
            continue;
        if (r < 0)
            break;
        /* getaddrinfo may list an address twice (once per protocol). */
        bool seen = false;
        for (size_t i = 0; i < pbvalue_length(names) && !seen; i++)
            seen = pbvalue_list_get(names, i)->string_value &&
                   strcmp(pbvalue_list_get(names, i)->string_value, name) == 0;
        if (!seen)
            r = pbvalue_list_append(names, pbvalue_string(name)) < 0 ? -ENOMEM : 0;
    }
    uv_freeaddrinfo(res);
    if (r < 0) {
        pbvalue_free(names);
        return r;
    }
    *ret_list = names;
    return 0;
}

/* ---------------------------------------------------------------- connecting */

static void on_connect(uv_connect_t *req, int status) {
    aiod_sock *s = container_of(req, aiod_sock, connect_req);
    s->connect_done = true;
    s->connect_status = status;
    if (s->writer)
        sched_wake(s->writer, 0);
}

/* Waits for the connect started on `s`. On failure closes `s`. */
static int connect_wait(task *t, aiod_sock *s, uint64_t deadline) {
    int r;
    s->writer = t;
    do
        r = wait_until(t, &s->wtimer, on_wtimer, deadline);
    while (r == 0 && !s->connect_done);
    s->writer = NULL;
    if (s->connect_done && r != -ECANCELED)
        r = s->connect_status;
    if (r < 0)
        close_sock(s); /* a pending connect ends with UV_ECANCELED, ignored */
    return r;
}

int sock_tcp_connect(task *t, const char *host, const char *port, double timeout,
                     aiod_sock **ret_sock) {
    if (task_cancel_due(t))
        return -ECANCELED;
    uint64_t deadline = deadline_after(timeout);
    aiod_sock *s = NULL;
    int r = sock_new(false, &s);
    if (r < 0)
        return r;

    /* The first socket's write timer times the resolution too. */
    struct addrinfo *res = NULL;
    s->writer = t;
    r = resolve(t, host, port, &s->wtimer, on_wtimer, deadline, &res);
    s->writer = NULL;
    if (r < 0) {
        close_sock(s);
        return r;
    }

    /* Each address in getaddrinfo's order until one answers (a handle cannot
     * be reused after a failed connect, so each try gets a fresh socket). */
    r = -ENOENT;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!s && (r = sock_new(false, &s)) < 0)
            break;
        r = uv_tcp_connect(&s->connect_req, &s->h.tcp, ai->ai_addr, on_connect);
        if (r == 0)
            r = connect_wait(t, s, deadline);
        else
            close_sock(s);
        if (r == 0)
            break;
        s = NULL;
        if (r == -ECANCELED || r == -ETIMEDOUT || r == -ENOMEM)
            break;
    }
    uv_freeaddrinfo(res);
    if (r < 0) {
        if (s)
            close_sock(s);
        return r;
    }
    *ret_sock = s;
    return 0;
}

int sock_unix_connect(task *t, const char *path, double timeout, aiod_sock **ret_sock) {
    if (task_cancel_due(t))
        return -ECANCELED;
    if (!*path)
        return -EINVAL;
    /* uv_pipe_connect would silently truncate a longer path. */
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return -ENAMETOOLONG;
    uint64_t deadline = deadline_after(timeout);
    aiod_sock *s = NULL;
    int r = sock_new(true, &s);
    if (r < 0)
        return r;
    /* Copies the path; errors come through on_connect. */
    uv_pipe_connect(&s->connect_req, &s->h.pipe, path, on_connect);
    r = connect_wait(t, s, deadline);
    if (r < 0)
        return r;
    *ret_sock = s;
    return 0;
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    aiod_sock *s = h->data;
    (void)suggested;
    if (s->rcap - s->rend < SOCK_RBUF_MIN && s->rstart > 0) {
        /* Compact: move the unread bytes to the front. */
        memmove(s->rbuf, s->rbuf + s->rstart, s->rend - s->rstart);
        s->rend -= s->rstart;
        s->rstart = 0;
    }
    if (s->rcap - s->rend < SOCK_RBUF_MIN && s->rcap < SOCK_RBUF_MAX) {
        size_t cap = s->rcap ? MIN(s->rcap * 2, (size_t)SOCK_RBUF_MAX) : SOCK_RBUF_MIN;
        char *p = alloc_realloc(s->rbuf, cap);
        if (p) {
            s->rbuf = p;
            s->rcap = cap;
        }
    }
    /* With no room (out of memory) libuv reports UV_ENOBUFS to on_read. */
    *buf = uv_buf_init(s->rbuf ? s->rbuf + s->rend : NULL, (unsigned)(s->rcap - s->rend));
}

static void stop_reading(aiod_sock *s) {
    if (s->reading) {
        uv_read_stop(&s->h.stream);
        s->reading = false;
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    aiod_sock *s = st->data;
    (void)buf;
    if (nread == 0)
        return; /* EAGAIN: nothing happened */
    if (nread > 0)
        s->rend += (size_t)nread;
    else if (nread == UV_EOF)
        s->eof = true;
    else
        s->rerr = (int)nread;
    if (nread < 0 || s->rend - s->rstart >= SOCK_RBUF_HIGH)
        stop_reading(s);
    if (s->reader)
        sched_wake(s->reader, 0);
}

/* Reads on unless the stream ended or enough waits unread. */
static int start_reading(aiod_sock *s) {
    if (s->reading || s->eof || s->rerr || s->closing || s->rend - s->rstart >= SOCK_RBUF_HIGH)
        return 0;
    int r = uv_read_start(&s->h.stream, on_alloc, on_read);
    if (r < 0) {
        s->rerr = r;
        return r;
    }
    s->reading = true;
    return 0;
}

long sock_read(task *t, aiod_sock *s, void *buf, size_t len, double timeout) {
    if (task_cancel_due(t))
        return -ECANCELED;
    if (s->closing)
        return -EBADF;
    if (s->reader)
        return -EBUSY;
    if (len == 0)
        return 0;
    uint64_t deadline = deadline_after(timeout);
    for (;;) {
        size_t avail = s->rend - s->rstart;
        if (avail > 0) {
            /* The task runs now: its buffer is valid. */
            size_t n = MIN(MIN(len, avail), (size_t)LONG_MAX);
            memcpy(buf, s->rbuf + s->rstart, n);
            s->rstart += n;
            if (s->rstart == s->rend)
                s->rstart = s->rend = 0;
            start_reading(s);
            return (long)n;
        }
        if (s->rerr)
            return s->rerr;
        if (s->eof)
            return 0;
        int r = start_reading(s);
        if (r < 0)
            return r;
        s->reader = t;
        r = wait_until(t, &s->rtimer, on_rtimer, deadline);
        s->reader = NULL;
        if (s->closing) {
            maybe_free(s);
            return -EBADF;
        }
        /* Data that came with the timeout still counts. */
        if (r < 0 && !(r == -ETIMEDOUT && (s->rend > s->rstart || s->eof || s->rerr)))
            return r;
    }
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status) {
    write_req *w = container_of(req, write_req, req);
    if (!w->t) {
        free(w);
        return;
    }
    w->done = true;
    w->status = status;
    sched_wake(w->t, 0);
}

/* Sends one piece of at most SOCK_WRITE_CHUNK bytes. */
static int write_piece(task *t, aiod_sock *s, const char *p, size_t n, uint64_t deadline) {
    /* Whatever the kernel takes now needs no copy: the task is running. */
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write(&s->h.stream, &b, 1);
    if (r > 0)
        return r;
    if (r != UV_EAGAIN)
        return r;

    write_req *w = alloc_malloc(sizeof(*w) + n);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, p, n);
    w->t = t;
    w->done = false;
    w->status = 0;
    b = uv_buf_init(w->data, (unsigned)n);
    r = uv_write(&w->req, &s->h.stream, &b, 1, on_write);
    if (r < 0) {
        free(w);
        return r;
    }
    s->writer = t;
    do
        r = wait_until(t, &s->wtimer, on_wtimer, deadline);
    while (r == 0 && !w->done);
    s->writer = NULL;
    if (w->done) {
        if (r != -ECANCELED)
            r = w->status;
        free(w);
    } else {
        w->t = NULL; /* on_write frees it (with UV_ECANCELED if we close) */
    }
    if (s->closing) {
        maybe_free(s);
        return -EBADF;
    }
    return r < 0 ? r : (int)n;
}

int sock_write(task *t, aiod_sock *s, const void *buf, size_t len, double timeout) {
    if (task_cancel_due(t))
        return -ECANCELED;
    if (s->closing)
        return -EBADF;
    if (s->writer)
        return -EBUSY;
    uint64_t deadline = deadline_after(timeout);
    const char *p = buf;
    while (len > 0) {
        int n = write_piece(t, s, p, MIN(len, (size_t)SOCK_WRITE_CHUNK), deadline);
        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
