/*
 * Await and Gather on behalf of clients (waiting.h).
 */
#include "request/waiting.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "core/finish.h"
#include "core/persist.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"
#include "net/encode.h"
#include "request/follow.h"
#include "request/session.h"

typedef struct wait_item {
    waiter w;
    wait_req *req;
} wait_item;

struct wait_req {
    session *s;
    req r;
    list session_node;
    /* A Gather's followers (follower.gather_node). */
    list followers;
    wait_opts opts;
    task **tasks;
    size_t n;
    size_t remaining;
    task *first_failed;
    bool replied;
    /* Answered once its followers, and those of its session following its
     * tasks, have sent the rest of their lines. */
    bool finishing;
    /* The tasks before this index have no follower of the session behind
     * (a follower never falls behind again on an ended output). */
    size_t clear_upto;
    uv_timer_t timer;
    bool timer_init;
    /* Waits for the commit of an outcome the reply reports (store_wait's
     * task set while it does); after a failed commit the reply goes
     * without waiting again. */
    persist_waiter store_wait;
    bool store_failed;
    /* One per task; items, then the tasks array, share the allocation. */
    wait_item items[];
};

static void req_free_memory(wait_req *r) {
    for (size_t i = 0; i < r->n; i++)
        task_unref(r->tasks[i]);
    free(r);
}

static void on_timer_closed(uv_handle_t *h) {
    req_free_memory(h->data);
}

/* Unhooks everything and frees (after the timer closes, if any). The
 * request has ended: its followers stop, so nothing comes after its final
 * frame. */
static void set_finishing(wait_req *r, bool on) {
    if (r->finishing == on)
        return;
    r->finishing = on;
    if (on)
        r->s->waits_finishing++;
    else
        r->s->waits_finishing--;
}

static void release(wait_req *r) {
    set_finishing(r, false);
    persist_waiter_cancel(&r->store_wait);
    for (size_t i = 0; i < r->n; i++)
        task_remove_waiter(&r->items[i].w);
    while (!list_empty(&r->followers))
        follow_stop(container_of(list_first(&r->followers), follower, gather_node));
    list_remove(&r->session_node);
    if (r->timer_init) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    } else
        req_free_memory(r);
}

/* Outcomes of a request this small are built on the stack. */
#define SMALL_REPLY 8

static void reply_outcomes(wait_req *r) {
    Aiod__Outcome small_os[SMALL_REPLY];
    encode_sizes small_sizes[SMALL_REPLY];
    bool small = r->n <= SMALL_REPLY;
    Aiod__Outcome *os = small ? small_os : alloc_calloc(r->n, sizeof(*os));
    encode_sizes *sizes = small ? small_sizes : alloc_calloc(r->n, sizeof(*sizes));
    if (!os || !sizes) {
        free(os);
        free(sizes);
        req_end_error(&r->r, AIOD__ERROR_CODE__ERROR_INTERNAL, "out of memory building the reply");
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        task_outcome(r->tasks[i], &os[i]);
    size_t size = encode_outcomes_size(r->r.id, os, r->n, sizes);
    uint8_t *p = req_frame_begin(&r->r, size);
    if (p)
        encode_outcomes(p, r->r.id, os, r->n, sizes);
    req_end_frame(&r->r, size, p != NULL);
    if (!small) {
        free(os);
        free(sizes);
    }
}

static void reply_failed(wait_req *r) {
    Aiod__Outcome o;
    task_outcome(r->first_failed, &o);
    Aiod__Error e = AIOD__ERROR__INIT;
    char msg[1200];
    snprintf(msg, sizeof(msg), "task %llu (%s) %s: %s: %s", (unsigned long long)r->first_failed->id,
             r->first_failed->fn->full_name, task_state_name(r->first_failed->state), o.error_kind,
             o.error_message);
    e.code = AIOD__ERROR_CODE__ERROR_TASK_FAILED;
    e.message = msg;
    e.outcome = &o;
    req_end(&r->r, AIOD__SERVER_MESSAGE__BODY_ERROR, &e);
}

/* Followers of tasks still running stop now: nothing follows the final
 * frame. Those whose task ended send the rest of their lines first. */
static bool followers_done(wait_req *r) {
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &r->followers) {
        follower *f = container_of(pos, follower, gather_node);
        if (!f->sink.o || !f->sink.o->ended)
            follow_stop(f);
    }
    return list_empty(&r->followers);
}

