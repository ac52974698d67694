/*
 * Request dispatch (dispatch.h). Handlers validate everything a client sent
 * (function, arguments, ids, counts) before touching any task, and answer
 * with an error that names what was wrong.
 */
#include "request/dispatch.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "cluster/cluster.h"
#include "core/finish.h"
#include "core/persist.h"
#include "core/plan.h"
#include "core/output.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"
#include "net/encode.h"
#include "net/wire.h"
#include "net/wire_fast.h"
#include "request/ack.h"
#include "request/describe.h"
#include "request/follow.h"
#include "request/listing.h"
#include "request/offload.h"
#include "request/remote.h"
#include "request/session.h"
#include "request/waiting.h"
#include "system/config.h"
#include "system/log.h"
#include "system/policy.h"

#ifndef AIOD_VERSION
#define AIOD_VERSION "0.0.0"
#endif

#define ERR(code) AIOD__ERROR_CODE__##code
/* A limit's value as the text it is written with ("1e9"). */
#define TEXT_OF_(x) #x
#define TEXT_OF(x) TEXT_OF_(x)

static bool shutting_down;
static void (*reload_handler)(session *s, req *r);

void dispatch_set_shutting_down(void) {
    shutting_down = true;
}

void dispatch_set_reload_handler(void (*handle)(session *s, req *r)) {
    reload_handler = handle;
}

static void handle_hello(session *s, req *r, const Aiod__Hello *h) {
    if (s->hello_done) {
        req_end_error(r, ERR(ERROR_PROTOCOL), "hello was already exchanged on this connection");
        return;
    }
    if (h->protocol_version != AIOD_PROTOCOL_VERSION) {
        log_info("connection %llu (uid %u): protocol version %u not supported, closing",
                 (unsigned long long)s->c->serial, (unsigned)s->peer.uid, h->protocol_version);
        req_end_error(r, ERR(ERROR_UNSUPPORTED_VERSION),
                      "protocol version %u is not supported; this daemon speaks version %u",
                      h->protocol_version, AIOD_PROTOCOL_VERSION);
        conn_close_soon(s->c);
        return;
    }
    s->hello_done = true;
    Aiod__HelloReply hr = AIOD__HELLO_REPLY__INIT;
    hr.protocol_version = AIOD_PROTOCOL_VERSION;
    hr.server_version = (char *)AIOD_VERSION;
    hr.max_frame = cfg.max_frame;
    hr.max_in_flight = cfg.max_in_flight;
    req_end(r, AIOD__SERVER_MESSAGE__BODY_HELLO, &hr);
}

/* Why a call was refused: the code and the message the client gets. */
typedef struct refusal {
    Aiod__ErrorCode code;
    char msg[LIMIT_MESSAGE];
} refusal;

/* The big frame being dispatched, decoded off the loop thread (offload.h):
 * its calls' arguments are taken, not copied, and their checks were made
 * on the pool. Set by run_decoded around its handler, and put back after,
 * since frames are dispatched within others. */
static const offload *frame_offload;

/* A refusal by a call rule or by ownership is logged, so that who tried
 * what stays on record (docs/security.md: refusals are in the journal). */
static void log_refusal(const session *s, const char *msg) {
    log_notice("connection %llu (uid %u, pid %d): refused: %s", (unsigned long long)s->c->serial,
               (unsigned)s->peer.uid, (int)s->peer.pid, msg);
}

/*
 * Creates a task for a client's call; on failure fills `why` and sends
 * nothing. The call's argument values are copied out of the decoder's
 * arena, or taken from a big frame decoded off the loop thread.
 */
