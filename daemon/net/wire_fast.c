/*
 * The fast path of request decoding (wire_fast.h).
 */
#include "net/wire_fast.h"

#include <stdbool.h>
#include <string.h>

/* protobuf's wire types: how a field's value is laid out after its key. */
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2 };

/* A field's key as it is on the wire: its number and its wire type. */
#define KEY(field, wt) ((uint64_t)(field) << 3 | (uint64_t)(wt))

/*
 * The fields read here, one enum per message, named FIELD_<MESSAGE>_<FIELD>
 * after proto/aiod.proto and commented with their type there. At build time
 * scripts/check-codec.py checks each number and type against the proto, each
 * KEY() against the field's type, and that every other field of these
 * messages is listed after "generic:": a message holding one is declined
 * here (like any unknown field) and protobuf-c's generic decoder reads it. A
 * field appended to one of these messages stops the build until it is read
 * here or listed.
 */

/* decode ClientMessage; generic: hello submit await cancel list_tasks show_task logs
 * list_plugins reload */
enum {
    FIELD_CLIENT_MESSAGE_REQUEST_ID = 1, /* uint64 */
    FIELD_CLIENT_MESSAGE_GATHER = 5,     /* Gather */
};

/* decode Gather; generic: none */
enum {
    FIELD_GATHER_ITEMS = 1,             /* repeated GatherItem */
    FIELD_GATHER_RETURN_EXCEPTIONS = 2, /* bool */
    FIELD_GATHER_TIMEOUT = 3,           /* double */
    FIELD_GATHER_CANCEL_ON_TIMEOUT = 4, /* bool */
    FIELD_GATHER_FOLLOW = 5,            /* bool */
    FIELD_GATHER_STARTED = 6,           /* bool */
};

/* decode GatherItem; generic: none */
enum {
    FIELD_GATHER_ITEM_CALL = 1,    /* Call */
    FIELD_GATHER_ITEM_TASK_ID = 2, /* uint64 */
};

/* decode Call; generic: none */
enum {
    FIELD_CALL_FUNCTION = 1,      /* string */
    FIELD_CALL_ARGS = 2,          /* repeated Value; each unpacked by protobuf-c */
    FIELD_CALL_ARGS_ARE_TEXT = 3, /* bool */
};

/* A cursor over one message's bytes. */
typedef struct cur {
    const uint8_t *p, *end;
} cur;

/* protobuf's base-128 varint of at most `max` bytes. protobuf-c reads keys
 * and lengths in at most 5 bytes and values in at most 10; a tenth byte
 * over 1 (bits past 64, which protobuf-c drops) is declined here. */
static bool get_varint_max(cur *c, unsigned max, uint64_t *ret) {
    uint64_t v = 0;
    for (unsigned i = 0; i < max; i++) {
        if (c->p == c->end)
            return false;
        uint8_t b = *c->p++;
        if (i == 9 && b > 1)
            return false;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *ret = v;
            return true;
        }
    }
    return false;
}

static bool get_varint(cur *c, uint64_t *ret) {
    return get_varint_max(c, 10, ret);
}

/* A field key (KEY(number, wire type)). Numbers past this file's fields are
 * reported as they are; the callers decline them as unknown. */
static bool get_key(cur *c, uint64_t *key) {
    if (!get_varint_max(c, 5, key))
        return false;
    return *key >> 3 != 0;
}

/* The body of a length-delimited field, as a cursor of its own. */
static bool get_len(cur *c, cur *sub) {
    uint64_t n;
    if (!get_varint_max(c, 5, &n) || n > (uint64_t)(c->end - c->p))
        return false;
    sub->p = c->p;
    sub->end = c->p + n;
    c->p += n;
    return true;
}

/* Counts the occurrences of the field with `key` in a message, or -1 when it
 * does not parse as a sequence of fields at all. */
static long count_field(cur c, uint64_t want_key) {
    long n = 0;
    while (c.p < c.end) {
        uint64_t key, v;
        cur skip;
        if (!get_key(&c, &key))
            return -1;
        switch (key & 7) {
        case WT_VARINT:
            if (!get_varint(&c, &v))
                return -1;
            break;
        case WT_FIXED64:
            if (c.end - c.p < 8)
                return -1;
            c.p += 8;
            break;
        case WT_LEN:
            if (!get_len(&c, &skip))
                return -1;
            break;
        default:
            return -1;
        }
        if (key == want_key)
            n++;
    }
    return n;
}

