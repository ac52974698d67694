/*
 * The one allocation wrapper used by the daemon, libaioclient and the shared
 * protocol code. Every allocation goes through it so that tests can make the
 * Nth one fail (alloc_fail_at) and check that each constructor copes.
 * protobuf-c is given the same functions through alloc_protobuf.
 */
#ifndef AIOD_PROTO_ALLOC_H
#define AIOD_PROTO_ALLOC_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

void *alloc_malloc(size_t size);
void *alloc_calloc(size_t n, size_t size);
void *alloc_realloc(void *p, size_t size);
char *alloc_strdup(const char *s);
char *alloc_strndup(const char *s, size_t n);

/* About how many bytes of heap an allocation of n bytes holds: glibc's
 * chunk (rounded up to 16 with 8 of header, at least 32), for estimates of
 * what a structure keeps (retain_bytes). */
size_t alloc_block_size(size_t n);

/* Allocator for protobuf_c_message_unpack and _free_unpacked. */
extern ProtobufCAllocator alloc_protobuf;

/*
 * Test hook: the nth allocation from now (1 = the next one) and every one
 * after it fail until alloc_fail_at(0) is called. Not thread safe; meant for
 * single-threaded OOM loops. Off (0), the wrappers share no state that
 * changes, so any number of threads may allocate.
 */
void alloc_fail_at(unsigned long nth);

/* How many allocations were attempted since alloc_fail_at armed it (not
 * counted while off). */
unsigned long alloc_count(void);

#endif
