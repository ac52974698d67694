/*
 * Task groups (group.h), with asyncio.TaskGroup's rules: a failing child
 * aborts the group (its other children are cancelled) and cancels the task
 * running the block, a cancellation which the group's end takes back; the
 * block's own error joins the children's; a cancellation from outside
 * aborts the group and is reported once the children have ended, unless
 * there are errors, which come first.
 */
#include "core/group.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/slab.h"
#include "pbvalue.h"
#include "macro.h"
#include "core/finish.h"
#include "core/run.h"
#include "core/sched.h"
#include "core/task.h"

typedef struct member {
    waiter w;
    task *child;
    struct tgroup *g;
} member;

/* Members come in blocks, allocated as the group grows and never moved
 * (their waiters are linked into the children's lists): a group of a
 * million children costs one allocation per block, and no copying. The
 * first block is a small malloc'd one; the full-size ones after it come
 * from a slab (base/slab.h), so that a burst of a million members is
 * faulted in as huge pages and the next burst reuses the memory. */
#define MEMBERS_PER_BLOCK 1024
#define MEMBER_SLAB_IDLE ((size_t)64 << 20)

typedef struct member_block {
    struct member_block *next;
    size_t n;
    member m[MEMBERS_PER_BLOCK];
} member_block;

static slab member_blocks = SLAB_INIT(sizeof(member_block), MEMBER_SLAB_IDLE);

void group_cache_release(void) {
    slab_trim(&member_blocks, 0);
}

struct tgroup {
    open_scope scope;
    task *t;
    member_block *first, *last;
    /* Members in all, and room in the last block. */
    size_t n, cap_last;
    size_t unfinished;
    bool aborting, exiting, parent_cancel_requested, waiting;
    /* {"error", "message"} maps, in the order the failures happened. */
    Aiod__Value *errors;
    size_t n_errors;
};

task *group_task(const tgroup *g) {
    return g->t;
}

static void close_left(open_scope *s);

int group_new(task *t, tgroup **ret) {
    tgroup *g = alloc_calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->t = task_ref(t);
    g->scope.close = close_left;
    task_scope_entered(t, &g->scope);
    *ret = g;
    return 0;
}

static void abort_group(tgroup *g) {
    g->aborting = true;
    for (member_block *b = g->first; b; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            if (!task_finished(b->m[i].child))
                task_cancel(b->m[i].child);
}

static void add_error(tgroup *g, const char *kind, const char *message) {
    if (!g->errors && !(g->errors = pbvalue_list()))
        return;
    Aiod__Value *m = pbvalue_map();
    if (!m)
        return;
    if (pbvalue_map_set(m, "error", pbvalue_string(kind ? kind : "Error")) < 0 ||
        pbvalue_map_set(m, "message", pbvalue_string(message ? message : "")) < 0 ||
        pbvalue_list_append(g->errors, m) < 0) {
        pbvalue_free(m);
        return;
    }
    g->n_errors++;
}

static void on_member_done(waiter *w, task *child) {
    member *m = (member *)w;
    tgroup *g = m->g;
    g->unfinished--;
    if (g->unfinished == 0 && g->waiting)
        sched_wake(g->t, 0);
    if (child->state != TASK_FAILED)
        return;
    add_error(g, child->error_kind, child->error_message);
    if (task_finished(g->t))
        return;
    if (!g->aborting && !g->parent_cancel_requested) {
        /* Stop whatever the block awaits now, too; group_wait takes this
         * cancellation back. */
        abort_group(g);
        g->parent_cancel_requested = true;
        task_cancel(g->t);
    }
}

int group_add(tgroup *g, task *spawner, task *child) {
    if (child->parent_id != spawner->id || task_finished(child))
        return -EINVAL;
    if (g->aborting || (g->exiting && g->unfinished == 0)) {
        task_cancel(child);
        return -EINVAL;
    }
    if (!g->last || g->last->n == g->cap_last) {
        /* A small group's first block holds what it needs; later ones are
         * full size. */
        size_t cap = g->last ? MEMBERS_PER_BLOCK : 8;
        member_block *b = g->last ? slab_alloc(&member_blocks)
                                  : alloc_malloc(offsetof(member_block, m) + cap * sizeof(member));
        if (!b)
            return -ENOMEM;
        b->next = NULL;
        b->n = 0;
        if (g->last)
            g->last->next = b;
        else
            g->first = b;
        g->last = b;
        g->cap_last = cap;
    }
    member *m = &g->last->m[g->last->n++];
    m->child = task_ref(child);
    m->g = g;
    m->w.fn = on_member_done;
    m->w.data = NULL;
    list_init(&m->w.node);
    g->n++;
    g->unfinished++;
    task_add_waiter(child, &m->w);
    return 0;
}

static void group_free(tgroup *g) {
    member_block *b = g->first;
    while (b) {
        for (size_t i = 0; i < b->n; i++) {
            task_remove_waiter(&b->m[i].w);
            task_unref(b->m[i].child);
        }
        member_block *next = b->next;
        if (b == g->first)
            free(b);
        else
            slab_free(&member_blocks, b);
        b = next;
    }
    pbvalue_free(g->errors);
    task_unref(g->t);
    free(g);
}

/* The task returned inside the group, never waiting for it: its tasks
 * may not outlive the block (asyncio.TaskGroup), so those unfinished are
 * cancelled, and the group goes. */
static void close_left(open_scope *s) {
    tgroup *g = container_of(s, tgroup, scope);
    abort_group(g);
    group_free(g);
}

int group_wait(tgroup *g, int status, Aiod__Value **ret_errors) {
    task *t = g->t;
    g->exiting = true;
    bool propagate_cancel = status == -ECANCELED;
    if (status < 0 && !g->aborting)
        abort_group(g);
    while (g->unfinished > 0) {
        g->waiting = true;
        int r = sched_suspend(t);
        g->waiting = false;
        if (r == -ECANCELED && !g->aborting) {
            propagate_cancel = true;
            abort_group(g);
        }
    }
    /* The group's own cancellation of the task is taken back; only one
     * from outside is passed on. */
    if (g->parent_cancel_requested && task_uncancel(t) == 0)
        propagate_cancel = false;
    if (status < 0 && status != -ECANCELED) {
        const char *msg, *kind = task_pending_kind(t, status, &msg);
        if (!kind) {
            kind = run_errno_kind(status);
            msg = strerror(status > -4096 ? -status : EIO);
        }
        add_error(g, kind, msg);
    }
    int r = 0;
    if (g->n_errors > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "unhandled errors in a TaskGroup (%zu sub-exception%s)",
                 g->n_errors, g->n_errors == 1 ? "" : "s");
        task_raise(t, -EIO, "ExceptionGroup", msg);
        if (ret_errors)
            *ret_errors = TAKE_PTR(g->errors);
        r = -EIO;
        /* The errors win over a cancellation from outside, which must not
         * be lost: it is requested again, for the next await point
         * (asyncio 3.13). */
        if (t->run->cancels > 0) {
            task_uncancel(t);
            task_cancel(t);
        }
    } else if (propagate_cancel)
        r = -ECANCELED;
    task_scope_left(&g->scope);
    group_free(g);
    return r;
}
