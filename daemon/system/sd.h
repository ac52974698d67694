/*
 * systemd integration: READY/STATUS/STOPPING/RELOADING notifications and the
 * watchdog ping from a loop timer at half of WATCHDOG_USEC, so a loop that
 * hangs stops the pings and systemd restarts the service. All of it does
 * nothing when the daemon is not run by systemd (no NOTIFY_SOCKET): no
 * timers, no wake-ups.
 *
 * STATUS= carries the live counts ("12 running, 3 waiting, 4810 done,
 * 2 connections"). Task changes only arm a one-shot timer (SD_STATUS_DELAY_MS)
 * whose callback sends the line, so a busy daemon sends at most one a second
 * and an idle one sends nothing.
 */
#ifndef AIOD_SD_H
#define AIOD_SD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Delay between a change of the counts and the STATUS= line that reports
 * it; changes meanwhile are folded into that one line. */
#define SD_STATUS_DELAY_MS 1000u

/* The live counts STATUS= reports. */
typedef struct sd_counts {
    size_t running;
    size_t unfinished;
    unsigned long long finished_total;
    unsigned connections;
} sd_counts;

/* Sets up the timers; `counts` fills in the live counts when a status line
 * is due. Call once, before anything can change a count. */
void sd_init(uv_loop_t *loop, void (*counts)(sd_counts *ret));
/* Sends READY=1 with a status line and starts the watchdog timer. */
void sd_ready(void);
/* Sends RELOADING=1 with MONOTONIC_USEC= (call before reloading). */
void sd_reloading(void);
/* Sends READY=1 after a reload, with `status` (or the counts when NULL). */
void sd_reloaded(const char *status);
/* Sends STOPPING=1; the watchdog keeps pinging while tasks wind down. */
void sd_stopping(void);
/* Sends STATUS= with the live counts now. */
void sd_status(void);
/* Task counts changed: STATUS= is sent within SD_STATUS_DELAY_MS. */
void sd_status_changed(void);
/* The watchdog interval in microseconds (0 when off). */
uint64_t sd_watchdog_usec(void);
/* Closes the timer handles. */
void sd_done(void);

#endif
