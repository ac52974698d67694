/*
 * conn: the client's end of the Unix socket. Connecting, writing whole
 * frames and reading whole frames with plain blocking-style loops over a
 * non-blocking socket and poll(). While a write waits for room it keeps
 * reading, so the client never deadlocks against a daemon that is itself
 * waiting for the client to read. Every wait honours the deadline, if one
 * is set (the connect and hello of aioc_connect), with -ETIMEDOUT.
 */
#ifndef AIOC_CONN_H
#define AIOC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"

typedef struct conn {
    /* The connected socket (non-blocking, close-on-exec), or -1. */
    int fd;
    /* Bytes received and not yet handed out as frames. */
    frame_reader reader;
    /* The daemon closed its end; frames already buffered may still be read. */
    bool eof;
    /* CLOCK_MONOTONIC milliseconds after which a wait fails with
     * -ETIMEDOUT, or 0 for none. */
    int64_t deadline;
    /* Called before a blocking read waits for the daemon (the client's
     * idle callback), or NULL. */
    void (*before_wait)(void *data);
    void *before_wait_data;
} conn;

/* Now on CLOCK_MONOTONIC, in milliseconds. */
int64_t conn_now_ms(void);

/* Connects to the Unix socket at `path`, waiting at most until c->deadline
 * (set it before; 0 waits forever) when the listener's backlog is full.
 * 0, -ENAMETOOLONG, -ENOENT, -ECONNREFUSED, -EACCES, ... (the errno of
 * socket/connect), -ETIMEDOUT. */
int conn_open(conn *c, const char *path, uint32_t max_frame);

/* As conn_open, but never waits: -EAGAIN when the listener's backlog is
 * full (try again later). */
int conn_open_nowait(conn *c, const char *path, uint32_t max_frame);

/* Closes the socket and frees the buffer. Safe to call twice. */
void conn_close(conn *c);

/* Writes all `len` bytes, reading into the frame buffer meanwhile. 0, also
 * when the daemon hung up after sending a whole frame (its refusal, read
 * next with conn_read_frame); -EPIPE / -ECONNRESET when the daemon went
 * away without one, other negative errnos. */
int conn_write(conn *c, const uint8_t *data, size_t len);

/*
 * Blocks until a whole frame is buffered: 0 and *ret_payload and *ret_len point
 * into the reader (valid until the next call on `c`). -ECONNRESET when the
 * daemon closed the connection, -EMSGSIZE for a frame larger than the limit,
 * -ENOMEM, or the errno of poll/recv.
 */
int conn_read_frame(conn *c, const uint8_t **ret_payload, uint32_t *ret_len);

/* Sends what the socket takes of `len` bytes without waiting: the number of
 * bytes sent (0 when the socket is full), or -EPIPE / -ECONNRESET / another
 * negative errno. */
ssize_t conn_send_some(conn *c, const uint8_t *data, size_t len);

/* Reads what has arrived into the frame buffer without waiting: 1 if bytes
 * came, 0 if none (nothing there, or end of file: see eof), or a negative
 * errno. */
int conn_read_some(conn *c);

/* Takes the next whole buffered frame without reading: 1 and the payload
 * (as conn_read_frame), 0 if none is complete, -EMSGSIZE. */
int conn_next_frame(conn *c, const uint8_t **ret_payload, uint32_t *ret_len);

/* Changes the largest frame accepted (after the hello). */
void conn_set_max_frame(conn *c, uint32_t max_frame);

#endif
