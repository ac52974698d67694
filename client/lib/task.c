/*
 * task: the requests that create, wait for, cancel and follow tasks:
 * aioc_run, aioc_create_task, aioc_submit, aioc_detach, aioc_submit_ex,
 * aioc_submit_queue, aioc_await, aioc_gather, aioc_cancel and aioc_logs.
 * Each builds its ClientMessage on the stack from borrowed pieces and lets
 * client_call do the exchange. Every Submit, local or to a cluster queue,
 * is built by submit().
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "call.h"
#include "client.h"
#include "macro.h"
#include "outcome.h"
#include "schedule.h"
#include "wire.h"

/* The daemon takes at most this many ids or items per request. */
#define TASK_MAX_BATCH AIOC_MAX_BATCH

static bool timeout_valid(double timeout) {
    return !isnan(timeout);
}

/* Sends a Submit and waits for its Submitted. `sched` may be NULL (none),
 * `queue` NULL (a local task) or a cluster queue's name, checked by the
 * caller; both are borrowed for the call. */
static int submit(aioc_client *c, const aioc_call *call, Aiod__Ownership ownership,
                  const aioc_schedule *sched, const char *queue, uint64_t *ret_id) {
    Aiod__Submit s = AIOD__SUBMIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || !call || !call->pb || !ret_id)
        return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    s.call = call->pb;
    s.ownership = ownership;
    /* Borrowed for the message: packing only reads it. */
    s.schedule = (Aiod__Schedule *)schedule_pb(sched);
    if (queue)
        s.queue = (char *)queue;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SUBMIT;
    m.submit = &s;
    r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_SUBMITTED, &reply);
    if (r < 0)
        return r;
    uint64_t id = reply->submitted->task_id;
    wire_free(reply);
    if (id == 0)
        return -EPROTO;
    *ret_id = id;
    return 0;
}

AIOC_EXPORT int aioc_create_task(aioc_client *c, const aioc_call *call, uint64_t *ret_id) {
    CLIENT_SCOPE(c);
    return submit(c, call, AIOD__OWNERSHIP__ATTACHED, NULL, NULL, ret_id);
}

AIOC_EXPORT int aioc_submit(aioc_client *c, const aioc_call *call, uint64_t *ret_id) {
    CLIENT_SCOPE(c);
    return submit(c, call, AIOD__OWNERSHIP__SUBMITTED, NULL, NULL, ret_id);
}

AIOC_EXPORT int aioc_detach(aioc_client *c, const aioc_call *call, uint64_t *ret_id) {
    CLIENT_SCOPE(c);
    return submit(c, call, AIOD__OWNERSHIP__DETACHED, NULL, NULL, ret_id);
}

AIOC_EXPORT int aioc_submit_ex(aioc_client *c, const aioc_call *call, unsigned flags,
                               const aioc_schedule *sched, uint64_t *ret_id) {
    CLIENT_SCOPE(c);
    static const Aiod__Ownership own[] = {AIOD__OWNERSHIP__ATTACHED, AIOD__OWNERSHIP__SUBMITTED,
                                          AIOD__OWNERSHIP__DETACHED};
    /* One ownership; no AIOC_SUBMIT_FOLLOW: a blocking call ends with the
     * Submitted reply, before any output (aioc_start_submit_ex follows). */
    if ((flags & ~0x3u) || (flags & 0x3u) == 3)
        return -EINVAL;
    return submit(c, call, own[flags], sched, NULL, ret_id);
}

AIOC_EXPORT bool aioc_is_cluster_id(uint64_t id) {
    return id >= AIOC_CLUSTER_ID_BASE;
}

/* 1 to AIOC_QUEUE_NAME_MAX of AIOC_QUEUE_NAME_CHARS, as the daemons take it. */
static bool queue_name_valid(const char *queue) {
    size_t n = strlen(queue);
    return n >= 1 && n <= AIOC_QUEUE_NAME_MAX && strspn(queue, AIOC_QUEUE_NAME_CHARS) == n;
}

AIOC_EXPORT int aioc_submit_queue(aioc_client *c, const char *queue, const aioc_call *call,
                                  unsigned flags, uint64_t *ret_id) {
    CLIENT_SCOPE(c);
    /* Submitted (0 is the same: a queued task is never attached) or
     * detached; no follow. A bad name is refused here, before anything
     * goes out, and so is the rest by submit(). */
    if (!queue || !queue_name_valid(queue) ||
        (flags != 0 && flags != AIOC_SUBMIT_SUBMITTED && flags != AIOC_SUBMIT_DETACHED))
        return -EINVAL;
    Aiod__Ownership own =
        flags == AIOC_SUBMIT_DETACHED ? AIOD__OWNERSHIP__DETACHED : AIOD__OWNERSHIP__SUBMITTED;
    return submit(c, call, own, NULL, queue, ret_id);
}

/* Moves the n outcomes of an Outcomes reply into ret (caller's array),
 * with the OutputEnd counts of `ends` (may be NULL). ret is written only
 * on success. */
static int take_outcomes(Aiod__ServerMessage *reply, size_t n, output_ends *ends,
                         aioc_outcome **ret) {
    Aiod__Outcomes *os = reply->outcomes;
    if (os->n_outcomes != n)
        return -EPROTO;
    _cleanup_free_ aioc_outcome **a = alloc_calloc(n, sizeof(*a));
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        a[i] = outcome_new(TAKE_PTR(os->outcomes[i]));
        if (!a[i]) {
            for (size_t j = 0; j < i; j++)
                aioc_outcome_free(a[j]);
            return -ENOMEM;
        }
    }
    if (ends)
        output_ends_apply(ends, a, n);
    for (size_t i = 0; i < n; i++)
        ret[i] = a[i];
    return 0;
}

