/*
 * Outcomes replies without protobuf-c's generic pack (encode.h).
 */
#include "net/encode.h"

#include <string.h>

/* Field keys: (number << 3) | wire type; all below 128, so one byte. */
enum {
    KEY_REQUEST_ID = 1 << 3 | 0,
    KEY_OUTCOMES = 5 << 3 | 2,
    KEY_OUTCOME = 1 << 3 | 2,
    KEY_TASK_ID = 1 << 3 | 0,
    KEY_STATE = 2 << 3 | 0,
    KEY_RESULT = 3 << 3 | 2,
    KEY_ERROR_KIND = 4 << 3 | 2,
    KEY_ERROR_MESSAGE = 5 << 3 | 2,
};

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A proto3 string is left out when NULL or empty, as protobuf-c does. */
static size_t string_field_size(const char *s) {
    size_t len = s ? strlen(s) : 0;
    return len ? 1 + varint_size(len) + len : 0;
}

static uint8_t *put_string_field(uint8_t *p, uint8_t key, const char *s) {
    size_t len = s ? strlen(s) : 0;
    if (!len)
        return p;
    *p++ = key;
    p = put_varint(p, len);
    memcpy(p, s, len);
    return p + len;
}

/* An enum is an int32: a negative one takes ten bytes, as a sign-extended
 * varint. */
static uint64_t enum_varint(int v) {
    return (uint64_t)(int64_t)v;
}

/* A null value (no kind set) packs to nothing; protobuf-c would still walk
 * Value's eight fields to find that out, for most results. */
static size_t value_size(const Aiod__Value *v) {
    return v->kind_case == AIOD__VALUE__KIND__NOT_SET
               ? 0
               : protobuf_c_message_get_packed_size(&v->base);
}

static size_t outcome_size(const Aiod__Outcome *o, size_t *result_size) {
    size_t n = 0;
    if (o->task_id)
        n += 1 + varint_size(o->task_id);
    if (o->state)
        n += 1 + varint_size(enum_varint((int)o->state));
    *result_size = o->result ? value_size(o->result) : 0;
    if (o->result)
        n += 1 + varint_size(*result_size) + *result_size;
    return n + string_field_size(o->error_kind) + string_field_size(o->error_message);
}

static size_t outcomes_body_size(const encode_sizes *sizes, size_t n) {
    size_t body = 0;
    for (size_t i = 0; i < n; i++)
        body += 1 + varint_size(sizes[i].outcome) + sizes[i].outcome;
    return body;
}

size_t encode_outcomes_size(uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                            encode_sizes *sizes) {
    for (size_t i = 0; i < n; i++)
        sizes[i].outcome = outcome_size(&outcomes[i], &sizes[i].result);
    size_t body = outcomes_body_size(sizes, n);
    /* A oneof member is sent even when empty. */
    return (request_id ? 1 + varint_size(request_id) : 0) + 1 + varint_size(body) + body;
}

void encode_outcomes(uint8_t *p, uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                     const encode_sizes *sizes) {
    if (request_id) {
        *p++ = KEY_REQUEST_ID;
        p = put_varint(p, request_id);
    }
    *p++ = KEY_OUTCOMES;
    p = put_varint(p, outcomes_body_size(sizes, n));
    for (size_t i = 0; i < n; i++) {
        const Aiod__Outcome *o = &outcomes[i];
        *p++ = KEY_OUTCOME;
        p = put_varint(p, sizes[i].outcome);
        if (o->task_id) {
            *p++ = KEY_TASK_ID;
            p = put_varint(p, o->task_id);
        }
        if (o->state) {
            *p++ = KEY_STATE;
            p = put_varint(p, enum_varint((int)o->state));
        }
        if (o->result) {
            size_t r = sizes[i].result;
            *p++ = KEY_RESULT;
            p = put_varint(p, r);
            if (r)
                p += protobuf_c_message_pack(&o->result->base, p);
        }
        p = put_string_field(p, KEY_ERROR_KIND, o->error_kind);
        p = put_string_field(p, KEY_ERROR_MESSAGE, o->error_message);
    }
}