/* Whether another follower on this connection (a followed Submit, a Logs,
 * another Gather's) is still sending the output of one of the tasks, which
 * has ended: on one connection a task's Output events and OutputEnd come
 * before any reply that reports its end (protocol.md 5.1), also when the
 * follower is behind because its client reads slowly. */
static bool session_followers_behind(wait_req *r) {
    for (; r->clear_upto < r->n; r->clear_upto++) {
        const task *t = r->tasks[r->clear_upto];
        /* A child task prints into its root's output: followed there. */
        const output *o = t->out && t->out->task_id == t->id ? t->out : NULL;
        if (o && o->ended && follow_behind(r->s, o))
            return true;
    }
    return false;
}

static void finish(wait_req *r);

static void on_stored(persist_waiter *w, int error, const char *why) {
    (void)why;
    wait_req *r = container_of(w, wait_req, store_wait);
    r->store_wait.task = NULL;
    /* The store writes it again later; the outcome is told meanwhile
     * rather than held while the disk stays full (the log says so). */
    if (error)
        r->store_failed = true;
    finish(r);
}

/* Whether the outcomes the reply reports are in the state store: a client
 * told a task's outcome must find it after a crash (one lost to a kill
 * right after the reply ran the task again, or ended it Interrupted).
 * Otherwise registers for the commit, and finish runs again then. */
static bool outcomes_stored(wait_req *r) {
    if (r->store_wait.task)
        return false;
    if (r->store_failed)
        return true;
    size_t n = r->first_failed ? 1 : r->n;
    for (size_t i = 0; i < n; i++) {
        task *t = r->first_failed ? r->first_failed : r->tasks[i];
        if (persist_record_pending(t)) {
            r->store_wait.fn = on_stored;
            persist_when_record_committed(t, &r->store_wait);
            return false;
        }
    }
    return true;
}

static void finish(wait_req *r) {
    if (r->replied)
        return;
    if (!followers_done(r) || session_followers_behind(r)) {
        set_finishing(r, true);
        return;
    }
    if (!outcomes_stored(r))
        return;
    set_finishing(r, false);
    r->replied = true;
    if (r->first_failed)
        reply_failed(r);
    else
        reply_outcomes(r);
    /* Outcomes delivered to the owning connection need no pin any more. */
    for (size_t i = 0; i < r->n; i++)
        if (r->tasks[i]->pinned && r->tasks[i]->run->owner == r->s &&
            (!r->first_failed || r->tasks[i] == r->first_failed))
            task_release_pin(r->tasks[i]);
    release(r);
}

static void on_task_done(waiter *w, task *t) {
    wait_req *r = ((wait_item *)w)->req;
    r->remaining--;
    if ((t->store_flags & TASK_STORE_CUT_OFF) && !r->replied) {
        /* The stop cut off a task the state store keeps: it is not over
         * (it runs again, or is settled by on_interrupt, at the next
         * start), and a "cancelled" here would have the client submit it
         * again. */
        r->replied = true;
        req_end_error(&r->r, AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN,
                      "aiod is stopping: task %llu (%s) %s; await it again then%s",
                      (unsigned long long)t->id, t->fn->full_name, persist_cut_off_fate(t),
                      persist_cut_off_while_running(t) && !persist_runs_again_after_interrupt(t)
                          ? " for that outcome"
                          : "");
        release(r);
        return;
    }
    if (r->opts.gather && !r->opts.return_exceptions && t->state != TASK_DONE && !r->first_failed) {
        r->first_failed = t;
        finish(r);
    } else if (r->remaining == 0)
        finish(r);
}

