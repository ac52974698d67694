/*
 * The ABI 1.4 part of the plugin API table (aio.h). Handles are the core's
 * objects behind opaque types: aiod_future is a fut, aiod_timeout a tmo,
 * aiod_group a tgroup, aiod_handle a soon_handle.
 */
#include "api/aio.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/utf8.h"
#include "api/fdwatch.h"
#include "api/signal.h"
#include "core/finish.h"
#include "core/future.h"
#include "core/group.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"
#include "core/timeout.h"
#include "host/registry.h"
#include "system/policy.h"

#define T(x) ((task *)(x))
#define CT(x) ((const task *)(x))
#define F(x) ((fut *)(x))

/* Calls that suspend are valid only from the task's own coroutine. */
static bool is_running(const aiod_task *t) {
    return t && sched_current() == CT(t);
}

/* Names of the longest allowed plus the NUL. */
#define NAME_MAX_BYTES 255

int aio_cancel_msg(aiod_task *self, aiod_child *child, const char *msg) {
    if (!self || !child)
        return -EINVAL;
    return task_cancel_msg(T(child), msg) ? 1 : 0;
}

int aio_cancel_self(aiod_task *self, const char *msg) {
    if (!self || task_finished(T(self)))
        return -EINVAL;
    return task_cancel_msg(T(self), msg) ? 1 : 0;
}

uint32_t aio_cancelling(const aiod_task *self) {
    return self && CT(self)->run ? CT(self)->run->cancels : 0;
}

uint32_t aio_uncancel(aiod_task *self) {
    return self ? task_uncancel(T(self)) : 0;
}

aiod_task *aio_current_task(void) {
    return (aiod_task *)sched_current();
}

int aio_set_name(aiod_task *self, aiod_child *child, const char *name) {
    task *t = child ? T(child) : T(self);
    if (!t || !name || strlen(name) > NAME_MAX_BYTES || !utf8_valid_text(name, strlen(name)))
        return -EINVAL;
    char *n = alloc_strdup(name);
    if (!n)
        return -ENOMEM;
    free(t->name);
    t->name = n;
    return 0;
}

const char *aio_get_name(aiod_task *self, aiod_child *child) {
    task *t = child ? T(child) : T(self);
    if (!t)
        return NULL;
    if (!t->name) {
        char buf[32];
        snprintf(buf, sizeof(buf), "Task-%llu", (unsigned long long)t->id);
        t->name = alloc_strdup(buf);
    }
    return t->name;
}

