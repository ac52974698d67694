/*
 * schedule: the aioc_schedule a Submit carries (schedule.c).
 */
#ifndef AIOC_SCHEDULE_H
#define AIOC_SCHEDULE_H

#include "aioc.h"
#include "aiod.pb-c.h"

/* The Schedule message `s` holds, borrowed from it for one message (the
 * protobuf-c field is not const, but packing only reads it); NULL for
 * NULL. */
const Aiod__Schedule *schedule_pb(const aioc_schedule *s);

#endif
