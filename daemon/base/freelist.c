/*
 * Free lists of fixed-size blocks (freelist.h).
 */
#include "base/freelist.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#include "base/memcheck.h"

/* The link lives in the freed block itself. */
typedef struct block {
    struct block *next;
} block;

void *freelist_take(freelist *fl) {
    block *b = fl->head;
    if (!b)
        return alloc_calloc(1, fl->size);
    fl->head = b->next;
    fl->n--;
    memset(b, 0, fl->size);
    return b;
}

void freelist_give(freelist *fl, void *p) {
    if (!p)
        return;
#ifndef AIOD_ASAN
    if (fl->n < fl->max && !RUNNING_ON_VALGRIND) {
        block *b = p;
        b->next = fl->head;
        fl->head = b;
        fl->n++;
        return;
    }
#endif
    free(p);
}

void freelist_release(freelist *fl) {
    while (fl->head) {
        block *b = fl->head;
        fl->head = b->next;
        free(b);
    }
    fl->n = 0;
}