/* The request id and the field number of the body (a message field of the
 * oneof) of an encoded ClientMessage, as far as it parses; the last of
 * each wins, as in unpack. */
static void peek(const uint8_t *payload, size_t len, uint64_t *id, uint32_t *body) {
    cur c = {payload, payload + len};
    *id = 0;
    *body = 0;
    while (c.p < c.end) {
        uint64_t key, v;
        cur skip;
        if (!get_key(&c, &key))
            return;
        if ((key & 7) == WT_VARINT) {
            if (!get_varint(&c, &v))
                return;
            if (key == KEY(FIELD_CLIENT_MESSAGE_REQUEST_ID, WT_VARINT))
                *id = v;
        } else if ((key & 7) == WT_LEN) {
            if (!get_len(&c, &skip))
                return;
            if (key >> 3 != FIELD_CLIENT_MESSAGE_REQUEST_ID && key >> 3 <= UINT32_MAX)
                *body = (uint32_t)(key >> 3);
        } else if ((key & 7) == WT_FIXED64 && c.end - c.p >= 8)
            c.p += 8;
        else
            return;
    }
}

uint64_t wire_peek_request_id(const uint8_t *payload, size_t len) {
    uint64_t id;
    uint32_t body;
    peek(payload, len, &id, &body);
    return id;
}

uint32_t wire_peek_body(const uint8_t *payload, size_t len) {
    uint64_t id;
    uint32_t body;
    peek(payload, len, &id, &body);
    return body;
}

static void *zalloc(ProtobufCAllocator *a, size_t size) {
    void *p = a->alloc(a->allocator_data, size);
    if (p)
        memset(p, 0, size);
    return p;
}

