/*
 * Submitted replies (ack.h).
 */
#include "request/ack.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "core/output.h"
#include "core/persist.h"
#include "core/task.h"
#include "request/follow.h"

#define ERR(code) AIOD__ERROR_CODE__##code

typedef struct pending_ack {
    persist_waiter w;
    req r;
    session *s;
    task *t;
    bool follow;
    list session_node;
} pending_ack;

static void answer(session *s, req *r, task *t, bool follow) {
    Aiod__Submitted sub = AIOD__SUBMITTED__INIT;
    sub.task_id = t->id;
    if (!follow) {
        req_end(r, AIOD__SERVER_MESSAGE__BODY_SUBMITTED, &sub);
        return;
    }
    /* Answered now; the stream goes on until the task's OutputEnd. */
    req_send(r, AIOD__SERVER_MESSAGE__BODY_SUBMITTED, &sub);
    req_answered(r);
    output *o = task_output(t);
    if (!o || follow_start(s, o, FOLLOW_SUBMIT, r, NULL, false, true, t->state, NULL) < 0)
        req_end_error(r, ERR(ERROR_INTERNAL),
                      "out of memory following task %llu; it runs unfollowed",
                      (unsigned long long)t->id);
}

static void on_committed(persist_waiter *w, int error, const char *why) {
    pending_ack *a = container_of(w, pending_ack, w);
    list_remove(&a->session_node);
    if (error) {
        req_end_error(&a->r, ERR(ERROR_STORE), "the task was not submitted: %s", why);
        persist_forget(a->t, why);
    } else
        answer(a->s, &a->r, a->t, a->follow);
    task_unref(a->t);
    free(a);
}

void ack_submit(session *s, req *r, task *t, bool follow) {
    if (!t->durable) {
        answer(s, r, t, follow);
        return;
    }
    pending_ack *a = alloc_calloc(1, sizeof(*a));
    if (!a) {
        req_end_error(r, ERR(ERROR_INTERNAL), "out of memory acknowledging task %llu",
                      (unsigned long long)t->id);
        return;
    }
    req_move(&a->r, r);
    a->s = s;
    a->t = task_ref(t);
    a->follow = follow;
    a->w.fn = on_committed;
    list_insert_tail(&s->acks, &a->session_node);
    persist_when_committed(t, &a->w);
}

void ack_session_closed(session *s) {
    while (!list_empty(&s->acks)) {
        pending_ack *a = container_of(list_first(&s->acks), pending_ack, session_node);
        list_remove(&a->session_node);
        persist_waiter_cancel(&a->w);
        req_abandon(&a->r);
        task_unref(a->t);
        free(a);
    }
}
