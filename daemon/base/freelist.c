/*
 * Free lists of fixed-size blocks (freelist.h).
 */
#include "base/freelist.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FREELIST_OFF 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FREELIST_OFF 1
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

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
#ifndef FREELIST_OFF
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
