/*
 * Fuzz target: request decoding and validation. Bytes go through the depth
 * pre-check and protobuf-c's unpack; calls found inside are then checked
 * against a signature as text and as typed values, as dispatch does.
 */
#include <stdint.h>
#include <string.h>

#include "limits.h"
#include "pbvalue.h"
#include "value.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_call(Aiod__Call *call) {
    static value_param params[3];
    static value_sig sig = {"fuzz.fn", params, 3};
    if (!params[0].name) {
        params[0] = (value_param){"a", PBVALUE_INT, NULL};
        params[1] = (value_param){"b", PBVALUE_LIST, NULL};
        params[2] = (value_param){"c", PBVALUE_ANY, NULL};
    }
    if (!call)
        return;
    for (size_t i = 0; i < call->n_args; i++)
        if (!call->args[i])
            return;
    Aiod__Value **argv = NULL;
    char err[512];
    if (value_check_call_borrowed(&sig, call->args, call->n_args, call->args_are_text,
                                  LIMIT_VALUE_DEPTH, &argv, err, sizeof(err)) == 0)
        value_argv_free(argv, 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Aiod__ClientMessage *m = NULL;
    char why[256];
    if (wire_decode(data, size, &m, why, sizeof(why)) < 0)
        return 0;
    if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT)
        check_call(m->submit->call);
    else if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER)
        for (size_t i = 0; i < m->gather->n_items; i++)
            if (m->gather->items[i] &&
                m->gather->items[i]->item_case == AIOD__GATHER_ITEM__ITEM_CALL)
                check_call(m->gather->items[i]->call);
    wire_free(m);
    return 0;
}
