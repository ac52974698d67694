/*
 * outcome: aioc_outcome is an Aiod__Outcome taken out of a reply; these
 * casts are the only place that knows it. wire_check_outcome has made sure
 * that a done outcome has a result.
 */
#ifndef AIOC_OUTCOME_H
#define AIOC_OUTCOME_H

#include "aioc.h"
#include "aiod.pb-c.h"

static inline const Aiod__Outcome *outcome_cpb(const aioc_outcome *o) {
    return (const Aiod__Outcome *)(const void *)o;
}

static inline aioc_outcome *outcome_from_pb(Aiod__Outcome *o) {
    return (aioc_outcome *)(void *)o;
}

static inline const aioc_outcome *outcome_from_cpb(const Aiod__Outcome *o) {
    return (const aioc_outcome *)(const void *)o;
}

#endif