static int make_task(session *s, Aiod__Call *call, int ownership, task **ret, refusal *why) {
    Aiod__Value **argv = NULL;
    if (!call || !call->function || !*call->function) {
        why->code = ERR(ERROR_BAD_ARGUMENT);
        snprintf(why->msg, sizeof(why->msg), "the call names no function");
        return -EINVAL;
    }
    fn_entry *fn = plugin_lookup(call->function);
    if (!fn || (fn->def->flags & AIOD_FN_INTERNAL)) {
        why->code = ERR(ERROR_UNKNOWN_FUNCTION);
        /* The name as the client sent it, cut between characters. */
        int shown = (int)utf8_cut(call->function, strnlen(call->function, 201), 200);
        snprintf(why->msg, sizeof(why->msg),
                 "unknown function '%.*s' (see `aioctl plugins` for the list)", shown,
                 call->function);
        return -ENOENT;
    }
    if (policy_may_call(&s->peer, fn->full_name, why->msg, sizeof(why->msg)) < 0) {
        why->code = ERR(ERROR_NOT_ALLOWED);
        log_refusal(s, why->msg);
        return -EPERM;
    }
    for (size_t i = 0; i < call->n_args; i++)
        if (!call->args[i]) {
            why->code = ERR(ERROR_BAD_ARGUMENT);
            snprintf(why->msg, sizeof(why->msg), "%s: argument %zu is missing", fn->full_name,
                     i + 1);
            return -EINVAL;
        }
    /* wire_decode bounded the arguments' nesting, so the copy's recursion
     * is bounded too. */
    int r = frame_offload
                ? value_check_call_take(&fn->sig, call->args, call->n_args, call->args_are_text,
                                        LIMIT_VALUE_DEPTH, offload_verdict, offload_text,
                                        frame_offload, &argv, why->msg, sizeof(why->msg))
                : value_check_call_borrowed(&fn->sig, call->args, call->n_args, call->args_are_text,
                                            LIMIT_VALUE_DEPTH, &argv, why->msg, sizeof(why->msg));
    if (r < 0) {
        /* -E2BIG: text that makes more values than a request may hold. */
        why->code = r == -ENOMEM  ? ERR(ERROR_INTERNAL)
                    : r == -E2BIG ? ERR(ERROR_LIMIT)
                                  : ERR(ERROR_BAD_ARGUMENT);
        if (r == -ENOMEM)
            snprintf(why->msg, sizeof(why->msg), "out of memory");
        return r;
    }
    task *t;
    r = task_new(fn, argv, fn->sig.n_params, ownership, s->peer.uid, s->peer.pid, NULL, &t);
    if (r == -EAGAIN || r == -EDQUOT || r == -ENOBUFS || r == -E2BIG) {
        why->code = ERR(ERROR_LIMIT);
        if (r == -EAGAIN)
            snprintf(why->msg, sizeof(why->msg),
                     "too many tasks: the limit max_tasks (%u) is reached", cfg.max_tasks);
        else if (r == -EDQUOT)
            snprintf(why->msg, sizeof(why->msg),
                     "too many tasks for uid %u: the limit max_tasks_per_uid (%u) is reached",
                     (unsigned)s->peer.uid, policy_lim.max_tasks_per_uid);
        else if (r == -ENOBUFS)
            snprintf(why->msg, sizeof(why->msg),
                     "the unfinished tasks of uid %u, with the outcomes of its attached tasks "
                     "not yet awaited, would hold more than max_task_bytes_per_uid (%zu bytes); "
                     "await those, wait for some tasks to end, or send less",
                     (unsigned)s->peer.uid, policy_lim.max_task_bytes_per_uid);
        else
            snprintf(why->msg, sizeof(why->msg),
                     "the task's arguments alone would hold more than max_task_bytes_per_uid "
                     "(%zu bytes) in the daemon",
                     policy_lim.max_task_bytes_per_uid);
        return r;
    }
    if (r < 0) {
        why->code = ERR(ERROR_INTERNAL);
        snprintf(why->msg, sizeof(why->msg), "%s",
                 r == -EIO ? "cannot reserve task ids in the state directory (see the daemon's "
                             "log); no task can be created"
                           : "out of memory");
        return r;
    }
    if (ownership == AIOD__OWNERSHIP__ATTACHED)
        task_attach_owner(t, s, &s->tasks);
    /* Without memory for it, the task's spawns are checked as a restored
     * task's are: by uid alone. */
    if (!s->caller && s->peer.uid != 0)
        s->caller = caller_new(&s->peer);
    t->run->caller = caller_ref(s->caller);
    *ret = t;
    return 0;
}

static task *find_task(session *s, uint64_t id, const char *what, refusal *why);

/* Checks a schedule, and the tasks it runs after: each must exist and be
 * one the peer may act on. */
static bool check_schedule(session *s, req *r, const Aiod__Schedule *sc) {
    char why_text[LIMIT_MESSAGE];
    int e = plan_check(sc, why_text, sizeof(why_text));
    if (e < 0) {
        req_end_error(r, e == -E2BIG ? ERR(ERROR_LIMIT) : ERR(ERROR_BAD_ARGUMENT), "%s", why_text);
        return false;
    }
    for (size_t i = 0; sc && i < sc->n_after; i++) {
        refusal why;
        if (!find_task(s, sc->after[i], "run after", &why)) {
            req_end_error(r, why.code, "schedule: %s", why.msg);
            return false;
        }
    }
    return true;
}

