/*
 * client: the aioc_client handle and the request/reply engine the other
 * files build on. A request is sent with a fresh id; while its reply is
 * awaited, Output events of any request go to the output callback, stale or
 * unknown messages are skipped, and a connection-level error (request id 0)
 * ends the connection.
 */
#ifndef AIOC_CLIENT_H
#define AIOC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "conn.h"

/* Frame limit used until the hello reply announces the daemon's. */
#define CLIENT_DEFAULT_MAX_FRAME (4u * 1024u * 1024u)
/* Room for the daemon's error messages; longer ones are cut. */
#define CLIENT_LAST_ERROR_MAX 1024u

struct aioc_client {
    /* The socket and the bytes read from it. */
    conn conn;
    /* The id of the next request; starts at 1 and only grows. */
    uint64_t next_request_id;
    /* Limits from the hello reply. */
    uint32_t max_frame;
    uint32_t max_in_flight;
    /* The daemon's version string (owned). */
    char *server_version;
    /* The daemon's message for the last refused request, or "". */
    char last_error[CLIENT_LAST_ERROR_MAX];
    aioc_output_cb output_cb;
    void *output_userdata;
    /* Set while the output callback runs, to refuse re-entrant calls. */
    bool in_callback;
    /* A negative errno once the connection cannot be used any more. */
    int dead;
};

/* Starts a public call: refuses a dead or re-entered client (the errno it
 * died with, -EBUSY) and clears the last error. */
int client_begin(aioc_client *c);

/* Records the daemon's message as the last error (cut to fit). */
void client_set_error(aioc_client *c, const char *message);

/*
 * Sends `m` (its request_id is filled in) and waits for its reply, which
 * must have body `want` (OUTPUT_END for Logs). *ret_reply gets the reply
 * (free with wire_free). An Error reply returns its errno and sets the last
 * error; for ERROR_TASK_FAILED (-EIO) *ret_reply is set too, so that the
 * caller can take the failed outcome.
 */
int client_call(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                Aiod__ServerMessage **ret_reply);

#endif
