/*
 * info: what `ps` and `show` see. An aioc_task_info wraps an Aiod__TaskInfo
 * taken out of a TaskList or TaskInfo reply; aioc_show fetches one here,
 * list.c fetches pages of them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "alloc.h"
#include "client.h"
#include "info.h"
#include "macro.h"
#include "outcome.h"
#include "pbvalue.h"
#include "value.h"
#include "wire.h"

struct aioc_task_info {
    /* The task as the daemon described it (owned). */
    Aiod__TaskInfo *pb;
    /* Its arguments as one list value (owned), built by aioc_show; NULL for
     * the entries of aioc_list, which carry no arguments. */
    Aiod__Value *args;
    /* A view of pb's outcome, which aioc_task_info_outcome hands out. */
    aioc_outcome outcome;
};

static const Aiod__TaskInfo *cpb(const aioc_task_info *t) {
    return t->pb;
}

AIOC_EXPORT uint64_t aioc_task_info_id(const aioc_task_info *t) {
    return t ? cpb(t)->id : 0;
}

AIOC_EXPORT int aioc_task_info_state(const aioc_task_info *t) {
    return t ? (int)cpb(t)->state : 0;
}

AIOC_EXPORT const char *aioc_task_info_function(const aioc_task_info *t) {
    return t ? cpb(t)->function : NULL;
}

AIOC_EXPORT const char *aioc_task_info_ownership(const aioc_task_info *t) {
    if (!t)
        return NULL;
    switch (cpb(t)->ownership) {
    case AIOD__OWNERSHIP__ATTACHED:
        return "attached";
    case AIOD__OWNERSHIP__SUBMITTED:
        return "submitted";
    case AIOD__OWNERSHIP__DETACHED:
        return "detached";
    default:
        return "unknown";
    }
}

AIOC_EXPORT uint32_t aioc_task_info_owner_uid(const aioc_task_info *t) {
    return t ? cpb(t)->owner_uid : 0;
}

