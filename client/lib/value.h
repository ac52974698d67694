/*
 * value: aioc_value is an Aiod__Value under another name, so values built by
 * a caller go on the wire and values from the wire reach the caller without
 * conversion. These two casts are the only place that knows it.
 */
#ifndef AIOC_VALUE_H
#define AIOC_VALUE_H

#include "aioc.h"
#include "aiod.pb-c.h"

/* The deepest value a call may carry (a scalar is 1), as the daemon
 * accepts (docs/protocol.md, Values); no deeper one can be built. */
#define CALL_MAX_VALUE_DEPTH 32u

static inline Aiod__Value *value_pb(aioc_value *v) {
    return (Aiod__Value *)(void *)v;
}

static inline const Aiod__Value *value_cpb(const aioc_value *v) {
    return (const Aiod__Value *)(const void *)v;
}

static inline aioc_value *value_from_pb(Aiod__Value *v) {
    return (aioc_value *)(void *)v;
}

static inline const aioc_value *value_from_cpb(const Aiod__Value *v) {
    return (const aioc_value *)(const void *)v;
}

#endif
