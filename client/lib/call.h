/*
 * call: the aioc_call object, a function call (or a gather item naming an
 * existing task) ready to be put into a Submit or Gather message.
 */
#ifndef AIOC_CALL_H
#define AIOC_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"

enum call_args {
    CALL_ARGS_NONE,
    CALL_ARGS_TYPED,
    CALL_ARGS_TEXT,
};

struct aioc_call {
    /* The call as it goes on the wire (owned), or NULL for a task item. */
    Aiod__Call *pb;
    /* For an item made by aioc_call_task: the task's id. */
    uint64_t task_id;
    /* Which kind of argument was appended first; the other is refused. */
    enum call_args args;
};

/*
 * Fills a Gather message's items from n calls or task items (borrowed by
 * the message): *ret_items and *ret_ptrs are new arrays the caller frees
 * once the message is packed. 0, -EINVAL (a NULL item), -ENOMEM.
 */
int call_gather_items(const aioc_call *const *items, size_t n, Aiod__GatherItem **ret_items,
                      Aiod__GatherItem ***ret_ptrs);

/*
 * Fills `g` and `m` as the one Gather message of aioc_gather, aioc_run,
 * aioc_start_gather and aioc_start_run: the n items from call_gather_items
 * (borrowed), AIOC_GATHER_* `flags`, `timeout` seconds (<= 0: none) with
 * cancel_on_timeout always set.
 */
void call_gather_message(Aiod__Gather *g, Aiod__ClientMessage *m, Aiod__GatherItem **items,
                         size_t n, unsigned flags, double timeout);

#endif
