/*
 * Request decoding (wire.h).
 *
 * A request's message tree lives only while it is dispatched, so it is
 * unpacked into an arena: bump allocation from 64 KiB blocks, freed when the
 * request is done except the first, which is kept between requests.
 * Whatever outlives the request (a call's arguments) is copied out by
 * dispatch. This spares the malloc and free of every node of every request.
 * The blocks come from a slab (base/slab.h), which takes them as huge pages
 * and keeps them for the next request until the daemon is idle: a frame
 * just under WIRE_DETACHED_FROM unpacks into over a megabyte of nodes.
 * Gathers, the pipelined request, are read by wire_fast.c; anything it
 * declines goes to protobuf-c.
 *
 * A frame of WIRE_DETACHED_FROM bytes or more is decoded by the request
 * layer on a pool thread instead (wire_decode_detached), node by node with
 * alloc_protobuf (malloc), so that its calls' arguments can be taken as they
 * are (value_check_call_take) rather than copied: the copy of a 4 MiB map
 * was 20 MB more of fresh memory and some 40 % of the loop's time for the
 * request. malloc and free per node cost more than the arena's bump and
 * reset, but off the loop thread. wire_decode still takes a big frame
 * when it cannot be handed off (no memory for the job).
 */
#include "net/wire.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/slab.h"
#include "pbdepth.h"
#include "pbvalue.h"
#include "net/wire_fast.h"

/* A block, header included: the largest object a slab serves. */
#define ARENA_BLOCK SLAB_MAX_OBJECT
/* Empty slab chunks kept for the next big request. */
#define ARENA_IDLE ((size_t)32 << 20)

typedef struct block {
    struct block *next;
    size_t used;
    size_t cap;
    /* From the slab (else malloc'd: an allocation bigger than a block). */
    bool slab;
    _Alignas(16) unsigned char data[];
} block;

#define BLOCK_ROOM (ARENA_BLOCK - offsetof(block, data))

static slab blocks = SLAB_INIT(ARENA_BLOCK, ARENA_IDLE);

void wire_cache_release(void) {
    slab_trim(&blocks, 0);
}

/* The first block stays; later ones exist only while a big request is
 * dispatched. Decodes may nest (a request dispatched while another is): the
 * arena is reset only when the last one is freed. */
static block *head;
static unsigned live;

static void *arena_alloc(void *data, size_t size) {
    (void)data;
    size = (size + 15) & ~(size_t)15;
    if (!head || head->cap - head->used < size) {
        bool big = size > BLOCK_ROOM;
        block *b = big ? alloc_malloc(sizeof(*b) + size) : slab_alloc(&blocks);
        if (!b)
            return NULL;
        b->next = head;
        b->used = 0;
        b->cap = big ? size : BLOCK_ROOM;
        b->slab = !big;
        head = b;
    }
    void *p = head->data + head->used;
    head->used += size;
    return p;
}

static void arena_free(void *data, void *p) {
    (void)data;
    (void)p; /* everything goes at once in arena_reset */
}

static ProtobufCAllocator arena = {arena_alloc, arena_free, NULL};

static void block_free(block *b) {
    if (b->slab)
        slab_free(&blocks, b);
    else
        free(b);
}

static void arena_reset(void) {
    while (head && head->next) {
        block *b = head;
        head = b->next;
        block_free(b);
    }
    if (head && !head->slab) {
        free(head);
        head = NULL;
    }
    if (head)
        head->used = 0;
}

/* Each level of nesting takes at least a key and a length byte, so a
 * payload shorter than this cannot nest too deep for protobuf-c's recursion,
 * and most requests skip the pre-check. */
#define DEPTH_CHECK_FROM (2u * (LIMIT_MESSAGE_DEPTH + 1u))
_Static_assert(WIRE_DETACHED_FROM >= DEPTH_CHECK_FROM, "a big frame is always depth-checked first");

