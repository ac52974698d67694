/*
 * Request decoding (wire.h).
 *
 * A request's message tree lives only while it is dispatched, so it is
 * unpacked into an arena: bump allocation from a 64 KiB block (kept between
 * requests) plus, for big frames, extra blocks freed when the request is
 * done. Whatever outlives the request (a call's arguments) is copied out by
 * dispatch. This spares the malloc and free of every node of every request.
 * Gathers, the pipelined request, are read by wire_fast.c; anything it
 * declines goes to protobuf-c.
 */
#include "net/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "pbdepth.h"
#include "net/wire_fast.h"

#define ARENA_BLOCK 65536u

typedef struct block {
    struct block *next;
    size_t used;
    size_t cap;
    _Alignas(16) unsigned char data[];
} block;

/* The first block stays; later ones exist only while a big request is
 * dispatched. Decodes may nest (a request dispatched while another is): the
 * arena is reset only when the last one is freed. */
static block *head;
static unsigned live;

static void *arena_alloc(void *data, size_t size) {
    (void)data;
    size = (size + 15) & ~(size_t)15;
    if (!head || head->cap - head->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        block *b = alloc_malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = head;
        b->used = 0;
        b->cap = cap;
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

static void arena_reset(void) {
    while (head && head->next) {
        block *b = head;
        head = b->next;
        free(b);
    }
    if (head && head->cap > ARENA_BLOCK) {
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

/* The pre-check's verdict as an error; 0 if it passes. */
static int depth_check(const uint8_t *payload, size_t len, char *why, size_t why_len) {
    int r = pbdepth_check_count(&aiod__client_message__descriptor, payload, len,
                                LIMIT_MESSAGE_DEPTH, &aiod__value__descriptor, LIMIT_FRAME_VALUES);
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
    if (len >= DEPTH_CHECK_FROM) {
        int r = depth_check(payload, len, why, why_len);
        if (r < 0)
            return r;
    }
    live++;
    Aiod__ClientMessage *m = NULL;
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

void wire_free(Aiod__ClientMessage *m) {
    if (m && --live == 0)
        arena_reset();
}

void wire_done(void) {
    arena_reset();
    free(head);
    head = NULL;
}