static void handle_submit(session *s, req *r, Aiod__Submit *m) {
    refusal why;
    task *t;
    if (m->ownership > AIOD__OWNERSHIP__DETACHED) {
        req_end_error(r, ERR(ERROR_BAD_ARGUMENT), "unknown ownership %d", (int)m->ownership);
        return;
    }
    if (m->queue && *m->queue) {
        remote_submit(s, r, m);
        return;
    }
    if (!check_schedule(s, r, m->schedule))
        return;
    if (make_task(s, m->call, (int)m->ownership, &t, &why) < 0) {
        req_end_error(r, why.code, "%s", why.msg);
        return;
    }
    if (plan_apply(t, m->schedule) < 0) {
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                    alloc_strdup("the submit was refused: out of memory"));
        task_unref(t);
        return;
    }
    if (m->ownership != AIOD__OWNERSHIP__ATTACHED)
        persist_track(t);
    ack_submit(s, r, t, m->follow);
    plan_start(t);
    task_unref(t);
}

static bool check_batch(req *r, size_t n, const char *what) {
    if (n == 0) {
        req_end_error(r, ERR(ERROR_BAD_ARGUMENT), "%s needs at least one task", what);
        return false;
    }
    if (n > LIMIT_MAX_BATCH) {
        req_end_error(r, ERR(ERROR_LIMIT), "%s of %zu tasks exceeds the limit of %u per request",
                      what, n, LIMIT_MAX_BATCH);
        return false;
    }
    return true;
}

static bool check_timeout(req *r, double timeout) {
    if (!(timeout >= 0) || timeout > LIMIT_TIMEOUT_SECONDS) {
        req_end_error(r, ERR(ERROR_BAD_ARGUMENT),
                      "timeout must be between 0 and " TEXT_OF(LIMIT_TIMEOUT_SECONDS) " seconds");
        return false;
    }
    return true;
}

/* The message for a task the peer may not act on. */
static void foreign_message(const task *t, const char *what, char *buf, size_t len) {
    const char *group = policy_admin_group_name();
    snprintf(buf, len, "task %llu belongs to uid %u; only its owner, root%s%s%s may %s it",
             (unsigned long long)t->id, (unsigned)t->uid, group ? " or members of group '" : "",
             group ? group : "", group ? "' (admin_group)" : "", what);
}

/* The message for an id that names no task (the same for every request). */
static void unknown_message(uint64_t id, char *buf, size_t len) {
    snprintf(buf, len, "no task %llu (it never existed, or its result is no longer retained)",
             (unsigned long long)id);
}

/* The task `id` names, if the peer may act on it; else NULL and `why`. */
static task *find_task(session *s, uint64_t id, const char *what, refusal *why) {
    task *t = task_lookup(id);
    if (!t) {
        why->code = ERR(ERROR_NO_SUCH_TASK);
        unknown_message(id, why->msg, sizeof(why->msg));
        return NULL;
    }
    if (!policy_may_act(&s->peer, t->uid)) {
        why->code = ERR(ERROR_NOT_ALLOWED);
        foreign_message(t, what, why->msg, sizeof(why->msg));
        log_refusal(s, why->msg);
        return NULL;
    }
    return t;
}

/* Looks up ids into ts[0..n), each with a reference; on an unknown or
 * foreign one ends the request with the error, leaves ts all NULL and
 * returns false. */
static bool lookup_all(session *s, req *r, const uint64_t *ids, size_t n, const char *what,
                       task **ts) {
    refusal why;
    for (size_t i = 0; i < n; i++)
        if (!find_task(s, ids[i], what, &why)) {
            req_end_error(r, why.code, "%s", why.msg);
            return false;
        }
    for (size_t i = 0; i < n; i++)
        ts[i] = task_ref(task_lookup(ids[i]));
    return true;
}

/* Which tasks the ids name: 0 this host's own, 1 queued ones (the request
 * is the cluster's), -1 both (the request was ended with the error). */
