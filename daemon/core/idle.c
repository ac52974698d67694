/*
 * Memory back to the kernel when idle (idle.h).
 */
#include "core/idle.h"

#include <malloc.h>
#include <stdbool.h>

#include "core/coro.h"
#include "core/task.h"

#define IDLE_DELAY_MS 1000u

static uv_timer_t timer;
static bool timer_init;

static void on_idle_timer(uv_timer_t *h) {
    (void)h;
    if (task_count_unfinished() > 0)
        return;
    coro_release_stack();
    task_cache_release();
    malloc_trim(0);
}

void idle_init(uv_loop_t *loop) {
    uv_timer_init(loop, &timer);
    uv_unref((uv_handle_t *)&timer);
    timer_init = true;
}

void idle_done(void) {
    if (timer_init)
        uv_close((uv_handle_t *)&timer, NULL);
    timer_init = false;
}

void idle_maybe(void) {
    if (timer_init)
        uv_timer_start(&timer, on_idle_timer, IDLE_DELAY_MS, 0);
}
