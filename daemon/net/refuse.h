/*
 * When the daemon cannot start (invalid settings) under socket activation:
 * answer the clients already waiting on the socket instead of leaving them
 * queued (refuse.c).
 */
#ifndef AIOD_REFUSE_H
#define AIOD_REFUSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Accepts every connection waiting on the socket systemd passed (if any),
 * sends each an Error frame (request id 0, ERROR_SHUTTING_DOWN) carrying
 * `why`, and closes it. A connection left queued would make systemd start
 * the service again at once, over and over, until its start limit put the
 * socket unit into a failed state. Returns how many clients were answered.
 */
int refuse_waiting_clients(const char *why);

/* The same on the listening socket `lfd` (server_listen_fd), for a start
 * that fails after the socket was taken over (the state store). */
int refuse_waiting_on(int lfd, const char *why);

/* An Error frame (header and ServerMessage, request id 0) with `code` and
 * `why` into buf, for a client refused before any connection object exists:
 * its size, or 0 if it does not fit in `size` bytes. */
size_t refuse_error_frame(int code, const char *why, uint8_t *buf, size_t size);

#endif
