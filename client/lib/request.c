/*
 * request: the non-blocking side of libaioclient as the program sees it:
 * aioc_start_* build a request's message and hand it to the engine
 * (engine.h), and the aioc_request_* accessors read what the engine filled
 * in. Everything that happens to a request after it is sent (replies,
 * events, completion, its end) is the engine's; this file only calls down
 * into it.
 *
 * Each verb has one message on the wire: a run is a Gather of one call with
 * return_exceptions, follow and cancel_on_timeout, exactly as the blocking
 * aioc_run sends it.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "call.h"
#include "client.h"
#include "engine.h"
#include "macro.h"
#include "outcome.h"
#include "schedule.h"
#include "wire.h"

/* The daemon takes at most this many ids or items per request. */
#define REQUEST_MAX_BATCH AIOC_MAX_BATCH

/* Sends a new request for the caller (the common tail of aioc_start_*). */
static int start(aioc_client *c, aioc_request *req, Aiod__ClientMessage *m, aioc_request **ret) {
    if (!req)
        return -ENOMEM;
    int r = engine_send(c, req, m);
    if (r < 0) {
        engine_request_destroy(req);
        return r;
    }
    *ret = req;
    return 0;
}

/* start() for a request answered about n tasks (await, gather, run, cancel). */
static int start_batch(aioc_client *c, enum request_kind kind, size_t n, aioc_request_cb cb,
                       void *userdata, Aiod__ClientMessage *m, aioc_request **ret) {
    aioc_request *req = engine_request_new(c, kind, cb, userdata);
    if (req)
        req->n_expected = n;
    return start(c, req, m, ret);
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

AIOC_EXPORT int aioc_start_submit(aioc_client *c, const aioc_call *call, unsigned flags,
                                  aioc_request_cb cb, void *userdata, aioc_request **ret) {
    return aioc_start_submit_ex(c, call, flags, NULL, cb, userdata, ret);
}

AIOC_EXPORT int aioc_start_submit_ex(aioc_client *c, const aioc_call *call, unsigned flags,
                                     const aioc_schedule *sched, aioc_request_cb cb, void *userdata,
                                     aioc_request **ret) {
    static const Aiod__Ownership own[] = {AIOD__OWNERSHIP__ATTACHED, AIOD__OWNERSHIP__SUBMITTED,
                                          AIOD__OWNERSHIP__DETACHED};
    Aiod__Submit s = AIOD__SUBMIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    unsigned o = flags & 0x3u;
    if (!c || !call || !call->pb || !ret || (flags & ~(0x3u | AIOC_SUBMIT_FOLLOW)) || o == 3)
        return -EINVAL;
    if (c->dead)
        return c->dead;
    s.call = call->pb;
    s.ownership = own[o];
    s.follow = !!(flags & AIOC_SUBMIT_FOLLOW);
    /* Borrowed: the frame is packed before this returns. */
    s.schedule = (Aiod__Schedule *)schedule_pb(sched);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
    m.submit = &s;
    aioc_request *req = engine_request_new(c, REQUEST_SUBMIT, cb, userdata);
    if (req) {
        req->n_expected = 1;
        req->follow = s.follow;
    }
    return start(c, req, &m, ret);
}

AIOC_EXPORT int aioc_start_run(aioc_client *c, const aioc_call *call, double timeout,
                               aioc_request_cb cb, void *userdata, aioc_request **ret) {
    Aiod__Gather g = AIOD__GATHER__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    _cleanup_free_ Aiod__GatherItem *gi = NULL;
    _cleanup_free_ Aiod__GatherItem **gp = NULL;
    if (!c || !call || !call->pb || !ret || !timeout_valid(timeout))
        return -EINVAL;
    /* One Gather of one call, as aioc_run sends it (task.c says why). */
    const aioc_call *items[1] = {call};
    int r = call_gather_items(items, 1, &gi, &gp);
    if (r < 0)
        return r;
    if (c->dead)
        return c->dead;
    call_gather_message(&g, &m, gp, 1, AIOC_GATHER_RETURN_EXCEPTIONS | AIOC_GATHER_FOLLOW, timeout);
    return start_batch(c, REQUEST_RUN, 1, cb, userdata, &m, ret);
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
    a.timeout = wire_timeout(timeout);
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
    call_gather_message(&g, &m, gp, n, flags, timeout);
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
    return start(c, engine_request_new(c, REQUEST_LOGS, cb, userdata), &m, ret);
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

AIOC_EXPORT const uint64_t *aioc_request_task_ids(const aioc_request *req, size_t *ret_n) {
    if (!req || !ret_n)
        return NULL;
    if (req->kind == REQUEST_SUBMIT && req->task_id) {
        *ret_n = 1;
        return &req->task_id;
    }
    *ret_n = req->n_task_ids;
    return req->n_task_ids ? req->task_ids : NULL;
}

AIOC_EXPORT void aioc_request_set_event_callback(aioc_request *req, aioc_event_cb cb,
                                                 void *userdata) {
    if (!req || req->internal)
        return;
    req->event_cb = cb;
    req->event_userdata = userdata;
}

AIOC_EXPORT int aioc_request_end(const aioc_request *req) {
    if (!req)
        return -EINVAL;
    return req->done ? req->end : -EINPROGRESS;
}

AIOC_EXPORT int aioc_request_cancel(aioc_request *req) {
    if (!req)
        return -EINVAL;
    return engine_request_cancel(req);
}

AIOC_EXPORT void aioc_request_free(aioc_request *req) {
    if (!req)
        return;
    CLIENT_SCOPE(req->client); /* its final callback may close the client */
    engine_request_free(req);
}

AIOC_EXPORT uint64_t aioc_request_output_dropped(const aioc_request *req) {
    return req ? req->ends.total : 0;
}
