/*
 * The items of a queue (qitems.h).
 */
#include "api/qitems.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "aiod/plugin.h"
#include "alloc.h"
#include "base/slab.h"
#include "pbvalue.h"

/* An item: odd, an inline integer (value << 1 | 1); even, an owned
 * Aiod__Value pointer (malloc aligns them), 0 for a null item. */
typedef uint64_t qcell;

#define INLINE_MIN (INT64_MIN / 2)
#define INLINE_MAX (INT64_MAX / 2)

/* 512 bytes: 62 items and the links. */
#define QBLOCK_CELLS 62
typedef struct qblock {
    struct qblock *prev, *next;
    qcell cells[QBLOCK_CELLS];
} qblock;

typedef struct qentry {
    int64_t priority;
    /* Arrival order, the tie-break among equal priorities. */
    uint64_t seq;
    qcell cell;
} qentry;

/* Empty chunks of blocks kept for the next burst, as task structs are. */
#define QBLOCK_SLAB_IDLE ((size_t)64 << 20)
static slab blocks = SLAB_INIT(sizeof(qblock), QBLOCK_SLAB_IDLE);

void qitems_cache_release(void) {
    slab_trim(&blocks, 0);
}

/* ---------------------------------------------------------------- cells */

static bool is_inline_int(const Aiod__Value *v) {
    return v && v->kind_case == AIOD__VALUE__KIND_INT_VALUE && v->base.n_unknown_fields == 0 &&
           v->int_value >= INLINE_MIN && v->int_value <= INLINE_MAX;
}

/* The cell for `v`, which it now owns (an inlined value is freed). */
static qcell cell_take(Aiod__Value *v) {
    if (!is_inline_int(v))
        return (qcell)(uintptr_t)v;
    qcell c = ((uint64_t)v->int_value << 1) | 1;
    pbvalue_free(v);
    return c;
}

/* The value of a cell, owned by the caller: 0, or -ENOMEM (the cell is
 * unchanged). */
static int cell_value(qcell c, Aiod__Value **ret) {
    if (!(c & 1)) {
        *ret = (Aiod__Value *)(uintptr_t)c;
        return 0;
    }
    /* An arithmetic shift brings the sign back. */
    *ret = pbvalue_int((int64_t)c >> 1);
    return *ret ? 0 : -ENOMEM;
}

static void cell_free(qcell c) {
    if (!(c & 1))
        pbvalue_free((Aiod__Value *)(uintptr_t)c);
}

/* ---------------------------------------------------------------- FIFO and LIFO: blocks */

/* Room after the tail. 0, -ENOMEM. */
static int chain_reserve(qitems *s) {
    if (s->tail && s->tail_at < QBLOCK_CELLS)
        return 0;
    qblock *b = slab_alloc(&blocks);
    if (!b)
        return -ENOMEM;
    b->prev = s->tail;
    if (s->tail)
        s->tail->next = b;
    else {
        s->head = b;
        s->head_at = 0;
    }
    s->tail = b;
    s->tail_at = 0;
    return 0;
}

/* The cell that comes out next; the chain is not empty. */
static qcell *chain_next(qitems *s) {
    if (s->kind == AIOD_QUEUE_LIFO)
        return &s->tail->cells[s->tail_at - 1];
    return &s->head->cells[s->head_at];
}

/* Removes that cell, giving an emptied block back (one stays). */
static void chain_drop_next(qitems *s) {
    s->n--;
    if (s->kind == AIOD_QUEUE_LIFO) {
        if (--s->tail_at == 0 && s->tail != s->head) {
            qblock *b = s->tail;
            s->tail = b->prev;
            s->tail->next = NULL;
            s->tail_at = QBLOCK_CELLS;
            slab_free(&blocks, b);
        }
        return;
    }
    s->head_at++;
    if (s->n == 0) {
        /* head == tail: start the block over. */
        s->head_at = s->tail_at = 0;
    } else if (s->head_at == QBLOCK_CELLS) {
        qblock *b = s->head;
        s->head = b->next;
        s->head->prev = NULL;
        s->head_at = 0;
        slab_free(&blocks, b);
    }
}

/* ---------------------------------------------------------------- PRIORITY: a heap */

/* Heap order: lower priority first, then earlier arrival. */
static bool before(const qentry *a, const qentry *b) {
    return a->priority < b->priority || (a->priority == b->priority && a->seq < b->seq);
}

static void swap(qentry *a, qentry *b) {
    qentry tmp = *a;
    *a = *b;
    *b = tmp;
}

static int heap_reserve(qitems *s) {
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 8;
    qentry *heap = alloc_realloc(s->heap, cap * sizeof(*heap));
    if (!heap)
        return -ENOMEM;
    s->heap = heap;
    s->cap = cap;
    return 0;
}

static void heap_push(qitems *s, qentry e) {
    size_t i = s->n++;
    s->heap[i] = e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&s->heap[i], &s->heap[parent]))
            break;
        swap(&s->heap[i], &s->heap[parent]);
        i = parent;
    }
}

static void heap_drop_first(qitems *s) {
    s->heap[0] = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->n && before(&s->heap[l], &s->heap[m]))
            m = l;
        if (r < s->n && before(&s->heap[r], &s->heap[m]))
            m = r;
        if (m == i)
            break;
        swap(&s->heap[i], &s->heap[m]);
        i = m;
    }
}

/* ---------------------------------------------------------------- the three kinds */

void qitems_init(qitems *s, uint32_t kind) {
    *s = (qitems){.kind = kind};
}

int qitems_push(qitems *s, int64_t priority, Aiod__Value *v) {
    if (s->kind == AIOD_QUEUE_PRIORITY) {
        int r = heap_reserve(s);
        if (r < 0)
            return r;
        heap_push(s, (qentry){.priority = priority, .seq = s->next_seq++, .cell = cell_take(v)});
        return 0;
    }
    int r = chain_reserve(s);
    if (r < 0)
        return r;
    s->tail->cells[s->tail_at++] = cell_take(v);
    s->n++;
    return 0;
}

int qitems_take(qitems *s, Aiod__Value **ret) {
    assert(s->n > 0);
    if (s->kind == AIOD_QUEUE_PRIORITY) {
        int r = cell_value(s->heap[0].cell, ret);
        if (r == 0)
            heap_drop_first(s);
        return r;
    }
    int r = cell_value(*chain_next(s), ret);
    if (r == 0)
        chain_drop_next(s);
    return r;
}

void qitems_clear(qitems *s) {
    if (s->kind == AIOD_QUEUE_PRIORITY) {
        for (size_t i = 0; i < s->n; i++)
            cell_free(s->heap[i].cell);
        free(s->heap);
    } else {
        for (qblock *b = s->head, *next; b; b = next) {
            next = b->next;
            uint32_t from = b == s->head ? s->head_at : 0;
            uint32_t to = b == s->tail ? s->tail_at : QBLOCK_CELLS;
            for (uint32_t i = from; i < to; i++)
                cell_free(b->cells[i]);
            slab_free(&blocks, b);
        }
    }
    qitems_init(s, s->kind);
}
