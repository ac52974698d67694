/*
 * The listening socket: taken from systemd socket activation when present
 * (sd_listen_fds; the path is then unused and may be NULL),
 * otherwise created at the configured path (a stale socket file is replaced,
 * a live daemon on the same path is refused). Accepted connections go to
 * conn.c.
 */
#ifndef AIOD_SERVER_H
#define AIOD_SERVER_H

#include <stdbool.h>

#include <uv.h>

/* Starts listening. 0 or a negative errno (logged). */
int server_start(uv_loop_t *loop, const char *path);
/* Stops accepting and removes the socket file we created. */
void server_stop(void);
/* Whether the socket came from systemd. */
bool server_activated(void);

#endif