static int queued_ids(req *r, const uint64_t *ids, size_t n, const char *what) {
    size_t queued = 0;
    for (size_t i = 0; i < n; i++)
        queued += cluster_is_id(ids[i]);
    if (queued == 0 || queued == n)
        return queued > 0;
    req_end_error(r, ERR(ERROR_BAD_ARGUMENT),
                  "one %s cannot name both queued tasks (ids from %llu up) and this host's own "
                  "tasks",
                  what, (unsigned long long)CLUSTER_ID_BASE);
    return -1;
}

static void handle_await(session *s, req *r, const Aiod__Await *a) {
    if (!check_batch(r, a->n_task_ids, "await") || !check_timeout(r, a->timeout))
        return;
    int queued = queued_ids(r, a->task_ids, a->n_task_ids, "await");
    if (queued > 0)
        remote_await(s, r, a);
    if (queued)
        return;
    wait_req *w = waiting_new(s, a->n_task_ids);
    if (!w) {
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        return;
    }
    if (!lookup_all(s, r, a->task_ids, a->n_task_ids, "await", waiting_tasks(w))) {
        waiting_abandon(w);
        return;
    }
    wait_opts o = {.timeout = a->timeout, .cancel_on_timeout = a->cancel_on_timeout};
    waiting_begin(w, r, &o);
}

/* Makes the task of one gather item (a new attached task or an existing
 * one, with a reference). */
static int gather_item(session *s, const Aiod__GatherItem *it, task **ret, refusal *why) {
    if (it && it->item_case == AIOD__GATHER_ITEM__ITEM_CALL)
        return make_task(s, it->call, AIOD__OWNERSHIP__ATTACHED, ret, why);
    if (it && it->item_case == AIOD__GATHER_ITEM__ITEM_TASK_ID && cluster_is_id(it->task_id)) {
        /* It exists, in the cluster: "no task" would say it does not. */
        why->code = ERR(ERROR_BAD_ARGUMENT);
        snprintf(why->msg, sizeof(why->msg),
                 "task %llu is a queued task (ids from %llu up): gather takes this host's own "
                 "tasks only; await it instead",
                 (unsigned long long)it->task_id, (unsigned long long)CLUSTER_ID_BASE);
        return -EINVAL;
    }
    if (it && it->item_case == AIOD__GATHER_ITEM__ITEM_TASK_ID) {
        task *t = find_task(s, it->task_id, "gather", why);
        if (!t)
            return -ESRCH;
        *ret = task_ref(t);
        return 0;
    }
    why->code = ERR(ERROR_BAD_ARGUMENT);
    snprintf(why->msg, sizeof(why->msg), "item is neither a call nor a task id");
    return -EINVAL;
}

static bool is_call(const Aiod__GatherItem *it) {
    return it->item_case == AIOD__GATHER_ITEM__ITEM_CALL;
}

/* Refuses a gather whose first `made` items were made: their new tasks
 * never ran and leave as if never made (a refused call creates nothing),
 * the references dropped. */
static void refuse_gather(wait_req *w, const Aiod__Gather *g, size_t made, uint64_t *ids) {
    task **ts = waiting_tasks(w);
    for (size_t j = 0; j < made; j++)
        if (is_call(g->items[j]))
            task_discard(ts[j]);
    waiting_abandon(w);
    free(ids);
}

/* Sends Started (asked for by Gather.started): every id at once, so that
 * the client can cancel any of them. False (nothing sent) when it would
 * exceed max_frame. */
static bool send_started(req *r, const uint64_t *ids, size_t n) {
    size_t size = encode_started_size(r->id, ids, n);
    if (size > cfg.max_frame)
        return false;
    uint8_t *p = req_frame_begin(r, size);
    if (p) {
        encode_started(p, r->id, ids, n);
        req_frame_send(r, size);
    }
    return true;
}

