/*
 * client: the aioc_client handle, connecting and the hello, and the
 * blocking request/reply call the blocking functions (task.c, info.c,
 * function.c, reload.c) build on. It sits on the engine (engine.h), which
 * owns the write queue, the started requests and the end-of-stream rules;
 * a blocking call hands every frame that is not its own final reply to the
 * engine.
 */
#ifndef AIOC_CLIENT_H
#define AIOC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "handle.h"
#include "macro.h"
#include "outcome.h"

/* A public call that may run the program's callbacks: when one of them
 * closes the client (aioc_close), the handle is freed as the outermost
 * such call returns, after its return value is made, not under the code
 * that still uses it. Put first in the function; c may be NULL. */
#define CLIENT_SCOPE(c)                                                                            \
    _cleanup_(client_leave) __attribute__((unused)) aioc_client *client_scope_ = client_enter(c)
aioc_client *client_enter(aioc_client *c);
void client_leave(aioc_client **scope);

/* Starts a public blocking call: refuses a re-entered or dead client
 * (-EBUSY, the errno it died with) and clears the last error. */
int client_begin(aioc_client *c);

/*
 * Sends `m` (its request_id is filled in) and waits for its final frame,
 * which must have body `want` (OUTPUT_END for Logs). *ret_reply gets the
 * reply (free with wire_free). An Error reply returns its errno and sets
 * the last error; for ERROR_TASK_FAILED (-EIO) *ret_reply is set too, so
 * that the caller can take the failed outcome.
 */
int client_call(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                Aiod__ServerMessage **ret_reply);

/* As client_call, also recording in `ends` (may be NULL) the count of
 * every OutputEnd event of this request before its final frame (a followed
 * gather's tasks). */
int client_call_ends(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                     Aiod__ServerMessage **ret_reply, output_ends *ends);

#endif
