/*
 * engine: the write queue, the request table, completions and the
 * end-of-stream rules (engine.h), and the non-blocking pump aioc_process /
 * aioc_events.
 *
 * Which frame ends a request id (the daemon keeps to these; see
 * docs/protocol.md): every request ends with exactly one final frame, its
 * reply or an Error. A Submit with follow ends with its OutputEnd (the
 * Submitted reply before it completes the request but does not end it); a
 * Logs ends with its OutputEnd. A Gather sends Started, Output events and
 * one OutputEnd per followed new task, then Outcomes or an Error. Frames
 * this library does not know are events: skipped, never final.
 *
 * A completed request goes onto the client's due list; its callback runs
 * when aioc_process drains that list, never from inside a blocking call,
 * so that completion callbacks always run at one well-defined place.
 * Output lines and events are handed over as they are read, like the
 * output of blocking calls.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "macro.h"
#include "outcome.h"
#include "wire.h"

/* Reads per aioc_process call: enough to drain a busy socket, bounded so
 * that one client cannot keep a program's loop to itself. */
#define ENGINE_MAX_READS 16

/* ------------------------------------------------------------ errors, the write queue */

void engine_set_error(aioc_client *c, const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof(c->last_error)) {
        n = sizeof(c->last_error) - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)message[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(c->last_error, message, n);
    c->last_error[n] = '\0';
}

int engine_queue(aioc_client *c, Aiod__ClientMessage *m) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    m->request_id = c->next_request_id++;
    int r = wire_pack(m, c->max_frame, &buf, &len);
    if (r < 0)
        return r; /* too big or no memory: the connection is still fine */
    if (c->wpos == c->wlen)
        c->wpos = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        if (c->wpos > 0) {
            memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
            c->wlen -= c->wpos;
            c->wpos = 0;
        }
        if (c->wlen + len > c->wcap) {
            size_t cap = MAX(c->wcap * 2, c->wlen + len);
            uint8_t *w = alloc_realloc(c->wbuf, cap);
            if (!w)
                return -ENOMEM;
            c->wbuf = w;
            c->wcap = cap;
        }
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    return 0;
}

int engine_flush_some(aioc_client *c) {
    if (c->dead)
        return c->dead;
    if (c->wpos == c->wlen)
        return 0;
    ssize_t n = conn_send_some(&c->conn, c->wbuf + c->wpos, c->wlen - c->wpos);
    if (n < 0)
        return engine_die(c, (int)n);
    c->wpos += (size_t)n;
    if (c->wpos == c->wlen)
        c->wpos = c->wlen = 0;
    return 0;
}

int engine_flush_all(aioc_client *c) {
    if (c->dead)
        return c->dead;
    int r = conn_write(&c->conn, c->wbuf + c->wpos, c->wlen - c->wpos);
    if (r < 0)
        return engine_die(c, r);
    c->wpos = c->wlen = 0;
    return 0;
}

/* ------------------------------------------------------------ the table, the due list */

static int reserve_entry(aioc_client *c) {
    if (c->n_entries < c->cap_entries)
        return 0;
    size_t cap = c->cap_entries ? c->cap_entries * 2 : 16;
    client_entry *e = alloc_realloc(c->entries, cap * sizeof(*e));
    if (!e)
        return -ENOMEM;
    c->entries = e;
    c->cap_entries = cap;
    return 0;
}

