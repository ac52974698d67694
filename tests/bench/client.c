/*
 * aiod-bench: a raw client speaking the wire protocol directly (framing from
 * proto/frame.h, messages from the generated protobuf-c code), so that it can
 * keep many requests in flight on one connection. The same code drives aiod
 * and the bare echo server: the per-request client work (encode, write, read,
 * frame, decode) is identical for both. Also the libaioclient round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <aioc.h>

#include "aiod-pb.h"
#include "bench.h"
#include "frame.h"

#define READ_CHUNK (256u * 1024u)
#define MAX_FRAME (64u * 1024u * 1024u)
/* A peer that says nothing for this long has hung. */
#define RECV_TIMEOUT_S 300

struct bench_conn {
    int fd;
    frame_reader rd;
    uint8_t *wbuf;
    size_t wlen, wcap;
    uint64_t next_id;
};

/* ---------------------------------------------------------------- I/O */

static int wbuf_reserve(bench_conn *c, size_t more) {
    if (c->wlen + more <= c->wcap)
        return 0;
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + more)
        cap *= 2;
    uint8_t *p = realloc(c->wbuf, cap);
    if (!p)
        return -ENOMEM;
    c->wbuf = p;
    c->wcap = cap;
    return 0;
}

/* Appends one request: header, field 1 (request_id, varint), then the body
 * encoded once by breq_*. Returns the request id or 0 on OOM. */
static uint64_t conn_put(bench_conn *c, const bench_req *r) {
    uint8_t idbuf[11];
    uint64_t id = ++c->next_id;
    size_t n = 0;
    idbuf[n++] = 0x08; /* field 1, wire type 0 */
    for (uint64_t v = id;; v >>= 7) {
        if (v < 0x80) {
            idbuf[n++] = (uint8_t)v;
            break;
        }
        idbuf[n++] = (uint8_t)(v | 0x80);
    }
    if (wbuf_reserve(c, FRAME_HEADER_SIZE + n + r->len) < 0)
        return 0;
    frame_put_header(c->wbuf + c->wlen, (uint32_t)(n + r->len));
    memcpy(c->wbuf + c->wlen + FRAME_HEADER_SIZE, idbuf, n);
    memcpy(c->wbuf + c->wlen + FRAME_HEADER_SIZE + n, r->body, r->len);
    c->wlen += FRAME_HEADER_SIZE + n + r->len;
    return id;
}

static int conn_flush(bench_conn *c) {
    size_t off = 0;
    while (off < c->wlen) {
        ssize_t w = write(c->fd, c->wbuf + off, c->wlen - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    c->wlen = 0;
    return 0;
}

/* Reads until a whole frame is buffered (blocking) or, with nonblock, takes
 * one only if already buffered. 1 with the payload, 0 when nonblock and none
 * buffered, negative errno on error (-EPIPE: closed). */
static int conn_frame_any(bench_conn *c, bool nonblock, const uint8_t **p, uint32_t *len) {
    for (;;) {
        int r = frame_reader_next(&c->rd, p, len);
        if (r != 0)
            return r;
        if (nonblock)
            return 0;
        size_t room;
        uint8_t *dst = frame_reader_space(&c->rd, READ_CHUNK, &room);
        if (!dst)
            return -ENOMEM;
        ssize_t n = read(c->fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        if (n == 0)
            return -EPIPE;
        frame_reader_commit(&c->rd, (size_t)n);
    }
}

/* Whether a frame is a Started event (ServerMessage field 13), which a
 * Gather sends before its reply: request_id (field 1) then tag 13/LEN. */
static bool is_started(const uint8_t *p, uint32_t len) {
    uint32_t i = 0;
    if (i < len && p[i] == 0x08)
        for (i++; i < len && (p[i] & 0x80); i++)
            ;
    i += p[0] == 0x08;
    return i < len && p[i] == (13u << 3 | 2u);
}

/* The next reply, past the events that come before it. */
static int conn_frame(bench_conn *c, bool nonblock, const uint8_t **p, uint32_t *len) {
    int r;
    while ((r = conn_frame_any(c, nonblock, p, len)) > 0 && is_started(*p, *len))
        ;
    return r;
}

bench_conn *bconn_open(const char *path, bool hello, char *err, size_t err_len) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        bench_note(err, err_len, "socket path too long");
        return NULL;
    }
    strcpy(sa.sun_path, path);
    bench_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        bench_note(err, err_len, "out of memory");
        return NULL;
    }
    frame_reader_init(&c->rd, MAX_FRAME);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        bench_note(err, err_len, "connect %s: %s", path, strerror(errno));
        bconn_close(c);
        return NULL;
    }
    struct timeval tv = {.tv_sec = RECV_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!hello)
        return c;

    Aiod__Hello h = AIOD__HELLO__INIT;
    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.client_name = (char *)"aiod-bench";
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    uint8_t buf[128];
    bench_req r = {buf, aiod__client_message__pack(&m, buf)};
    const uint8_t *p;
    uint32_t len;
    int rc;
    if (!conn_put(c, &r) || conn_flush(c) < 0 || (rc = conn_frame(c, false, &p, &len)) < 0) {
        bench_note(err, err_len, "hello: no reply");
        bconn_close(c);
        return NULL;
    }
    Aiod__ServerMessage *sm = aiod__server_message__unpack(NULL, len, p);
    bool ok = sm && sm->body_case == AIOD__SERVER_MESSAGE__BODY_HELLO;
    if (!ok)
        bench_note(err, err_len, "hello refused: %s",
                   sm && sm->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR && sm->error->message
                       ? sm->error->message
                       : "bad reply");
    if (sm)
        aiod__server_message__free_unpacked(sm, NULL);
    if (!ok) {
        bconn_close(c);
        return NULL;
    }
    return c;
}

