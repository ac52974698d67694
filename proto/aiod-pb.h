/*
 * Include this instead of the generated aiod.pb-c.h: protobuf-c 1.4's
 * generated enums use INT_MAX without including <limits.h>.
 */
#ifndef AIOD_PROTO_AIOD_PB_H
#define AIOD_PROTO_AIOD_PB_H

#include <limits.h>

#include "aiod.pb-c.h"

#endif
