/*
 * The end of a task, and cancellation (finish.h).
 */
#include "core/finish.h"

#include <assert.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <syslog.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "core/limit.h"
#include "core/output.h"
#include "core/sched.h"
#include "core/task.h"
#include "host/registry.h"
#include "macro.h"
#include "system/config.h"
#include "system/log.h"

static void step_to(task *t, enum task_end_step next) {
    assert((unsigned)t->end_step + 1 == (unsigned)next);
    t->end_step = (uint8_t)next;
}

/* Every top-level task's outcome goes to the log (journal fields TASK_ID,
 * FUNCTION, OWNER_UID, STATE, ERROR_KIND, ERROR_MESSAGE), as log_outcomes
 * says: successes at info, cancellations at notice, failures at warning. */
static void log_outcome(task *t) {
    static const char *const kinds[] = {
        [AIOD__OWNERSHIP__ATTACHED] = "attached",
        [AIOD__OWNERSHIP__SUBMITTED] = "submitted",
        [AIOD__OWNERSHIP__DETACHED] = "detached",
    };
    const char *kind = t->ownership < ELEMENTSOF(kinds) ? kinds[t->ownership] : "?";
    if (cfg.log_outcomes == LOG_OUTCOMES_NONE ||
        (cfg.log_outcomes == LOG_OUTCOMES_FAILURES && t->state == TASK_DONE))
        return;
    if (t->store_flags & TASK_STORE_CUT_OFF) {
        /* Not an outcome: the state store keeps the task for the next start,
         * which logs its real outcome. */
        log_task(LOG_NOTICE, t, "%s task cut off by the stop: kept in the state store as it was",
                 kind);
        return;
    }
    if (t->state == TASK_DONE) {
        if (log_get_max_priority() < LOG_INFO)
            return; /* spare the JSON */
        /* A result of a megabyte makes a log line of a few hundred bytes,
         * and costs no more to make. */
        char *json = pbvalue_to_json_prefix(task_result(t), LIMIT_LOG_RESULT);
        size_t len = json ? strlen(json) : 0;
        if (len > LIMIT_LOG_RESULT)
            log_task(LOG_INFO, t, "%s task done: %.*s…", kind,
                     (int)utf8_trim_partial(json, LIMIT_LOG_RESULT), json);
        else
            log_task(LOG_INFO, t, "%s task done: %s", kind, json ? json : "?");
        free(json);
    } else
        log_task(t->state == TASK_FAILED ? LOG_WARNING : LOG_NOTICE, t, "%s task %s: %s: %s", kind,
                 task_state_name(t->state), t->error_kind ? t->error_kind : "",
                 t->error_message ? t->error_message : "");
}

_Static_assert(TASK_END_SETTLED == TASK_END_SETTLED_VALUE, "task.h names the settled step");

static bool (*retry_hook)(task *t, char *kind, char *message);

void finish_set_retry_hook(bool (*retry)(task *t, char *kind, char *message)) {
    retry_hook = retry;
}