void waiting_follower_ended(list *gather_list) {
    wait_req *r = container_of(gather_list, wait_req, followers);
    if (r->finishing && list_empty(&r->followers))
        finish(r);
}

void waiting_retry(session *s) {
    if (!s->waits_finishing)
        return; /* the common case: no wait to look at */
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &s->waits) {
        wait_req *r = container_of(pos, wait_req, session_node);
        if (r->finishing)
            finish(r); /* may release r, and only r */
    }
}

static void on_timeout(uv_timer_t *h) {
    wait_req *r = h->data;
    if (r->replied)
        return;
    if (r->finishing || r->store_wait.task) {
        /* Every task ended in time; only followers are catching up, or
         * the outcomes are being committed. The timeout is about the
         * tasks: the gather is answered with its Outcomes once they have
         * sent their lines and OutputEnd (stopping them here lost both). */
        return;
    }
    r->replied = true;
    size_t unfinished = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!task_finished(r->tasks[i]))
            unfinished++;
    if (r->opts.cancel_on_timeout) {
        /* Unhook first: cancelling can finish pending tasks at once. */
        for (size_t i = 0; i < r->n; i++)
            task_remove_waiter(&r->items[i].w);
        for (size_t i = 0; i < r->n; i++)
            task_cancel(r->tasks[i]);
    }
    req_end_error(&r->r, AIOD__ERROR_CODE__ERROR_TIMEOUT,
                  "timed out after %g s with %zu of %zu task%s unfinished; %s", r->opts.timeout,
                  unfinished, r->n, r->n == 1 ? "" : "s",
                  r->opts.cancel_on_timeout ? "cancelled them" : "they keep running");
    release(r);
}

wait_req *waiting_new(session *s, size_t n) {
    wait_req *r = alloc_calloc(1, sizeof(*r) + n * (sizeof(r->items[0]) + sizeof(task *)));
    if (!r)
        return NULL;
    r->s = s;
    list_init(&r->session_node);
    list_init(&r->followers);
    list_init(&r->store_wait.node);
    r->tasks = (task **)(r->items + n);
    r->n = n;
    return r;
}

task **waiting_tasks(wait_req *r) {
    return r->tasks;
}

list *waiting_followers(wait_req *r) {
    return &r->followers;
}

void waiting_abandon(wait_req *r) {
    persist_waiter_cancel(&r->store_wait);
    while (!list_empty(&r->followers))
        follow_stop(container_of(list_first(&r->followers), follower, gather_node));
    req_free_memory(r);
}

void waiting_begin(wait_req *r, req *rq, const wait_opts *o) {
    task **tasks = r->tasks;
    size_t n = r->n;
    req_move(&r->r, rq);
    r->opts = *o;
    list_insert_tail(&r->s->waits, &r->session_node);
    for (size_t i = 0; i < n; i++) {
        list_init(&r->items[i].w.node);
        r->items[i].w.fn = on_task_done;
        r->items[i].req = r;
    }
    /* Count first, then hook: a hook on a finished task fires at once. */
    for (size_t i = 0; i < n; i++)
        if (!task_finished(tasks[i]))
            r->remaining++;
        else if (o->gather && !o->return_exceptions && tasks[i]->state != TASK_DONE &&
                 !r->first_failed)
            r->first_failed = tasks[i];
    if (r->remaining == 0 || r->first_failed) {
        finish(r);
        return;
    }
    if (o->timeout > 0) {
        uv_timer_init(sched_loop(), &r->timer);
        r->timer.data = r;
        r->timer_init = true;
        sched_timer_start(&r->timer, on_timeout, o->timeout);
    }
    for (size_t i = 0; i < n; i++)
        if (!task_finished(tasks[i]))
            task_add_waiter(tasks[i], &r->items[i].w);
}

void waiting_session_closed(session *s) {
    while (!list_empty(&s->waits)) {
        wait_req *r = container_of(list_first(&s->waits), wait_req, session_node);
        r->replied = true;
        req_abandon(&r->r);
        release(r);
    }
}
