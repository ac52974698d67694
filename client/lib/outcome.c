/*
 * outcome: the public accessors of aioc_outcome (outcome.h) and the state
 * names.
 */
#include "outcome.h"

#include "value.h"
#include "wire.h"

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

AIOC_EXPORT void aioc_outcome_free(aioc_outcome *o) {
    wire_free_message(o);
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
