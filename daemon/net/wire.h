/*
 * Decoding requests from frame payloads, pure (no I/O; fuzzed): the
 * descriptor-driven depth check, then protobuf-c's unpack with our allocator,
 * then the structural checks protobuf-c does not make.
 */
#ifndef AIOD_WIRE_H
#define AIOD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"

/*
 * 0 and a new message (free with wire_free; its memory belongs to an arena,
 * so anything kept after wire_free must be copied out), or -EBADMSG with a
 * reason in `why` (the bytes are not a ClientMessage, or nest deeper than
 * LIMIT_MESSAGE_DEPTH), -E2BIG with a reason (well-formed, but more than
 * LIMIT_FRAME_VALUES values: nothing was unpacked), -EILSEQ with a reason
 * (well-formed, but a string holds a NUL byte, which a C string would drop
 * silently), -ENOMEM.
 * Loop thread only.
 */
int wire_decode(const uint8_t *payload, size_t len, Aiod__ClientMessage **ret, char *why,
                size_t why_len);
void wire_free(Aiod__ClientMessage *m);

/* Frames this large are meant for wire_decode_detached. */
#define WIRE_DETACHED_FROM ((size_t)256 << 10)

/*
 * As wire_decode for a frame of WIRE_DETACHED_FROM bytes or more, but safe
 * on any thread: the message is unpacked node by node with alloc_protobuf,
 * and is the caller's. A caller may take a subtree (a call's argument
 * Values) and leave NULL in its place. Free with wire_free_detached, on any
 * thread.
 */
int wire_decode_detached(const uint8_t *payload, size_t len, Aiod__ClientMessage **ret, char *why,
                         size_t why_len);
void wire_free_detached(Aiod__ClientMessage *m);

/* Frees the arena's memory (at exit). */
void wire_done(void);
/* Gives the empty arena blocks kept for the next big request back to the
 * kernel (idle). */
void wire_cache_release(void);

#endif
