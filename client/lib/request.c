/*
 * request: the non-blocking side of libaioclient (aioc_start_*, aioc_process,
 * aioc_events and the aioc_request accessors).
 *
 * A started request packs its ClientMessage onto the client's write queue at
 * once and records its request id in the client's entry table. aioc_process
 * writes the queue as far as the socket takes it, reads what has arrived,
 * and hands every message to client_dispatch, which finds the request by id
 * and completes it. A completed request goes onto the client's due list; its
 * callback runs when aioc_process drains that list, never from inside a
 * blocking call, so that callbacks always run at one well-defined place.
 *
 * A run is two messages: a Submit (attached, follow) and, once the task id
 * is known, an Await of it. Its output events carry the Submit's id, so a
 * request keeps all its ids in the table until it is freed.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "call.h"
#include "client.h"
#include "macro.h"
#include "outcome.h"
#include "wire.h"

/* The daemon takes at most this many ids or items per request. */
#define REQUEST_MAX_BATCH 100000u
/* Reads per aioc_process call: enough to drain a busy socket, bounded so
 * that one client cannot keep a program's loop to itself. */
#define REQUEST_MAX_READS 16

enum request_kind {
    REQUEST_SUBMIT,
    REQUEST_RUN,
    REQUEST_AWAIT,
    REQUEST_GATHER,
    REQUEST_CANCEL,
    REQUEST_LOGS,
};

struct aioc_request {
    /* The client, or NULL once it was closed. */
    aioc_client *client;
    enum request_kind kind;
    /* The id whose reply completes the request (a run: its Submit's until
     * the task exists, then its Await's). */
    uint64_t id;
    /* Completed: error is final, the callback may still be due. */
    bool done;
    /* On the client's due list. */
    bool due;
    /* Made by the library (a Cancel for an abandoned run, or a run freed in
     * flight): freed when it completes, no callback. */
    bool internal;
    /* A run given up before its task existed: cancel the task once the
     * Submitted reply names it. */
    bool abandon;
    int error;
    /* The daemon's message for a refusal (owned), or NULL. */
    char *error_message;
    aioc_request_cb cb;
    void *userdata;
    aioc_output_cb output_cb;
    void *output_userdata;
    /* A run: the timeout of its Await. */
    double timeout;
    /* How many outcomes the reply must hold. */
    size_t n_expected;
    uint64_t task_id;
    int count;
    int state;
    aioc_outcome **outcomes;
    size_t n_outcomes;
    aioc_outcome *failed;
    /* The next request on the due list. */
    aioc_request *due_next;
};

/* ------------------------------------------------------------ the tables */

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

/* Appends (id, req); reserve_entry made room. Ids only grow. */
static void add_entry(aioc_client *c, uint64_t id, aioc_request *req) {
    c->entries[c->n_entries].id = id;
    c->entries[c->n_entries].req = req;
    c->n_entries++;
}

