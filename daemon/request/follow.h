/*
 * A client following a task's output: its lines go to the connection as
 * Output events, and its end as OutputEnd. Three kinds, by who owns the
 * request id the frames carry:
 *   FOLLOW_LOGS    a Logs request: the follower owns it; OutputEnd is its
 *                  final frame;
 *   FOLLOW_SUBMIT  a Submit with follow, already answered by Submitted: the
 *                  follower owns it from then; OutputEnd is its final frame;
 *   FOLLOW_GATHER  a Gather's new task: the gather owns the request (its
 *                  Outcomes or Error is the final frame) and stops its
 *                  followers when it ends, so nothing follows that frame.
 */
#ifndef AIOD_FOLLOW_H
#define AIOD_FOLLOW_H

#include <stdbool.h>

#include "base/list.h"
#include "core/output.h"
#include "request/req.h"

typedef struct session session;

typedef enum follow_kind {
    FOLLOW_LOGS,
    FOLLOW_SUBMIT,
    FOLLOW_GATHER,
} follow_kind;

typedef struct follower {
    output_sink sink;
    /* On the session's list of followers. */
    list session_node;
    /* FOLLOW_GATHER: on its gather's list (waiting.c). */
    list gather_node;
    session *s;
    follow_kind kind;
    /* FOLLOW_LOGS and FOLLOW_SUBMIT: the request this follower ends.
     * FOLLOW_GATHER: a copy naming the gather's id, never ended here. */
    req r;
    /* FOLLOW_GATHER: called with the gather's list after this follower
     * sent its OutputEnd and left the list (the gather may be waiting for
     * its followers to catch up before its final frame). */
    void (*gather_follower_ended)(list *gather_list);
    list *gather_list;
    /* Lines too big for max_frame, counted in its OutputEnd's dropped. */
    uint64_t unsent;
} follower;

/*
 * Flow: a follower takes lines while its connection has less than
 * LIMIT_FOLLOW_QUEUE bytes queued (or half of max_write_queue, when that is
 * less: below the line where a client is dropped); past that it falls behind (its lines
 * wait in the task's ring, and those that leave the ring are counted as
 * dropped in its OutputEnd) until the connection drains (follow_pump). A
 * client is never cut off for following. SUBMIT and GATHER followers are
 * the task's own client (aioctl run): they hold back the task's output
 * producer while behind (output_held).
 *
 * Follows `o` for request `r`: for LOGS and SUBMIT the request is moved into
 * the follower; for GATHER it is only named, and the follower goes on
 * `gather_list` (and `ended` is called with it when the follower is done).
 * With `replay` the retained lines are sent first. When the output has ended
 * or `follow` is false, OutputEnd (with `state_now` if the output has not
 * ended) is sent once the lines there are now were sent. 0, -ENOMEM, or
 * -EMFILE for a LOGS or SUBMIT follower when the session already has
 * max_in_flight of them (nothing was sent and `r` is still the caller's).
 */
int follow_start(session *s, output *o, follow_kind kind, req *r, list *gather_list, bool replay,
                 bool follow, int state_now, void (*ended)(list *gather_list));

/* The session's connection drained: its followers that are behind take
 * what they can now. */
void follow_pump(session *s);

/* Stops a follower without a frame (its gather ended, or its connection
 * is closing) and frees it; a request it owns is abandoned. A follower
 * that was behind on an ended output kicks its connection, whose waits may
 * have waited for it (follow_behind). */
void follow_stop(follower *f);

/* Whether a follower of session `s` is still sending the lines of output
 * `o`, which has ended: it is behind, and its OutputEnd is still to come.
 * A wait that reports the task's end waits for it (protocol.md 5.1). */
bool follow_behind(const session *s, const output *o);

#endif
