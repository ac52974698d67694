/*
 * What the request layer keeps per connection: the peer (credentials and
 * groups), whether hello was exchanged, and what hangs on the connection —
 * its attached tasks, its followers and its waiting requests — so that all
 * of it goes when the connection closes: attached tasks are cancelled (as
 * asyncio.run cancels what is left), followers and waits are dropped
 * without a frame.
 *
 * Requests are read only once the peer's groups are known: the NSS lookup
 * runs off the loop thread (identity.h).
 *
 * Control requests never queue behind waits: a Cancel, a ListTasks, a
 * Submit are handled as soon as they are read, however many Awaits wait.
 */
#ifndef AIOD_SESSION_H
#define AIOD_SESSION_H

#include <stdbool.h>

#include "base/list.h"
#include "net/conn.h"
#include "system/identity.h"
#include "system/policy.h"

typedef struct session {
    conn *c;
    peer peer;
    /* The peer as its tasks keep it (made with the first task; owned). */
    caller *caller;
    bool hello_done;
    /* The groups lookup while it runs. */
    identity_req *lookup;
    /* Attached tasks (task_run.owner_node), followers (follower.session_node)
     * and waiting requests (wait_req.session_node). */
    list tasks;
    list followers;
    /* Followers of Logs and followed Submits open (follow.c): at most
     * max_in_flight. */
    uint32_t streams;
    list waits;
    /* Waits whose tasks ended that wait for followers to send the rest of
     * their lines (waiting.c): when none, a drain need not look. */
    uint32_t waits_finishing;
    /* Submitted replies that wait for the store (ack.c, pending_ack). */
    list acks;
    /* Cancelled replies that wait for the store (ack.c, cancel_ack). */
    list cancel_acks;
    /* Requests on queued tasks that wait for the cluster (remote.c). */
    list remotes;
    /* Requests open (not yet answered): at max_in_flight, further requests
     * that wait (Await, Gather, Logs with follow) are parked, in order,
     * while the others still run as they are read (dispatch.c). */
    uint32_t in_flight;
    /* Requests answered whose stream goes on (a followed Submit after its
     * Submitted, until its OutputEnd or Error): no longer in flight, but a
     * half-closed connection still waits for their final frame. */
    uint32_t answered;
    /* Parked frames (parked_frame.node) and their bytes. */
    list parked;
    size_t parked_bytes;
    /* A big frame being decoded off the loop thread (offload.h): nothing
     * more is read or resumed until it has been handled. */
    struct offload *offload;
    /* The client half-closed and all it sent was read: the connection
     * closes once every request is answered (session_close_if_answered). */
    bool half_closed;
} session;

/* The session of a connection (NULL once it is closing). */
static inline session *session_of(conn *c) {
    return c->data;
}

/* After a half-close: closes the connection (its replies are sent first)
 * once no request of it is open, streaming, parked or being decoded. */
static inline void session_close_if_answered(session *s) {
    if (s->half_closed && s->in_flight == 0 && s->answered == 0 && list_empty(&s->parked) &&
        !s->offload)
        conn_close_soon(s->c);
}

#endif
