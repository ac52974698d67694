/*
 * Freeing big value trees on libuv's thread pool instead of the loop.
 *
 * Why: a retained outcome of a 4 MiB request is a million nodes or more
 * (its arguments, and a result such as demo.echo's copy). Freeing one
 * costs tens of milliseconds; a connection that closes with hundreds of
 * them, or a burst of evictions, held the loop for seconds. The values are
 * plain malloc blocks (proto/alloc.h), so another thread may free them.
 *
 * One pool job runs at a time and frees everything handed over before it
 * started; what comes while it runs waits for the next job, so the pool's
 * other work (request decoding, plugins' jobs) keeps its threads.
 */
#ifndef AIOD_CORE_RECLAIM_H
#define AIOD_CORE_RECLAIM_H

#include <stddef.h>
#include <uv.h>

#include "aiod-pb.h"

/* Values that hold at least this many bytes (pbvalue_footprint) are freed
 * on the pool; smaller ones cost less to free here than to hand over. */
#define RECLAIM_MIN_BYTES ((size_t)64 * 1024)

/* The loop whose pool frees the values (sched_init sets it). */
void reclaim_set_loop(uv_loop_t *l);

/* Takes argv (argc values and the array itself, as value_argv_free) and
 * result, any of them NULL, and frees them on the pool, or here at once
 * when the pool cannot be used (out of memory, or no loop yet). */
void reclaim_values(Aiod__Value **argv, size_t argc, Aiod__Value *result);

#endif