static void handle_gather(session *s, req *r, Aiod__Gather *g) {
    refusal why;
    if (!check_batch(r, g->n_items, "gather") || !check_timeout(r, g->timeout))
        return;
    wait_req *w = waiting_new(s, g->n_items);
    uint64_t *ids = w ? alloc_malloc(g->n_items * sizeof(*ids)) : NULL;
    if (!ids) {
        if (w)
            waiting_abandon(w);
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        return;
    }
    task **ts = waiting_tasks(w);
    /* All or nothing: a bad item refuses the whole gather before any of its
     * new tasks starts. */
    for (size_t i = 0; i < g->n_items; i++) {
        if (gather_item(s, g->items[i], &ts[i], &why) < 0) {
            refuse_gather(w, g, i, ids);
            req_end_error(r, why.code, "gather item %zu: %s", i + 1, why.msg);
            return;
        }
        ids[i] = ts[i]->id;
    }
    if (g->started && !send_started(r, ids, g->n_items)) {
        /* Its reply would not fit either. */
        refuse_gather(w, g, g->n_items, ids);
        req_end_error(r, ERR(ERROR_LIMIT),
                      "a gather of %zu tasks would not fit in the limit max_frame (%u bytes)",
                      g->n_items, cfg.max_frame);
        return;
    }
    free(ids);
    for (size_t i = 0; i < g->n_items; i++) {
        if (!is_call(g->items[i]))
            continue;
        output *o = g->follow ? task_output(ts[i]) : NULL;
        if (o && follow_start(s, o, FOLLOW_GATHER, r, waiting_followers(w), false, true,
                              ts[i]->state, waiting_follower_ended) < 0)
            log_warning("connection %llu: out of memory following task %llu; it runs unfollowed",
                        (unsigned long long)s->c->serial, (unsigned long long)ts[i]->id);
        sched_start(ts[i]);
    }
    wait_opts o = {.gather = true,
                   .return_exceptions = g->return_exceptions,
                   .timeout = g->timeout,
                   .cancel_on_timeout = g->cancel_on_timeout};
    waiting_begin(w, r, &o);
}

static void handle_cancel(session *s, req *r, const Aiod__Cancel *k) {
    if (!check_batch(r, k->n_task_ids, "cancel"))
        return;
    int queued = queued_ids(r, k->task_ids, k->n_task_ids, "cancel");
    if (queued > 0)
        remote_cancel(s, r, k);
    if (queued)
        return;
    task **ts = alloc_calloc(k->n_task_ids, sizeof(*ts));
    if (!ts) {
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        return;
    }
    if (!lookup_all(s, r, k->task_ids, k->n_task_ids, "cancel", ts)) {
        free(ts);
        return;
    }
    /* Those the cancel reached first: only their records are waited for. */
    uint32_t count = 0;
    for (size_t i = 0; i < k->n_task_ids; i++)
        if (task_cancel(ts[i])) {
            task *x = ts[count];
            ts[count++] = ts[i];
            ts[i] = x;
        }
    ack_cancel(s, r, ts, count);
    for (size_t i = 0; i < k->n_task_ids; i++)
        task_unref(ts[i]);
    free(ts);
}

static void handle_show(session *s, req *r, const Aiod__ShowTask *m) {
    refusal why;
    if (cluster_is_id(m->task_id)) {
        remote_show(s, r, m);
        return;
    }
    task *t = find_task(s, m->task_id, "show", &why);
    if (!t) {
        req_end_error(r, why.code, "%s", why.msg);
        return;
    }
    Aiod__TaskInfo ti;
    Aiod__Outcome o;
    char call_text[CALL_TEXT_MAX + 1];
    describe_task(t, &ti, call_text, &o, true);
    req_end(r, AIOD__SERVER_MESSAGE__BODY_TASK_INFO, &ti);
}

static void handle_logs(session *s, req *r, const Aiod__Logs *l) {
    refusal why;
    if (cluster_is_id(l->task_id)) {
        remote_logs(s, r, l);
        return;
    }
    task *t = find_task(s, l->task_id, "follow", &why);
    if (!t) {
        req_end_error(r, why.code, "%s", why.msg);
        return;
    }
    /* A finished task that printed nothing has no output (any more). */
    if (!t->out && task_finished(t)) {
        Aiod__OutputEnd e = AIOD__OUTPUT_END__INIT;
        e.task_id = t->id;
        e.state = (Aiod__TaskState)t->state;
        req_end(r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
        return;
    }
    /* A child's lines live in its root's output; follow the child's end by
     * its own state only when it owns the output. */
    output *o = task_output(t);
    bool own = o && o->task_id == t->id;
    int fr = o ? follow_start(s, o, FOLLOW_LOGS, r, NULL, true, l->follow && own, t->state, NULL)
               : -ENOMEM;
    if (fr == -EMFILE)
        req_end_error(r, ERR(ERROR_LIMIT),
                      "too many output streams open on this connection: the limit max_in_flight "
                      "(%u) is reached; read the streams open (or close them) first",
                      cfg.max_in_flight);
    else if (fr < 0)
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
}

static void handle_plugins(req *r) {
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
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory");
        goto done;
    }
    size_t k = 0, kp = 0;
    for (size_t i = 0; i < plugin_count(); i++) {
        plugin *p = plugin_at(i);
        for (size_t j = 0; j < p->n_fns; j++) {
            const fn_entry *f = &p->fns[j];
            if (f->def->flags & AIOD_FN_INTERNAL)
                continue;
            describe_function(f, &fis[k], &ps[kp], &pps[kp]);
            fps[k] = &fis[k];
            k++;
            kp += f->sig.n_params;
        }
    }
    Aiod__PluginList pl = AIOD__PLUGIN_LIST__INIT;
    pl.n_functions = n;
    pl.functions = fps;
    req_end(r, AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST, &pl);
done:
    free(fis);
    free(fps);
    free(ps);
    free(pps);
}

