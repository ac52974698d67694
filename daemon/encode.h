/*
 * A hand-written encoder for the reply sent once per awaited or gathered
 * task: ServerMessage{request_id, outcomes: Outcomes{outcome...}}. It writes
 * the bytes protobuf-c's pack would (the unit test compares them) in one
 * pass over precomputed sizes, where protobuf-c walks the whole message
 * tree twice through its descriptors. Result values are still packed by
 * protobuf-c.
 */
#ifndef AIOD_ENCODE_H
#define AIOD_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"

/* The encoded size of the reply. Fills sizes[i] with the size of
 * outcomes[i]'s own encoding, which encode_outcomes needs. */
size_t encode_outcomes_size(uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                            size_t *sizes);

/* Writes the reply, exactly `size` bytes (encode_outcomes_size's answer
 * with the same arguments and sizes), at p. */
void encode_outcomes(uint8_t *p, uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                     const size_t *sizes, size_t size);

#endif