int aio_child_error(const aiod_child *child, const char **ret_kind, const char **ret_message) {
    const task *c = CT(child);
    if (!c)
        return -EINVAL;
    switch (c->state) {
    case TASK_DONE:
        return 0;
    case TASK_FAILED:
        if (ret_kind)
            *ret_kind = c->error_kind ? c->error_kind : "Error";
        if (ret_message)
            *ret_message = c->error_message ? c->error_message : "";
        return 1;
    case TASK_CANCELLED:
        if (ret_kind)
            *ret_kind = "CancelledError";
        if (ret_message)
            *ret_message = c->error_message ? c->error_message : "";
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}

int aio_child_result(aiod_task *self, const aiod_child *child, aiod_value **ret_result) {
    const task *c = CT(child);
    if (!self || !c)
        return -EINVAL;
    switch (c->state) {
    case TASK_DONE: {
        if (!ret_result)
            return 0;
        Aiod__Value *v = pbvalue_copy(task_result(c));
        if (!v)
            return -ENOMEM;
        *ret_result = (aiod_value *)v;
        return 0;
    }
    case TASK_FAILED:
        task_raise(T(self), -EIO, c->error_kind ? c->error_kind : "Error",
                   c->error_message ? c->error_message : "");
        return -EIO;
    case TASK_CANCELLED:
        task_note_cancel(T(self), c->error_message);
        return -ECANCELED;
    default:
        return -EAGAIN;
    }
}

void aio_link_child(aiod_task *parent_, aiod_task *child_) {
    task *parent = T(parent_), *child = T(child_);
    child->parent_id = parent->id;
    child->run->up = parent;
    list_insert_tail(&parent->run->children, &child->run->child_node);
    /* Before ABI 1.4 a cancelled task's new children are cancelled too. */
    if (parent->cancel_requested && !parent->aio)
        task_cancel(child);
    else
        sched_start(child);
}

int aio_may_call(task *parent, const fn_entry *fn, char *why, size_t why_len) {
    if (parent->uid == 0)
        return 0;
    caller *c = parent->run ? parent->run->caller : NULL;
    /* Not known (a task restored from the state store): its uid alone, so
     * that a rule naming its groups refuses rather than lets through. */
    peer alone = {.uid = parent->uid, .gid = (gid_t)-1};
    int r = policy_may_call(c ? caller_peer(c) : &alone, fn->full_name, why, why_len);
    if (r < 0 && !c) {
        size_t n = strlen(why);
        snprintf(why + n, why_len - n,
                 "; the groups of the task's caller are not known since "
                 "aiod restarted");
    }
    return r;
}

int aio_new_child(aiod_task *self, fn_entry *fn, Aiod__Value **argv, size_t argc, task **ret) {
    task *parent = T(self);
    output *out = task_output(parent);
    if (!out) {
        value_argv_free(argv, argc);
        return -ENOMEM;
    }
    int r = task_new(fn, argv, argc, AIOD__OWNERSHIP__ATTACHED, parent->uid, parent->pid, out, ret);
    if (r == 0)
        (*ret)->run->caller = caller_ref(parent->run->caller);
    if (r == -EAGAIN || r == -EDQUOT || r == -ENOBUFS || r == -E2BIG)
        task_raise(parent, -EAGAIN, "LimitError",
                   r == -EAGAIN   ? "task limit (max_tasks) reached"
                   : r == -EDQUOT ? "task limit of the user (max_tasks_per_uid) reached"
                                  : "argument memory limit of the user (max_task_bytes_per_uid) "
                                    "reached");
    return r == -EDQUOT || r == -ENOBUFS || r == -E2BIG ? -EAGAIN : r;
}

int aio_spawn_call(aiod_task *self,
                   int (*fn)(aiod_task *child, const struct aiod_api *api, void *arg,
                             aiod_value **ret_result),
                   void *arg, aiod_child **ret_child) {
    task *parent = T(self), *child = NULL;
    if (!parent || !fn || !ret_child || task_finished(parent))
        return -EINVAL;
    int r = aio_new_child(self, parent->fn, NULL, 0, &child);
    if (r < 0)
        return r;
    child->run->call_fn = (void *)fn;
    child->run->call_arg = arg;
    aio_link_child(self, (aiod_task *)child);
    *ret_child = (aiod_child *)child;
    return 0;
}

double aio_loop_time(void) {
    return soon_time();
}

static double deadline(double when) {
    return when >= TMO_FOREVER ? TMO_FOREVER : when;
}

int aio_timeout_enter_at(aiod_task *self, double when, aiod_timeout **ret_tm) {
    if (!is_running(self) || !ret_tm || isnan(when))
        return -EINVAL;
    return tmo_enter(T(self), deadline(when), (tmo **)ret_tm);
}

int aio_timeout_enter(aiod_task *self, double delay, aiod_timeout **ret_tm) {
    if (isnan(delay))
        return -EINVAL;
    return aio_timeout_enter_at(self, delay >= TMO_FOREVER ? TMO_FOREVER : soon_time() + delay,
                                ret_tm);
}

int aio_timeout_reschedule(aiod_timeout *tm, double when) {
    if (!tm || isnan(when))
        return -EINVAL;
    return tmo_reschedule((tmo *)tm, deadline(when));
}

double aio_timeout_when(const aiod_timeout *tm) {
    if (!tm)
        return NAN;
    double w = tmo_when((const tmo *)tm);
    return w >= TMO_FOREVER ? AIOD_FOREVER : w;
}

int aio_timeout_expired(const aiod_timeout *tm) {
    return tm && tmo_expired((const tmo *)tm);
}

int aio_timeout_exit(aiod_task *self, aiod_timeout *tm, int status) {
    /* Only its own task leaves a scope: another's exit freed it under it. */
    if (!self || !tm || tmo_task((tmo *)tm) != T(self))
        return -EINVAL;
    return tmo_exit((tmo *)tm, status);
}

int aio_group_new(aiod_task *self, aiod_group **ret_group) {
    if (!is_running(self) || !ret_group)
        return -EINVAL;
    return group_new(T(self), (tgroup **)ret_group);
}

int aio_group_add(aiod_task *self, aiod_group *group, aiod_child *child) {
    if (!self || !group || !child)
        return -EINVAL;
    return group_add((tgroup *)group, T(self), T(child));
}

int aio_group_wait(aiod_task *self, aiod_group *group, int status, aiod_value **ret_errors) {
    /* Only its own task waits for a group: another's wait suspended the
     * owner from the wrong coroutine (or freed the group under it). */
    if (!is_running(self) || !group || status > 0 || group_task((tgroup *)group) != T(self))
        return -EINVAL;
    return group_wait((tgroup *)group, status, (Aiod__Value **)ret_errors);
}

int aio_future_new(aiod_task *self, aiod_future **ret_future) {
    (void)self;
    if (!ret_future)
        return -EINVAL;
    fut *f = fut_new();
    if (!f)
        return -ENOMEM;
    *ret_future = (aiod_future *)f;
    return 0;
}

aiod_future *aio_future_ref(aiod_future *f) {
    return f ? (aiod_future *)fut_ref(F(f)) : NULL;
}

void aio_future_release(aiod_future *f) {
    fut_unref(F(f));
}

int aio_future_set_result(aiod_future *f, aiod_value *result) {
    if (!f) {
        pbvalue_free((Aiod__Value *)result);
        return -EINVAL;
    }
    return fut_set_result(F(f), (Aiod__Value *)result);
}

int aio_future_set_error(aiod_future *f, const char *kind, const char *message) {
    if (!f || !kind)
        return -EINVAL;
    return fut_set_error(F(f), kind, message);
}

int aio_future_cancel(aiod_future *f, const char *msg) {
    if (!f)
        return -EINVAL;
    return fut_cancel(F(f), msg) ? 1 : 0;
}

uint32_t aio_future_state(const aiod_future *f) {
    return f ? ((const fut *)f)->state : 0;
}

int aio_future_await(aiod_task *self, aiod_future *f, aiod_value **ret_result) {
    if (!is_running(self) || !f)
        return -EINVAL;
    return fut_await(T(self), F(f), (Aiod__Value **)ret_result);
}

int aio_future_result(aiod_task *self, const aiod_future *f, aiod_value **ret_result) {
    if (!f)
        return -EINVAL;
    return fut_outcome(T(self), (const fut *)f, (Aiod__Value **)ret_result);
}

int aio_future_error(const aiod_future *f, const char **ret_kind, const char **ret_message) {
    if (!f)
        return -EINVAL;
    const fut *ff = (const fut *)f;
    switch (ff->state) {
    case TASK_PENDING:
        return -EAGAIN;
    case TASK_DONE:
        return 0;
    default:
        if (ret_kind)
            *ret_kind = ff->kind;
        if (ret_message)
            *ret_message = ff->message ? ff->message : "";
        return ff->state == TASK_FAILED ? 1 : -ECANCELED;
    }
}

int aio_future_add_done_callback(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                 void *data) {
    if (!f || !cb)
        return -EINVAL;
    return fut_add_callback(F(f), (fut_callback)cb, data);
}

int aio_future_remove_done_callback(aiod_future *f, void (*cb)(aiod_future *f, void *data),
                                    void *data) {
    if (!f || !cb)
        return -EINVAL;
    return fut_remove_callback(F(f), (fut_callback)cb, data);
}

int aio_call_soon(void (*cb)(void *data), void *data, aiod_handle **ret_handle) {
    return soon_call(cb, data, (soon_handle **)ret_handle);
}

/* Past TMO_FOREVER a timer cannot be armed (1e300 s): the call never
 * comes, as a sleep that long never ends. */
int aio_call_later(double delay, void (*cb)(void *data), void *data, aiod_handle **ret_handle) {
    if (!isnan(delay) && delay >= TMO_FOREVER)
        return soon_call_never(cb, data, (soon_handle **)ret_handle);
    return soon_call_later(delay, cb, data, (soon_handle **)ret_handle);
}

int aio_call_at(double when, void (*cb)(void *data), void *data, aiod_handle **ret_handle) {
    if (isnan(when))
        return -EINVAL;
    if (when - soon_time() >= TMO_FOREVER)
        return soon_call_never(cb, data, (soon_handle **)ret_handle);
    return soon_call_at(when, cb, data, (soon_handle **)ret_handle);
}

int aio_handle_cancel(aiod_handle *h) {
    return h && soon_cancel((soon_handle *)h) ? 1 : 0;
}

void aio_handle_release(aiod_handle *h) {
    soon_release((soon_handle *)h);
}

int aio_wait_fd(aiod_task *self, int fd, uint32_t events, double timeout) {
    if (!is_running(self))
        return -EINVAL;
    return fdwatch_wait(T(self), fd, events, timeout);
}

int aio_wait_signal(aiod_task *self, int signo, double timeout) {
    if (!is_running(self))
        return -EINVAL;
    return signal_wait(T(self), signo, timeout);
}