static void handle(session *s, req *r, Aiod__ClientMessage *m) {
    switch (m->body_case) {
    case AIOD__CLIENT_MESSAGE__BODY_HELLO:
        handle_hello(s, r, m->hello);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_SUBMIT:
        handle_submit(s, r, m->submit);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_AWAIT:
        handle_await(s, r, m->await);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_GATHER:
        handle_gather(s, r, m->gather);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_CANCEL:
        handle_cancel(s, r, m->cancel);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_LIST_TASKS:
        listing_handle(s, r, m->list_tasks);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK:
        handle_show(s, r, m->show_task);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_LOGS:
        handle_logs(s, r, m->logs);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_LIST_PLUGINS:
        handle_plugins(r);
        break;
    case AIOD__CLIENT_MESSAGE__BODY_RELOAD:
        assert(reload_handler);
        reload_handler(s, r);
        break;
    default:
        req_end_error(r, ERR(ERROR_BAD_MESSAGE),
                      "unknown or empty request (body %d); is the client newer than the daemon?",
                      (int)m->body_case);
        break;
    }
}

/* A request that waits for tasks, and so may stay open long: these count
 * toward max_in_flight. Everything else is answered at once. */
static bool waits(const Aiod__ClientMessage *m) {
    return m->body_case == AIOD__CLIENT_MESSAGE__BODY_AWAIT ||
           m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER ||
           (m->body_case == AIOD__CLIENT_MESSAGE__BODY_LOGS && m->logs->follow);
}

typedef struct parked_frame {
    list node;
    size_t len;
    uint8_t data[];
} parked_frame;

/* Keeps a copy of the frame to run later, in order. false: no memory. */
static bool park(session *s, const uint8_t *payload, size_t len) {
    parked_frame *p = alloc_malloc(sizeof(*p) + len);
    if (!p)
        return false;
    p->len = len;
    memcpy(p->data, payload, len);
    list_insert_tail(&s->parked, &p->node);
    s->parked_bytes += len;
    if (s->parked_bytes > LIMIT_PARKED_BYTES)
        conn_hold(s->c, true);
    return true;
}