void bconn_close(bench_conn *c) {
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    frame_reader_done(&c->rd);
    free(c->wbuf);
    free(c);
}

/* ---------------------------------------------------------------- requests */

int breq_gather(bench_req *r, const char *function, size_t n, bool has_arg, double darg,
                bool int_arg, int64_t iarg) {
    Aiod__Value arg = AIOD__VALUE__INIT;
    if (int_arg) {
        arg.kind_case = AIOD__VALUE__KIND_INT_VALUE;
        arg.int_value = iarg;
    } else {
        arg.kind_case = AIOD__VALUE__KIND_DOUBLE_VALUE;
        arg.double_value = darg;
    }
    Aiod__Value *argp = &arg;
    Aiod__Call call = AIOD__CALL__INIT;
    call.function = (char *)function;
    if (has_arg || int_arg) {
        call.n_args = 1;
        call.args = &argp;
    }
    Aiod__GatherItem item = AIOD__GATHER_ITEM__INIT;
    item.item_case = AIOD__GATHER_ITEM__ITEM_CALL;
    item.call = &call;
    Aiod__GatherItem **items = malloc(n * sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        items[i] = &item; /* the same item n times: packed n times */
    Aiod__Gather g = AIOD__GATHER__INIT;
    g.n_items = n;
    g.items = items;
    g.return_exceptions = true;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
    m.gather = &g;
    r->len = aiod__client_message__get_packed_size(&m);
    r->body = malloc(r->len ? r->len : 1);
    if (!r->body) {
        free(items);
        return -ENOMEM;
    }
    aiod__client_message__pack(&m, r->body);
    free(items);
    return 0;
}

int breq_submit(bench_req *r, const char *function, int ownership) {
    Aiod__Call call = AIOD__CALL__INIT;
    call.function = (char *)function;
    Aiod__Submit sub = AIOD__SUBMIT__INIT;
    sub.call = &call;
    sub.ownership = (Aiod__Ownership)ownership;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
    m.submit = &sub;
    r->len = aiod__client_message__get_packed_size(&m);
    r->body = malloc(r->len ? r->len : 1);
    if (!r->body)
        return -ENOMEM;
    aiod__client_message__pack(&m, r->body);
    return 0;
}

void breq_free(bench_req *r) {
    free(r->body);
    r->body = NULL;
}

/* ---------------------------------------------------------------- replies */

/* Decodes one reply; adds the outcomes that are done (or 1 for a Submitted
 * reply) to *done and notes the first problem in res. Returns false when
 * the reply is neither Outcomes nor Submitted. */
static bool check_reply(const uint8_t *p, uint32_t len, uint64_t *done, bench_result *res) {
    Aiod__ServerMessage *sm = aiod__server_message__unpack(NULL, len, p);
    if (!sm) {
        if (res->ok)
            bench_note(res->reason, sizeof(res->reason), "undecodable reply");
        res->ok = false;
        return false;
    }
    bool ok = sm->body_case == AIOD__SERVER_MESSAGE__BODY_OUTCOMES ||
              sm->body_case == AIOD__SERVER_MESSAGE__BODY_SUBMITTED;
    if (sm->body_case == AIOD__SERVER_MESSAGE__BODY_SUBMITTED) {
        (*done)++;
    } else if (!ok) {
        if (res->ok) {
            if (sm->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR)
                bench_note(res->reason, sizeof(res->reason), "error %d: %s", (int)sm->error->code,
                           sm->error->message ? sm->error->message : "");
            else
                bench_note(res->reason, sizeof(res->reason), "unexpected reply %d",
                           (int)sm->body_case);
        }
        res->ok = false;
    } else {
        for (size_t i = 0; i < sm->outcomes->n_outcomes; i++) {
            const Aiod__Outcome *o = sm->outcomes->outcomes[i];
            if (o->state == AIOD__TASK_STATE__TASK_DONE) {
                (*done)++;
            } else if (res->ok) {
                bench_note(res->reason, sizeof(res->reason), "task %llu ended in state %d: %s: %s",
                           (unsigned long long)o->task_id, (int)o->state,
                           o->error_kind ? o->error_kind : "",
                           o->error_message ? o->error_message : "");
                res->ok = false;
            }
        }
    }
    aiod__server_message__free_unpacked(sm, NULL);
    return ok;
}

static void fail_io(bench_result *res, const char *what, int rc) {
    if (res->ok)
        bench_note(res->reason, sizeof(res->reason), "%s: %s", what,
                   rc == -EPIPE ? "connection closed by the server" : strerror(-rc));
    res->ok = false;
}

/* ---------------------------------------------------------------- listing */

int bconn_list(bench_conn *c, bool unfinished, uint32_t limit, size_t *ret_n) {
    Aiod__TaskState states[2] = {AIOD__TASK_STATE__TASK_PENDING, AIOD__TASK_STATE__TASK_RUNNING};
    Aiod__ListTasks lt = AIOD__LIST_TASKS__INIT;
    lt.limit = limit;
    if (unfinished) {
        lt.n_states = 2;
        lt.states = states;
    } else {
        lt.all = true;
    }
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS;
    m.list_tasks = &lt;
    uint8_t buf[64];
    if (aiod__client_message__get_packed_size(&m) > sizeof(buf))
        return -EINVAL;
    bench_req r = {buf, aiod__client_message__pack(&m, buf)};
    const uint8_t *p;
    uint32_t len;
    int rc;
    if (!conn_put(c, &r))
        return -ENOMEM;
    if ((rc = conn_flush(c)) < 0 || (rc = conn_frame(c, false, &p, &len)) < 0)
        return rc;
    Aiod__ServerMessage *sm = aiod__server_message__unpack(NULL, len, p);
    if (!sm || sm->body_case != AIOD__SERVER_MESSAGE__BODY_TASK_LIST) {
        if (sm)
            aiod__server_message__free_unpacked(sm, NULL);
        return -EPROTO;
    }
    *ret_n = sm->task_list->n_tasks;
    aiod__server_message__free_unpacked(sm, NULL);
    return 0;
}

/* ---------------------------------------------------------------- latency */

static void latency(const char *path, bool aiod, const bench_req *req, uint64_t n, uint64_t warmup,
                    bench_result *res, uint8_t **template_out, size_t *template_len,
                    uint64_t *samples) {
    memset(res, 0, sizeof(*res));
    res->ok = true;
    bench_conn *c = bconn_open(path, aiod, res->reason, sizeof(res->reason));
    if (!c) {
        res->ok = false;
        return;
    }
    uint64_t *rtt = malloc(n * sizeof(*rtt));
    if (!rtt) {
        bench_note(res->reason, sizeof(res->reason), "out of memory");
        res->ok = false;
        bconn_close(c);
        return;
    }
    uint64_t done = 0, start = 0;
    for (uint64_t i = 0; i < warmup + n && res->ok; i++) {
        if (i == warmup)
            start = bench_now_ns();
        uint64_t t0 = bench_now_ns();
        const uint8_t *p;
        uint32_t len;
        int rc;
        if (!conn_put(c, req) || (rc = conn_flush(c)) < 0) {
            fail_io(res, "write", -EIO);
            break;
        }
        if ((rc = conn_frame(c, false, &p, &len)) < 0) {
            fail_io(res, "read", rc);
            break;
        }
        check_reply(p, len, &done, res);
        uint64_t t1 = bench_now_ns();
        if (i >= warmup)
            rtt[i - warmup] = t1 - t0;
        res->reply_len = len;
        if (template_out && i + 1 == warmup + n) {
            *template_out = malloc(len ? len : 1);
            if (*template_out) {
                memcpy(*template_out, p, len);
                *template_len = len;
            }
        }
    }
    if (res->ok) {
        res->elapsed_ns = bench_now_ns() - start;
        res->count = n;
        if (samples)
            memcpy(samples, rtt, n * sizeof(*rtt));
        res->p50_ns = bench_quantile(rtt, n, 0.50);
        res->p99_ns = bench_quantile(rtt, n, 0.99);
    }
    free(rtt);
    bconn_close(c);
}

void bench_latency(const char *path, bool aiod, const bench_req *req, uint64_t n, uint64_t warmup,
                   bench_result *res, uint8_t **template_out, size_t *template_len) {
    latency(path, aiod, req, n, warmup, res, template_out, template_len, NULL);
}

void bench_latency_samples(const char *path, bool aiod, const bench_req *req, uint64_t n,
                           uint64_t warmup, bench_result *res, uint64_t *samples) {
    latency(path, aiod, req, n, warmup, res, NULL, NULL, samples);
}

/* ---------------------------------------------------------------- pipelining */

struct pipe_arg {
    const char *path;
    bool aiod;
    const bench_req *req;
    unsigned depth;
    uint64_t n;
    pthread_barrier_t *ready;
    bench_result res;
    uint64_t t_first, t_last;
};

static void *pipe_thread(void *argp) {
    struct pipe_arg *a = argp;
    bench_result *res = &a->res;
    res->ok = true;
    bench_conn *c = bconn_open(a->path, a->aiod, res->reason, sizeof(res->reason));
    pthread_barrier_wait(a->ready);
    if (!c) {
        res->ok = false;
        return NULL;
    }
    uint64_t sent = 0, received = 0, done = 0;
    a->t_first = bench_now_ns();
    int rc;
    while (res->ok && received < a->n) {
        /* Top up to `depth` in flight, one write for all of them. */
        while (sent < a->n && sent - received < a->depth) {
            if (!conn_put(c, a->req)) {
                fail_io(res, "write", -ENOMEM);
                break;
            }
            sent++;
        }
        if ((rc = conn_flush(c)) < 0) {
            fail_io(res, "write", rc);
            break;
        }
        /* One blocking read, then every frame it brought. */
        const uint8_t *p;
        uint32_t len;
        if ((rc = conn_frame(c, false, &p, &len)) < 0) {
            fail_io(res, "read", rc);
            break;
        }
        do {
            check_reply(p, len, &done, res);
            received++;
        } while (received < a->n && (rc = conn_frame(c, true, &p, &len)) > 0);
        if (rc < 0)
            fail_io(res, "read", rc);
    }
    a->t_last = bench_now_ns();
    res->count = done;
    bconn_close(c);
    return NULL;
}

void bench_pipeline(const char *path, bool aiod, const bench_req *req, unsigned clients,
                    unsigned depth, uint64_t n_per_client, bench_result *res) {
    memset(res, 0, sizeof(*res));
    res->ok = true;
    struct pipe_arg *a = calloc(clients, sizeof(*a));
    pthread_t *th = calloc(clients, sizeof(*th));
    pthread_barrier_t ready;
    if (!a || !th) {
        free(a);
        free(th);
        bench_note(res->reason, sizeof(res->reason), "out of memory");
        res->ok = false;
        return;
    }
    pthread_barrier_init(&ready, NULL, clients);
    unsigned started = 0;
    for (unsigned i = 0; i < clients; i++) {
        a[i] = (struct pipe_arg){path, aiod, req, depth, n_per_client, &ready, {0}, 0, 0};
        if (pthread_create(&th[i], NULL, pipe_thread, &a[i]) != 0)
            break;
        started++;
    }
    if (started < clients) {
        /* The barrier would never open: this is fatal for the tool. */
        fprintf(stderr, "aiod-bench: cannot start client threads\n");
        exit(1);
    }
    uint64_t first = UINT64_MAX, last = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (!a[i].res.ok && res->ok) {
            res->ok = false;
            memcpy(res->reason, a[i].res.reason, sizeof(res->reason));
        }
        res->count += a[i].res.count;
        if (a[i].t_first < first)
            first = a[i].t_first;
        if (a[i].t_last > last)
            last = a[i].t_last;
    }
    res->elapsed_ns = last > first ? last - first : 0;
    pthread_barrier_destroy(&ready);
    free(a);
    free(th);
}