static aioc_request *find_entry(const aioc_client *c, uint64_t id) {
    size_t lo = 0, hi = c->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->entries[mid].id == id)
            return c->entries[mid].req;
        if (c->entries[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void remove_entries(aioc_client *c, const aioc_request *req) {
    size_t j = 0;
    for (size_t i = 0; i < c->n_entries; i++)
        if (c->entries[i].req != req)
            c->entries[j++] = c->entries[i];
    c->n_entries = j;
}

static void due_push(aioc_client *c, aioc_request *req) {
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

/* Frees the request and everything it holds; unlinks it from its client. */
static void destroy(aioc_request *req) {
    if (req->client) {
        remove_entries(req->client, req);
        if (req->due)
            due_unlink(req->client, req);
    }
    for (size_t i = 0; i < req->n_outcomes; i++)
        aioc_outcome_free(req->outcomes[i]);
    free(req->outcomes);
    aioc_outcome_free(req->failed);
    free(req->error_message);
    free(req);
}

static void set_message(aioc_request *req, const char *message) {
    free(req->error_message);
    req->error_message = message && *message ? alloc_strdup(message) : NULL;
}

static void complete(aioc_request *req, int error) {
    req->done = true;
    req->error = error;
    if (req->client)
        due_push(req->client, req);
}

void request_fail_all(aioc_client *c, int r) {
    for (size_t i = 0; i < c->n_entries; i++) {
        aioc_request *req = c->entries[i].req;
        if (req->done)
            continue;
        set_message(req, c->last_error);
        complete(req, r);
    }
}

void request_detach_all(aioc_client *c) {
    aioc_request *internal = NULL;

    /* Callbacks still due are dropped: the program closed the client. */
    while (c->due_head) {
        aioc_request *req = c->due_head;
        c->due_head = req->due_next;
        req->due = false;
        req->due_next = NULL;
    }
    c->due_tail = NULL;
    for (size_t i = 0; i < c->n_entries; i++) {
        aioc_request *req = c->entries[i].req;
        if (!req->client)
            continue; /* a run's second id */
        req->client = NULL;
        if (!req->done) {
            req->done = true;
            req->error = -ECONNABORTED;
        }
        if (req->internal) {
            req->due_next = internal;
            internal = req;
        }
    }
    c->n_entries = 0;
    while (internal) {
        aioc_request *next = internal->due_next;
        destroy(internal);
        internal = next;
    }
}

/* ------------------------------------------------------------ sending */

static aioc_request *new_request(aioc_client *c, enum request_kind kind, aioc_request_cb cb,
                                 void *userdata) {
    aioc_request *req = alloc_calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->client = c;
    req->kind = kind;
    req->cb = cb;
    req->userdata = userdata;
    return req;
}

/* Queues `m` for `req` and records its id; the frame goes out now if the
 * socket takes it. On failure nothing is queued or recorded. */
static int send_for(aioc_client *c, aioc_request *req, Aiod__ClientMessage *m) {
    int r = reserve_entry(c);
    if (r < 0)
        return r;
    r = client_queue(c, m);
    if (r < 0)
        return r;
    req->id = m->request_id;
    add_entry(c, m->request_id, req);
    /* A write error kills the connection and fails req with the rest; the
     * program learns it from the completion. */
    (void)client_flush_some(c);
    return 0;
}

/* Sends a new request for the caller (the common tail of aioc_start_*). */
static int start(aioc_client *c, aioc_request *req, Aiod__ClientMessage *m, aioc_request **ret) {
    if (!req)
        return -ENOMEM;
    int r = send_for(c, req, m);
    if (r < 0) {
        req->client = NULL;
        destroy(req);
        return r;
    }
    *ret = req;
    return 0;
}

/* start() for a request answered about n tasks (await, gather, cancel). */
static int start_batch(aioc_client *c, enum request_kind kind, size_t n, aioc_request_cb cb,
                       void *userdata, Aiod__ClientMessage *m, aioc_request **ret) {
    aioc_request *req = new_request(c, kind, cb, userdata);
    if (req)
        req->n_expected = n;
    return start(c, req, m, ret);
}

/* Asks the daemon to cancel a task, answered to nobody. */
static void cancel_task(aioc_client *c, uint64_t task_id) {
    Aiod__Cancel x = AIOD__CANCEL__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (c->dead)
        return;
    aioc_request *req = new_request(c, REQUEST_CANCEL, NULL, NULL);
    if (!req)
        return;
    req->internal = true;
    req->n_expected = 1;
    x.task_ids = &task_id;
    x.n_task_ids = 1;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_CANCEL;
    m.cancel = &x;
    if (send_for(c, req, &m) < 0) {
        req->client = NULL;
        destroy(req);
    }
}

/* A run's second step: the Await of its task. */
static int send_run_await(aioc_client *c, aioc_request *req) {
    Aiod__Await a = AIOD__AWAIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    a.task_ids = &req->task_id;
    a.n_task_ids = 1;
    a.timeout = req->timeout > 0 ? req->timeout : 0;
    a.cancel_on_timeout = true;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_AWAIT;
    m.await = &a;
    return send_for(c, req, &m);
}

/* ------------------------------------------------------------ receiving */

void client_deliver_output(aioc_client *c, uint64_t id, const Aiod__Output *o) {
    aioc_request *req = find_entry(c, id);
    aioc_output_cb cb = c->output_cb;
    void *userdata = c->output_userdata;
    if (req && req->output_cb) {
        cb = req->output_cb;
        userdata = req->output_userdata;
    }
    if (!cb)
        return;
    bool was = c->in_callback;
    c->in_callback = true;
    cb(o->task_id, (int)o->stream, o->line, userdata);
    c->in_callback = was;
}

static int take_outcomes(aioc_request *req, Aiod__Outcomes *os) {
    if (os->n_outcomes != req->n_expected)
        return -EPROTO;
    aioc_outcome **a = alloc_calloc(os->n_outcomes, sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < os->n_outcomes; i++) {
        a[i] = outcome_from_pb(os->outcomes[i]);
        os->outcomes[i] = NULL;
    }
    os->n_outcomes = 0;
    req->outcomes = a;
    req->n_outcomes = req->n_expected;
    return 0;
}

static void on_error(aioc_request *req, Aiod__Error *e) {
    int r = wire_error_errno(e->code);
    set_message(req, e->message);
    if (r == -EIO) {
        if (req->kind != REQUEST_GATHER || !e->outcome) {
            complete(req, -EPROTO);
            return;
        }
        req->failed = outcome_from_pb(e->outcome);
        e->outcome = NULL;
    }
    complete(req, r);
}

/* The reply `m` to the current step of `req`. */
static void on_reply(aioc_client *c, aioc_request *req, Aiod__ServerMessage *m) {
    Aiod__ServerMessage__BodyCase body = m->body_case;
    int r;

    if (body == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        on_error(req, m->error);
        return;
    }
    switch (req->kind) {
    case REQUEST_SUBMIT:
    case REQUEST_RUN:
        if (req->kind == REQUEST_RUN && req->task_id) {
            if (body != AIOD__SERVER_MESSAGE__BODY_OUTCOMES) {
                complete(req, -EPROTO);
                return;
            }
            r = take_outcomes(req, m->outcomes);
            complete(req, r);
            return;
        }
        if (body != AIOD__SERVER_MESSAGE__BODY_SUBMITTED || m->submitted->task_id == 0) {
            complete(req, -EPROTO);
            return;
        }
        req->task_id = m->submitted->task_id;
        if (req->kind == REQUEST_SUBMIT) {
            complete(req, 0);
            return;
        }
        r = send_run_await(c, req);
        if (r < 0) {
            /* The task exists but cannot be awaited: do not leave it. */
            cancel_task(c, req->task_id);
            complete(req, r);
        }
        return;
    case REQUEST_AWAIT:
    case REQUEST_GATHER:
        if (body != AIOD__SERVER_MESSAGE__BODY_OUTCOMES) {
            complete(req, -EPROTO);
            return;
        }
        complete(req, take_outcomes(req, m->outcomes));
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

int client_dispatch(aioc_client *c, Aiod__ServerMessage *m) {
    if (m->request_id == 0 && m->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        /* About the connection itself: the daemon closes it next. */
        client_set_error(c, m->error->message);
        int r = wire_error_errno(m->error->code);
        wire_free(m);
        return client_die(c, r);
    }
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT) {
        client_deliver_output(c, m->request_id, m->output);
        wire_free(m);
        return 0;
    }
    aioc_request *req = find_entry(c, m->request_id);
    if (req && req->id == m->request_id) {
        bool end = m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END;
        if (req->abandon && m->body_case == AIOD__SERVER_MESSAGE__BODY_SUBMITTED) {
            /* A run given up before its task existed: cancel the task. */
            req->abandon = false;
            if (m->submitted->task_id)
                cancel_task(c, m->submitted->task_id);
            if (!req->done)
                complete(req, -ECANCELED);
        } else if (!req->done && (!end || req->kind == REQUEST_LOGS)) {
            on_reply(c, req, m);
        }
    }
    /* Anything else is stale (a reply of an abandoned request), an event
     * nobody waits for (the OutputEnd of a followed task) or a newer
     * daemon's message: skipped. */
    wire_free(m);
    return c->dead;
}

/* Runs the callbacks that are due; returns how many requests completed. */
static int run_due(aioc_client *c) {
    int n = 0;
    bool was = c->in_callback;
    c->in_callback = true;
    while (c->due_head) {
        aioc_request *req = c->due_head;
        c->due_head = req->due_next;
        if (!c->due_head)
            c->due_tail = NULL;
        req->due = false;
        req->due_next = NULL;
        if (req->internal) {
            destroy(req);
            continue;
        }
        n++;
        /* req may be freed by its callback: not touched after. */
        if (req->cb)
            req->cb(req, req->error, req->userdata);
    }
    c->in_callback = was;
    return n;
}

AIOC_EXPORT int aioc_process(aioc_client *c) {
    if (!c)
        return -EINVAL;
    if (c->in_callback || c->in_process)
        return -EBUSY;
    c->last_error[0] = '\0';
    c->in_process = true;
    for (int i = 0; i < REQUEST_MAX_READS && !c->dead; i++) {
        if (client_flush_some(c) < 0)
            break;
        int r = conn_read_some(&c->conn);
        if (r < 0) {
            client_die(c, r);
            break;
        }
        /* Every whole frame buffered, also those a blocking call left. */
        while (!c->dead) {
            const uint8_t *payload;
            uint32_t len;
            Aiod__ServerMessage *m;
            int f = conn_next_frame(&c->conn, &payload, &len);
            if (f < 0) {
                client_die(c, f == -EMSGSIZE ? -EPROTO : f);
                break;
            }
            if (f == 0)
                break;
            f = wire_unpack(payload, len, &m);
            if (f < 0) {
                client_die(c, f);
                break;
            }
            client_dispatch(c, m);
        }
        if (!c->dead && c->conn.eof)
            client_die(c, -ECONNRESET);
        if (r == 0)
            break;
    }
    if (!c->dead)
        (void)client_flush_some(c);
    int n = run_due(c);
    c->in_process = false;
    return c->dead ? c->dead : n;
}

AIOC_EXPORT int aioc_events(const aioc_client *c) {
    if (!c)
        return -EINVAL;
    return !c->dead && c->wpos < c->wlen ? POLLIN | POLLOUT : POLLIN;
}

/* ------------------------------------------------------------ starting */

static bool timeout_valid(double timeout) {
    return !isnan(timeout);
}

static bool ids_valid(const uint64_t *ids, size_t n) {
    if (!ids || n == 0 || n > REQUEST_MAX_BATCH)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return false;
    return true;
}

static int submit_message(aioc_client *c, const aioc_call *call, Aiod__Ownership own, bool follow,
                          enum request_kind kind, aioc_request_cb cb, void *userdata,
                          double timeout, aioc_request **ret) {
    Aiod__Submit s = AIOD__SUBMIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (c->dead)
        return c->dead;
    s.call = call->pb;
    s.ownership = own;
    s.follow = follow;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
    m.submit = &s;
    aioc_request *req = new_request(c, kind, cb, userdata);
    if (req) {
        req->timeout = timeout;
        req->n_expected = 1;
    }
    return start(c, req, &m, ret);
}

AIOC_EXPORT int aioc_start_submit(aioc_client *c, const aioc_call *call, unsigned flags,
                                  aioc_request_cb cb, void *userdata, aioc_request **ret) {
    static const Aiod__Ownership own[] = {AIOD__OWNERSHIP__ATTACHED, AIOD__OWNERSHIP__SUBMITTED,
                                          AIOD__OWNERSHIP__DETACHED};
    unsigned o = flags & 0x3u;
    if (!c || !call || !call->pb || !ret || (flags & ~(0x3u | AIOC_SUBMIT_FOLLOW)) || o == 3)
        return -EINVAL;
    return submit_message(c, call, own[o], !!(flags & AIOC_SUBMIT_FOLLOW), REQUEST_SUBMIT, cb,
                          userdata, 0, ret);
}

AIOC_EXPORT int aioc_start_run(aioc_client *c, const aioc_call *call, double timeout,
                               aioc_request_cb cb, void *userdata, aioc_request **ret) {
    if (!c || !call || !call->pb || !ret || !timeout_valid(timeout))
        return -EINVAL;
    return submit_message(c, call, AIOD__OWNERSHIP__ATTACHED, true, REQUEST_RUN, cb, userdata,
                          timeout, ret);
}

AIOC_EXPORT int aioc_start_await(aioc_client *c, const uint64_t *ids, size_t n, unsigned flags,
                                 double timeout, aioc_request_cb cb, void *userdata,
                                 aioc_request **ret) {
    Aiod__Await a = AIOD__AWAIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (!c || !ids_valid(ids, n) || (flags & ~AIOC_AWAIT_CANCEL_ON_TIMEOUT) || !ret ||
        !timeout_valid(timeout))
        return -EINVAL;
    if (c->dead)
        return c->dead;
    a.task_ids = (uint64_t *)ids;
    a.n_task_ids = n;
    a.timeout = timeout > 0 ? timeout : 0;
    a.cancel_on_timeout = !!(flags & AIOC_AWAIT_CANCEL_ON_TIMEOUT);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_AWAIT;
    m.await = &a;
    return start_batch(c, REQUEST_AWAIT, n, cb, userdata, &m, ret);
}

AIOC_EXPORT int aioc_start_gather(aioc_client *c, const aioc_call *const *items, size_t n,
                                  unsigned flags, double timeout, aioc_request_cb cb,
                                  void *userdata, aioc_request **ret) {
    Aiod__Gather g = AIOD__GATHER__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    _cleanup_free_ Aiod__GatherItem *gi = NULL;
    _cleanup_free_ Aiod__GatherItem **gp = NULL;

    if (!c || !items || n == 0 || n > REQUEST_MAX_BATCH || !ret ||
        (flags & ~(AIOC_GATHER_RETURN_EXCEPTIONS | AIOC_GATHER_FOLLOW)) || !timeout_valid(timeout))
        return -EINVAL;
    int r = call_gather_items(items, n, &gi, &gp);
    if (r < 0)
        return r;
    if (c->dead)
        return c->dead;
    g.items = gp;
    g.n_items = n;
    g.return_exceptions = !!(flags & AIOC_GATHER_RETURN_EXCEPTIONS);
    g.timeout = timeout > 0 ? timeout : 0;
    g.cancel_on_timeout = true;
    g.follow = !!(flags & AIOC_GATHER_FOLLOW);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
    m.gather = &g;
    return start_batch(c, REQUEST_GATHER, n, cb, userdata, &m, ret);
}

AIOC_EXPORT int aioc_start_cancel(aioc_client *c, const uint64_t *ids, size_t n, aioc_request_cb cb,
                                  void *userdata, aioc_request **ret) {
    Aiod__Cancel x = AIOD__CANCEL__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (!c || !ids_valid(ids, n) || !ret)
        return -EINVAL;
    if (c->dead)
        return c->dead;
    x.task_ids = (uint64_t *)ids;
    x.n_task_ids = n;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_CANCEL;
    m.cancel = &x;
    return start_batch(c, REQUEST_CANCEL, n, cb, userdata, &m, ret);
}

AIOC_EXPORT int aioc_start_logs(aioc_client *c, uint64_t id, unsigned flags, aioc_request_cb cb,
                                void *userdata, aioc_request **ret) {
    Aiod__Logs l = AIOD__LOGS__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    if (!c || id == 0 || (flags & ~AIOC_LOGS_FOLLOW) || !ret)
        return -EINVAL;
    if (c->dead)
        return c->dead;
    l.task_id = id;
    l.follow = !!(flags & AIOC_LOGS_FOLLOW);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LOGS;
    m.logs = &l;
    return start(c, new_request(c, REQUEST_LOGS, cb, userdata), &m, ret);
}

/* ------------------------------------------------------------ the handle */

AIOC_EXPORT void aioc_request_set_output_callback(aioc_request *req, aioc_output_cb cb,
                                                  void *userdata) {
    if (!req)
        return;
    req->output_cb = cb;
    req->output_userdata = userdata;
}

AIOC_EXPORT int aioc_request_done(const aioc_request *req) {
    return req ? req->done : -EINVAL;
}

AIOC_EXPORT int aioc_request_error(const aioc_request *req) {
    if (!req)
        return -EINVAL;
    return req->done ? req->error : -EINPROGRESS;
}

AIOC_EXPORT const char *aioc_request_error_message(const aioc_request *req) {
    return req && req->error_message ? req->error_message : "";
}

AIOC_EXPORT uint64_t aioc_request_task_id(const aioc_request *req) {
    return req && (req->kind == REQUEST_SUBMIT || req->kind == REQUEST_RUN) ? req->task_id : 0;
}

AIOC_EXPORT size_t aioc_request_n_outcomes(const aioc_request *req) {
    return req ? req->n_outcomes : 0;
}

AIOC_EXPORT const aioc_outcome *aioc_request_outcome(const aioc_request *req, size_t i) {
    return req && i < req->n_outcomes ? req->outcomes[i] : NULL;
}

AIOC_EXPORT aioc_outcome *aioc_request_take_outcome(aioc_request *req, size_t i) {
    if (!req || i >= req->n_outcomes)
        return NULL;
    return TAKE_PTR(req->outcomes[i]);
}

AIOC_EXPORT const aioc_outcome *aioc_request_failed(const aioc_request *req) {
    return req ? req->failed : NULL;
}

AIOC_EXPORT int aioc_request_count(const aioc_request *req) {
    if (!req || req->kind != REQUEST_CANCEL)
        return -EINVAL;
    return req->count;
}

AIOC_EXPORT int aioc_request_state(const aioc_request *req) {
    if (!req || req->kind != REQUEST_LOGS)
        return -EINVAL;
    return req->state;
}

AIOC_EXPORT int aioc_request_cancel(aioc_request *req) {
    if (!req)
        return -EINVAL;
    if (req->done)
        return -EALREADY;
    req->done = true;
    req->error = -ECANCELED;
    if (req->kind == REQUEST_RUN && req->client) {
        if (req->task_id)
            cancel_task(req->client, req->task_id);
        else
            req->abandon = true;
    }
    return 0;
}

AIOC_EXPORT void aioc_request_free(aioc_request *req) {
    if (!req)
        return;
    if (!req->done && req->kind == REQUEST_RUN && !req->task_id && req->client &&
        !req->client->dead) {
        /* Its task does not exist yet: keep the request, as the library's
         * own, until the Submitted reply names the task to cancel. */
        req->internal = true;
        req->abandon = true;
        req->cb = NULL;
        req->output_cb = NULL;
        return;
    }
    if (!req->done)
        (void)aioc_request_cancel(req);
    destroy(req);
}
