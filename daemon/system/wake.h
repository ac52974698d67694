/*
 * A wake-up another thread sends to the event loop: an eventfd under a
 * uv_poll_t, in place of libuv's uv_async_t.
 *
 * Why not uv_async_t: libuv 1.44 (Debian 12's) marks the handle busy,
 * writes its eventfd, then marks it done; the loop's callback spins (997
 * rounds, then sched_yield, and again) while it sees the handle busy. When
 * the sending thread is preempted between its write and its second mark,
 * which is what happens when the loop it wakes runs on the same CPU, the
 * loop spins until the scheduler gives the sender its CPU back: measured
 * 26 us added to every commit of the state store, whose thread and the
 * loop often share a CPU. Here the sender only writes, and a flag saves
 * the writes of wake-ups the loop has not taken yet.
 */
#ifndef AIOD_WAKE_H
#define AIOD_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

typedef struct loop_wake loop_wake;

struct loop_wake {
    uv_poll_t poll;
    int fd;
    /* A wake-up was sent that the loop has not taken yet. */
    atomic_bool sent;
    void (*cb)(loop_wake *w);
};

/*
 * Sets up `w` (the caller's, kept until loop_wake_close) on `loop`: `cb`
 * runs on the loop's thread after one or more loop_wake_send calls. Like
 * the store's, the handle does not keep the loop alive (uv_unref). Returns
 * 0, or a negative errno (eventfd's or libuv's).
 */
int loop_wake_init(uv_loop_t *loop, loop_wake *w, void (*cb)(loop_wake *w));

/*
 * From any thread: `cb` runs on the loop's thread after this call. What the
 * sender did before the call is seen by `cb` if it is published under a
 * lock `cb` takes too (the wake-up only wakes). Never blocks.
 */
void loop_wake_send(loop_wake *w);

/* Loop's thread: stops and closes `w` (no callback runs after it). */
void loop_wake_close(loop_wake *w);

#endif
