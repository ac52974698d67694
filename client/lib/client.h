/*
 * client: the aioc_client handle and the request/reply engine the other
 * files build on. A blocking request is sent with a fresh id; while its
 * reply is awaited, Output events go to the output callbacks, replies of
 * started (non-blocking) requests are handed to request.c, stale or unknown
 * messages are skipped, and a connection-level error (request id 0) ends
 * the connection.
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

/* A request id the non-blocking engine waits on, and whose request it is. */
typedef struct client_entry {
    uint64_t id;
    aioc_request *req;
} client_entry;

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

    /* Frames queued for the socket: bytes [wpos, wlen) of wbuf are unsent. */
    uint8_t *wbuf;
    size_t wpos, wlen, wcap;
    /* The ids of the live started requests, ascending (ids only grow, so a
     * new one is appended). A request keeps its ids until it is freed, so
     * that late Output events still reach its output callback. */
    client_entry *entries;
    size_t n_entries, cap_entries;
    /* Completed requests whose callback is due, oldest first. */
    aioc_request *due_head, *due_tail;
    /* Set while aioc_process runs, so that starting a request from a
     * callback only queues its frame. */
    bool in_process;
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

/* Marks the connection dead with r (the first reason sticks), shuts the
 * socket down so that a poll on it wakes up, and completes every started
 * request in flight with the error. Returns the connection's errno. */
int client_die(aioc_client *c, int r);

/* Packs `m` (its request_id is filled in) onto the write queue. 0,
 * -EMSGSIZE, -ENOMEM (the connection is still fine then). */
int client_queue(aioc_client *c, Aiod__ClientMessage *m);

/* Writes what the socket takes of the write queue without blocking. 0 or
 * the connection's errno (it died). */
int client_flush_some(aioc_client *c);

/* Hands a message that is not the reply a blocking call waits for to the
 * non-blocking engine (request.c): output lines, replies of started
 * requests, connection errors. Takes `m`. 0 or the connection's errno. */
int client_dispatch(aioc_client *c, Aiod__ServerMessage *m);

/* The Output event `o` of request `id`: to its request's output callback
 * or the client's. */
void client_deliver_output(aioc_client *c, uint64_t id, const Aiod__Output *o);

/* request.c: completes every started request in flight with error r. */
void request_fail_all(aioc_client *c, int r);
/* request.c: detaches every request from the closing client. */
void request_detach_all(aioc_client *c);

#endif
