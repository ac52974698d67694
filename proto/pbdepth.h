/*
 * A pre-check of encoded protobuf bytes before protobuf-c unpacks them.
 * protobuf-c unpacks nested messages recursively, so a frame of a few
 * megabytes nesting Value inside List inside Value millions of times would
 * exhaust the stack. This walk uses the message descriptors, no recursion
 * and no allocation, and refuses nesting deeper than a limit.
 */
#ifndef AIOD_PROTO_PBDEPTH_H
#define AIOD_PROTO_PBDEPTH_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Deepest nesting the walker can track; callers' limits must not exceed it. */
#define PBDEPTH_MAX 256u

/*
 * 0 if every message nested in `data` (a `desc` message) is at most
 * max_depth levels below the top; -ELOOP if deeper; -EBADMSG if the bytes
 * are not well-formed protobuf (unpack would refuse them too).
 */
int pbdepth_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                  unsigned max_depth);

/* The same, and -E2BIG once more than `max_count` messages of type
 * `counted` are nested in it (a frame of millions of tiny values costs
 * hundreds of megabytes unpacked; the walk itself allocates nothing).
 * A -ELOOP or -EBADMSG met first is returned first. */
int pbdepth_check_count(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                        unsigned max_depth, const ProtobufCMessageDescriptor *counted,
                        size_t max_count);

/* The same, and -EILSEQ once a string field holds a NUL byte: protobuf
 * allows U+0000 in a string, but a C string ends there, so the rest would
 * be lost without a word. *ret_desc and *ret_field (each may be NULL) then
 * name the message and its field. Checked in the order met, as the others. */
int pbdepth_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                          unsigned max_depth, const ProtobufCMessageDescriptor *counted,
                          size_t max_count, const ProtobufCMessageDescriptor **ret_desc,
                          const ProtobufCFieldDescriptor **ret_field);

#endif
