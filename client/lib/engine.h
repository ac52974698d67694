/*
 * engine: the request engine under every libaioclient call. It owns the
 * client's write queue, the table of request ids still waiting for their
 * final frame, the list of completions whose callbacks are due, and the
 * rules that say which frame ends which request (docs/libaioclient.md,
 * "How a request ends"). It hands frames to requests and never calls up
 * into client.c or request.c: those build on it.
 *
 * A request's id stays in the table from the moment its frame is queued
 * until its final frame arrives (or the connection dies, or the client is
 * closed), whether or not the program still holds the handle: a handle
 * freed before that becomes the library's own ("internal") and is
 * destroyed at its final frame, so that its late frames are recognised and
 * dropped, never handed to someone else.
 */
#ifndef AIOC_ENGINE_H
#define AIOC_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aioc.h"
#include "aiod.pb-c.h"
#include "handle.h"
#include "outcome.h"

enum request_kind {
    REQUEST_HELLO,
    REQUEST_SUBMIT,
    REQUEST_RUN,
    REQUEST_AWAIT,
    REQUEST_GATHER,
    REQUEST_CANCEL,
    REQUEST_LOGS,
};

struct aioc_request {
    /* The client while the request is in its table or on its due list,
     * else NULL (it needs it for nothing more; the client may be gone). */
    aioc_client *client;
    enum request_kind kind;
    /* The request id on the wire. */
    uint64_t id;
    /* A submit with follow: its final frame is the OutputEnd, not the
     * Submitted reply that completes it. */
    bool follow;
    /* The id is in the client's table: the final frame has not come. */
    bool in_table;
    /* Completed: error is final; the callback may still be due. */
    bool done;
    /* On the client's due list. */
    bool due;
    /* The library's own (a hello, a Cancel it sent, or a handle the program
     * freed before its final frame): no callbacks, destroyed at its final
     * frame. */
    bool internal;
    /* A run given up before its task id was known: cancel the task once
     * the Started event names it. */
    bool abandon;
    /* Made while the client had AIOC_FLAG_FINAL_CALLBACKS: the completion
     * callback runs exactly once, also after cancel, free and close. */
    bool final_cb;
    /* The completion callback has run (or is running). */
    bool cb_ran;
    /* Its callback runs from inside aioc_request_free: a nested free of it
     * is ignored. */
    bool freeing;
    /* How it ended: AIOC_END_*, 0 while in flight. */
    int end;
    int error;
    /* The daemon's message for a refusal (owned), or NULL. */
    char *error_message;
    aioc_request_cb cb;
    void *userdata;
    aioc_output_cb output_cb;
    void *output_userdata;
    aioc_event_cb event_cb;
    void *event_userdata;
    /* How many outcomes the reply must hold. */
    size_t n_expected;
    /* submit: its task; run: its one task (from Started or the outcome). */
    uint64_t task_id;
    /* gather, run: the tasks' ids from the Started event, or from the
     * outcomes when the daemon sent none (owned). */
    uint64_t *task_ids;
    size_t n_task_ids;
    int count;
    int state;
    aioc_outcome **outcomes;
    size_t n_outcomes;
    aioc_outcome *failed;
    /* The counts of its OutputEnd events that were not zero (a followed
     * gather's or run's tasks, a followed submit's, a logs'): put on the
     * outcomes when they come, summed for aioc_request_output_dropped. */
    output_ends ends;
    /* The next request on the due list. */
    aioc_request *due_next;
};

/* Records the daemon's message as the client's last error (cut to fit). */
void engine_set_error(aioc_client *c, const char *message);

/* Marks the connection dead with r (the first reason sticks), shuts the
 * socket down so that a poll on it wakes up, completes every request in
 * flight with r and empties the table. Returns the connection's errno. */
int engine_die(aioc_client *c, int r);

/* Packs `m` (its request_id is filled in) onto the write queue. 0,
 * -EMSGSIZE, -ENOMEM (the connection is still fine then). */
int engine_queue(aioc_client *c, Aiod__ClientMessage *m);

/* Writes what the socket takes of the write queue without blocking. 0 or
 * the connection's errno (it died). */
int engine_flush_some(aioc_client *c);

/* Writes the whole queue, waiting for room (a blocking call). 0 or the
 * connection's errno. */
int engine_flush_all(aioc_client *c);

/* A new request of the program's (cb may be NULL), or NULL on OOM. */
aioc_request *engine_request_new(aioc_client *c, enum request_kind kind, aioc_request_cb cb,
                                 void *userdata);

/* Queues `m` for `req` and puts its id in the table; the frame goes out now
 * if the socket takes it. On failure nothing is queued or recorded, and
 * the caller still owns req. */
int engine_send(aioc_client *c, aioc_request *req, Aiod__ClientMessage *m);

/* Frees a request that is in no table and on no due list (a request that
 * failed to start). */
void engine_request_destroy(aioc_request *req);

/* Handles one message that is not the reply a blocking call waits for:
 * output lines, events, replies of started requests, connection errors.
 * Takes `m`. */
void engine_dispatch(aioc_client *c, Aiod__ServerMessage *m);

/* True for a body that never ends a request by itself: Output, OutputEnd,
 * Started and bodies this library does not know (a newer daemon's). */
bool engine_is_event(Aiod__ServerMessage__BodyCase body);

/* Takes the hello reply's limits and version. 0, -EPROTONOSUPPORT,
 * -ENOMEM. */
int engine_apply_hello(aioc_client *c, const Aiod__HelloReply *h);

/* aioc_request_cancel and aioc_request_free. */
int engine_request_cancel(aioc_request *req);
void engine_request_free(aioc_request *req);

/* aioc_close's part: ends every request (callbacks as the client's flags
 * say) and lets go of them. */
void engine_close(aioc_client *c);

#endif
