/*
 * outcome: the aioc_outcome wrapper and its public accessors (outcome.h),
 * the state names, and the book of a request's OutputEnd counts.
 */
#include "outcome.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "value.h"
#include "wire.h"

aioc_outcome *outcome_new(Aiod__Outcome *pb) {
    aioc_outcome *o = alloc_calloc(1, sizeof(*o));
    if (!o) {
        wire_free_message(pb);
        return NULL;
    }
    o->pb = pb;
    return o;
}

void outcome_view(aioc_outcome *view, Aiod__Outcome *pb) {
    view->pb = pb;
    view->output_dropped = 0;
}

AIOC_EXPORT uint64_t aioc_outcome_task_id(const aioc_outcome *o) {
    return o ? outcome_cpb(o)->task_id : 0;
}

AIOC_EXPORT int aioc_outcome_state(const aioc_outcome *o) {
    return o ? (int)outcome_cpb(o)->state : 0;
}

AIOC_EXPORT const aioc_value *aioc_outcome_result(const aioc_outcome *o) {
    if (!o || outcome_cpb(o)->state != AIOD__TASK_STATE__TASK_DONE)
        return NULL;
    return value_from_cpb(outcome_cpb(o)->result);
}

static int ended_badly(const aioc_outcome *o) {
    return o && (outcome_cpb(o)->state == AIOD__TASK_STATE__TASK_FAILED ||
                 outcome_cpb(o)->state == AIOD__TASK_STATE__TASK_CANCELLED);
}

AIOC_EXPORT const char *aioc_outcome_error_kind(const aioc_outcome *o) {
    if (!ended_badly(o))
        return "";
    const char *kind = outcome_cpb(o)->error_kind;
    if (!*kind && outcome_cpb(o)->state == AIOD__TASK_STATE__TASK_CANCELLED)
        return "CancelledError";
    return kind;
}

AIOC_EXPORT const char *aioc_outcome_error_message(const aioc_outcome *o) {
    return ended_badly(o) ? outcome_cpb(o)->error_message : "";
}

AIOC_EXPORT uint64_t aioc_outcome_output_dropped(const aioc_outcome *o) {
    return o ? o->output_dropped : 0;
}

AIOC_EXPORT void aioc_outcome_free(aioc_outcome *o) {
    if (!o)
        return;
    wire_free_message(o->pb);
    free(o);
}

AIOC_EXPORT const char *aioc_state_name(int state) {
    switch (state) {
    case AIOC_STATE_PENDING:
        return "pending";
    case AIOC_STATE_RUNNING:
        return "running";
    case AIOC_STATE_DONE:
        return "done";
    case AIOC_STATE_FAILED:
        return "failed";
    case AIOC_STATE_CANCELLED:
        return "cancelled";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------ OutputEnd counts */

int output_ends_add(output_ends *e, uint64_t task_id, uint64_t dropped) {
    if (dropped == 0)
        return 0;
    e->total += dropped;
    if (e->has_first && e->first.task_id == task_id) {
        e->first.dropped += dropped;
        return 0;
    }
    if (!e->has_first) {
        e->first = (output_end){task_id, dropped};
        e->has_first = 1;
        return 0;
    }
    if (e->n_more == e->cap_more) {
        size_t cap = e->cap_more ? e->cap_more * 2 : 8;
        output_end *m = alloc_realloc(e->more, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        e->more = m;
        e->cap_more = cap;
    }
    e->more[e->n_more++] = (output_end){task_id, dropped};
    return 0;
}

static int by_task(const void *a, const void *b) {
    const output_end *x = a, *y = b;
    return x->task_id < y->task_id ? -1 : x->task_id > y->task_id;
}

void output_ends_apply(output_ends *e, aioc_outcome *const *os, size_t n) {
    if (!e->has_first)
        return;
    /* Sorted, so that a gather of many tasks that all lost lines costs
     * n log n, not n squared. Equal ids (a task named twice) add up. */
    if (e->n_more > 1)
        qsort(e->more, e->n_more, sizeof(*e->more), by_task);
    for (size_t i = 0; i < n; i++) {
        if (!os[i])
            continue;
        uint64_t id = aioc_outcome_task_id(os[i]), sum = 0;
        if (e->first.task_id == id)
            sum += e->first.dropped;
        output_end key = {id, 0};
        output_end *hit =
            e->n_more ? bsearch(&key, e->more, e->n_more, sizeof(key), by_task) : NULL;
        if (hit) {
            while (hit > e->more && hit[-1].task_id == id)
                hit--;
            for (; hit < e->more + e->n_more && hit->task_id == id; hit++)
                sum += hit->dropped;
        }
        os[i]->output_dropped = sum;
    }
}

void output_ends_done(output_ends *e) {
    free(e->more);
    *e = (output_ends){0};
}