static int await_ids(aioc_client *c, const uint64_t *ids, size_t n, double timeout,
                     bool cancel_on_timeout, aioc_outcome **ret_outcomes) {
    Aiod__Await a = AIOD__AWAIT__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    a.task_ids = (uint64_t *)ids;
    a.n_task_ids = n;
    a.timeout = wire_timeout(timeout);
    a.cancel_on_timeout = cancel_on_timeout;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_AWAIT;
    m.await = &a;
    int r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_OUTCOMES, &reply);
    if (r < 0)
        return r;
    r = take_outcomes(reply, n, NULL, ret_outcomes);
    wire_free(reply);
    return r;
}

AIOC_EXPORT int aioc_run(aioc_client *c, const aioc_call *call, double timeout,
                         aioc_outcome **ret_outcome) {
    CLIENT_SCOPE(c);
    aioc_outcome *o;

    if (!c || !call || !call->pb || !ret_outcome || !timeout_valid(timeout))
        return -EINVAL;
    /* One Gather of one call with return_exceptions and follow: the task is
     * created, followed and awaited by a single request, so its outcome
     * cannot be dropped from the daemon's retention between a Submit and an
     * Await under heavy load, and the outcome comes back whatever the state. */
    const aioc_call *items[1] = {call};
    int r = aioc_gather(c, items, 1, AIOC_GATHER_RETURN_EXCEPTIONS | AIOC_GATHER_FOLLOW, timeout,
                        &o, NULL);
    if (r < 0) {
        /* The refusal of the run, not of the gather's item 1. */
        const char *msg = wire_run_message(c->last_error);
        memmove(c->last_error, msg, strlen(msg) + 1);
        return r;
    }
    *ret_outcome = o;
    return 0;
}

AIOC_EXPORT int aioc_await(aioc_client *c, const uint64_t *ids, size_t n, double timeout,
                           aioc_outcome **ret_outcomes) {
    CLIENT_SCOPE(c);
    if (!c || !ids || n == 0 || n > TASK_MAX_BATCH || !ret_outcomes || !timeout_valid(timeout))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    return await_ids(c, ids, n, timeout, false, ret_outcomes);
}

AIOC_EXPORT int aioc_gather(aioc_client *c, const aioc_call *const *items, size_t n, unsigned flags,
                            double timeout, aioc_outcome **ret_outcomes,
                            aioc_outcome **ret_failed) {
    CLIENT_SCOPE(c);
    Aiod__Gather g = AIOD__GATHER__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;
    _cleanup_free_ Aiod__GatherItem *gi = NULL;
    _cleanup_free_ Aiod__GatherItem **gp = NULL;

    if (!c || !items || n == 0 || n > TASK_MAX_BATCH || !ret_outcomes ||
        (flags & ~(AIOC_GATHER_RETURN_EXCEPTIONS | AIOC_GATHER_FOLLOW)) || !timeout_valid(timeout))
        return -EINVAL;
    int r = call_gather_items(items, n, &gi, &gp);
    if (r < 0)
        return r;
    r = client_begin(c);
    if (r < 0)
        return r;
    call_gather_message(&g, &m, gp, n, flags, timeout);

    /* A followed gather: each task's OutputEnd comes before the final
     * frame; its count goes onto the task's outcome. */
    output_ends ends = {0};
    r = client_call_ends(c, &m, AIOD__SERVER_MESSAGE__BODY_OUTCOMES, &reply, &ends);
    if (r == -EIO) {
        /* A task failed: the reply is the Error holding its outcome. */
        if (ret_failed) {
            aioc_outcome *o = outcome_new(TAKE_PTR(reply->error->outcome));
            if (o) {
                output_ends_apply(&ends, &o, 1);
                *ret_failed = o;
            } else {
                r = -ENOMEM;
            }
        }
        wire_free(reply);
        output_ends_done(&ends);
        return r;
    }
    if (r >= 0) {
        r = take_outcomes(reply, n, &ends, ret_outcomes);
        wire_free(reply);
    }
    output_ends_done(&ends);
    return r;
}

AIOC_EXPORT int aioc_cancel(aioc_client *c, const uint64_t *ids, size_t n) {
    CLIENT_SCOPE(c);
    Aiod__Cancel x = AIOD__CANCEL__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || !ids || n == 0 || n > TASK_MAX_BATCH)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 0)
            return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    x.task_ids = (uint64_t *)ids;
    x.n_task_ids = n;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_CANCEL;
    m.cancel = &x;
    r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_CANCELLED, &reply);
    if (r < 0)
        return r;
    uint32_t count = reply->cancelled->count;
    wire_free(reply);
    return count > (uint32_t)n ? (int)n : (int)count;
}

AIOC_EXPORT int aioc_logs(aioc_client *c, uint64_t id, unsigned flags) {
    CLIENT_SCOPE(c);
    return aioc_logs_ex(c, id, flags, NULL);
}

AIOC_EXPORT int aioc_logs_ex(aioc_client *c, uint64_t id, unsigned flags, uint64_t *ret_dropped) {
    CLIENT_SCOPE(c);
    Aiod__Logs l = AIOD__LOGS__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || id == 0 || (flags & ~AIOC_LOGS_FOLLOW))
        return -EINVAL;
    int r = client_begin(c);
    if (r < 0)
        return r;
    l.task_id = id;
    l.follow = !!(flags & AIOC_LOGS_FOLLOW);
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_LOGS;
    m.logs = &l;
    r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &reply);
    if (r < 0)
        return r;
    int state = (int)reply->output_end->state;
    if (ret_dropped)
        *ret_dropped = reply->output_end->dropped;
    wire_free(reply);
    return state;
}
