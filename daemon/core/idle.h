/*
 * Giving memory back when the daemon goes idle: a second after the last
 * task ends (and nothing started meanwhile), glibc's free lists are
 * returned to the kernel (malloc_trim) and the coroutine run stack's pages
 * are dropped. One timer shot per busy period; an idle daemon never wakes.
 */
#ifndef AIOD_IDLE_H
#define AIOD_IDLE_H

#include <uv.h>

void idle_init(uv_loop_t *loop);
void idle_done(void);
/* The last unfinished task just ended. */
void idle_maybe(void);

#endif
