/*
 * The state of an aioc_client handle, shared by the engine (engine.h),
 * which drives it, and the blocking calls (client.h) on top of it.
 */
#ifndef AIOC_HANDLE_H
#define AIOC_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "conn.h"

/* Frame limit used until the hello reply announces the daemon's. */
#define CLIENT_DEFAULT_MAX_FRAME (4u * 1024u * 1024u)
/* Room for the daemon's error messages; longer ones are cut. */
#define CLIENT_LAST_ERROR_MAX 1024u
/* How long aioc_connect waits for the connection and the hello reply
 * unless $AIOC_CONNECT_TIMEOUT says otherwise: long enough for a daemon
 * busy starting or swapping, short enough that a hung one is noticed. */
#define CLIENT_CONNECT_TIMEOUT_DEFAULT 30.0

/* A request id the engine waits on, and whose request it is. */
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
    /* The daemon's version string (owned), NULL before the hello reply. */
    char *server_version;
    /* The daemon's message for the last refused request, or "". */
    char last_error[CLIENT_LAST_ERROR_MAX];
    aioc_output_cb output_cb;
    void *output_userdata;
    /* aioc_set_idle_callback's, called through idle_trampoline. */
    void (*idle_cb)(void *userdata);
    void *idle_userdata;
    /* AIOC_FLAG_*. */
    unsigned flags;
    /* Set while a program's callback runs, to refuse re-entrant calls. */
    bool in_callback;
    /* A negative errno once the connection cannot be used any more. */
    int dead;

    /* aioc_connect_start: the hello is in flight. */
    bool connecting;
    /* The connect callback is due (from the next aioc_process), with
     * connect_error. */
    bool connect_due;
    int connect_error;
    aioc_connect_cb connect_cb;
    void *connect_userdata;

    /* Frames queued for the socket: bytes [wpos, wlen) of wbuf are unsent. */
    uint8_t *wbuf;
    size_t wpos, wlen, wcap;
    /* The ids of started requests whose final frame has not come,
     * ascending (ids only grow, so a new one is appended). */
    client_entry *entries;
    size_t n_entries, cap_entries;
    /* Completed requests whose callback is due, oldest first. */
    aioc_request *due_head, *due_tail;
    /* Set while aioc_process runs, so that starting a request from a
     * callback only queues its frame. */
    bool in_process;
    /* How many library calls that may run callbacks are on the stack
     * (CLIENT_SCOPE), and whether a callback closed the client meanwhile:
     * the close is finished when the outermost of them returns. */
    unsigned depth;
    bool close_asked;
    bool closing;
};

#endif