/* ---------------------------------------------------------------- batches */

void bench_batch(const char *path, const bench_req *reqs, size_t nreq, bench_result *res) {
    memset(res, 0, sizeof(*res));
    res->ok = true;
    bench_conn *c = bconn_open(path, true, res->reason, sizeof(res->reason));
    if (!c) {
        res->ok = false;
        return;
    }
    uint64_t t0 = bench_now_ns(), done = 0;
    int rc = 0;
    /* One request per write: the daemon starts on the first while the
     * client encodes nothing more (bodies are ready). */
    for (size_t i = 0; i < nreq && rc == 0; i++) {
        if (!conn_put(c, &reqs[i])) {
            fail_io(res, "write", -ENOMEM);
            rc = -ENOMEM;
        } else if ((rc = conn_flush(c)) < 0) {
            fail_io(res, "write", rc);
        }
    }
    for (size_t i = 0; i < nreq && rc == 0; i++) {
        const uint8_t *p;
        uint32_t len;
        if ((rc = conn_frame(c, false, &p, &len)) < 0) {
            fail_io(res, "read", rc);
            break;
        }
        check_reply(p, len, &done, res);
    }
    res->elapsed_ns = bench_now_ns() - t0;
    res->count = done;
    bconn_close(c);
}

/* ---------------------------------------------------------------- libaioclient */