void task_finish(task *t, int state, Aiod__Value *result, char *kind, char *message) {
    if (task_finished(t)) {
        pbvalue_free(result);
        free(kind);
        free(message);
        return;
    }
    if (state == TASK_FAILED && t->plan && retry_hook && retry_hook(t, kind, message)) {
        pbvalue_free(result);
        return;
    }
    assert(t->end_step == TASK_END_NONE);
    task_ref(t);
    task_record_end(t, state, result, kind, message);
    step_to(t, TASK_END_RECORDED);

    limit_release(t, sched_start);
    plugin_release(t->fn->owner);
    step_to(t, TASK_END_RELEASED);

    task_run *r = t->run;
    list_remove(&r->child_node);
    /* An attached task's outcome is kept for its owner until delivered to
     * it (or it goes), whatever else finishes meanwhile: a client that
     * submits and then awaits must find it. */
    t->pinned = t->parent_id == 0 && t->ownership == AIOD__OWNERSHIP__ATTACHED && r->owner;
    /* Held for a connection that may never await it: counted against its
     * owner's max_task_bytes_per_uid, as its arguments were until now, so
     * that such a connection cannot grow the daemon without bound. */
    if (t->pinned)
        task_count_pinned(t, +1);
    else
        task_detach_owner(t);
    step_to(t, TASK_END_UNLINKED);

    /* Children still running are cancelled, as asyncio.run cancels what is
     * left when main returns. */
    task_cancel_children(t);
    step_to(t, TASK_END_CHILDREN);

    if (t->out && t->out->task_id == t->id)
        output_end(t->out, (t->store_flags & TASK_STORE_CUT_OFF) ? OUTPUT_END_CUT_OFF : state);
    step_to(t, TASK_END_OUTPUT);

    /* Taken off the task first, so that the list is not changed while it
     * is walked. */
    list waiters;
    list_move_all(&waiters, &r->waiters);
    while (!list_empty(&waiters)) {
        waiter *w = container_of(list_first(&waiters), waiter, node);
        list_remove(&w->node);
        w->fn(w, t);
    }
    step_to(t, TASK_END_WAITERS);

    if (t->parent_id == 0)
        log_outcome(t);
    step_to(t, TASK_END_LOGGED);

    step_to(t, TASK_END_SETTLED);
    if (!t->pinned)
        task_retain_or_drop(t);
    task_unref(t);
}

void task_release_pin(task *t) {
    if (!t->pinned)
        return;
    t->pinned = false;
    task_count_pinned(t, -1);
    task_detach_owner(t);
    /* Released by a waiter while the task is still ending: task_finish
     * settles it in its last step. */
    if (t->end_step < TASK_END_SETTLED)
        return;
    task_ref(t);
    task_retain_or_drop(t);
    task_unref(t);
}

/* Hands the ending task's unfinished children to the task that holds it
 * (asyncio: a task outlives the one that created it), or cancels them if
 * it has none: a top-level task's remaining descendants end with it, as
 * asyncio.run cancels what is left, except those shielded. */
static void hand_up_children(task *t) {
    task *up = t->run->up;
    if (!up || task_finished(up)) {
        while (!list_empty(&t->run->children)) {
            task *c = task_of(list_first(&t->run->children), child_node);
            list_remove(&c->run->child_node);
            c->run->up = NULL;
            if (!c->shielded)
                task_cancel(c);
        }
        return;
    }
    while (!list_empty(&t->run->children)) {
        task *c = task_of(list_first(&t->run->children), child_node);
        list_remove(&c->run->child_node);
        list_insert_tail(&up->run->children, &c->run->child_node);
        c->run->up = up;
    }
}

void task_cancel_children(task *t) {
    if (t->aio && t->end_step >= TASK_END_RECORDED) {
        hand_up_children(t);
        return;
    }
    while (!list_empty(&t->run->children)) {
        task *c = task_of(list_first(&t->run->children), child_node);
        list_remove(&c->run->child_node);
        c->run->up = NULL;
        if (!c->shielded)
            task_cancel(c);
    }
}

/*
 * Cancellation spreads from task to task (to children, to what a task
 * awaits) through this stack rather than by recursion: cancelling the head
 * of a chain of a million tasks, each awaiting the next, must not overflow
 * the canceller's coroutine stack.
 */
typedef struct cancel_item {
    task *t;
    char *msg;
} cancel_item;

static cancel_item *cancel_stack;
static size_t cancel_n, cancel_cap;
static bool cancel_running;

static void cancel_one(task *t, const char *msg);

static bool cancel_push(task *t, const char *msg) {
    if (cancel_n == cancel_cap) {
        size_t cap = cancel_cap ? cancel_cap * 2 : 64;
        cancel_item *n = realloc(cancel_stack, cap * sizeof(*n));
        if (!n)
            return false;
        cancel_stack = n;
        cancel_cap = cap;
    }
    char *m = msg ? alloc_strdup(msg) : NULL;
    if (msg && !m)
        return false;
    cancel_stack[cancel_n++] = (cancel_item){task_ref(t), m};
    return true;
}

