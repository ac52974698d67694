/*
 * Requests on queued tasks (remote.h).
 *
 * A remote request holds one cluster operation per task it names. It ends
 * once: with the reply when every operation answered, or with the first
 * error (the other operations are dropped), or at its timeout (Await).
 */
#include "request/remote.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/list.h"
#include "cluster/cluster.h"
#include "core/sched.h"
#include "core/task.h"
#include "pbvalue.h"
#include "system/log.h"

#define ERR(code) AIOD__ERROR_CODE__##code

enum remote_kind { R_SUBMIT, R_AWAIT, R_CANCEL, R_SHOW, R_LOGS };

typedef struct remote remote;

/* One task of a request: its operation and, for an await, its outcome. */
typedef struct remote_item {
    remote *rq;
    cluster_op *op;
    uint64_t id;
    bool answered;
    Aiod__Outcome outcome;
    /* Logs: the lines sent. */
    uint64_t lines;
} remote_item;

struct remote {
    req r;
    session *s;
    list session_node;
    int kind;
    /* Await: the timeout, and what to do then. */
    uv_timer_t *timer;
    double timeout;
    bool cancel_on_timeout;
    /* Cancel: how many were asked to cancel. */
    uint32_t cancelled;
    size_t n, left;
    remote_item items[];
};

static remote *remote_new(session *s, req *r, int kind, size_t n) {
    remote *rq = alloc_calloc(1, sizeof(*rq) + n * sizeof(rq->items[0]));
    if (!rq) {
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        return NULL;
    }
    req_move(&rq->r, r);
    rq->s = s;
    rq->kind = kind;
    rq->n = rq->left = n;
    for (size_t i = 0; i < n; i++)
        rq->items[i].rq = rq;
    list_insert_tail(&s->remotes, &rq->session_node);
    return rq;
}

static void free_outcome(Aiod__Outcome *o) {
    if (o->result)
        pbvalue_free(o->result);
    free(o->error_kind);
    free(o->error_message);
    o->result = NULL;
    o->error_kind = o->error_message = NULL;
}

static void close_timer(uv_handle_t *h) {
    free(h);
}

/* Drops what is left of the request (its request already ended or
 * abandoned) and frees it. */
static void remote_free(remote *rq) {
    list_remove(&rq->session_node);
    for (size_t i = 0; i < rq->n; i++) {
        cluster_op_cancel(rq->items[i].op);
        rq->items[i].op = NULL;
        free_outcome(&rq->items[i].outcome);
    }
    if (rq->timer) {
        uv_timer_stop(rq->timer);
        uv_close((uv_handle_t *)rq->timer, close_timer);
    }
    free(rq);
}

static Aiod__ErrorCode code_of(int err, int kind) {
    switch (err) {
    case -EHOSTUNREACH:
    case -EBUSY:
        return ERR(ERROR_UNAVAILABLE);
    case -ENOENT:
        return kind == R_SUBMIT ? ERR(ERROR_UNKNOWN_FUNCTION) : ERR(ERROR_NO_SUCH_TASK);
    case -EPERM:
        return ERR(ERROR_NOT_ALLOWED);
    case -EINVAL:
        return ERR(ERROR_BAD_ARGUMENT);
    case -EDQUOT:
        return ERR(ERROR_LIMIT); /* cluster_follow: too many readers of queued output */
    default:
        return ERR(ERROR_INTERNAL);
    }
}

/* Ends the request with the error of an operation, and drops the rest. */
static void fail(remote *rq, remote_item *it, int err, const char *why) {
    it->op = NULL; /* it answered: it is gone */
    req_end_error(&rq->r, code_of(err, rq->kind), "%s", why);
    remote_free(rq);
}

/* The answer came for `it`: true when it was the last one. */
static bool item_done(remote_item *it) {
    it->op = NULL;
    it->answered = true;
    return --it->rq->left == 0;
}

/* The answer for one item: NULL when it was an error (the request ended
 * with it, and is gone); else the request, *last telling whether it was the
 * last item to answer. */
static remote *took(void *data, const cluster_answer *a, bool *last) {
    remote_item *it = data;
    remote *rq = it->rq;
    if (a->err) {
        fail(rq, it, a->err, a->why);
        return NULL;
    }
    *last = item_done(it);
    return rq;
}

/* ------------------------------------------------------------ submit */

static void on_submitted(void *data, const cluster_answer *a) {
    bool last;
    remote *rq = took(data, a, &last);
    if (!rq)
        return;
    Aiod__Submitted sub = AIOD__SUBMITTED__INIT;
    sub.task_id = a->id;
    req_end(&rq->r, AIOD__SERVER_MESSAGE__BODY_SUBMITTED, &sub);
    remote_free(rq);
}

