/*
 * The answer to a Submit or a Cancel (ack.c): the Submitted reply, and for
 * a followed Submit the output stream after it. For a durable task (core/persist.h)
 * the reply waits until the task's record is committed: acknowledged means
 * durable. If the commit fails, the reply is ERROR_STORE and the task ends
 * failed without ever starting.
 */
#ifndef AIOD_ACK_H
#define AIOD_ACK_H

#include <stdbool.h>

#include "base/forward.h"
#include "request/req.h"
#include "request/session.h"

/* Answers the Submit `r` (moved) for the new task `t`, now or once `t` is
 * durable. Out of memory to wait, it ends `r` with ERROR_INTERNAL. */
void ack_submit(session *s, req *r, task *t, bool follow);

/* Answers the Cancel `r` (moved) that reached the `count` tasks `ts`
 * (borrowed; those that were unfinished): once the records of the durable
 * ones it ended (pending ones end at once) are committed, so that an
 * acknowledged cancel survives a crash; with ERROR_STORE if one could not
 * be. A running task's cancel is a request: its end is written when it
 * comes. */
void ack_cancel(session *s, req *r, task **ts, uint32_t count);

/* The session closes: replies still waiting are dropped (their tasks stay,
 * durable or not, as for any closed connection). */
void ack_session_closed(session *s);

#endif
