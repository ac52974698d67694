/*
 * One client connection, the transport: reading frames (incrementally, many
 * per read), batching replies into few writes, backpressure (in-flight
 * requests and queued bytes), the peer's credentials and the connection
 * caps. It knows nothing of requests or tasks: each whole frame goes up
 * through conn_handlers, and the layer above holds reading when it has
 * enough to do (conn_hold). Memory is freed only in libuv's close
 * callback.
 */
#ifndef AIOD_CONN_H
#define AIOD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "aiod-pb.h"
#include "frame.h"
#include "base/list.h"

typedef struct conn conn;

struct conn {
    uv_pipe_t pipe;
    uint64_t serial;
    frame_reader rd;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    /* Counted in the per-uid connection count. */
    bool counted;
    /* Refused (a connection limit): the error was sent, input is discarded
     * until the client hangs up. */
    bool refused;
    /* Closing started: nothing more is sent or read. */
    bool closing;
    /* To be closed at the end of this loop iteration (a client that does
     * not read its replies, no memory for a reply): sending, which happens
     * deep inside request and task handling, never closes directly. */
    bool dropping;
    /* Send what is queued, then close (after a fatal protocol error). */
    bool draining;
    /* Reading stopped for backpressure. */
    bool paused;
    /* The layer above holds reading (conn_hold). */
    bool held;
    /* The client shut down its sending side (a half-close, as `nc -U`
     * does at the end of its input) and still reads: nothing more is read,
     * and the layer above was told (half_closed) once the frames that came
     * before it were handled. */
    bool peer_done;
    bool told_peer_done;
    /* The layer above asked to be called back (conn_kick), or to be once
     * no more than kick_below bytes are queued (conn_kick_below). */
    bool kicked;
    bool kick_armed;
    size_t kick_below;
    /* What this connection adds to the total of queued bytes (0 once it is
     * dropped or closing). */
    size_t counted_bytes;
    /* What its read buffer adds to the total of read buffers
     * (max_read_buffer_total), and when bytes last came in (uv_now). */
    size_t counted_read;
    uint64_t last_read_ms;
    /* Inside dispatch: do not process more frames re-entrantly. */
    bool dispatching;
    /* Bytes encoded and waiting for the next write. */
    uint8_t *wbuf;
    size_t wlen;
    size_t wcap;
    /* The buffer being written by libuv now, if any. */
    uint8_t *inflight_buf;
    size_t inflight_len;
    bool writing;
    uv_write_t wreq;
    /* On the list of connections with something to flush or resume. */
    list dirty_node;
    /* On the list of connections that stopped because the iteration's
     * dispatch slice ran out (LIMIT_DISPATCH_SLICE_MS). */
    list slice_node;
    /* The layer above's state for this connection (conn_handlers.opened
     * sets it; closing frees it). */
    void *data;
    list all_node;
    /* On the list of connections whose hello is awaited, in the order
     * their reading began, and when it began (uv_now; 0 before): the
     * hello's clock. */
    list greet_node;
    uint64_t accepted_ms;
};

/* What the layer above does with a connection. */
typedef struct conn_handlers {
    /* A connection passed the transport's checks. 0 to keep it: reading
     * starts when the layer above calls conn_start_reading. Negative to
     * close it. */
    int (*opened)(conn *c);
    /* One whole frame's payload (borrowed for the call). */
    void (*frame)(conn *c, const uint8_t *payload, size_t len);
    /* Called at the end of the loop iteration after conn_kick, outside any
     * request or task handling. */
    void (*resume)(conn *c);
    /* The client half-closed (conn.peer_done) and every frame it sent
     * was handed up: the layer above closes the connection (conn_close_soon)
     * once it has answered them. */
    void (*half_closed)(conn *c);
    /* The connection is closing: nothing more can be sent; drop c->data. */
    void (*closing)(conn *c);
    /* Whether the client said hello: asked once hello_timeout_ms after the
     * accept (the transport knows frames, not which one is the hello);
     * false closes the connection. */
    bool (*greeted)(conn *c);
} conn_handlers;

/* Sets up the per-loop flush handle and the handlers (borrowed, static). */
int conn_init(uv_loop_t *loop, const conn_handlers *h);

/* Starts reading requests (after conn_handlers.opened). 0 or a negative
 * errno (the connection is then closed). */
int conn_start_reading(conn *c);
void conn_done(void);

/* Serves a connected stream socket `fd` as a connection: the listener's
 * accepted clients, and the connection fuzzer's end of a socketpair. The
 * descriptor is taken, also on failure (then it is closed, or the refused
 * connection closes it). 0 or a negative errno. */
int conn_open_fd(uv_loop_t *loop, int fd);

/* Writes what every connection has queued and resumes reading where
 * backpressure allows. Runs before each poll; the scheduler also calls it
 * after running tasks, so replies leave in the same loop iteration. */
void conn_flush_all(void);

/* Number of open connections. */
unsigned conn_count(void);

/* Closes every connection after flushing what is queued (shutdown). */
void conn_close_all(void);

/* Closes every connection now, dropping what is queued (exit path). */
void conn_abort_all(void);

/* Queues one message for the client. Messages to a closing (or dropping)
 * connection are discarded. */
void conn_send(conn *c, const Aiod__ServerMessage *m);

/*
 * A reply encoded by the caller in place: conn_frame_begin returns where to
 * write its `size` bytes (borrowed, valid until the next send on `c`), then
 * conn_frame_end queues them. NULL when nothing is to be written: the
 * connection is closing, or is dropped for lack of memory, or the reply is
 * over max_frame (the client gets an ERROR_LIMIT for `request_id` instead).
 */
uint8_t *conn_frame_begin(conn *c, uint64_t request_id, size_t size);
void conn_frame_end(conn *c, size_t size);
void conn_send_error(conn *c, uint64_t request_id, Aiod__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Holds reading (the layer above has enough of this client's requests to
 * do), or lets it go on: frames already buffered are handed up then. */
void conn_hold(conn *c, bool hold);

/* Asks for conn_handlers.resume at the end of this loop iteration. */
void conn_kick(conn *c);

/* Asks for conn_handlers.resume once at most `bytes` are queued. */
void conn_kick_below(conn *c, size_t bytes);

/* Bytes queued for the client and not yet written. */
size_t conn_queued(const conn *c);

/* Queued bytes past which a client is dropped as not reading: twice
 * max_write_queue, and at least max_write_queue plus one max_frame frame. */
size_t conn_drop_line(void);

/* Bytes of all connections' read buffers together (max_read_buffer_total). */
size_t conn_read_total(void);

/* Bytes queued for all clients together (max_write_queue_total). */
size_t conn_queued_total(void);

/* Sends what is queued, then closes. */
void conn_close_soon(conn *c);
/* Closes now (queued bytes are dropped). */
void conn_close(conn *c);

#endif
