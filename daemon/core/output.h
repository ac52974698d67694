/*
 * Bounded per-task output: the lines a task prints (and its children, which
 * share their root's output, as they would share stdout), kept in a ring of
 * at most N lines, and the followers that receive new lines as events. When
 * the ring is full the oldest line is dropped and counted.
 */
#ifndef AIOD_OUTPUT_H
#define AIOD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "base/list.h"

/* A connection receiving an output's lines for one request. Owned by the
 * connection (its `conn_node` is on the connection's list). */
typedef struct follower {
    /* On output->followers. */
    list node;
    /* On the connection's list of followers. */
    list conn_node;
    conn *c;
    uint64_t request_id;
    output *out;
    /* The follow is the request itself (Logs): its end completes the
     * request for in-flight accounting. */
    bool holds_request;
} follower;

struct output {
    unsigned refs;
    /* The id of the task that owns the output (the root of its family). */
    uint64_t task_id;
    /* Ring of `cap` lines; `count` valid, oldest at `head`. */
    char **lines;
    uint8_t *streams;
    uint32_t cap;
    uint32_t head;
    uint32_t count;
    /* Sequence number of the next line; lines ever printed. */
    uint64_t next_seq;
    uint64_t dropped;
    /* Set once the owning task ended: followers got OutputEnd. */
    bool ended;
    int end_state;
    list followers;
};

/* A new output for task `task_id` keeping `cap` lines. NULL on OOM. */
output *output_new(uint64_t task_id, uint32_t cap);
output *output_ref(output *o);
/* Returns NULL. Accepts NULL. */
output *output_unref(output *o);

/* Appends one line (copied, cut at LIMIT_MAX_LINE) and sends it to the
 * followers. 0 or -ENOMEM. */
int output_append(output *o, int stream, const char *line, size_t len);

/*
 * Makes `c` follow `o` for request `request_id`. With `replay` the retained
 * lines are sent first; then new ones as they come. When the output has
 * ended (or `follow` is false) OutputEnd is sent at once, no follower is
 * created and 1 is returned. 0 when following, -ENOMEM.
 */
int output_follow(output *o, conn *c, uint64_t request_id, bool replay, bool follow, int state_now,
                  bool holds_request);

/* The owning task ended in `state`: every follower gets OutputEnd and is
 * removed. */
void output_end(output *o, int state);

/* Removes and frees a follower (when its connection closes). */
void output_follower_free(follower *f);

#endif