/* The index of id in the table, or n_entries. */
static size_t find_entry(const aioc_client *c, uint64_t id) {
    size_t lo = 0, hi = c->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->entries[mid].id == id)
            return mid;
        if (c->entries[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return c->n_entries;
}

static void remove_entry(aioc_client *c, aioc_request *req) {
    size_t at = find_entry(c, req->id);
    assert(at < c->n_entries && c->entries[at].req == req);
    memmove(c->entries + at, c->entries + at + 1, (c->n_entries - at - 1) * sizeof(*c->entries));
    c->n_entries--;
    req->in_table = false;
}

static void due_push(aioc_client *c, aioc_request *req) {
    assert(!req->due && !req->internal);
    req->due = true;
    req->due_next = NULL;
    if (c->due_tail)
        c->due_tail->due_next = req;
    else
        c->due_head = req;
    c->due_tail = req;
}

static void due_unlink(aioc_client *c, aioc_request *req) {
    aioc_request *prev = NULL;
    for (aioc_request *r = c->due_head; r; prev = r, r = r->due_next) {
        if (r != req)
            continue;
        if (prev)
            prev->due_next = r->due_next;
        else
            c->due_head = r->due_next;
        if (c->due_tail == r)
            c->due_tail = prev;
        break;
    }
    req->due = false;
    req->due_next = NULL;
}

/* Lets go of the client once the request needs it no more. */
static void release(aioc_request *req) {
    if (!req->in_table && !req->due)
        req->client = NULL;
}

static void destroy(aioc_request *req) {
    if (req->client) {
        if (req->in_table)
            remove_entry(req->client, req);
        if (req->due)
            due_unlink(req->client, req);
    }
    for (size_t i = 0; i < req->n_outcomes; i++)
        aioc_outcome_free(req->outcomes[i]);
    free(req->outcomes);
    aioc_outcome_free(req->failed);
    output_ends_done(&req->ends);
    free(req->task_ids);
    free(req->error_message);
    free(req);
}

void engine_request_destroy(aioc_request *req) {
    assert(!req->in_table && !req->due);
    req->client = NULL;
    destroy(req);
}

static void set_message(aioc_request *req, const char *message) {
    free(req->error_message);
    req->error_message = message && *message ? alloc_strdup(message) : NULL;
}

/* The request ended: its callback is due unless it is the library's own. */
static void complete(aioc_request *req, int error) {
    assert(!req->done);
    req->done = true;
    req->error = error;
    req->end = AIOC_END_COMPLETED;
    if (!req->internal && req->client)
        due_push(req->client, req);
}

/* ------------------------------------------------------------ sending */

aioc_request *engine_request_new(aioc_client *c, enum request_kind kind, aioc_request_cb cb,
                                 void *userdata) {
    aioc_request *req = alloc_calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->client = c;
    req->kind = kind;
    req->cb = cb;
    req->userdata = userdata;
    req->final_cb = !!(c->flags & AIOC_FLAG_FINAL_CALLBACKS);
    return req;
}

int engine_send(aioc_client *c, aioc_request *req, Aiod__ClientMessage *m) {
    if (c->dead)
        return c->dead;
    int r = reserve_entry(c);
    if (r < 0)
        return r;
    r = engine_queue(c, m);
    if (r < 0)
        return r;
    req->id = m->request_id;
    req->client = c;
    req->in_table = true;
    c->entries[c->n_entries].id = req->id;
    c->entries[c->n_entries].req = req;
    c->n_entries++;
    /* A write error kills the connection and fails req with the rest; the
     * program learns it from the completion. */
    (void)engine_flush_some(c);
    return 0;
}

/* Asks the daemon to cancel tasks, answered to nobody. */
static void cancel_tasks(aioc_client *c, const uint64_t *ids, size_t n) {
    Aiod__Cancel x = AIOD__CANCEL__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (c->dead || n == 0)
        return;
    aioc_request *req = engine_request_new(c, REQUEST_CANCEL, NULL, NULL);
    if (!req)
        return;
    req->internal = true;
    req->n_expected = n;
    x.task_ids = (uint64_t *)ids;
    x.n_task_ids = n;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_CANCEL;
    m.cancel = &x;
    if (engine_send(c, req, &m) < 0)
        engine_request_destroy(req);
}

/* ------------------------------------------------------------ receiving */

bool engine_is_event(Aiod__ServerMessage__BodyCase body) {
    switch (body) {
    case AIOD__SERVER_MESSAGE__BODY_ERROR:
    case AIOD__SERVER_MESSAGE__BODY_HELLO:
    case AIOD__SERVER_MESSAGE__BODY_SUBMITTED:
    case AIOD__SERVER_MESSAGE__BODY_OUTCOMES:
    case AIOD__SERVER_MESSAGE__BODY_CANCELLED:
    case AIOD__SERVER_MESSAGE__BODY_TASK_LIST:
    case AIOD__SERVER_MESSAGE__BODY_TASK_INFO:
    case AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST:
    case AIOD__SERVER_MESSAGE__BODY_RELOADED:
        return false;
    default:
        return true; /* Output, OutputEnd, Started, and unknown bodies */
    }
}

/* Is `m` the last frame of `req` (engine.c's opening comment)? */
static bool is_final(const aioc_request *req, const Aiod__ServerMessage *m) {
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)
        return req->kind == REQUEST_LOGS || (req->kind == REQUEST_SUBMIT && req->follow);
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_SUBMITTED && req->follow)
        return false;
    return !engine_is_event(m->body_case);
}

