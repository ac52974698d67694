/*
 * Allocation wrapper with failure injection (see alloc.h). When injection is
 * off, an allocation costs one predictable branch and writes nothing: many
 * threads of a client program allocate through here at once.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static unsigned long fail_at;
static unsigned long counter;

static int should_fail(void) {
    if (fail_at == 0)
        return 0;
    return ++counter >= fail_at;
}

void alloc_fail_at(unsigned long nth) {
    fail_at = nth;
    counter = 0;
}

size_t alloc_block_size(size_t n) {
    size_t b = (n + 8 + 15) & ~(size_t)15;
    return b < 32 ? 32 : b;
}

unsigned long alloc_count(void) {
    return counter;
}

void *alloc_malloc(size_t size) {
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *alloc_calloc(size_t n, size_t size) {
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *alloc_realloc(void *p, size_t size) {
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

char *alloc_strndup(const char *s, size_t n) {
    char *d = alloc_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *alloc_strdup(const char *s) {
    return alloc_strndup(s, strlen(s));
}

static void *pb_alloc(void *data, size_t size) {
    (void)data;
    return alloc_malloc(size);
}

static void pb_free(void *data, void *p) {
    (void)data;
    free(p);
}

ProtobufCAllocator alloc_protobuf = {pb_alloc, pb_free, NULL};