static void cancel_drain(void) {
    cancel_running = true;
    while (cancel_n > 0) {
        cancel_item it = cancel_stack[--cancel_n];
        cancel_one(it.t, it.msg);
        free(it.msg);
        task_unref(it.t);
    }
    cancel_running = false;
    if (cancel_cap > 1024) {
        free(cancel_stack);
        cancel_stack = NULL;
        cancel_cap = 0;
    }
}

static void end_cancelled_before_start(task *t) {
    const char *msg = t->run->cancel_msg ? t->run->cancel_msg : task_unstarted_cancel_message(t);
    task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"), alloc_strdup(msg));
}

/* Delivers -ECANCELED to a suspended task, also over a wake-up already
 * queued (whose result is then lost, as in asyncio). For an `aio` task that
 * is must_cancel, taken when it resumes (sched.c), so that an uncancel
 * before then takes the request back and the wake-up's result stands, as
 * asyncio's Task.uncancel resets _must_cancel. False if the task is not
 * suspended. */
static bool deliver(task *t) {
    task_run *r = t->run;
    if (!r->suspended)
        return false;
    if (r->wake_pending && t->aio)
        r->must_cancel = true;
    else if (r->wake_pending)
        r->wake_status = -ECANCELED;
    else
        sched_wake(t, -ECANCELED);
    return true;
}

static void cancel_one(task *t, const char *msg) {
    if (task_finished(t))
        return;
    task_run *r = t->run;
    t->cancel_requested = true;
    if (!t->aio) {
        /* ABI 1.0-1.3: sticky, and spread to every unshielded child. The
         * first message given is the one its CancelledError says (the
         * children's is the plain one). */
        if (msg && !r->cancel_msg)
            r->cancel_msg = alloc_strdup(msg);
        list *pos, *tmp;
        list_foreach_safe(pos, tmp, &r->children) {
            task *c = task_of(pos, child_node);
            if (!c->shielded)
                cancel_push(c, NULL);
        }
        if (!r->co && t->state == TASK_PENDING)
            end_cancelled_before_start(t);
        else
            deliver(t);
        return;
    }
    r->cancels++;
    /* The latest request's message, as asyncio's cancel(msg=None) clears an
     * earlier one. */
    free(r->cancel_msg);
    r->cancel_msg = msg ? alloc_strdup(msg) : NULL;
    if (!r->co && t->state == TASK_PENDING) {
        /* A child queued to start stays pending until its first step, where
         * it ends cancelled unless uncancelled first (asyncio: cancel() of
         * a task not yet started, test_cancelling). A top-level task (it
         * may wait for its time or its dependencies) ends at once. */
        if (r->queued && t->parent_id != 0) {
            r->must_cancel = true;
            return;
        }
        end_cancelled_before_start(t);
        return;
    }
    /* Waiting on something that takes the cancellation over: the task
     * waits on and sees how that ends. */
    if (r->suspended && !r->wake_pending && r->on_cancel && r->on_cancel(t, r->on_cancel_data))
        return;
    if (!deliver(t))
        r->must_cancel = true; /* running: at its next await point */
}

bool task_cancel_msg(task *t, const char *msg) {
    if (task_finished(t))
        return false;
    if (!cancel_push(t, msg)) {
        cancel_one(t, msg); /* out of memory: at least this one */
        return true;
    }
    if (!cancel_running)
        cancel_drain();
    return true;
}

bool task_cancel(task *t) {
    return task_cancel_msg(t, NULL);
}

uint32_t task_uncancel(task *t) {
    task_run *r = t->run;
    if (!r)
        return 0;
    if (r->cancels > 0 && --r->cancels == 0)
        r->must_cancel = false;
    return r->cancels;
}
