/*
 * Submitted replies (ack.h).
 */
#include "request/ack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "aiod-pb.h"

#include "alloc.h"
#include "core/output.h"
#include "core/persist.h"
#include "core/finish.h"
#include "core/task.h"
#include "system/config.h"
#include "system/log.h"
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
    int fr = o ? follow_start(s, o, FOLLOW_SUBMIT, r, NULL, false, true, t->state, NULL) : -ENOMEM;
    if (fr == -EMFILE)
        req_end_error(r, ERR(ERROR_LIMIT),
                      "task %llu runs unfollowed: too many output streams open on this "
                      "connection (the limit max_in_flight, %u, is reached)",
                      (unsigned long long)t->id, cfg.max_in_flight);
    else if (fr < 0)
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

/* A Cancel reply that waits for the records of the tasks it ended. */
typedef struct cancel_ack cancel_ack;
typedef struct cancel_wait {
    persist_waiter w;
    cancel_ack *owner;
} cancel_wait;
struct cancel_ack {
    req r;
    list session_node;
    uint32_t count;
    size_t n, left;
    /* The first failure, if any, named in the reply. */
    uint64_t failed_id;
    char why[256];
    cancel_wait ws[];
};

static void cancel_ack_free(cancel_ack *a) {
    for (size_t i = 0; i < a->n; i++) {
        persist_waiter_cancel(&a->ws[i].w);
        task_unref(a->ws[i].w.task);
    }
    free(a);
}

static void on_cancel_committed(persist_waiter *w, int error, const char *why) {
    cancel_wait *cw = container_of(w, cancel_wait, w);
    cancel_ack *a = cw->owner;
    if (error && !a->failed_id) {
        a->failed_id = w->task->id;
        snprintf(a->why, sizeof(a->why), "%s", why);
    }
    if (--a->left > 0)
        return;
    list_remove(&a->session_node);
    if (a->failed_id)
        req_end_error(&a->r, ERR(ERROR_STORE),
                      "task %llu was cancelled, but the state store could not record it (%s); "
                      "aiod writes it again shortly, and a crash before that would run it again",
                      (unsigned long long)a->failed_id, a->why);
    else {
        Aiod__Cancelled cd = AIOD__CANCELLED__INIT;
        cd.count = a->count;
        req_end(&a->r, AIOD__SERVER_MESSAGE__BODY_CANCELLED, &cd);
    }
    cancel_ack_free(a);
}

void ack_cancel(session *s, req *r, task **ts, uint32_t count) {
    size_t n = count;
    size_t ended = 0;
    for (size_t i = 0; i < n; i++)
        ended += ts[i]->durable && task_finished(ts[i]);
    cancel_ack *a = ended ? alloc_calloc(1, sizeof(*a) + ended * sizeof(a->ws[0])) : NULL;
    if (!a) {
        if (ended)
            log_error("out of memory waiting for the cancellation of task %llu to be stored; "
                      "answering at once",
                      (unsigned long long)ts[0]->id);
        Aiod__Cancelled cd = AIOD__CANCELLED__INIT;
        cd.count = count;
        req_end(r, AIOD__SERVER_MESSAGE__BODY_CANCELLED, &cd);
        return;
    }
    req_move(&a->r, r);
    a->count = count;
    list_insert_tail(&s->cancel_acks, &a->session_node);
    for (size_t i = 0; i < n; i++) {
        if (!ts[i]->durable || !task_finished(ts[i]))
            continue;
        cancel_wait *cw = &a->ws[a->n++];
        cw->owner = a;
        cw->w.fn = on_cancel_committed;
        list_init(&cw->w.node);
        persist_when_committed(task_ref(ts[i]), &cw->w);
    }
    a->left = a->n;
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
    while (!list_empty(&s->cancel_acks)) {
        cancel_ack *a = container_of(list_first(&s->cancel_acks), cancel_ack, session_node);
        list_remove(&a->session_node);
        req_abandon(&a->r);
        cancel_ack_free(a);
    }
}
