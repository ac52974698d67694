/*
 * Futures (future.h).
 */
#include "core/future.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "pbvalue.h"
#include "core/sched.h"
#include "core/soon.h"
#include "core/task.h"

/* A done-callback: on the future's list (e.t NULL) until the future ends,
 * then scheduled with call_soon, holding a reference to the future. */
typedef struct fut_cb {
    fut_entry e;
    fut *f;
    fut_callback cb;
    void *data;
} fut_cb;

fut *fut_new(void) {
    fut *f = alloc_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->refs = 1;
    f->state = TASK_PENDING;
    list_init(&f->callbacks);
    return f;
}

fut *fut_ref(fut *f) {
    f->refs++;
    return f;
}

fut *fut_unref(fut *f) {
    if (!f || --f->refs > 0)
        return NULL;
    while (!list_empty(&f->callbacks)) {
        fut_entry *e = container_of(list_first(&f->callbacks), fut_entry, node);
        assert(!e->t); /* an awaiting task holds a reference */
        list_remove(&e->node);
        free(container_of(e, fut_cb, e));
    }
    pbvalue_free(f->result);
    free(f->kind);
    free(f->message);
    free(f);
    return NULL;
}

bool fut_done(const fut *f) {
    return f->state != TASK_PENDING;
}

static void run_callback(void *data) {
    fut_cb *c = data;
    c->cb(c->f, c->data);
    fut_unref(c->f);
    free(c);
}

/* The future ended: wakes its awaiting tasks and schedules its callbacks,
 * all in the order they came. */
static void settle(fut *f) {
    while (!list_empty(&f->callbacks)) {
        fut_entry *e = container_of(list_first(&f->callbacks), fut_entry, node);
        list_remove(&e->node);
        list_init(&e->node);
        if (e->t) {
            sched_wake(e->t, 0);
            continue;
        }
        fut_cb *c = container_of(e, fut_cb, e);
        c->f = fut_ref(f);
        if (soon_call(run_callback, c, NULL) < 0) {
            /* Without memory for the handle, run it now rather than never. */
            run_callback(c);
        }
    }
}

int fut_set_result(fut *f, Aiod__Value *result) {
    if (fut_done(f)) {
        pbvalue_free(result);
        return -EBUSY;
    }
    f->state = TASK_DONE;
    f->result = result;
    settle(f);
    return 0;
}

int fut_set_error(fut *f, const char *kind, const char *message) {
    if (fut_done(f))
        return -EBUSY;
    char *k = alloc_strdup(kind ? kind : "Error"), *m = alloc_strdup(message ? message : "");
    if (!k || !m) {
        free(k);
        free(m);
        return -ENOMEM;
    }
    f->state = TASK_FAILED;
    f->kind = k;
    f->message = m;
    settle(f);
    return 0;
}

bool fut_cancel(fut *f, const char *message) {
    if (fut_done(f))
        return false;
    f->state = TASK_CANCELLED;
    f->kind = alloc_strdup("CancelledError");
    f->message = message ? alloc_strdup(message) : NULL;
    settle(f);
    return true;
}

int fut_outcome(task *t, const fut *f, Aiod__Value **ret_result) {
    switch (f->state) {
    case TASK_PENDING:
        return -EAGAIN;
    case TASK_DONE:
        if (ret_result) {
            Aiod__Value *v = f->result ? pbvalue_copy(f->result) : pbvalue_null();
            if (!v)
                return -ENOMEM;
            *ret_result = v;
        }
        return 0;
    case TASK_FAILED:
        if (t)
            task_raise(t, -EIO, f->kind, f->message);
        return -EIO;
    default:
        if (t)
            task_note_cancel(t, f->message);
        return -ECANCELED;
    }
}

/* The awaiting task was cancelled: so is the future (asyncio's await). */
static bool cancel_awaited(task *t, void *data) {
    (void)t;
    fut *f = data;
    return fut_cancel(f, t->run->cancel_msg);
}

int fut_await(task *t, fut *f, Aiod__Value **ret_result) {
    if (!fut_done(f)) {
        task_run *r = t->run;
        fut_ref(f);
        r->fut_wait.t = t;
        list_insert_tail(&f->callbacks, &r->fut_wait.node);
        r->on_cancel = cancel_awaited;
        r->on_cancel_data = f;
        int s = sched_suspend(t);
        r->on_cancel = NULL;
        r->on_cancel_data = NULL;
        list_remove(&r->fut_wait.node);
        list_init(&r->fut_wait.node);
        if (s < 0) {
            /* Cancelled with the future already done (its wake-up was
             * queued), or before it could wait. */
            if (!fut_done(f) && s == -ECANCELED)
                fut_cancel(f, r->cancel_msg);
            fut_unref(f);
            return s;
        }
        fut_unref(f);
    }
    return fut_outcome(t, f, ret_result);
}

int fut_add_callback(fut *f, fut_callback cb, void *data) {
    fut_cb *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cb = cb;
    c->data = data;
    if (fut_done(f)) {
        c->f = fut_ref(f);
        int r = soon_call(run_callback, c, NULL);
        if (r < 0) {
            fut_unref(f);
            free(c);
        }
        return r;
    }
    list_insert_tail(&f->callbacks, &c->e.node);
    return 0;
}

int fut_remove_callback(fut *f, fut_callback cb, void *data) {
    int n = 0;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &f->callbacks) {
        fut_entry *e = container_of(pos, fut_entry, node);
        if (e->t)
            continue; /* an awaiting task */
        fut_cb *c = container_of(e, fut_cb, e);
        if (c->cb == cb && c->data == data) {
            list_remove(&c->e.node);
            free(c);
            n++;
        }
    }
    return n;
}