/* Runs a program's callback with re-entry refused. */
#define CALLBACK(c, call)                                                                          \
    do {                                                                                           \
        bool was_ = (c)->in_callback;                                                              \
        (c)->in_callback = true;                                                                   \
        call;                                                                                      \
        (c)->in_callback = was_;                                                                   \
    } while (0)

static void deliver_output(aioc_client *c, aioc_request *req, const Aiod__Output *o) {
    aioc_output_cb cb = c->output_cb;
    void *userdata = c->output_userdata;
    if (req && req->internal)
        return; /* its handle was freed: nobody wants these lines */
    if (req && req->output_cb) {
        cb = req->output_cb;
        userdata = req->output_userdata;
    }
    if (cb)
        CALLBACK(c, cb(o->task_id, (int)o->stream, o->line, userdata));
}

/* An event for the request's event callback; the callback may free req. */
static void emit_event(aioc_client *c, aioc_request *req, int event, uint64_t task_id, int state) {
    if (req->internal || !req->event_cb)
        return;
    CALLBACK(c, req->event_cb(req, event, task_id, state, req->event_userdata));
}

static int take_outcomes(aioc_request *req, Aiod__Outcomes *os) {
    if (os->n_outcomes != req->n_expected)
        return -EPROTO;
    aioc_outcome **a = alloc_calloc(os->n_outcomes, sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < os->n_outcomes; i++) {
        a[i] = outcome_new(TAKE_PTR(os->outcomes[i]));
        if (!a[i]) {
            for (size_t j = 0; j < i; j++)
                aioc_outcome_free(a[j]);
            free(a);
            return -ENOMEM;
        }
    }
    /* The tasks' OutputEnd events came before this frame. */
    output_ends_apply(&req->ends, a, os->n_outcomes);
    req->outcomes = a;
    req->n_outcomes = req->n_expected;
    /* A daemon without the Started event: the ids come with the end. */
    if (!req->task_ids && (req->kind == REQUEST_GATHER || req->kind == REQUEST_RUN)) {
        req->task_ids = alloc_calloc(req->n_outcomes, sizeof(*req->task_ids));
        if (req->task_ids) {
            req->n_task_ids = req->n_outcomes;
            for (size_t i = 0; i < req->n_outcomes; i++)
                req->task_ids[i] = aioc_outcome_task_id(req->outcomes[i]);
        }
    }
    if (req->kind == REQUEST_RUN && req->n_task_ids)
        req->task_id = req->task_ids[0];
    return 0;
}

static void on_started(aioc_client *c, aioc_request *req, const Aiod__Started *s) {
    if ((req->kind != REQUEST_GATHER && req->kind != REQUEST_RUN) || req->task_ids ||
        s->n_task_ids != req->n_expected)
        return; /* not ours to have, a second one, or broken: skipped */
    for (size_t i = 0; i < s->n_task_ids; i++)
        if (s->task_ids[i] == 0)
            return;
    req->task_ids = alloc_calloc(s->n_task_ids, sizeof(*req->task_ids));
    if (!req->task_ids)
        return; /* the ids come again with the outcomes */
    memcpy(req->task_ids, s->task_ids, s->n_task_ids * sizeof(*req->task_ids));
    req->n_task_ids = s->n_task_ids;
    if (req->kind == REQUEST_RUN)
        req->task_id = req->task_ids[0];
    if (req->abandon) {
        /* A run given up before its task was known. */
        req->abandon = false;
        cancel_tasks(c, req->task_ids, req->n_task_ids);
        return;
    }
    emit_event(c, req, AIOC_EVENT_STARTED, req->task_ids[0], 0);
}

static void on_error(aioc_request *req, Aiod__Error *e) {
    int r = wire_error_errno(e->code);
    set_message(req, req->kind == REQUEST_RUN ? wire_run_message(e->message) : e->message);
    if (r == -EIO) {
        if (req->kind != REQUEST_GATHER || !e->outcome) {
            complete(req, -EPROTO);
            return;
        }
        req->failed = outcome_new(TAKE_PTR(e->outcome));
        if (!req->failed) {
            complete(req, -ENOMEM);
            return;
        }
        output_ends_apply(&req->ends, &req->failed, 1);
    }
    complete(req, r);
}