void remote_submit(session *s, req *r, const Aiod__Submit *m) {
    if (m->follow || m->schedule) {
        req_end_error(r, ERR(ERROR_BAD_ARGUMENT), "a queued task takes no %s",
                      m->follow ? "follow (follow it with logs -f once submitted)"
                                : "schedule (retries, delay, start time or after)");
        return;
    }
    remote *rq = remote_new(s, r, R_SUBMIT, 1);
    if (!rq)
        return;
    char why[LIMIT_MESSAGE];
    int e = cluster_submit(m->queue, m->call, (int)m->ownership, &s->peer, on_submitted,
                           &rq->items[0], &rq->items[0].op, why, sizeof(why));
    if (e < 0)
        fail(rq, &rq->items[0], e, why);
}

/* ------------------------------------------------------------ await */

static void fill_outcome(Aiod__Outcome *o, const cluster_task *t) {
    *o = (Aiod__Outcome)AIOD__OUTCOME__INIT;
    /* Owned strings or none (never protobuf-c's shared empty string). */
    o->error_kind = o->error_message = NULL;
    o->task_id = t->id;
    o->state = (Aiod__TaskState)t->state;
    if (t->state == TASK_DONE)
        o->result = t->result ? pbvalue_copy(t->result) : pbvalue_null();
    else if (t->state == TASK_FAILED || t->state == TASK_CANCELLED) {
        o->error_kind = alloc_strdup(*t->kind                     ? t->kind
                                     : t->state == TASK_CANCELLED ? "CancelledError"
                                                                  : "Error");
        o->error_message = alloc_strdup(t->msg);
    }
}

static void reply_outcomes(remote *rq) {
    Aiod__Outcome **os = alloc_calloc(rq->n, sizeof(*os));
    if (!os) {
        req_end_error(&rq->r, ERR(ERROR_INTERNAL), "out of memory");
        return;
    }
    for (size_t i = 0; i < rq->n; i++)
        os[i] = &rq->items[i].outcome;
    Aiod__Outcomes out = AIOD__OUTCOMES__INIT;
    out.n_outcomes = rq->n;
    out.outcomes = os;
    req_end(&rq->r, AIOD__SERVER_MESSAGE__BODY_OUTCOMES, &out);
    free(os);
}

static void on_awaited(void *data, const cluster_answer *a) {
    remote_item *it = data;
    bool last;
    remote *rq = took(data, a, &last);
    if (!rq)
        return;
    fill_outcome(&it->outcome, a->task);
    if (!last)
        return;
    reply_outcomes(rq);
    remote_free(rq);
}

static void ignore_answer(void *data, const cluster_answer *a) {
    (void)data, (void)a;
}

static void on_timeout(uv_timer_t *t) {
    remote *rq = t->data;
    size_t unfinished = rq->left;
    if (rq->cancel_on_timeout)
        for (size_t i = 0; i < rq->n; i++) {
            cluster_op *op;
            char why[LIMIT_MESSAGE];
            if (!rq->items[i].answered &&
                cluster_cancel(rq->items[i].id, &rq->s->peer, ignore_answer, NULL, &op, why,
                               sizeof(why)) < 0)
                log_warning("cannot cancel task %" PRIu64 " at the timeout: %s", rq->items[i].id,
                            why);
        }
    req_end_error(&rq->r, ERR(ERROR_TIMEOUT),
                  "timed out after %g s with %zu of %zu task%s unfinished; %s", rq->timeout,
                  unfinished, rq->n, rq->n == 1 ? "" : "s",
                  rq->cancel_on_timeout ? "cancelled them" : "they keep running");
    remote_free(rq);
}

/* Starts one operation per id with `start`; false if the request ended. */
typedef int (*start_fn)(uint64_t id, const peer *p, cluster_cb cb, void *data, cluster_op **ret,
                        char *why, size_t why_len);

static bool start_all(remote *rq, const uint64_t *ids, start_fn start, cluster_cb cb) {
    for (size_t i = 0; i < rq->n; i++) {
        char why[LIMIT_MESSAGE];
        remote_item *it = &rq->items[i];
        it->id = ids[i];
        int e = start(ids[i], &rq->s->peer, cb, it, &it->op, why, sizeof(why));
        if (e < 0) {
            fail(rq, it, e, why);
            return false;
        }
    }
    return true;
}

void remote_await(session *s, req *r, const Aiod__Await *a) {
    remote *rq = remote_new(s, r, R_AWAIT, a->n_task_ids);
    if (!rq)
        return;
    rq->timeout = a->timeout;
    rq->cancel_on_timeout = a->cancel_on_timeout;
    if (!start_all(rq, a->task_ids, cluster_await, on_awaited))
        return;
    if (a->timeout > 0) {
        rq->timer = alloc_malloc(sizeof(*rq->timer));
        if (!rq->timer) {
            req_end_error(&rq->r, ERR(ERROR_INTERNAL), "out of memory");
            remote_free(rq);
            return;
        }
        uv_timer_init(s->c->pipe.loop, rq->timer);
        rq->timer->data = rq;
        sched_timer_start(rq->timer, on_timeout, a->timeout);
    }
}

