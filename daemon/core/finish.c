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
    if (!t->pinned)
        task_detach_owner(t);
    step_to(t, TASK_END_UNLINKED);

    /* Children still running are cancelled, as asyncio.run cancels what is
     * left when main returns. */
    task_cancel_children(t);
    step_to(t, TASK_END_CHILDREN);

    if (t->out && t->out->task_id == t->id)
        output_end(t->out, state);
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
    task_detach_owner(t);
    /* Released by a waiter while the task is still ending: task_finish
     * settles it in its last step. */
    if (t->end_step < TASK_END_SETTLED)
        return;
    task_ref(t);
    task_retain_or_drop(t);
    task_unref(t);
}

void task_cancel_children(task *t) {
    while (!list_empty(&t->run->children)) {
        task *c = task_of(list_first(&t->run->children), child_node);
        list_remove(&c->run->child_node);
        if (!c->shielded)
            task_cancel(c);
    }
}

bool task_cancel(task *t) {
    if (task_finished(t))
        return false;
    t->cancel_requested = true;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &t->run->children) {
        task *c = task_of(pos, child_node);
        if (!c->shielded)
            task_cancel(c);
    }
    if (!t->run->co && t->state == TASK_PENDING)
        task_finish(t, TASK_CANCELLED, NULL, alloc_strdup("CancelledError"),
                    alloc_strdup("task was cancelled before it started"));
    else
        sched_wake(t, -ECANCELED);
    return true;
}