AIOC_EXPORT int32_t aioc_task_info_owner_pid(const aioc_task_info *t) {
    return t ? cpb(t)->owner_pid : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_created_usec(const aioc_task_info *t) {
    return t ? cpb(t)->created_usec : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_started_usec(const aioc_task_info *t) {
    return t ? cpb(t)->started_usec : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_finished_usec(const aioc_task_info *t) {
    return t ? cpb(t)->finished_usec : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_parent_id(const aioc_task_info *t) {
    return t ? cpb(t)->parent_id : 0;
}

AIOC_EXPORT const aioc_value *aioc_task_info_args(const aioc_task_info *t) {
    return t ? value_from_cpb(t->args) : NULL;
}

AIOC_EXPORT const aioc_outcome *aioc_task_info_outcome(const aioc_task_info *t) {
    if (!t || !cpb(t)->outcome || cpb(t)->state < AIOD__TASK_STATE__TASK_DONE)
        return NULL;
    return &t->outcome;
}

/* A string field the daemon may leave empty (or an older one not send):
 * NULL then, as the header promises. */
static const char *text_or_null(const char *s) {
    return s && *s ? s : NULL;
}

AIOC_EXPORT const char *aioc_task_info_call_text(const aioc_task_info *t) {
    return t ? text_or_null(cpb(t)->call_text) : NULL;
}

AIOC_EXPORT const char *aioc_task_info_waiting_for(const aioc_task_info *t) {
    return t ? text_or_null(cpb(t)->waiting_for) : NULL;
}

AIOC_EXPORT uint64_t aioc_task_info_output_lines(const aioc_task_info *t) {
    return t ? cpb(t)->output_lines : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_output_dropped(const aioc_task_info *t) {
    return t ? cpb(t)->output_dropped : 0;
}

/* The schedule (libaioclient 1.5). */

AIOC_EXPORT uint32_t aioc_task_info_attempt(const aioc_task_info *t) {
    return t ? cpb(t)->attempt : 0;
}

AIOC_EXPORT uint32_t aioc_task_info_max_attempts(const aioc_task_info *t) {
    return t ? cpb(t)->max_attempts : 0;
}

AIOC_EXPORT uint64_t aioc_task_info_next_run_usec(const aioc_task_info *t) {
    return t ? cpb(t)->next_run_usec : 0;
}

AIOC_EXPORT const uint64_t *aioc_task_info_after(const aioc_task_info *t, size_t *ret_n) {
    if (!t || !ret_n)
        return NULL;
    const Aiod__TaskInfo *pb = cpb(t);
    *ret_n = pb->n_after;
    return pb->n_after ? pb->after : NULL;
}

AIOC_EXPORT size_t aioc_task_info_n_attempt_records(const aioc_task_info *t) {
    return t ? cpb(t)->n_attempts : 0;
}

AIOC_EXPORT int aioc_task_info_attempt_record(const aioc_task_info *t, size_t i,
                                              uint32_t *ret_number, uint64_t *ret_started_usec,
                                              uint64_t *ret_finished_usec,
                                              const char **ret_error_kind,
                                              const char **ret_error_message) {
    if (!t)
        return -EINVAL;
    const Aiod__TaskInfo *pb = cpb(t);
    if (i >= pb->n_attempts)
        return -ERANGE;
    const Aiod__Attempt *a = pb->attempts[i];
    if (ret_number)
        *ret_number = a->number;
    if (ret_started_usec)
        *ret_started_usec = a->started_usec;
    if (ret_finished_usec)
        *ret_finished_usec = a->finished_usec;
    if (ret_error_kind)
        *ret_error_kind = a->error_kind;
    if (ret_error_message)
        *ret_error_message = a->error_message;
    return 0;
}

/* The cluster (libaioclient 1.6). */

AIOC_EXPORT const char *aioc_task_info_queue(const aioc_task_info *t) {
    return t ? text_or_null(cpb(t)->queue) : NULL;
}

AIOC_EXPORT const char *aioc_task_info_host(const aioc_task_info *t) {
    return t ? text_or_null(cpb(t)->host) : NULL;
}

AIOC_EXPORT const char *aioc_task_info_owner_host(const aioc_task_info *t) {
    return t ? text_or_null(cpb(t)->owner_host) : NULL;
}

AIOC_EXPORT void aioc_task_info_free(aioc_task_info *t) {
    if (!t)
        return;
    wire_free_message(t->pb);
    pbvalue_free(t->args);
    free(t);
}

AIOC_EXPORT void aioc_task_info_array_free(aioc_task_info **a, size_t n) {
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        aioc_task_info_free(a[i]);
    free(a);
}

aioc_task_info *info_wrap(Aiod__TaskInfo *pb, bool args) {
    aioc_task_info *t = alloc_calloc(1, sizeof(*t));
    if (!t) {
        wire_free_message(pb);
        return NULL;
    }
    t->pb = pb;
    outcome_view(&t->outcome, pb->outcome);
    if (args) {
        t->args = pbvalue_list();
        if (!t->args) {
            aioc_task_info_free(t);
            return NULL;
        }
        /* Hand the array itself over: no copy, nothing to fail. */
        t->args->list_value->items = pb->args;
        t->args->list_value->n_items = pb->n_args;
        pb->args = NULL;
        pb->n_args = 0;
    }
    return t;
}

static int request(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                   Aiod__ServerMessage **ret_reply) {
    int r = client_begin(c);
    if (r < 0)
        return r;
    return client_call(c, m, want, ret_reply);
}

AIOC_EXPORT int aioc_show(aioc_client *c, uint64_t id, aioc_task_info **ret_task) {
    CLIENT_SCOPE(c);
    Aiod__ShowTask s = AIOD__SHOW_TASK__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    if (!c || id == 0 || !ret_task)
        return -EINVAL;
    s.task_id = id;
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_SHOW_TASK;
    m.show_task = &s;
    int r = request(c, &m, AIOD__SERVER_MESSAGE__BODY_TASK_INFO, &reply);
    if (r < 0)
        return r;
    aioc_task_info *t = info_wrap(TAKE_PTR(reply->task_info), true);
    reply->body_case = AIOD__SERVER_MESSAGE__BODY__NOT_SET;
    wire_free(reply);
    if (!t)
        return -ENOMEM;
    *ret_task = t;
    return 0;
}
