/*
 * Memory back to the kernel when idle (idle.h).
 */
#include "core/idle.h"

#include <malloc.h>
#include <stdbool.h>

#include "base/aiod_limits.h"
#include "core/coro.h"

static uv_timer_t timer;
static bool timer_init;
static bool (*is_busy)(void);
static void (*release_cached)(void);

static void on_idle_timer(uv_timer_t *h) {
    (void)h;
    if (is_busy())
        return;
    coro_release_stack();
    release_cached();
    malloc_trim(0);
}

void idle_init(uv_loop_t *loop, bool (*busy)(void), void (*release)(void)) {
    is_busy = busy;
    release_cached = release;
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
        uv_timer_start(&timer, on_idle_timer, LIMIT_IDLE_DELAY_MS, 0);
}
