/*
 * From a decoded request to its operation and reply: hello, submit, await,
 * gather, cancel, list, show, logs, plugins. Every request is answered
 * exactly once (conn_request_done marks it), now or later.
 */
#ifndef AIOD_DISPATCH_H
#define AIOD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"

/* Handles one frame's payload from `c` (counted in flight by the caller). */
void dispatch_frame(conn *c, const uint8_t *payload, size_t len);

/* The daemon is shutting down: new requests get ERROR_SHUTTING_DOWN. */
void dispatch_set_shutting_down(void);

#endif
