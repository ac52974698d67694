/*
 * A client's request, from its frame to its final frame, like libuv's
 * uv_req_t: it ends exactly once, through req_end (or req_abandon when the
 * connection goes), and that is asserted.
 *
 * Every request id gets exactly one final frame (docs/protocol.md, "End of
 * a request's stream"): its reply or an Error; for a followed Submit and
 * for Logs, the OutputEnd. Events (Started, Output, OutputEnd of a
 * Gather's task) may come before it, never after.
 *
 * A request counts as in flight on its session (session.h: at
 * max_in_flight, further requests that wait are parked) until it is
 * answered: at its end, or earlier for a Submit with follow, whose
 * Submitted reply answers it while its output stream goes on.
 *
 * A req is a value: dispatch makes it on the stack, and a handler that
 * answers later moves it (req_move) into what outlives the call.
 */
#ifndef AIOD_REQ_H
#define AIOD_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"
#include "net/conn.h"

enum req_state {
    REQ_OPEN,     /* counted in flight */
    REQ_ANSWERED, /* no longer in flight; its stream goes on */
    REQ_ENDED,    /* its final frame was sent (or the connection went) */
    REQ_MOVED,    /* moved elsewhere: this copy is spent */
};

typedef struct req {
    conn *c;
    uint64_t id;
    uint8_t state;
} req;

void req_init(req *r, conn *c, uint64_t id);

/* Moves the request from `from` (spent) into `to`. */
void req_move(req *to, req *from);

/* Sends an event or a non-final reply of the request. */
void req_send(req *r, Aiod__ServerMessage__BodyCase body_case, void *body);

/* Sends an Output event unless its frame would exceed max_frame (a line
 * near LIMIT_MAX_LINE when max_frame is set below that): false then, and
 * nothing is sent, where the transport would put a final Error in the
 * stream's middle. The caller counts the line as dropped. */
bool req_send_output(req *r, Aiod__Output *o);

/* The request no longer counts as in flight; its stream goes on. */
void req_answered(req *r);

/* Sends the final frame and ends the request. */
void req_end(req *r, Aiod__ServerMessage__BodyCase body_case, void *body);

/* Ends the request with an Error as its final frame. */
void req_end_error(req *r, Aiod__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A final frame encoded by the caller in place (the fast path): where to
 * write `size` bytes, or NULL when nothing is to be written (see
 * conn_frame_begin); then req_end_frame queues them (if any) and ends the
 * request. */
uint8_t *req_frame_begin(req *r, size_t size);
void req_end_frame(req *r, size_t size, bool written);
/* Queues an event encoded in place after req_frame_begin (not final). */
void req_frame_send(req *r, size_t size);

/* Ends the request without a frame: its connection is closing. */
void req_abandon(req *r);

/* Whether the request has ended (or was moved away). */
bool req_over(const req *r);

/* Queues one message with this envelope on `c` (also for events of no
 * request object). */
void reply_send(conn *c, uint64_t request_id, Aiod__ServerMessage__BodyCase body_case, void *body);

#endif