int engine_apply_hello(aioc_client *c, const Aiod__HelloReply *h) {
    if (h->protocol_version != AIOD_PROTOCOL_VERSION)
        return -EPROTONOSUPPORT;
    char *v = alloc_strdup(h->server_version);
    if (!v)
        return -ENOMEM;
    free(c->server_version);
    c->server_version = v;
    if (h->max_frame > 0)
        c->max_frame = h->max_frame;
    c->max_in_flight = h->max_in_flight;
    conn_set_max_frame(&c->conn, c->max_frame);
    return 0;
}

/* The reply `m` that completes `req`. */
static void on_reply(aioc_client *c, aioc_request *req, Aiod__ServerMessage *m) {
    Aiod__ServerMessage__BodyCase body = m->body_case;

    if (body == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        on_error(req, m->error);
        return;
    }
    switch (req->kind) {
    case REQUEST_HELLO:
        complete(req, body == AIOD__SERVER_MESSAGE__BODY_HELLO ? engine_apply_hello(c, m->hello)
                                                               : -EPROTO);
        return;
    case REQUEST_SUBMIT:
        if (body != AIOD__SERVER_MESSAGE__BODY_SUBMITTED || m->submitted->task_id == 0) {
            complete(req, -EPROTO);
            return;
        }
        req->task_id = m->submitted->task_id;
        complete(req, 0);
        return;
    case REQUEST_RUN:
    case REQUEST_AWAIT:
    case REQUEST_GATHER:
        complete(req, body == AIOD__SERVER_MESSAGE__BODY_OUTCOMES ? take_outcomes(req, m->outcomes)
                                                                  : -EPROTO);
        return;
    case REQUEST_CANCEL:
        if (body != AIOD__SERVER_MESSAGE__BODY_CANCELLED) {
            complete(req, -EPROTO);
            return;
        }
        req->count =
            m->cancelled->count > req->n_expected ? (int)req->n_expected : (int)m->cancelled->count;
        complete(req, 0);
        return;
    case REQUEST_LOGS:
        if (body != AIOD__SERVER_MESSAGE__BODY_OUTPUT_END) {
            complete(req, -EPROTO);
            return;
        }
        req->state = (int)m->output_end->state;
        complete(req, 0);
        return;
    }
}

/* The hello of aioc_connect_start ended: the connect callback is due. */
static void hello_done(aioc_client *c, int error) {
    c->connecting = false;
    c->connect_due = true;
    c->connect_error = error;
}

/* The final frame of `req`: its id leaves the table. */
static void on_final(aioc_client *c, aioc_request *req, Aiod__ServerMessage *m) {
    remove_entry(c, req);
    /* A logs' or followed submit's OutputEnd: what it did not get. */
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)
        (void)output_ends_add(&req->ends, m->output_end->task_id, m->output_end->dropped);
    /* A followed submit, completed by its Submitted, whose stream the daemon
     * ends with an Error instead of an OutputEnd (too many streams: the task
     * runs unfollowed; or the daemon stops). Its end is still told (below),
     * with the error's negative errno for a state, and the message is kept.
     * The request's error stays 0: the task was created, and a completion
     * callback still due must not say otherwise. */
    bool stream_error = req->done && m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR &&
                        req->kind == REQUEST_SUBMIT;
    if (stream_error)
        set_message(req, m->error->message);
    if (!req->done)
        on_reply(c, req, m);
    if (req->kind == REQUEST_HELLO) {
        int r = req->error;
        engine_request_destroy(req);
        if (r < 0) {
            engine_set_error(c, m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR ? m->error->message
                                                                                 : "");
            engine_die(c, r);
        } else {
            hello_done(c, 0);
        }
        return;
    }
    if (req->internal) {
        destroy(req);
        return;
    }
    release(req);
    /* A followed submit's output ended (after its completion): the last
     * use of req, since the event callback may free it. */
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END && req->kind == REQUEST_SUBMIT)
        emit_event(c, req, AIOC_EVENT_OUTPUT_END, m->output_end->task_id,
                   (int)m->output_end->state);
    else if (stream_error)
        emit_event(c, req, AIOC_EVENT_OUTPUT_END, req->task_id, wire_error_errno(m->error->code));
}

