/*
 * systemd integration: READY/STATUS/STOPPING notifications and the watchdog
 * ping from a loop timer at half of WATCHDOG_USEC. All of it does nothing
 * when the daemon is not run by systemd (no NOTIFY_SOCKET).
 */
#ifndef AIOD_SD_H
#define AIOD_SD_H

#include <uv.h>

/* Sends READY=1 with a status line and starts the watchdog timer. */
void sd_ready(uv_loop_t *loop);
/* Sends STOPPING=1 and stops the watchdog timer. */
void sd_stopping(void);
/* Sends STATUS= with the live counts. */
void sd_status(void);
/* Task counts changed: STATUS= is sent soon (at most once a second; an
 * idle daemon sends nothing). */
void sd_status_changed(void);
/* Closes the timer handle. */
void sd_done(void);

#endif
