/*
 * Outcomes replies without protobuf-c's generic pack (encode.h).
 */
#include "net/encode.h"

#include <string.h>

/* protobuf's wire types: how a field's value is laid out after its key. */
enum { WT_VARINT = 0, WT_LEN = 2 };

/* A field's key as it is on the wire: its number and its wire type. */
#define KEY(field, wt) ((field) << 3 | (wt))

/*
 * The fields written here, one enum per message, named FIELD_<MESSAGE>_<FIELD>
 * after proto/aiod.proto and commented with their type there. At build time
 * scripts/check-codec.py checks each number and type against the proto, each
 * KEY() against the field's type, and that every other field of these
 * messages is listed after "generic:". An encoder cannot hand a field to
 * protobuf-c, so only the other members of a oneof it writes one member of
 * may be listed (those replies are packed by protobuf-c): a field appended to
 * Outcome, say, stops the build until it is written here.
 */

/* encode ServerMessage; generic: error hello submitted cancelled task_list task_info
 * plugin_list output output_end reloaded */
enum {
    FIELD_SERVER_MESSAGE_REQUEST_ID = 1, /* uint64 */
    FIELD_SERVER_MESSAGE_OUTCOMES = 5,   /* Outcomes */
    FIELD_SERVER_MESSAGE_STARTED = 13,   /* Started */
};

/* encode Started; generic: none */
enum {
    FIELD_STARTED_TASK_IDS = 1, /* repeated uint64 */
};

/* encode Outcomes; generic: none */
enum {
    FIELD_OUTCOMES_OUTCOMES = 1, /* repeated Outcome */
};

/* encode Outcome; generic: none */
enum {
    FIELD_OUTCOME_TASK_ID = 1,       /* uint64 */
    FIELD_OUTCOME_STATE = 2,         /* TaskState */
    FIELD_OUTCOME_RESULT = 3,        /* Value; packed by protobuf-c */
    FIELD_OUTCOME_ERROR_KIND = 4,    /* string */
    FIELD_OUTCOME_ERROR_MESSAGE = 5, /* string */
};

/* The keys, all below 128, so one byte each. */
enum {
    KEY_REQUEST_ID = KEY(FIELD_SERVER_MESSAGE_REQUEST_ID, WT_VARINT),
    KEY_OUTCOMES = KEY(FIELD_SERVER_MESSAGE_OUTCOMES, WT_LEN),
    KEY_OUTCOME = KEY(FIELD_OUTCOMES_OUTCOMES, WT_LEN),
    KEY_TASK_ID = KEY(FIELD_OUTCOME_TASK_ID, WT_VARINT),
    KEY_STATE = KEY(FIELD_OUTCOME_STATE, WT_VARINT),
    KEY_RESULT = KEY(FIELD_OUTCOME_RESULT, WT_LEN),
    KEY_ERROR_KIND = KEY(FIELD_OUTCOME_ERROR_KIND, WT_LEN),
    KEY_ERROR_MESSAGE = KEY(FIELD_OUTCOME_ERROR_MESSAGE, WT_LEN),
    KEY_STARTED = KEY(FIELD_SERVER_MESSAGE_STARTED, WT_LEN),
    /* proto3 packs a repeated scalar: one length, then the varints. */
    KEY_TASK_IDS = KEY(FIELD_STARTED_TASK_IDS, WT_LEN),
};
_Static_assert((KEY_REQUEST_ID | KEY_OUTCOMES | KEY_OUTCOME | KEY_TASK_ID | KEY_STATE | KEY_RESULT |
                KEY_ERROR_KIND | KEY_ERROR_MESSAGE | KEY_STARTED | KEY_TASK_IDS) < 128,
               "every key is written as one byte");

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

/* The packed task ids' bytes. */
static size_t ids_size(const uint64_t *ids, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += varint_size(ids[i]);
    return len;
}

static size_t started_body_size(size_t ids_len) {
    return ids_len ? 1 + varint_size(ids_len) + ids_len : 0;
}

size_t encode_started_size(uint64_t request_id, const uint64_t *ids, size_t n) {
    size_t body = started_body_size(ids_size(ids, n));
    return (request_id ? 1 + varint_size(request_id) : 0) + 1 + varint_size(body) + body;
}

void encode_started(uint8_t *p, uint64_t request_id, const uint64_t *ids, size_t n) {
    size_t ids_len = ids_size(ids, n);
    if (request_id) {
        *p++ = KEY_REQUEST_ID;
        p = put_varint(p, request_id);
    }
    *p++ = KEY_STARTED;
    p = put_varint(p, started_body_size(ids_len));
    if (!ids_len)
        return;
    *p++ = KEY_TASK_IDS;
    p = put_varint(p, ids_len);
    for (size_t i = 0; i < n; i++)
        p = put_varint(p, ids[i]);
}
