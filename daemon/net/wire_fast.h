/*
 * A hand-written decoder for the request a pipelining client sends most:
 * ClientMessage{request_id, gather: Gather{items: [GatherItem{call | task_id}],
 * flags, timeout}}. protobuf-c's unpack walks its descriptors for every field
 * and was the largest single cost per task. This one reads the same bytes
 * directly and builds the same tree; call arguments (Values) are still
 * unpacked by protobuf-c.
 *
 * It only ever declines: any other body, an unknown field, a wire type that
 * does not match, a field seen twice, a malformed varint or length, a Value
 * protobuf-c rejects: all return 0, and the caller decodes with protobuf-c,
 * which then accepts or refuses the message as before. So every message
 * decoded here is one protobuf-c decodes to the same tree; fuzz-wire checks
 * exactly that, by packing both trees and comparing the bytes.
 */
#ifndef AIOD_WIRE_FAST_H
#define AIOD_WIRE_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"

/* 1 with *ret set (every node from `alloc`, which must free nothing
 * itself: the caller releases all of it at once), or 0 to decline. */
int wire_fast_decode(const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                     Aiod__ClientMessage **ret);

/* The request_id of an encoded ClientMessage (its field 1), read without
 * unpacking, with the same cursor as the decoder; 0 if there is none. */
uint64_t wire_peek_request_id(const uint8_t *payload, size_t len);

/* The body of an encoded ClientMessage read the same way: the field number
 * of its last length-delimited field other than the request id (an
 * AIOD__CLIENT_MESSAGE__BODY_* value for the bodies this file knows), 0 if
 * there is none. */
uint32_t wire_peek_body(const uint8_t *payload, size_t len);

#endif