void engine_dispatch(aioc_client *c, Aiod__ServerMessage *m) {
    Aiod__ServerMessage__BodyCase body = m->body_case;

    if (m->request_id == 0 && body == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        /* About the connection itself: the daemon closes it next. */
        engine_set_error(c, m->error->message);
        engine_die(c, wire_error_errno(m->error->code));
        wire_free(m);
        return;
    }
    size_t at = find_entry(c, m->request_id);
    aioc_request *req = at < c->n_entries ? c->entries[at].req : NULL;
    if (!req) {
        /* Lines of a blocking call's request (and, from a daemon older than
         * the end-of-stream rules, of a request already ended) go to the
         * client's callback; anything else is stale. */
        if (body == AIOD__SERVER_MESSAGE__BODY_OUTPUT)
            deliver_output(c, NULL, m->output);
    } else if (is_final(req, m)) {
        on_final(c, req, m);
    } else if (body == AIOD__SERVER_MESSAGE__BODY_OUTPUT) {
        deliver_output(c, req, m->output);
    } else if (body == AIOD__SERVER_MESSAGE__BODY_STARTED) {
        on_started(c, req, m->started);
    } else if (body == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END) {
        /* A followed task of a gather or run: its count goes onto its
         * outcome when the Outcomes come (an allocation failure loses only
         * this task's count). */
        if (!req->internal)
            (void)output_ends_add(&req->ends, m->output_end->task_id, m->output_end->dropped);
        emit_event(c, req, AIOC_EVENT_OUTPUT_END, m->output_end->task_id,
                   (int)m->output_end->state);
    } else if (body == AIOD__SERVER_MESSAGE__BODY_SUBMITTED && !req->done) {
        on_reply(c, req, m); /* a followed submit: completed, not ended */
    }
    /* Anything else (a newer daemon's event) is skipped. */
    wire_free(m);
}

int engine_die(aioc_client *c, int r) {
    if (c->dead)
        return c->dead;
    assert(r < 0);
    /* -EBUSY is kept for re-entry only: a dead connection never says it. */
    c->dead = r == -EBUSY ? -EIO : r;
    /* Wake up a program polling the socket, and tell the daemon. */
    if (c->conn.fd >= 0)
        shutdown(c->conn.fd, SHUT_RDWR);
    c->wpos = c->wlen = 0;
    if (c->connecting)
        hello_done(c, c->dead);
    /* No frame will come: every id leaves the table. */
    size_t n = c->n_entries;
    client_entry *e = TAKE_PTR(c->entries);
    c->n_entries = c->cap_entries = 0;
    for (size_t i = 0; i < n; i++) {
        aioc_request *req = e[i].req;
        req->in_table = false;
        if (!req->done) {
            set_message(req, c->last_error);
            complete(req, c->dead);
        }
        if (req->internal)
            destroy(req);
        else
            release(req);
    }
    free(e);
    return c->dead;
}

/* ------------------------------------------------------------ callbacks */

/* Runs the callbacks that are due; returns how many requests completed. */
static int run_due(aioc_client *c) {
    int n = 0;
    bool was = c->in_callback;
    c->in_callback = true;
    if (c->connect_due) {
        c->connect_due = false;
        if (c->connect_cb)
            c->connect_cb(c, c->connect_error, c->connect_userdata);
    }
    /* A callback that closes the client leaves the rest to aioc_close. */
    while (c->due_head && !c->close_asked) {
        aioc_request *req = c->due_head;
        c->due_head = req->due_next;
        if (!c->due_head)
            c->due_tail = NULL;
        req->due = false;
        req->due_next = NULL;
        release(req);
        n++;
        req->cb_ran = true;
        /* req may be freed by its callback: not touched after. */
        if (req->cb)
            req->cb(req, req->error, req->userdata);
    }
    c->in_callback = was;
    return n;
}

/* The program gives req up: it ends now with `error`, `end`. */
static void give_up(aioc_request *req, int error, int end) {
    aioc_client *c = req->client;
    req->done = true;
    req->error = error;
    req->end = end;
    if (req->kind != REQUEST_RUN || !c || c->dead)
        return;
    /* asyncio.run interrupted: its task is cancelled too. */
    if (req->n_task_ids)
        cancel_tasks(c, req->task_ids, req->n_task_ids);
    else if (req->in_table)
        req->abandon = true;
}

int engine_request_cancel(aioc_request *req) {
    if (req->done)
        return -EALREADY;
    give_up(req, -ECANCELED, AIOC_END_CANCELLED);
    if (req->final_cb && req->client)
        due_push(req->client, req);
    return 0;
}

