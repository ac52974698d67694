/*
 * From a decoded request to its operation: hello, submit, await, gather,
 * cancel, list, show, logs, plugins, reload. Every request ends exactly
 * once (req.h), now or later: a handler either ends it or moves it into
 * what answers later (a wait, a follower); dispatch asserts so.
 */
#ifndef AIOD_DISPATCH_H
#define AIOD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "request/req.h"

typedef struct session session;

/* Handles one frame's payload from session `s` (borrowed for the call):
 * at once, or, for a request that waits when max_in_flight requests are
 * open, parks a copy to run once earlier ones are answered. Past
 * LIMIT_PARKED_BYTES of parked frames the connection stops being read. */
void dispatch_frame(session *s, const uint8_t *payload, size_t len);

/* Runs parked requests while fewer than max_in_flight are open, and lets
 * reading go on once the parked bytes are under the bound (conn_kick's
 * callback). */
void dispatch_resume(session *s);

/* Frees the parked requests of a closing session (no frame is sent). */
void dispatch_drop_parked(session *s);

/* The daemon is shutting down: new requests get ERROR_SHUTTING_DOWN. */
void dispatch_set_shutting_down(void);

/* Who answers Reload (the application layer, which owns settings and
 * plugins): it must end `r`. */
void dispatch_set_reload_handler(void (*handle)(session *s, req *r));

#endif
