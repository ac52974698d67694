/*
 * The items of a queue (queue.c), kept in the order its kind takes them out:
 * FIFO, LIFO, or lowest priority first (FIFO among equal priorities).
 *
 * Each item takes 8 bytes: an integer value that fits in 63 bits is kept
 * inline and its Aiod__Value freed at once; any other value is kept as its
 * pointer, NULL for a null item. A million queued ints then cost 8 MB, not
 * the 72 bytes each of a pointer and a heap node, and the node freed by a
 * put is the one the producer's next value_int gets back, still in cache.
 *
 * FIFO and LIFO items live in a chain of fixed-size blocks from one slab
 * shared by every queue (base/slab.h): a queue grows without copying, the
 * blocks a consumer empties go back at once, and a burst of a million items
 * takes its memory in huge pages. Priority items live in a binary heap
 * ordered by (priority, arrival).
 *
 * Not thread-safe: the loop thread only, as every queue call.
 */
#ifndef AIOD_API_QITEMS_H
#define AIOD_API_QITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "aiod.pb-c.h"

struct qblock;
struct qentry;

typedef struct qitems {
    /* AIOD_QUEUE_FIFO, _LIFO or _PRIORITY. */
    uint32_t kind;
    /* Items held. */
    size_t n;
    /* FIFO and LIFO: the chain of blocks, oldest first; items run from
     * head->cells[head_at] to tail->cells[tail_at - 1]. At most one block
     * stays in the chain when empty. */
    struct qblock *head, *tail;
    uint32_t head_at, tail_at;
    /* PRIORITY: a heap of `cap` slots, n used. */
    struct qentry *heap;
    size_t cap;
    uint64_t next_seq;
} qitems;

void qitems_init(qitems *s, uint32_t kind);
/* Adds `v` (owned; NULL is a null item). 0, and the items own `v`; -ENOMEM,
 * and `v` is still the caller's. */
int qitems_push(qitems *s, int64_t priority, Aiod__Value *v);
/* Takes out the next item into *ret (owned by the caller; NULL for a null
 * item). There must be one. 0; -ENOMEM when an inline integer could not be
 * made a value again, and then the item stays. */
int qitems_take(qitems *s, Aiod__Value **ret);
/* Frees every item and block: the items are empty and can be used again. */
void qitems_clear(qitems *s);
/* Gives empty blocks kept for reuse back to the kernel (idle). */
void qitems_cache_release(void);

#endif
