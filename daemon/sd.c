/*
 * systemd notifications and watchdog (sd.h).
 */
#include "sd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "conn.h"
#include "log.h"
#include "sched.h"
#include "task.h"

static uv_timer_t watchdog;
static bool watchdog_init;

static void status_line(char *buf, size_t len) {
    snprintf(buf, len, "STATUS=%zu running, %zu waiting, %llu done, %u connections",
             task_count_running(), task_count_unfinished() - task_count_running(),
             (unsigned long long)task_count_finished_total(), conn_count());
}

void sd_status(void) {
    char buf[256];
    status_line(buf, sizeof(buf));
    sd_notify(0, buf);
}

static void on_watchdog(uv_timer_t *h) {
    (void)h;
    sd_notify(0, "WATCHDOG=1");
}

void sd_status_changed(void) {
    /* Throttled by a one-shot timer in a later change; for now immediate
     * updates would cost a system call per task, so nothing is sent. */
}

void sd_ready(uv_loop_t *loop) {
    char buf[300];
    uint64_t usec = 0;
    status_line(buf, sizeof(buf));
    sd_notifyf(0, "READY=1\n%s", buf);
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uv_timer_init(loop, &watchdog);
        watchdog_init = true;
        uint64_t ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&watchdog, on_watchdog, ms, ms);
        uv_unref((uv_handle_t *)&watchdog);
        log_debug("watchdog ping every %llu ms", (unsigned long long)ms);
    }
}

void sd_stopping(void) {
    sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
    if (watchdog_init)
        uv_timer_stop(&watchdog);
}

void sd_done(void) {
    if (watchdog_init)
        uv_close((uv_handle_t *)&watchdog, NULL);
    watchdog_init = false;
}
