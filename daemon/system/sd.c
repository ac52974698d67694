/*
 * systemd notifications and watchdog (sd.h).
 */
#include "system/sd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "system/log.h"

static uv_timer_t watchdog, status_timer;
static bool timers_init;
/* NOTIFY_SOCKET was set at start-up: without it nothing here does anything. */
static bool notify;
static bool stopping;
static uint64_t watchdog_usec;

static void (*get_counts)(sd_counts *ret);

static void status_line(char *buf, size_t len) {
    sd_counts k = {0};
    if (get_counts)
        get_counts(&k);
    snprintf(buf, len, "STATUS=%s%zu running, %zu waiting, %llu done, %u connections",
             stopping ? "stopping: " : "", k.running, k.unfinished - k.running, k.finished_total,
             k.connections);
}

void sd_status(void) {
    char buf[256];
    if (!notify)
        return;
    status_line(buf, sizeof(buf));
    sd_notify(0, buf);
}

static void on_status_timer(uv_timer_t *h) {
    (void)h;
    sd_status();
}

void sd_status_changed(void) {
    if (!notify || !timers_init || uv_is_active((uv_handle_t *)&status_timer))
        return;
    uv_timer_start(&status_timer, on_status_timer, SD_STATUS_DELAY_MS, 0);
}

static void on_watchdog(uv_timer_t *h) {
    (void)h;
    sd_notify(0, "WATCHDOG=1");
}

void sd_init(uv_loop_t *loop, void (*counts)(sd_counts *ret)) {
    get_counts = counts;
    const char *e = getenv("NOTIFY_SOCKET");
    notify = e && *e;
    uv_timer_init(loop, &watchdog);
    uv_timer_init(loop, &status_timer);
    /* Neither keeps the loop alive at shutdown. */
    uv_unref((uv_handle_t *)&watchdog);
    uv_unref((uv_handle_t *)&status_timer);
    timers_init = true;
}

void sd_ready(void) {
    char buf[300];
    uint64_t usec = 0;
    if (!notify)
        return;
    status_line(buf, sizeof(buf));
    sd_notifyf(0, "READY=1\n%s", buf);
    if (timers_init && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_usec = usec;
        uint64_t ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&watchdog, on_watchdog, ms, ms);
        log_info("watchdog: pinging systemd every %llu ms (WATCHDOG_USEC=%llu)",
                 (unsigned long long)ms, (unsigned long long)usec);
    }
}

uint64_t sd_watchdog_usec(void) {
    return watchdog_usec;
}

void sd_reloading(void) {
    struct timespec ts;
    if (!notify)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
}

void sd_reloaded(const char *status) {
    char buf[300];
    if (!notify)
        return;
    if (status)
        snprintf(buf, sizeof(buf), "STATUS=%s", status);
    else
        status_line(buf, sizeof(buf));
    sd_notifyf(0, "READY=1\n%s", buf);
}

void sd_stopping(void) {
    char buf[256];
    stopping = true;
    if (!notify)
        return;
    status_line(buf, sizeof(buf));
    sd_notifyf(0, "STOPPING=1\n%s", buf);
}

void sd_done(void) {
    if (!timers_init)
        return;
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_close((uv_handle_t *)&status_timer, NULL);
    timers_init = false;
}
