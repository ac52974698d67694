/*
 * call: building aioc_call objects (call.h). The Aiod__Call inside is
 * allocated piece by piece through alloc.h so that protobuf-c's
 * free_unpacked releases it.
 */
#include "call.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pbvalue.h"
#include "value.h"
#include "wire.h"

AIOC_EXPORT aioc_call *aioc_call_new(const char *function) {
    if (!function || !*function || !pbvalue_utf8_valid(function, strlen(function)))
        return NULL;
    aioc_call *call = alloc_calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->pb = alloc_malloc(sizeof(*call->pb));
    if (!call->pb) {
        free(call);
        return NULL;
    }
    aiod__call__init(call->pb);
    call->pb->function = alloc_strdup(function);
    if (!call->pb->function) {
        call->pb->function = (char *)protobuf_c_empty_string;
        aioc_call_free(call);
        return NULL;
    }
    return call;
}

AIOC_EXPORT aioc_call *aioc_call_task(uint64_t task_id) {
    if (task_id == 0)
        return NULL;
    aioc_call *call = alloc_calloc(1, sizeof(*call));
    if (call)
        call->task_id = task_id;
    return call;
}

static int append(aioc_call *call, Aiod__Value *arg) {
    Aiod__Value **args = alloc_realloc(call->pb->args, (call->pb->n_args + 1) * sizeof(*args));
    if (!args) {
        pbvalue_free(arg);
        return -ENOMEM;
    }
    args[call->pb->n_args++] = arg;
    call->pb->args = args;
    return 0;
}

AIOC_EXPORT int aioc_call_arg(aioc_call *call, aioc_value *arg) {
    /* The daemon refuses deeper values; past some 48 levels the frame
     * itself nests too deep to decode, and it drops the connection. */
    if (!call || !call->pb || !arg || call->args == CALL_ARGS_TEXT ||
        pbvalue_check(value_pb(arg), CALL_MAX_VALUE_DEPTH, NULL) < 0) {
        aioc_value_free(arg);
        return -EINVAL;
    }
    int r = append(call, value_pb(arg));
    if (r >= 0)
        call->args = CALL_ARGS_TYPED;
    return r;
}

AIOC_EXPORT int aioc_call_arg_text(aioc_call *call, const char *text) {
    if (!call || !call->pb || !text || call->args == CALL_ARGS_TYPED)
        return -EINVAL;
    Aiod__Value *v = pbvalue_string(text);
    if (!v)
        return pbvalue_utf8_valid(text, strlen(text)) ? -ENOMEM : -EINVAL;
    int r = append(call, v);
    if (r >= 0) {
        call->args = CALL_ARGS_TEXT;
        call->pb->args_are_text = true;
    }
    return r;
}

AIOC_EXPORT void aioc_call_free(aioc_call *call) {
    if (!call)
        return;
    wire_free_message(call->pb);
    free(call);
}

int call_gather_items(const aioc_call *const *items, size_t n, Aiod__GatherItem **ret_items,
                      Aiod__GatherItem ***ret_ptrs) {
    for (size_t i = 0; i < n; i++)
        if (!items[i])
            return -EINVAL;
    Aiod__GatherItem *gi = alloc_calloc(n, sizeof(*gi));
    Aiod__GatherItem **gp = alloc_calloc(n, sizeof(*gp));
    if (!gi || !gp) {
        free(gi);
        free(gp);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        aiod__gather_item__init(&gi[i]);
        if (items[i]->pb) {
            gi[i].item_case = AIOD__GATHER_ITEM__ITEM_CALL;
            gi[i].call = items[i]->pb;
        } else {
            gi[i].item_case = AIOD__GATHER_ITEM__ITEM_TASK_ID;
            gi[i].task_id = items[i]->task_id;
        }
        gp[i] = &gi[i];
    }
    *ret_items = gi;
    *ret_ptrs = gp;
    return 0;
}

void call_gather_message(Aiod__Gather *g, Aiod__ClientMessage *m, Aiod__GatherItem **items,
                         size_t n, unsigned flags, double timeout) {
    g->items = items;
    g->n_items = n;
    g->return_exceptions = !!(flags & AIOC_GATHER_RETURN_EXCEPTIONS);
    /* The task ids at once (aioc_request_task_ids, cancelling early). */
    g->started = true;
    g->timeout = wire_timeout(timeout);
    g->cancel_on_timeout = true;
    g->follow = !!(flags & AIOC_GATHER_FOLLOW);
    m->body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
    m->gather = g;
}
