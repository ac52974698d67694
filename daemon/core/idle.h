/*
 * Giving memory back when the daemon goes idle: a second after the last
 * running task ends (and nothing started meanwhile; tasks that only wait
 * for their time, a dependency or a limit do not count), glibc's free lists are
 * returned to the kernel (malloc_trim) and the coroutine run stack's pages
 * are dropped. One timer shot per busy period; an idle daemon never wakes.
 */
#ifndef AIOD_IDLE_H
#define AIOD_IDLE_H

#include <stdbool.h>

#include <uv.h>

/* `busy` says whether tasks run (then nothing is released);
 * `release` gives back what the caller keeps for reuse (task structs). */
void idle_init(uv_loop_t *loop, bool (*busy)(void), void (*release)(void));
void idle_done(void);
/* The last unfinished task just ended. */
void idle_maybe(void);

#endif
