/*
 * Fuzz target: request decoding and validation. Bytes go through the depth
 * pre-check and the decoders (wire_fast.c, else protobuf-c); calls found
 * inside are then checked against a signature as text and as typed values,
 * as dispatch does.
 *
 * It is also a differential test of wire_fast.c: whatever it decodes,
 * protobuf-c must decode too, and both trees must pack to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/aiod_limits.h"
#include "pbdepth.h"
#include "pbvalue.h"
#include "base/value.h"
#include "net/wire.h"
#include "net/wire_fast.h"

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

/* A bump allocator over one buffer for the fast decoder's tree. */
static uint8_t bump_buf[1 << 22];
static size_t bump_used;

static void *bump_alloc(void *data, size_t size) {
    (void)data;
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof(bump_buf) - bump_used)
        return NULL;
    void *p = bump_buf + bump_used;
    bump_used += size;
    return p;
}

static void bump_free(void *data, void *p) {
    (void)data;
    (void)p;
}

static uint8_t *packed(const Aiod__ClientMessage *m, size_t *len) {
    *len = aiod__client_message__get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b)
        abort();
    aiod__client_message__pack(m, b);
    return b;
}

static void differential(const uint8_t *data, size_t size) {
    /* Deep messages never reach the decoders (wire_decode's pre-check). */
    if (pbdepth_check(&aiod__client_message__descriptor, data, size, LIMIT_MESSAGE_DEPTH) < 0)
        return;
    ProtobufCAllocator bump = {bump_alloc, bump_free, NULL};
    Aiod__ClientMessage *fast = NULL;
    bump_used = 0;
    if (!wire_fast_decode(data, size, &bump, &fast))
        return;
    Aiod__ClientMessage *ref = aiod__client_message__unpack(NULL, size, data);
    if (!ref) {
        fprintf(stderr, "wire_fast decoded a message protobuf-c refuses\n");
        abort();
    }
    size_t a_len, b_len;
    uint8_t *a = packed(fast, &a_len), *b = packed(ref, &b_len);
    if (a_len != b_len || memcmp(a, b, a_len) != 0) {
        fprintf(stderr, "wire_fast and protobuf-c decode to different trees\n");
        abort();
    }
    free(a);
    free(b);
    aiod__client_message__free_unpacked(ref, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Aiod__ClientMessage *m = NULL;
    char why[256];
    differential(data, size);
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
