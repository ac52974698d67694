/*
 * Hand-written encoders for the frames sent once per awaited or gathered
 * task: ServerMessage{request_id, outcomes: Outcomes{outcome...}}, and a
 * Gather's ServerMessage{request_id, started: Started{task_ids}}. It writes
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

/* The sizes of one outcome's encoding and of its result's, measured once by
 * encode_outcomes_size for encode_outcomes. */
typedef struct encode_sizes {
    size_t outcome;
    size_t result;
} encode_sizes;

/* The encoded size of the reply. Fills sizes[i] for outcomes[i]. */
size_t encode_outcomes_size(uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                            encode_sizes *sizes);

/* Writes the reply at p: as many bytes as encode_outcomes_size answered
 * for the same arguments, whose sizes it takes. */
void encode_outcomes(uint8_t *p, uint64_t request_id, const Aiod__Outcome *outcomes, size_t n,
                     const encode_sizes *sizes);

/* The size of ServerMessage{request_id, started: Started{task_ids}}, sent
 * once per Gather, and its bytes (as protobuf-c would pack them). */
size_t encode_started_size(uint64_t request_id, const uint64_t *ids, size_t n);
void encode_started(uint8_t *p, uint64_t request_id, const uint64_t *ids, size_t n);

#endif
