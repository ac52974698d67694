/*
 * Freed blocks of one size kept for reuse, most recent first. A block freed
 * long after it was last used is taken back by the next allocation of its
 * size while it is still in the cache, where malloc would first coalesce
 * it with its cold neighbours. Off under AddressSanitizer and valgrind,
 * which must see every free to catch a use after it.
 */
#ifndef AIOD_FREELIST_H
#define AIOD_FREELIST_H

#include <stddef.h>

typedef struct freelist {
    size_t size; /* of every block */
    size_t max;  /* blocks kept at most */
    size_t n;
    void *head;
} freelist;

#define FREELIST_INIT(block_size, max_kept)                                                        \
    { .size = (block_size), .max = (max_kept) }

/* A zeroed block (owned by the caller), or NULL when out of memory. */
void *freelist_take(freelist *fl);
/* Takes back a block from freelist_take; accepts NULL. */
void freelist_give(freelist *fl, void *block);
/* Frees the blocks kept. */
void freelist_release(freelist *fl);

#endif
