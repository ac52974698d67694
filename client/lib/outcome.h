/*
 * outcome: aioc_outcome wraps an Aiod__Outcome taken out of a reply, with
 * what the library learnt about the task besides it (the output lines the
 * request that followed it did not get). The wrapper is the only place
 * that knows the layout; outcome_cpb reads the protobuf message.
 * wire_check_outcome has made sure that a done outcome has a result.
 *
 * It also holds the OutputEnd book of a followed gather or run
 * (output_ends): the daemon sends each task's OutputEnd before the final
 * Outcomes frame, and the counts are put on the outcomes when it comes.
 */
#ifndef AIOC_OUTCOME_H
#define AIOC_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"

struct aioc_outcome {
    /* The outcome as the daemon sent it: owned by a wrapper from
     * outcome_new, borrowed for the view a task info holds. */
    Aiod__Outcome *pb;
    /* The task's output lines that the request which followed it did not
     * get (its OutputEnd's dropped); 0 when none, or not followed. */
    uint64_t output_dropped;
};

static inline const Aiod__Outcome *outcome_cpb(const aioc_outcome *o) {
    return o->pb;
}

/* A new outcome that takes `pb` (also on failure: then pb is freed and
 * NULL returned). Free it with aioc_outcome_free. */
aioc_outcome *outcome_new(Aiod__Outcome *pb);

/* Fills `view` as a borrowed view of `pb`, which stays its owner's (a task
 * info's); never handed to aioc_outcome_free. */
void outcome_view(aioc_outcome *view, Aiod__Outcome *pb);

/* One task's OutputEnd: the lines of it the request did not get. */
typedef struct output_end {
    uint64_t task_id;
    uint64_t dropped;
} output_end;

/*
 * The OutputEnd counts of one request that were not zero. The first is
 * kept in place, so that a run (one task) never allocates; more go into
 * `more`. Zero-initialise; output_ends_done frees it.
 */
typedef struct output_ends {
    output_end first;
    /* first holds an entry. */
    int has_first;
    output_end *more;
    size_t n_more, cap_more;
    /* The sum of every count recorded (aioc_request_output_dropped). */
    uint64_t total;
} output_ends;

/* Records a task's OutputEnd count (a zero one is not kept; a second one
 * for the same task adds up). 0, or -ENOMEM, when this task's count is
 * lost (the total still has it). */
int output_ends_add(output_ends *e, uint64_t task_id, uint64_t dropped);

/* Sets output_dropped on each of the n outcomes (NULL entries skipped)
 * from the counts recorded for its task. */
void output_ends_apply(output_ends *e, aioc_outcome *const *os, size_t n);

/* Frees what output_ends_add allocated and empties e. */
void output_ends_done(output_ends *e);

#endif