/* A request other than Hello came first: refused, and the client dropped. */
static void refuse_before_hello(session *s, uint64_t request_id) {
    conn *c = s->c;
    req r;
    log_info("connection %llu (uid %u pid %d): request before hello, dropping the client",
             (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid);
    req_init(&r, c, request_id);
    req_end_error(&r, ERR(ERROR_PROTOCOL), "the first message must be Hello");
    conn_close_soon(c);
}

/* Handles a decoded frame (m, or rc and why from the decode; m stays the
 * caller's); `may_park`: a request that waits, when too many are open (or
 * others are parked before it), is parked instead. `o`: the frame was
 * decoded off the loop thread. */
static void run_decoded(session *s, Aiod__ClientMessage *m, int rc, const char *why,
                        const uint8_t *payload, size_t len, bool may_park, const offload *o) {
    conn *c = s->c;
    req r;
    if ((rc == -EILSEQ || rc == -E2BIG) && !s->hello_done &&
        wire_peek_body(payload, len) != AIOD__CLIENT_MESSAGE__BODY_HELLO) {
        /* Well-formed, so its kind is known: any other request before the
         * hello is that, whatever its strings or size. (A Hello with a NUL
         * in its client_name is refused below like any string with a NUL,
         * and the connection stays for a proper one.) */
        refuse_before_hello(s, wire_peek_request_id(payload, len));
        return;
    }
    if (rc == -E2BIG || rc == -EILSEQ) {
        /* Well-formed but too big to unpack, or holding a string the
         * daemon cannot keep whole: refused, the client stays. */
        req_init(&r, c, wire_peek_request_id(payload, len));
        req_end_error(&r, rc == -E2BIG ? ERR(ERROR_LIMIT) : ERR(ERROR_BAD_ARGUMENT), "%s", why);
        return;
    }
    if (rc < 0) {
        log_warning("connection %llu (uid %u pid %d): bad message (%s), dropping the client",
                    (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid,
                    rc == -ENOMEM ? "out of memory" : why);
        /* The id could not be read: the error concerns the connection. */
        req_init(&r, c, 0);
        req_end_error(&r, ERR(ERROR_BAD_MESSAGE), "cannot decode the frame: %s",
                      rc == -ENOMEM ? "out of memory" : why);
        conn_close_soon(c);
        return;
    }
    if (may_park && s->hello_done && waits(m) &&
        (s->in_flight >= cfg.max_in_flight || !list_empty(&s->parked)) && park(s, payload, len))
        return;
    if (!s->hello_done && m->body_case != AIOD__CLIENT_MESSAGE__BODY_HELLO) {
        refuse_before_hello(s, m->request_id);
        return;
    }
    req_init(&r, c, m->request_id);
    if (r.id == 0) {
        req_end_error(&r, ERR(ERROR_PROTOCOL), "request_id must not be 0");
    } else if (shutting_down && m->body_case != AIOD__CLIENT_MESSAGE__BODY_HELLO) {
        req_end_error(&r, ERR(ERROR_SHUTTING_DOWN), "aiod is shutting down");
    } else {
        const offload *outer = frame_offload;
        frame_offload = o;
        handle(s, &r, m);
        frame_offload = outer;
    }
    /* Every handler ended the request or moved it to what ends it later. */
    assert(req_over(&r));
}

static void decoded_off_loop(session *s, const offload *o, Aiod__ClientMessage *m, int rc,
                             const char *why) {
    size_t len;
    const uint8_t *payload = offload_payload(o, &len);
    run_decoded(s, m, rc, why, payload, len, offload_may_park(o), o);
    /* Reading was held for it; parked frames may go on too. */
    dispatch_resume(s);
}

/* Decodes and handles a frame: a big one off the loop thread, later.
 * `in_conn`: the payload is in the connection's read buffer (else a parked
 * copy, freed after the call). */
static void run_frame(session *s, const uint8_t *payload, size_t len, bool may_park, bool in_conn) {
    /* Before the hello too: whether the frame decodes decides its answer
     * (ERROR_BAD_MESSAGE, or a request before the hello), as for a small
     * one; and a Hello may be that big (its client_name). */
    if (len >= WIRE_DETACHED_FROM &&
        offload_start(s, payload, len, may_park, in_conn, decoded_off_loop) == 0)
        return;
    Aiod__ClientMessage *m = NULL;
    char why[256];
    int rc = wire_decode(payload, len, &m, why, sizeof(why));
    run_decoded(s, m, rc, why, payload, len, may_park, NULL);
    wire_free(m);
}

void dispatch_frame(session *s, const uint8_t *payload, size_t len) {
    /* Reading is held while a frame is decoded off the loop. */
    assert(!s->offload);
    run_frame(s, payload, len, true, true);
}

void dispatch_resume(session *s) {
    /* A frame decoded off the loop goes first; it resumes when handled. */
    if (s->offload)
        return;
    while (!list_empty(&s->parked) && s->in_flight < cfg.max_in_flight && !s->c->closing &&
           !s->offload) {
        parked_frame *p = container_of(list_first(&s->parked), parked_frame, node);
        list_remove(&p->node);
        s->parked_bytes -= p->len;
        run_frame(s, p->data, p->len, false, false);
        free(p);
    }
    if (s->c->held && !s->offload && s->parked_bytes <= LIMIT_PARKED_BYTES && !s->c->closing)
        conn_hold(s->c, false);
}

void dispatch_drop_parked(session *s) {
    while (!list_empty(&s->parked)) {
        parked_frame *p = container_of(list_first(&s->parked), parked_frame, node);
        list_remove(&p->node);
        free(p);
    }
    s->parked_bytes = 0;
}