/* Bit for a field number seen once already (numbers 1..31 here). */
static bool seen_once(uint32_t *seen, unsigned num) {
    uint32_t bit = 1u << num;
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* A bool field, which may appear once. */
static bool get_bool_once(cur *c, uint32_t *seen, unsigned num, protobuf_c_boolean *ret) {
    uint64_t v;
    if (!seen_once(seen, num) || !get_varint(c, &v))
        return false;
    *ret = v != 0;
    return true;
}

/* The pointer array of a repeated message field of message c, whose key is
 * `key`, sized by counting its occurrences first (NULL when there are none). */
static bool alloc_repeated(cur c, uint64_t key, ProtobufCAllocator *a, void **ret) {
    long n = count_field(c, key);
    *ret = NULL;
    if (n < 0)
        return false;
    if (n && !(*ret = zalloc(a, (size_t)n * sizeof(void *))))
        return false;
    return true;
}

/* Each decoder below declines (returns false) at the first field it does
 * not read: protobuf-c's generic decoder then reads the whole message. */

static bool decode_call(cur c, ProtobufCAllocator *a, Aiod__Call *call) {
    void *args;
    if (!alloc_repeated(c, KEY(FIELD_CALL_ARGS, WT_LEN), a, &args))
        return false;
    call->args = args;
    uint32_t seen = 0;
    while (c.p < c.end) {
        uint64_t key;
        cur s;
        if (!get_key(&c, &key))
            return false;
        switch (key) {
        case KEY(FIELD_CALL_FUNCTION, WT_LEN): {
            if (!seen_once(&seen, FIELD_CALL_FUNCTION) || !get_len(&c, &s))
                return false;
            size_t len = (size_t)(s.end - s.p);
            char *str = a->alloc(a->allocator_data, len + 1);
            if (!str)
                return false;
            memcpy(str, s.p, len);
            str[len] = '\0';
            call->function = str;
            break;
        }
        case KEY(FIELD_CALL_ARGS, WT_LEN): {
            if (!get_len(&c, &s))
                return false;
            Aiod__Value *val = aiod__value__unpack(a, (size_t)(s.end - s.p), s.p);
            if (!val)
                return false;
            call->args[call->n_args++] = val;
            break;
        }
        case KEY(FIELD_CALL_ARGS_ARE_TEXT, WT_VARINT):
            if (!get_bool_once(&c, &seen, FIELD_CALL_ARGS_ARE_TEXT, &call->args_are_text))
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
}

static bool decode_item(cur c, ProtobufCAllocator *a, Aiod__GatherItem *it) {
    while (c.p < c.end) {
        uint64_t key, v;
        cur s;
        if (!get_key(&c, &key) || it->item_case != AIOD__GATHER_ITEM__ITEM__NOT_SET)
            return false; /* a second member of the oneof: protobuf-c's call */
        switch (key) {
        case KEY(FIELD_GATHER_ITEM_CALL, WT_LEN): {
            Aiod__Call *call = zalloc(a, sizeof(*call));
            if (!call || !get_len(&c, &s))
                return false;
            aiod__call__init(call);
            if (!decode_call(s, a, call))
                return false;
            it->call = call;
            it->item_case = AIOD__GATHER_ITEM__ITEM_CALL;
            break;
        }
        case KEY(FIELD_GATHER_ITEM_TASK_ID, WT_VARINT):
            if (!get_varint(&c, &v))
                return false;
            it->task_id = v;
            it->item_case = AIOD__GATHER_ITEM__ITEM_TASK_ID;
            break;
        default:
            return false;
        }
    }
    return true;
}

static bool decode_gather(cur c, ProtobufCAllocator *a, Aiod__Gather *g) {
    void *items;
    if (!alloc_repeated(c, KEY(FIELD_GATHER_ITEMS, WT_LEN), a, &items))
        return false;
    g->items = items;
    uint32_t seen = 0;
    while (c.p < c.end) {
        uint64_t key;
        cur s;
        if (!get_key(&c, &key))
            return false;
        switch (key) {
        case KEY(FIELD_GATHER_ITEMS, WT_LEN): {
            Aiod__GatherItem *it = zalloc(a, sizeof(*it));
            if (!it || !get_len(&c, &s))
                return false;
            aiod__gather_item__init(it);
            if (!decode_item(s, a, it))
                return false;
            g->items[g->n_items++] = it;
            break;
        }
        case KEY(FIELD_GATHER_RETURN_EXCEPTIONS, WT_VARINT):
            if (!get_bool_once(&c, &seen, FIELD_GATHER_RETURN_EXCEPTIONS, &g->return_exceptions))
                return false;
            break;
        case KEY(FIELD_GATHER_CANCEL_ON_TIMEOUT, WT_VARINT):
            if (!get_bool_once(&c, &seen, FIELD_GATHER_CANCEL_ON_TIMEOUT, &g->cancel_on_timeout))
                return false;
            break;
        case KEY(FIELD_GATHER_STARTED, WT_VARINT):
            if (!get_bool_once(&c, &seen, FIELD_GATHER_STARTED, &g->started))
                return false;
            break;
        case KEY(FIELD_GATHER_FOLLOW, WT_VARINT):
            if (!get_bool_once(&c, &seen, FIELD_GATHER_FOLLOW, &g->follow))
                return false;
            break;
        case KEY(FIELD_GATHER_TIMEOUT, WT_FIXED64): {
            if (!seen_once(&seen, FIELD_GATHER_TIMEOUT) || c.end - c.p < 8)
                return false;
            uint64_t bits = 0;
            for (unsigned i = 0; i < 8; i++)
                bits |= (uint64_t)c.p[i] << (8 * i);
            c.p += 8;
            memcpy(&g->timeout, &bits, sizeof(bits));
            break;
        }
        default:
            return false;
        }
    }
    return true;
}

int wire_fast_decode(const uint8_t *data, size_t len, ProtobufCAllocator *a,
                     Aiod__ClientMessage **ret) {
    cur c = {data, data + len};
    Aiod__ClientMessage *m = zalloc(a, sizeof(*m));
    if (!m)
        return 0;
    aiod__client_message__init(m);
    uint32_t seen = 0;
    while (c.p < c.end) {
        uint64_t key;
        cur s;
        if (!get_key(&c, &key))
            return 0;
        switch (key) {
        case KEY(FIELD_CLIENT_MESSAGE_REQUEST_ID, WT_VARINT):
            if (!seen_once(&seen, FIELD_CLIENT_MESSAGE_REQUEST_ID) ||
                !get_varint(&c, &m->request_id))
                return 0;
            break;
        case KEY(FIELD_CLIENT_MESSAGE_GATHER, WT_LEN): {
            if (!seen_once(&seen, FIELD_CLIENT_MESSAGE_GATHER))
                return 0;
            Aiod__Gather *g = zalloc(a, sizeof(*g));
            if (!g || !get_len(&c, &s))
                return 0;
            aiod__gather__init(g);
            if (!decode_gather(s, a, g))
                return 0;
            m->gather = g;
            m->body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
            break;
        }
        default:
            return 0;
        }
    }
    if (m->body_case != AIOD__CLIENT_MESSAGE__BODY_GATHER)
        return 0;
    *ret = m;
    return 1;
}
