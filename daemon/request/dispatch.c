/*
 * Request dispatch (dispatch.h). Handlers validate everything a client sent
 * (function, arguments, ids, counts) before touching any task, and answer
 * with an error that names what was wrong.
 */
#include "request/dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "system/config.h"
#include "net/conn.h"
#include "core/limit.h"
#include "base/aiod_limits.h"
#include "system/log.h"
#include "core/output.h"
#include "host/registry.h"
#include "system/policy.h"
#include "app/reload.h"
#include "core/sched.h"
#include "core/task.h"
#include "request/waiting.h"
#include "net/wire.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "0.0.0"
#endif

static bool shutting_down;

void dispatch_set_shutting_down(void) {
    shutting_down = true;
}

static void reply(conn *c, Aiod__ServerMessage *m) {
    conn_send(c, m);
    conn_request_done(c);
}

#define reply_error(c, req, code, ...)                                                             \
    do {                                                                                           \
        conn_send_error(c, req, AIOD__ERROR_CODE__##code, __VA_ARGS__);                            \
        conn_request_done(c);                                                                      \
    } while (0)

static void handle_hello(conn *c, uint64_t req, const Aiod__Hello *h) {
    if (c->hello_done) {
        reply_error(c, req, ERROR_PROTOCOL, "hello was already exchanged on this connection");
        return;
    }
    if (h->protocol_version != AIOD_PROTOCOL_VERSION) {
        log_info("connection %llu (uid %u): protocol version %u not supported, closing",
                 (unsigned long long)c->serial, (unsigned)c->uid, h->protocol_version);
        reply_error(c, req, ERROR_UNSUPPORTED_VERSION,
                    "protocol version %u is not supported; this daemon speaks version %u",
                    h->protocol_version, AIOD_PROTOCOL_VERSION);
        conn_close_soon(c);
        return;
    }
    c->hello_done = true;
    Aiod__HelloReply hr = AIOD__HELLO_REPLY__INIT;
    hr.protocol_version = AIOD_PROTOCOL_VERSION;
    hr.server_version = (char *)AIOD_VERSION;
    hr.max_frame = cfg.max_frame;
    hr.max_in_flight = cfg.max_in_flight;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_HELLO;
    m.hello = &hr;
    reply(c, &m);
}

/*
 * Creates a task for a client's call; on failure sends nothing but writes
 * the error code and message. The call's argument values are taken.
 */
static int make_task(conn *c, Aiod__Call *call, int ownership, task **ret, Aiod__ErrorCode *code,
                     char *err, size_t err_len) {
    Aiod__Value **argv = NULL;
    if (!call || !call->function || !*call->function) {
        *code = AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT;
        snprintf(err, err_len, "the call names no function");
        return -EINVAL;
    }
    fn_entry *fn = plugin_lookup(call->function);
    if (!fn || (fn->def->flags & AIOD_FN_INTERNAL)) {
        *code = AIOD__ERROR_CODE__ERROR_UNKNOWN_FUNCTION;
        snprintf(err, err_len, "unknown function '%.200s' (see `aioctl plugins` for the list)",
                 call->function);
        return -ENOENT;
    }
    if (policy_may_call(c, fn->full_name, err, err_len) < 0) {
        *code = AIOD__ERROR_CODE__ERROR_NOT_ALLOWED;
        return -EPERM;
    }
    for (size_t i = 0; i < call->n_args; i++)
        if (!call->args[i]) {
            *code = AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT;
            snprintf(err, err_len, "%s: argument %zu is missing", fn->full_name, i + 1);
            return -EINVAL;
        }
    /* The request lives in the decoder's arena: the arguments are copied.
     * wire_decode bounded their nesting, so the copy's recursion is too. */
    int r = value_check_call_borrowed(&fn->sig, call->args, call->n_args, call->args_are_text,
                                      LIMIT_VALUE_DEPTH, &argv, err, err_len);
    if (r < 0) {
        *code =
            r == -ENOMEM ? AIOD__ERROR_CODE__ERROR_INTERNAL : AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT;
        if (r == -ENOMEM)
            snprintf(err, err_len, "out of memory");
        return r;
    }
    task *t;
    r = task_new(fn, argv, fn->sig.n_params, ownership, c->uid, c->pid, NULL, &t);
    if (r == -EAGAIN || r == -EDQUOT) {
        *code = AIOD__ERROR_CODE__ERROR_LIMIT;
        if (r == -EAGAIN)
            snprintf(err, err_len, "too many tasks: the limit max_tasks (%u) is reached",
                     cfg.max_tasks);
        else
            snprintf(err, err_len,
                     "too many tasks for uid %u: the limit max_tasks_per_uid (%u) is reached",
                     (unsigned)c->uid, policy_lim.max_tasks_per_uid);
        return r;
    }
    if (r < 0) {
        *code = AIOD__ERROR_CODE__ERROR_INTERNAL;
        snprintf(err, err_len, "%s",
                 r == -EIO ? "cannot reserve task ids in the state directory (see the daemon's "
                             "log); no task can be created"
                           : "out of memory");
        return r;
    }
    if (ownership == AIOD__OWNERSHIP__ATTACHED)
        conn_add_task(c, t);
    *ret = t;
    return 0;
}

static void handle_submit(conn *c, uint64_t req, Aiod__Submit *s) {
    char err[1024];
    Aiod__ErrorCode code;
    task *t;
    if (s->ownership > AIOD__OWNERSHIP__DETACHED) {
        reply_error(c, req, ERROR_BAD_ARGUMENT, "unknown ownership %d", (int)s->ownership);
        return;
    }
    if (make_task(c, s->call, (int)s->ownership, &t, &code, err, sizeof(err)) < 0) {
        conn_send_error(c, req, code, "%s", err);
        conn_request_done(c);
        return;
    }
    Aiod__Submitted sub = AIOD__SUBMITTED__INIT;
    sub.task_id = t->id;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_SUBMITTED;
    m.submitted = &sub;
    reply(c, &m);
    output *o = s->follow ? task_output(t) : NULL;
    if (s->follow && (!o || output_follow(o, c, req, false, true, t->state, false) < 0))
        log_warning("connection %llu: out of memory following task %llu, ignoring",
                    (unsigned long long)c->serial, (unsigned long long)t->id);
    sched_start(t);
    task_unref(t);
}

static bool check_batch(conn *c, uint64_t req, size_t n, const char *what) {
    if (n == 0) {
        reply_error(c, req, ERROR_BAD_ARGUMENT, "%s needs at least one task", what);
        return false;
    }
    if (n > LIMIT_MAX_BATCH) {
        reply_error(c, req, ERROR_LIMIT, "%s of %zu tasks exceeds the limit of %u per request",
                    what, n, LIMIT_MAX_BATCH);
        return false;
    }
    return true;
}

static bool check_timeout(conn *c, uint64_t req, double timeout) {
    if (!(timeout >= 0) || timeout > 1e9) {
        reply_error(c, req, ERROR_BAD_ARGUMENT, "timeout must be between 0 and 1e9 seconds");
        return false;
    }
    return true;
}

/* Replies NOT_ALLOWED for a task the peer may not act on; true if so. */
static bool refuse_foreign(conn *c, uint64_t req, const task *t, const char *what) {
    if (policy_may_act(c, t))
        return false;
    const char *group = policy_admin_group_name();
    reply_error(c, req, ERROR_NOT_ALLOWED,
                "task %llu belongs to uid %u; only its owner, root%s%s%s may %s it",
                (unsigned long long)t->id, (unsigned)t->uid, group ? " or members of group '" : "",
                group ? group : "", group ? "' (admin_group)" : "", what);
    return true;
}

/* Looks up ids into ts[0..n), each with a reference; on an unknown one
 * replies NO_SUCH_TASK (on a foreign one NOT_ALLOWED), leaves ts all NULL and
 * returns false. */
static bool lookup_all(conn *c, uint64_t req, const uint64_t *ids, size_t n, const char *what,
                       task **ts) {
    for (size_t i = 0; i < n; i++) {
        task *t = task_lookup(ids[i]);
        if (!t) {
            reply_error(c, req, ERROR_NO_SUCH_TASK,
                        "no task %llu (it never existed, or its result is no longer retained)",
                        (unsigned long long)ids[i]);
            return false;
        }
        if (refuse_foreign(c, req, t, what))
            return false;
    }
    for (size_t i = 0; i < n; i++)
        ts[i] = task_ref(task_lookup(ids[i]));
    return true;
}

static void handle_await(conn *c, uint64_t req, const Aiod__Await *a) {
    if (!check_batch(c, req, a->n_task_ids, "await") || !check_timeout(c, req, a->timeout))
        return;
    wait_req *r = waiting_new(c, req, a->n_task_ids);
    if (!r) {
        reply_error(c, req, ERROR_INTERNAL, "out of memory");
        return;
    }
    if (!lookup_all(c, req, a->task_ids, a->n_task_ids, "await", waiting_tasks(r))) {
        waiting_abandon(r);
        return;
    }
    wait_opts o = {.timeout = a->timeout, .cancel_on_timeout = a->cancel_on_timeout};
    waiting_begin(r, &o);
}

static void handle_gather(conn *c, uint64_t req, Aiod__Gather *g) {
    char err[1024];
    Aiod__ErrorCode code;
    if (!check_batch(c, req, g->n_items, "gather") || !check_timeout(c, req, g->timeout))
        return;
    wait_req *w = waiting_new(c, req, g->n_items);
    if (!w) {
        reply_error(c, req, ERROR_INTERNAL, "out of memory");
        return;
    }
    task **ts = waiting_tasks(w);
    /* All or nothing: a bad item refuses the whole gather before any of its
     * new tasks starts. */
    for (size_t i = 0; i < g->n_items; i++) {
        Aiod__GatherItem *it = g->items[i];
        int r = 0;
        if (it && it->item_case == AIOD__GATHER_ITEM__ITEM_CALL) {
            r = make_task(c, it->call, AIOD__OWNERSHIP__ATTACHED, &ts[i], &code, err, sizeof(err));
        } else if (it && it->item_case == AIOD__GATHER_ITEM__ITEM_TASK_ID) {
            ts[i] = task_ref(task_lookup(it->task_id));
            if (!ts[i]) {
                code = AIOD__ERROR_CODE__ERROR_NO_SUCH_TASK;
                snprintf(err, sizeof(err), "no task %llu", (unsigned long long)it->task_id);
                r = -ESRCH;
            } else if (!policy_may_act(c, ts[i])) {
                code = AIOD__ERROR_CODE__ERROR_NOT_ALLOWED;
                snprintf(err, sizeof(err),
                         "task %llu belongs to uid %u; only its owner or an "
                         "administrator may gather it",
                         (unsigned long long)it->task_id, (unsigned)ts[i]->uid);
                task_unref(ts[i]);
                ts[i] = NULL;
                r = -EPERM;
            }
        } else {
            code = AIOD__ERROR_CODE__ERROR_BAD_ARGUMENT;
            snprintf(err, sizeof(err), "item is neither a call nor a task id");
            r = -EINVAL;
        }
        if (r < 0) {
            for (size_t j = 0; j < i; j++)
                if (g->items[j]->item_case == AIOD__GATHER_ITEM__ITEM_CALL)
                    sched_cancel(ts[j]);
            waiting_abandon(w); /* drops the references */
            conn_send_error(c, req, code, "gather item %zu: %s", i + 1, err);
            conn_request_done(c);
            return;
        }
    }
    for (size_t i = 0; i < g->n_items; i++)
        if (g->items[i]->item_case == AIOD__GATHER_ITEM__ITEM_CALL) {
            output *o = g->follow ? task_output(ts[i]) : NULL;
            if (o)
                output_follow(o, c, req, false, true, ts[i]->state, false);
            sched_start(ts[i]);
        }
    wait_opts o = {.gather = true,
                   .return_exceptions = g->return_exceptions,
                   .timeout = g->timeout,
                   .cancel_on_timeout = g->cancel_on_timeout};
    waiting_begin(w, &o);
}

static void handle_cancel(conn *c, uint64_t req, const Aiod__Cancel *k) {
    if (!check_batch(c, req, k->n_task_ids, "cancel"))
        return;
    task **ts = alloc_calloc(k->n_task_ids, sizeof(*ts));
    if (!ts) {
        reply_error(c, req, ERROR_INTERNAL, "out of memory");
        return;
    }
    if (!lookup_all(c, req, k->task_ids, k->n_task_ids, "cancel", ts)) {
        free(ts);
        return;
    }
    uint32_t count = 0;
    for (size_t i = 0; i < k->n_task_ids; i++) {
        if (sched_cancel(ts[i]))
            count++;
        task_unref(ts[i]);
    }
    free(ts);
    Aiod__Cancelled cd = AIOD__CANCELLED__INIT;
    cd.count = count;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_CANCELLED;
    m.cancelled = &cd;
    reply(c, &m);
}

static void fill_info(const task *t, Aiod__TaskInfo *ti, Aiod__Outcome *o, bool detail) {
    aiod__task_info__init(ti);
    ti->id = t->id;
    ti->state = (Aiod__TaskState)t->state;
    ti->function = t->fn->full_name;
    ti->ownership = (Aiod__Ownership)t->ownership;
    ti->owner_uid = (uint32_t)t->uid;
    ti->owner_pid = (int32_t)t->pid;
    ti->created_usec = t->created_usec;
    ti->started_usec = t->started_usec;
    ti->finished_usec = t->finished_usec;
    ti->parent_id = t->parent_id;
    ti->output_lines = task_output_lines(t);
    ti->output_dropped = task_output_dropped(t);
    const char *waiting = limit_waiting_for(t);
    if (waiting)
        ti->waiting_for = (char *)waiting;
    if (detail) {
        ti->n_args = t->argc;
        ti->args = t->argv;
        if (task_finished(t)) {
            task_outcome(t, o);
            ti->outcome = o;
        }
    }
}

static int cmp_info(const void *a, const void *b) {
    const Aiod__TaskInfo *x = *(Aiod__TaskInfo *const *)a, *y = *(Aiod__TaskInfo *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void handle_list(conn *c, uint64_t req, const Aiod__ListTasks *l) {
    size_t st = 0, n = 0, cap = 64;
    void *cur = NULL;
    task *t;
    Aiod__TaskInfo *infos = alloc_malloc(cap * sizeof(*infos));
    Aiod__TaskInfo **ptrs = NULL;
    if (!infos)
        goto oom;
    while ((t = task_next(&st, &cur))) {
        if ((!l->all && task_finished(t)) || !policy_may_act(c, t))
            continue;
        if (n == cap) {
            Aiod__TaskInfo *ni = alloc_realloc(infos, cap * 2 * sizeof(*infos));
            if (!ni)
                goto oom;
            infos = ni;
            cap *= 2;
        }
        fill_info(t, &infos[n++], NULL, false);
    }
    ptrs = alloc_malloc((n ? n : 1) * sizeof(*ptrs));
    if (!ptrs)
        goto oom;
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &infos[i];
    qsort(ptrs, n, sizeof(*ptrs), cmp_info);
    Aiod__TaskList tl = AIOD__TASK_LIST__INIT;
    tl.n_tasks = n;
    tl.tasks = ptrs;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_LIST;
    m.task_list = &tl;
    reply(c, &m);
    free(ptrs);
    free(infos);
    return;
oom:
    free(infos);
    reply_error(c, req, ERROR_INTERNAL, "out of memory");
}

static void handle_show(conn *c, uint64_t req, const Aiod__ShowTask *s) {
    task *t = task_lookup(s->task_id);
    if (!t) {
        reply_error(c, req, ERROR_NO_SUCH_TASK, "no task %llu", (unsigned long long)s->task_id);
        return;
    }
    if (refuse_foreign(c, req, t, "show"))
        return;
    Aiod__TaskInfo ti;
    Aiod__Outcome o;
    fill_info(t, &ti, &o, true);
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_TASK_INFO;
    m.task_info = &ti;
    reply(c, &m);
}

static void handle_logs(conn *c, uint64_t req, const Aiod__Logs *l) {
    task *t = task_lookup(l->task_id);
    if (!t) {
        reply_error(c, req, ERROR_NO_SUCH_TASK, "no task %llu", (unsigned long long)l->task_id);
        return;
    }
    if (refuse_foreign(c, req, t, "follow"))
        return;
    /* A finished task that printed nothing has no output (any more). */
    if (!t->out && task_finished(t)) {
        conn_send_output_end(c, req, t->id, 0, t->state);
        conn_request_done(c);
        return;
    }
    /* A child's lines live in its root's output; follow the child's end by
     * its own state only when it owns the output. */
    output *o = task_output(t);
    bool own = o && o->task_id == t->id;
    int r = o ? output_follow(o, c, req, true, l->follow && own, t->state, true) : -ENOMEM;
    if (r < 0)
        reply_error(c, req, ERROR_INTERNAL, "out of memory");
    else if (r == 1)
        conn_request_done(c);
}

static void fill_function(const fn_entry *f, Aiod__FunctionInfo *fi, Aiod__Param *ps,
                          Aiod__Param **pp) {
    aiod__function_info__init(fi);
    fi->name = f->full_name;
    fi->doc = (char *)f->def->doc;
    fi->result_type = (Aiod__ValueType)f->def->result_type;
    fi->plugin = (char *)f->owner->desc->name;
    fi->plugin_version = (char *)f->owner->desc->version;
    fi->n_params = f->sig.n_params;
    fi->params = pp;
    for (size_t i = 0; i < f->sig.n_params; i++) {
        aiod__param__init(&ps[i]);
        ps[i].name = (char *)f->params[i].name;
        ps[i].type = (Aiod__ValueType)(f->params[i].type & ~VALUE_REST);
        ps[i].rest = (f->params[i].type & VALUE_REST) != 0;
        ps[i].has_default = f->params[i].default_value != NULL;
        ps[i].default_value = f->params[i].default_value;
        pp[i] = &ps[i];
    }
}

static void handle_plugins(conn *c, uint64_t req) {
    size_t n = 0, np = 0;
    for (size_t i = 0; i < plugin_count(); i++) {
        plugin *p = plugin_at(i);
        for (size_t j = 0; j < p->n_fns; j++)
            if (!(p->fns[j].def->flags & AIOD_FN_INTERNAL)) {
                n++;
                np += p->fns[j].sig.n_params;
            }
    }
    Aiod__FunctionInfo *fis = alloc_calloc(n ? n : 1, sizeof(*fis));
    Aiod__FunctionInfo **fps = alloc_calloc(n ? n : 1, sizeof(*fps));
    Aiod__Param *ps = alloc_calloc(np ? np : 1, sizeof(*ps));
    Aiod__Param **pps = alloc_calloc(np ? np : 1, sizeof(*pps));
    if (!fis || !fps || !ps || !pps) {
        free(fis);
        free(fps);
        free(ps);
        free(pps);
        reply_error(c, req, ERROR_INTERNAL, "out of memory");
        return;
    }
    size_t k = 0, kp = 0;
    for (size_t i = 0; i < plugin_count(); i++) {
        plugin *p = plugin_at(i);
        for (size_t j = 0; j < p->n_fns; j++) {
            const fn_entry *f = &p->fns[j];
            if (f->def->flags & AIOD_FN_INTERNAL)
                continue;
            fill_function(f, &fis[k], &ps[kp], &pps[kp]);
            fps[k] = &fis[k];
            k++;
            kp += f->sig.n_params;
        }
    }
    Aiod__PluginList pl = AIOD__PLUGIN_LIST__INIT;
    pl.n_functions = n;
    pl.functions = fps;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = req;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST;
    m.plugin_list = &pl;
    reply(c, &m);
    free(fis);
    free(fps);
    free(ps);
    free(pps);
}

void dispatch_frame(conn *c, const uint8_t *payload, size_t len) {
    Aiod__ClientMessage *m = NULL;
    char why[256];
    int r = wire_decode(payload, len, &m, why, sizeof(why));
    if (r < 0) {
        log_warning("connection %llu (uid %u pid %d): bad message (%s), dropping the client",
                    (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid,
                    r == -ENOMEM ? "out of memory" : why);
        conn_send_error(c, 0, AIOD__ERROR_CODE__ERROR_BAD_MESSAGE, "cannot decode the frame: %s",
                        r == -ENOMEM ? "out of memory" : why);
        conn_request_done(c);
        conn_close_soon(c);
        return;
    }
    uint64_t req = m->request_id;
    if (!c->hello_done && m->body_case != AIOD__CLIENT_MESSAGE__BODY_HELLO) {
        log_info("connection %llu (uid %u pid %d): request before hello, dropping the client",
                 (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid);
        reply_error(c, req, ERROR_PROTOCOL, "the first message must be Hello");
        conn_close_soon(c);
    } else if (req == 0) {
        reply_error(c, 0, ERROR_PROTOCOL, "request_id must not be 0");
    } else if (shutting_down && m->body_case != AIOD__CLIENT_MESSAGE__BODY_HELLO) {
        reply_error(c, req, ERROR_SHUTTING_DOWN, "aiod is shutting down");
    } else {
        switch (m->body_case) {
        case AIOD__CLIENT_MESSAGE__BODY_HELLO:
            handle_hello(c, req, m->hello);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_SUBMIT:
            handle_submit(c, req, m->submit);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_AWAIT:
            handle_await(c, req, m->await);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_GATHER:
            handle_gather(c, req, m->gather);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_CANCEL:
            handle_cancel(c, req, m->cancel);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS:
            handle_list(c, req, m->list_tasks);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK:
            handle_show(c, req, m->show_task);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_LOGS:
            handle_logs(c, req, m->logs);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_LIST_PLUGINS:
            handle_plugins(c, req);
            break;
        case AIOD__CLIENT_MESSAGE__BODY_RELOAD:
            reload_handle(c, req);
            break;
        default:
            reply_error(c, req, ERROR_BAD_MESSAGE,
                        "unknown or empty request (body %d); is the client newer than the daemon?",
                        (int)m->body_case);
            break;
        }
    }
    wire_free(m);
}
