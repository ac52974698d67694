/*
 * Timeout scopes (timeout.h), as asyncio's Timeout: ENTERED until the
 * deadline cancels the task (EXPIRING); leaving an EXPIRING scope takes
 * that cancellation back (uncancel) and, when no other request is left
 * beyond those there were at entry, reports -ETIMEDOUT in place of
 * -ECANCELED.
 */
#include "core/timeout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "core/finish.h"
#include "core/soon.h"
#include "core/task.h"

enum { TMO_ENTERED, TMO_EXPIRING, TMO_EXPIRED, TMO_EXITED };

struct tmo {
    open_scope scope;
    task *t;
    double when;
    uint8_t state;
    uint32_t cancelling_at_entry;
    soon_handle *timer;
};

static void disarm(tmo *tm) {
    if (tm->timer) {
        soon_cancel(tm->timer);
        soon_release(tm->timer);
        tm->timer = NULL;
    }
}

static void on_deadline(void *data) {
    tmo *tm = data;
    soon_release(tm->timer);
    tm->timer = NULL;
    tm->state = TMO_EXPIRING;
    task_cancel(tm->t);
}

static int arm(tmo *tm, double when) {
    disarm(tm);
    tm->when = when >= TMO_FOREVER ? INFINITY : when;
    if (when >= TMO_FOREVER)
        return 0;
    /* A deadline already past fires as call_soon does, ahead of what the
     * task does next (asyncio's Timeout.reschedule). */
    double delay = when - soon_time();
    if (delay <= 0)
        return soon_call(on_deadline, tm, &tm->timer);
    return soon_call_at(when, on_deadline, tm, &tm->timer);
}

/* The task returned inside the scope: its deadline goes, and the scope. */
static void close_left(open_scope *s) {
    tmo *tm = container_of(s, tmo, scope);
    disarm(tm);
    task_unref(tm->t);
    free(tm);
}

int tmo_enter(task *t, double when, tmo **ret) {
    if (isnan(when) || !t->run || task_finished(t))
        return -EINVAL;
    tmo *tm = alloc_calloc(1, sizeof(*tm));
    if (!tm)
        return -ENOMEM;
    tm->t = task_ref(t);
    tm->state = TMO_ENTERED;
    tm->cancelling_at_entry = t->run->cancels;
    int r = arm(tm, when);
    if (r < 0) {
        task_unref(tm->t);
        free(tm);
        return r;
    }
    tm->scope.close = close_left;
    task_scope_entered(t, &tm->scope);
    *ret = tm;
    return 0;
}

int tmo_reschedule(tmo *tm, double when) {
    if (tm->state != TMO_ENTERED || isnan(when))
        return -EINVAL;
    return arm(tm, when);
}

double tmo_when(const tmo *tm) {
    return tm->when;
}

bool tmo_expired(const tmo *tm) {
    return tm->state == TMO_EXPIRING || tm->state == TMO_EXPIRED;
}

task *tmo_task(const tmo *tm) {
    return tm->t;
}

int tmo_exit(tmo *tm, int status) {
    task_scope_left(&tm->scope);
    disarm(tm);
    if (tm->state == TMO_EXPIRING) {
        tm->state = TMO_EXPIRED;
        if (task_uncancel(tm->t) <= tm->cancelling_at_entry && status == -ECANCELED)
            status = -ETIMEDOUT;
    } else
        tm->state = TMO_EXITED;
    task_unref(tm->t);
    free(tm);
    return status;
}
