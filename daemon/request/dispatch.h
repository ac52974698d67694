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

/* Handles one frame's payload from session `s` (counted in flight by the
 * transport). */
void dispatch_frame(session *s, const uint8_t *payload, size_t len);

/* The daemon is shutting down: new requests get ERROR_SHUTTING_DOWN. */
void dispatch_set_shutting_down(void);

/* Who answers Reload (the application layer, which owns settings and
 * plugins): it must end `r`. */
void dispatch_set_reload_handler(void (*handle)(session *s, req *r));

#endif