/* The pre-check's verdict as an error; 0 if it passes. */
static int depth_check(const uint8_t *payload, size_t len, char *why, size_t why_len) {
    const ProtobufCMessageDescriptor *msg = NULL;
    const ProtobufCFieldDescriptor *field = NULL;
    int r =
        pbdepth_check_strings(&aiod__client_message__descriptor, payload, len, LIMIT_MESSAGE_DEPTH,
                              &aiod__value__descriptor, LIMIT_FRAME_VALUES, &msg, &field);
    if (r == -EILSEQ) {
        snprintf(why, why_len,
                 "a string (%s.%s) holds a NUL byte: strings are text without NUL bytes; send "
                 "binary data as bytes",
                 msg->short_name, field->name);
        return r;
    }
    if (r == -ELOOP)
        snprintf(why, why_len, "message nests deeper than %u levels", LIMIT_MESSAGE_DEPTH);
    else if (r == -E2BIG)
        snprintf(why, why_len, "more than %u values in one request (the limit)",
                 LIMIT_FRAME_VALUES);
    else if (r < 0)
        snprintf(why, why_len, "not a valid protobuf ClientMessage");
    return r == -E2BIG ? -E2BIG : r < 0 ? -EBADMSG : 0;
}

int wire_decode(const uint8_t *payload, size_t len, Aiod__ClientMessage **ret, char *why,
                size_t why_len) {
    /* A string with a NUL needs a zero byte somewhere in the frame: most
     * small requests have none, and skip the walk. */
    if (len >= DEPTH_CHECK_FROM || memchr(payload, 0, len)) {
        int r = depth_check(payload, len, why, why_len);
        if (r < 0)
            return r;
    }
    Aiod__ClientMessage *m = NULL;
    live++;
    if (!wire_fast_decode(payload, len, &arena, &m))
        m = aiod__client_message__unpack(&arena, len, payload);
    if (!m) {
        /* protobuf-c does not say why: wrong wire types for known fields,
         * truncated data, or out of memory. A short payload the pre-check
         * skipped gets its verdict on the encoding first. */
        if (len >= DEPTH_CHECK_FROM || depth_check(payload, len, why, why_len) == 0)
            snprintf(why, why_len, "not a valid ClientMessage");
        if (--live == 0)
            arena_reset();
        return -EBADMSG;
    }
    *ret = m;
    return 0;
}

int wire_decode_detached(const uint8_t *payload, size_t len, Aiod__ClientMessage **ret, char *why,
                         size_t why_len) {
    assert(len >= WIRE_DETACHED_FROM);
    int r = depth_check(payload, len, why, why_len);
    if (r < 0)
        return r;
    Aiod__ClientMessage *m = aiod__client_message__unpack(&alloc_protobuf, len, payload);
    if (!m) {
        /* As in wire_decode; the pre-check has run. */
        snprintf(why, why_len, "not a valid ClientMessage");
        return -EBADMSG;
    }
    *ret = m;
    return 0;
}

/* Frees the arguments a call still holds with pbvalue_free, which knows a
 * Value tree's shape; protobuf-c's walk of the descriptors, node by node,
 * made a refused 4 MiB frame cost twice what the arena's reset did. */
static void free_args(Aiod__Call *c) {
    for (size_t i = 0; c && i < c->n_args; i++) {
        pbvalue_free(c->args[i]);
        c->args[i] = NULL;
    }
}

void wire_free_detached(Aiod__ClientMessage *m) {
    if (!m)
        return;
    if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT && m->submit)
        free_args(m->submit->call);
    if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER && m->gather)
        for (size_t k = 0; k < m->gather->n_items; k++)
            if (m->gather->items[k] &&
                m->gather->items[k]->item_case == AIOD__GATHER_ITEM__ITEM_CALL)
                free_args(m->gather->items[k]->call);
    aiod__client_message__free_unpacked(m, &alloc_protobuf);
}

void wire_free(Aiod__ClientMessage *m) {
    if (m && --live == 0)
        arena_reset();
}

void wire_done(void) {
    arena_reset();
    if (head)
        block_free(head);
    head = NULL;
    wire_cache_release();
}
