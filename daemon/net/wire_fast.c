/*
 * The fast path of request decoding (wire_fast.h).
 */
#include "net/wire_fast.h"

#include <stdbool.h>
#include <string.h>

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2 };

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

/* A field key: number and wire type. Numbers past this file's fields are
 * reported as they are; the callers decline them as unknown. */
static bool get_key(cur *c, uint64_t *num, unsigned *wt) {
    uint64_t k;
    if (!get_varint_max(c, 5, &k))
        return false;
    *num = k >> 3;
    *wt = (unsigned)(k & 7);
    return *num != 0;
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

/* Counts the occurrences of field `num` with wire type `wt` in a message,
 * or -1 when it does not parse as a sequence of fields at all. */
static long count_field(cur c, uint64_t num, unsigned want_wt) {
    long n = 0;
    while (c.p < c.end) {
        uint64_t f, v;
        unsigned wt;
        cur skip;
        if (!get_key(&c, &f, &wt))
            return -1;
        switch (wt) {
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
        if (f == num && wt == want_wt)
            n++;
    }
    return n;
}

static void *zalloc(ProtobufCAllocator *a, size_t size) {
    void *p = a->alloc(a->allocator_data, size);
    if (p)
        memset(p, 0, size);
    return p;
}

/* Bit for a field number seen once already (numbers 1..31 here). */
static bool seen_once(uint32_t *seen, uint64_t num) {
    uint32_t bit = 1u << num;
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* The pointer array of a repeated message field `num` of message c, sized
 * by counting its occurrences first (NULL when there are none). */
static bool alloc_repeated(cur c, uint64_t num, ProtobufCAllocator *a, void **ret) {
    long n = count_field(c, num, WT_LEN);
    *ret = NULL;
    if (n < 0)
        return false;
    if (n && !(*ret = zalloc(a, (size_t)n * sizeof(void *))))
        return false;
    return true;
}

static bool decode_call(cur c, ProtobufCAllocator *a, Aiod__Call *call) {
    void *args;
    if (!alloc_repeated(c, 2, a, &args))
        return false;
    call->args = args;
    uint32_t seen = 0;
    while (c.p < c.end) {
        uint64_t num, v;
        unsigned wt;
        cur s;
        if (!get_key(&c, &num, &wt))
            return false;
        if (num == 1 && wt == WT_LEN) {
            if (!seen_once(&seen, num) || !get_len(&c, &s))
                return false;
            size_t len = (size_t)(s.end - s.p);
            char *str = a->alloc(a->allocator_data, len + 1);
            if (!str)
                return false;
            memcpy(str, s.p, len);
            str[len] = '\0';
            call->function = str;
        } else if (num == 2 && wt == WT_LEN) {
            if (!get_len(&c, &s))
                return false;
            Aiod__Value *val = aiod__value__unpack(a, (size_t)(s.end - s.p), s.p);
            if (!val)
                return false;
            call->args[call->n_args++] = val;
        } else if (num == 3 && wt == WT_VARINT) {
            if (!seen_once(&seen, num) || !get_varint(&c, &v))
                return false;
            call->args_are_text = v != 0;
        } else
            return false;
    }
    return true;
}

static bool decode_item(cur c, ProtobufCAllocator *a, Aiod__GatherItem *it) {
    while (c.p < c.end) {
        uint64_t num, v;
        unsigned wt;
        cur s;
        if (!get_key(&c, &num, &wt) || it->item_case != AIOD__GATHER_ITEM__ITEM__NOT_SET)
            return false; /* a second member of the oneof: protobuf-c's call */
        if (num == 1 && wt == WT_LEN) {
            Aiod__Call *call = zalloc(a, sizeof(*call));
            if (!call || !get_len(&c, &s))
                return false;
            aiod__call__init(call);
            if (!decode_call(s, a, call))
                return false;
            it->call = call;
            it->item_case = AIOD__GATHER_ITEM__ITEM_CALL;
        } else if (num == 2 && wt == WT_VARINT) {
            if (!get_varint(&c, &v))
                return false;
            it->task_id = v;
            it->item_case = AIOD__GATHER_ITEM__ITEM_TASK_ID;
        } else
            return false;
    }
    return true;
}

static bool decode_gather(cur c, ProtobufCAllocator *a, Aiod__Gather *g) {
    void *items;
    if (!alloc_repeated(c, 1, a, &items))
        return false;
    g->items = items;
    uint32_t seen = 0;
    while (c.p < c.end) {
        uint64_t num, v;
        unsigned wt;
        cur s;
        if (!get_key(&c, &num, &wt))
            return false;
        if (num == 1 && wt == WT_LEN) {
            Aiod__GatherItem *it = zalloc(a, sizeof(*it));
            if (!it || !get_len(&c, &s))
                return false;
            aiod__gather_item__init(it);
            if (!decode_item(s, a, it))
                return false;
            g->items[g->n_items++] = it;
        } else if ((num == 2 || num == 4 || num == 5) && wt == WT_VARINT) {
            if (!seen_once(&seen, num) || !get_varint(&c, &v))
                return false;
            protobuf_c_boolean b = v != 0;
            if (num == 2)
                g->return_exceptions = b;
            else if (num == 4)
                g->cancel_on_timeout = b;
            else
                g->follow = b;
        } else if (num == 3 && wt == WT_FIXED64) {
            if (!seen_once(&seen, num) || c.end - c.p < 8)
                return false;
            uint64_t bits = 0;
            for (unsigned i = 0; i < 8; i++)
                bits |= (uint64_t)c.p[i] << (8 * i);
            c.p += 8;
            memcpy(&g->timeout, &bits, sizeof(bits));
        } else
            return false;
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
        uint64_t num;
        unsigned wt;
        cur s;
        if (!get_key(&c, &num, &wt) || !(num == 1 || num == 5) || !seen_once(&seen, num))
            return 0;
        if (num == 1 && wt == WT_VARINT) {
            if (!get_varint(&c, &m->request_id))
                return 0;
        } else if (num == 5 && wt == WT_LEN) {
            Aiod__Gather *g = zalloc(a, sizeof(*g));
            if (!g || !get_len(&c, &s))
                return 0;
            aiod__gather__init(g);
            if (!decode_gather(s, a, g))
                return 0;
            m->gather = g;
            m->body_case = AIOD__CLIENT_MESSAGE__BODY_GATHER;
        } else
            return 0;
    }
    if (m->body_case != AIOD__CLIENT_MESSAGE__BODY_GATHER)
        return 0;
    *ret = m;
    return 1;
}
