/*
 * Bounded per-task output: the lines a task prints (and its children, which
 * share their root's output, as they would share stdout), kept in a ring of
 * at most N lines, and the sinks that receive lines as they can. When the
 * ring is full the oldest line is dropped and counted. A sink that cannot
 * keep up falls behind and loses lines, counted, never the lines it can
 * take; a task's own follower may hold back the producer for a while
 * (output_held). The core knows nothing of who follows: a sink is three
 * callbacks.
 */
#ifndef AIOD_OUTPUT_H
#define AIOD_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/forward.h"
#include "base/list.h"

/*
 * Something that receives an output's lines: a client following the task,
 * in the request layer. Each sink has its own place in the output (the
 * next line it is to get), so a sink that cannot take lines now (its
 * client reads slowly) falls behind and catches up later; lines that leave
 * the ring before it gets them are counted as dropped for it. The core
 * knows only these callbacks; the sink's owner embeds the struct and frees
 * it.
 */
typedef struct output_sink output_sink;
typedef struct output_sink_ops {
    /* One line; `line` is borrowed. */
    void (*line)(output_sink *s, uint64_t task_id, uint64_t seq, int stream, const char *line);
    /* Whether the sink can take a line now. When it says no, its owner
     * calls output_sink_pump once it can again. */
    bool (*room)(output_sink *s);
    /* The sink got every line it will get: the output ended (or, attached
     * with follow false, the lines there were then), and it caught up. It
     * has been detached and may be freed. `dropped`: lines it did not get. */
    void (*end)(output_sink *s, uint64_t task_id, uint64_t dropped, int state);
} output_sink_ops;

struct output_sink {
    /* On output->sinks while attached. */
    list node;
    const output_sink_ops *ops;
    /* While attached (a reference). */
    output *o;
    /* The next line it is to get; with follow false, where it ends. */
    uint64_t next_seq;
    uint64_t stop_seq;
    uint64_t dropped;
    /* The state to end with when the output has not ended (follow false). */
    int state_now;
    /* Holds back the output's producer while behind (output_held). */
    bool holds;
    /* When it last could not take a line (uv_hrtime ms), 0 while it keeps
     * up. */
    uint64_t stuck_since;
};

/* A producer waiting for the output's followers (output_wait_room). */
typedef struct output_waiter output_waiter;
struct output_waiter {
    list node;
    void (*fn)(output_waiter *w);
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
    /* Attached sinks (output_sink.node), and how many. */
    list sinks;
    uint32_t n_sinks;
    /* Producers waiting for room (output_waiter.node). */
    list waiters;
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
 * Attaches `s` (initialised with its ops) to `o`. With `replay` it starts
 * at the oldest retained line (the lines before it count as dropped for
 * it), else at the next line printed. With `follow` false it ends after the
 * lines there are now, with `state_now` unless the output ended. With
 * `holds`, it holds back the producer while behind (output_held). Returns
 * 1 when the sink already ended (detached; its end callback ran), else 0.
 */
/* The state output_end gives for a task the stop cut off (the state store
 * keeps it: it is not over), so that a follower is told the daemon is
 * stopping rather than that the task was cancelled. */
#define OUTPUT_END_CUT_OFF (-1)

int output_attach(output *o, output_sink *s, bool replay, bool follow, int state_now, bool holds);

/* Sends a sink the lines it can take now (its owner: there is room
 * again); ends it if it is done. 1 when it ended, else 0. */
int output_sink_pump(output_sink *s);

/* Whether the sink has lines it has not got yet. */
bool output_sink_behind(const output_sink *s);

/* Detaches a sink that has not ended (its follower goes away). Safe to call
 * on a sink that is not attached. */
void output_sink_detach(output_sink *s);

/* About how many bytes of heap the output holds: its ring and the lines
 * in it. 0 for NULL. */
size_t output_footprint(const output *o);

/* Whether anyone follows the output, and how many sinks. */
bool output_followed(const output *o);
uint32_t output_sink_count(const output *o);

/* The owning task ended in `state`: each sink ends once it has caught up. */
void output_end(output *o, int state);

/*
 * Whether a sink that holds is behind by half the ring or more, and has
 * not been stuck for output_hold_ms: the producer should stop producing
 * (proc stops reading its child's output) until output_wait_room's
 * callback.
 */
bool output_held(const output *o);

/* While output_held: how long until it is false again by time alone (what
 * is left of output_hold_ms since the sink that holds longest got stuck;
 * all of it for one behind but not stuck yet). 0 when not held. */
uint64_t output_hold_left_ms(const output *o);

/* Calls w->fn once output_held is false again (or a holding sink goes).
 * The waiter must stay valid until then or output_waiter_cancel. */
void output_wait_room(output *o, output_waiter *w);
void output_waiter_cancel(output_waiter *w);

#endif
