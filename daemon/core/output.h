/*
 * Bounded per-task output: the lines a task prints (and its children, which
 * share their root's output, as they would share stdout), kept in a ring of
 * at most N lines, and the sinks that receive new lines as they come. When
 * the ring is full the oldest line is dropped and counted. The core knows
 * nothing of who follows: a sink is two callbacks.
 */
#ifndef AIOD_OUTPUT_H
#define AIOD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "base/list.h"

/*
 * Something that receives an output's lines as they come: a client
 * following the task, in the request layer. The core knows only these two
 * callbacks; the sink's owner embeds the struct and frees it.
 */
typedef struct output_sink output_sink;
typedef struct output_sink_ops {
    /* One new (or replayed) line; `line` is borrowed. */
    void (*line)(output_sink *s, uint64_t task_id, uint64_t seq, int stream, const char *line);
    /* The output ended, or the sink was attached with follow false: the sink
     * has already been detached (output_sink_detach) and may be freed. */
    void (*end)(output_sink *s, uint64_t task_id, uint64_t dropped, int state);
} output_sink_ops;

struct output_sink {
    /* On output->sinks while attached. */
    list node;
    const output_sink_ops *ops;
};

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
    /* Set once the owning task ended: every sink got its end. */
    bool ended;
    int end_state;
    /* Attached sinks (output_sink.node). */
    list sinks;
};

/* A new output for task `task_id` keeping `cap` lines. NULL on OOM. */
output *output_new(uint64_t task_id, uint32_t cap);
output *output_ref(output *o);
/* Returns NULL. Accepts NULL. */
output *output_unref(output *o);

/* Appends one line (copied; made valid UTF-8, each ill-formed sequence and
 * each NUL byte replaced by U+FFFD; then cut on a character boundary to at
 * most LIMIT_MAX_LINE bytes) and hands it to the sinks. `line` is borrowed,
 * any bytes. 0 or -ENOMEM. */
int output_append(output *o, int stream, const char *line, size_t len);

/*
 * Attaches `s` (initialised with its ops) to `o`. With `replay` the
 * retained lines go to it first; then new ones as they come. When the
 * output has ended, or `follow` is false, s->ops->end is called at once
 * (with the final state, or `state_now`), the sink is not attached and 1 is
 * returned; else 0.
 */
int output_attach(output *o, output_sink *s, bool replay, bool follow, int state_now);

/* Detaches a sink that has not ended (its follower goes away). Safe to call
 * on a sink that is not attached. */
void output_sink_detach(output_sink *s);

/* Whether anyone follows the output. */
bool output_followed(const output *o);

/* The owning task ended in `state`: every sink is detached, then told. */
void output_end(output *o, int state);

#endif