void engine_request_free(aioc_request *req) {
    if (req->freeing || req->internal)
        return; /* from its own callback, run below; or not the program's */
    if (!req->done)
        give_up(req, -ECANCELED, AIOC_END_FREED);
    if (req->final_cb && !req->cb_ran) {
        aioc_client *c = req->client;
        req->cb_ran = true;
        if (req->due)
            due_unlink(c, req);
        release(req);
        if (req->cb) {
            req->freeing = true;
            if (c)
                CALLBACK(c, req->cb(req, req->error, req->userdata));
            else
                req->cb(req, req->error, req->userdata);
            req->freeing = false;
        }
    }
    if (req->in_table) {
        /* Its final frame has not come: keep the id, as the library's own,
         * so that what still comes for it is recognised and dropped. */
        if (req->due)
            due_unlink(req->client, req);
        req->internal = true;
        req->cb = NULL;
        req->output_cb = NULL;
        req->event_cb = NULL;
        return;
    }
    destroy(req);
}

void engine_close(aioc_client *c) {
    /* In flight: ended by the close, with their callback if they asked. */
    for (size_t i = 0; i < c->n_entries; i++) {
        aioc_request *req = c->entries[i].req;
        if (req->done || req->internal)
            continue;
        req->done = true;
        req->error = -ECONNABORTED;
        req->end = AIOC_END_CLOSED;
        if (req->final_cb)
            due_push(c, req);
    }
    if (!c->dead)
        c->dead = -ECONNABORTED; /* starting from a callback fails now */
    c->connecting = c->connect_due = false;
    /* Callbacks still due run now for the requests that asked for a final
     * callback, and are dropped for the others. */
    while (c->due_head) {
        aioc_request *req = c->due_head;
        c->due_head = req->due_next;
        if (!c->due_head)
            c->due_tail = NULL;
        req->due = false;
        req->due_next = NULL;
        release(req);
        if (req->final_cb && !req->cb_ran) {
            req->cb_ran = true;
            /* req may be freed by its callback: not touched after. */
            if (req->cb)
                CALLBACK(c, req->cb(req, req->error, req->userdata));
        }
    }
    size_t n = c->n_entries;
    client_entry *e = TAKE_PTR(c->entries);
    c->n_entries = c->cap_entries = 0;
    for (size_t i = 0; i < n; i++) {
        aioc_request *req = e[i].req;
        req->in_table = false;
        if (req->internal)
            destroy(req);
        else
            release(req);
    }
    free(e);
}

/* ------------------------------------------------------------ the pump */

AIOC_EXPORT int aioc_process(aioc_client *c) {
    if (!c)
        return -EINVAL;
    if (c->in_callback || c->in_process)
        return -EBUSY;
    c->last_error[0] = '\0';
    c->in_process = true;
    c->depth++; /* as CLIENT_SCOPE (client.h): a callback may close c */
    for (int i = 0; i < ENGINE_MAX_READS && !c->dead; i++) {
        if (engine_flush_some(c) < 0)
            break;
        int r = conn_read_some(&c->conn);
        if (r < 0) {
            engine_die(c, r);
            break;
        }
        /* Every whole frame buffered, also those a blocking call left. */
        while (!c->dead) {
            const uint8_t *payload;
            uint32_t len;
            Aiod__ServerMessage *m;
            int f = conn_next_frame(&c->conn, &payload, &len);
            if (f < 0) {
                engine_die(c, f == -EMSGSIZE ? -EPROTO : f);
                break;
            }
            if (f == 0)
                break;
            f = wire_unpack(payload, len, &m);
            if (f < 0) {
                engine_die(c, f);
                break;
            }
            engine_dispatch(c, m);
        }
        if (!c->dead && c->conn.eof)
            engine_die(c, -ECONNRESET);
        if (r == 0)
            break;
    }
    if (!c->dead)
        (void)engine_flush_some(c);
    int n = run_due(c);
    c->in_process = false;
    int r = c->dead ? c->dead : n;
    if (--c->depth == 0 && c->close_asked)
        aioc_close(c); /* asked from a callback: done now that c is not used */
    return r;
}

AIOC_EXPORT int aioc_events(const aioc_client *c) {
    if (!c)
        return -EINVAL;
    return !c->dead && c->wpos < c->wlen ? POLLIN | POLLOUT : POLLIN;
}