/* ------------------------------------------------------------ cancel */

static void on_cancelled(void *data, const cluster_answer *a) {
    bool last;
    remote *rq = took(data, a, &last);
    if (!rq)
        return;
    rq->cancelled += (uint32_t)a->cancelled;
    if (!last)
        return;
    Aiod__Cancelled cd = AIOD__CANCELLED__INIT;
    cd.count = rq->cancelled;
    req_end(&rq->r, AIOD__SERVER_MESSAGE__BODY_CANCELLED, &cd);
    remote_free(rq);
}

void remote_cancel(session *s, req *r, const Aiod__Cancel *k) {
    remote *rq = remote_new(s, r, R_CANCEL, k->n_task_ids);
    if (rq)
        start_all(rq, k->task_ids, cluster_cancel, on_cancelled);
}

/* ------------------------------------------------------------ show */

static void on_shown(void *data, const cluster_answer *a) {
    bool last;
    remote *rq = took(data, a, &last);
    if (!rq)
        return;
    const cluster_task *t = a->task;
    Aiod__TaskInfo ti = AIOD__TASK_INFO__INIT;
    ti.id = t->id;
    ti.state = (Aiod__TaskState)t->state;
    ti.function = (char *)t->function;
    ti.call_text = (char *)t->function;
    ti.owner_uid = (uint32_t)t->uid;
    ti.created_usec = t->created_usec;
    ti.started_usec = t->started_usec;
    ti.finished_usec = t->finished_usec;
    ti.output_lines = t->lines;
    ti.output_dropped = t->dropped;
    ti.attempt = t->attempt;
    ti.queue = (char *)t->queue;
    ti.host = (char *)t->host;
    ti.owner_host = (char *)t->owner_host;
    if (t->qt) {
        ti.ownership = t->qt->ownership;
        ti.owner_pid = t->qt->owner_pid;
        if (t->qt->call) {
            ti.n_args = t->qt->call->n_args;
            ti.args = t->qt->call->args;
        }
    }
    Aiod__Outcome o;
    if (t->state >= TASK_DONE) {
        fill_outcome(&o, t);
        ti.outcome = &o;
    }
    req_end(&rq->r, AIOD__SERVER_MESSAGE__BODY_TASK_INFO, &ti);
    if (ti.outcome)
        free_outcome(&o);
    remote_free(rq);
}

void remote_show(session *s, req *r, const Aiod__ShowTask *m) {
    remote *rq = remote_new(s, r, R_SHOW, 1);
    if (rq)
        start_all(rq, &m->task_id, cluster_show, on_shown);
}

/* ------------------------------------------------------------ logs */

static void on_line(void *data, uint64_t seq, int stream, const char *line) {
    remote_item *it = data;
    Aiod__Output out = AIOD__OUTPUT__INIT;
    out.task_id = it->id;
    out.stream = (uint32_t)stream;
    out.line = (char *)line;
    out.seq = seq;
    /* One too big for max_frame counts among the dropped (on_logs_end). */
    if (req_send_output(&it->rq->r, &out))
        it->lines++;
}

static void on_logs_end(void *data, const cluster_answer *a) {
    remote_item *it = data;
    bool last;
    remote *rq = took(data, a, &last);
    if (!rq)
        return;
    Aiod__OutputEnd e = AIOD__OUTPUT_END__INIT;
    e.task_id = it->id;
    e.state = (Aiod__TaskState)a->task->state;
    /* What the task printed and this request did not get: lines its host
     * dropped, and lines trimmed from (or not yet in) its Redis stream. */
    uint64_t printed = a->task->lines + a->task->dropped;
    e.dropped = printed > it->lines ? printed - it->lines : 0;
    req_end(&rq->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
    remote_free(rq);
}

void remote_logs(session *s, req *r, const Aiod__Logs *l) {
    remote *rq = remote_new(s, r, R_LOGS, 1);
    if (!rq)
        return;
    char why[LIMIT_MESSAGE];
    remote_item *it = &rq->items[0];
    it->id = l->task_id;
    int e = cluster_follow(l->task_id, &s->peer, l->follow, on_line, on_logs_end, it, &it->op, why,
                           sizeof(why));
    if (e < 0)
        fail(rq, it, e, why);
}

void remote_session_closed(session *s) {
    while (!list_empty(&s->remotes)) {
        remote *rq = container_of(list_first(&s->remotes), remote, session_node);
        req_abandon(&rq->r);
        remote_free(rq);
    }
}