void bench_latency_libaioclient(const char *path, const char *function, uint64_t n, uint64_t warmup,
                                bench_result *res) {
    memset(res, 0, sizeof(*res));
    res->ok = true;
    aioc_client *cl = NULL;
    int rc = aioc_connect(path, &cl);
    if (rc < 0) {
        bench_note(res->reason, sizeof(res->reason), "aioc_connect: %s", strerror(-rc));
        res->ok = false;
        return;
    }
    aioc_call *call = aioc_call_new(function);
    uint64_t *rtt = malloc(n * sizeof(*rtt));
    if (!call || !rtt) {
        bench_note(res->reason, sizeof(res->reason), "out of memory");
        res->ok = false;
        goto out;
    }
    uint64_t start = 0;
    for (uint64_t i = 0; i < warmup + n; i++) {
        if (i == warmup)
            start = bench_now_ns();
        uint64_t t0 = bench_now_ns();
        aioc_outcome *o = NULL;
        rc = aioc_run(cl, call, 0, &o);
        if (rc < 0 || aioc_outcome_state(o) != AIOC_STATE_DONE) {
            bench_note(res->reason, sizeof(res->reason), "aioc_run: %s",
                       rc < 0 ? strerror(-rc) : aioc_outcome_error_message(o));
            res->ok = false;
            aioc_outcome_free(o);
            goto out;
        }
        aioc_outcome_free(o);
        if (i >= warmup)
            rtt[i - warmup] = bench_now_ns() - t0;
    }
    res->elapsed_ns = bench_now_ns() - start;
    res->count = n;
    res->p50_ns = bench_quantile(rtt, n, 0.50);
    res->p99_ns = bench_quantile(rtt, n, 0.99);
out:
    free(rtt);
    aioc_call_free(call);
    aioc_close(cl);
}
