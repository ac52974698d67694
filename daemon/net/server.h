/*
 * The listening socket: taken from systemd socket activation when present
 * (sd_listen_fds; the path is then unused and may be NULL),
 * otherwise created at the configured path (a stale socket file is replaced,
 * a live daemon on the same path is refused). Accepted connections go to
 * conn.c.
 *
 * Accepting is done here, not by libuv's uv_listen: on EMFILE libuv closes
 * its spare descriptor, accepts and closes every waiting client without a
 * word and tells nobody. Here a client that cannot be served for want of
 * descriptors is told so (ERROR_LIMIT, request id 0, "too many open
 * files…"), through a descriptor kept in reserve for exactly that, and the
 * refusals are counted and logged at most once a second. When not even the
 * reserve is left, accepting pauses for LIMIT_ACCEPT_RETRY_MS instead of
 * spinning on a socket that stays readable.
 */
#ifndef AIOD_SERVER_H
#define AIOD_SERVER_H

#include <stdbool.h>

#include <uv.h>

/* Starts listening. 0 or a negative errno (logged). */
int server_start(uv_loop_t *loop, const char *path);
/* Stops accepting and removes the socket file we created. Safe to call
 * more than once, and without server_start. */
void server_stop(void);
/* Whether the socket came from systemd. */
bool server_activated(void);
/* The listening socket, or -1 (before server_start, after server_stop). */
int server_listen_fd(void);

/*
 * The most connections (refused ones still lingering included) that the
 * open-file limit `nofile` leaves room for, as main.c works it out at start;
 * 0 for no cap. A connection over it is refused at once with ERROR_LIMIT,
 * whatever max_connections says after a reload. Call it before or after
 * server_start.
 */
void server_set_fd_cap(unsigned cap, unsigned long long nofile);

#endif
