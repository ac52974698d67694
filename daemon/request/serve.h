/*
 * The request layer's side of a connection: a session when it opens (its
 * peer's groups looked up first), each frame to dispatch, and at close
 * everything that hangs on it undone.
 */
#ifndef AIOD_SERVE_H
#define AIOD_SERVE_H

#include "net/conn.h"

/* The connection handlers of the request layer (for conn_init). */
const conn_handlers *session_handlers(void);

#endif
