/*
 * call: the aioc_call object, a function call (or a gather item naming an
 * existing task) ready to be put into a Submit or Gather message.
 */
#ifndef AIOC_CALL_H
#define AIOC_CALL_H

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

#endif
