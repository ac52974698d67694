/*
 * Client connections (conn.h).
 *
 * Replies are encoded straight into a per-connection buffer and written
 * once per loop iteration from a prepare handle, and every kilobyte in
 * between (conn_frame_end), so a burst of pipelined requests costs a burst
 * of reads and a few writes. A write goes straight to the socket
 * (uv_try_write); only what the socket does not take waits for a uv_write.
 */
#include "net/conn.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "system/config.h"
#include "base/hashmap.h"
#include "base/utf8.h"
#include "system/log.h"
#include "system/policy.h"
#include "macro.h"

static uv_prepare_t flush_handle;
/* Active while connections wait for their turn after the prepare phase:
 * an active idle handle makes the loop poll without blocking, so that they
 * get it in the next iteration even when nothing else happens. */
static uv_idle_t turns_waiting;
static const conn_handlers *up;
/* Initialised statically: the scheduler flushes even in tests that never
 * call conn_init. */
static list dirty = {&dirty, &dirty};
static list all = {&all, &all};
/* Connections that stopped reading with whole frames left, because their
 * turn (LIMIT_DISPATCH_TURN frames) or the iteration's dispatch slice ran
 * out, or whose resumption (conn_kick) the slice put off: they go on in
 * turns, in this order, in the next prepare phase. */
static list out_of_slice = {&out_of_slice, &out_of_slice};
/* Connections whose hello is awaited, in accept order (so in deadline
 * order: one bound for all), and the timer of the first one's deadline. */
static list greeting = {&greeting, &greeting};
static uv_timer_t greet_timer;
/* The slice: started by the first frame dispatched after the loop polled
 * (or in its prepare phase), it lasts LIMIT_DISPATCH_SLICE_MS for all
 * connections together. */
static bool slice_started;
static uint64_t slice_end_ns;
static unsigned n_conns;
static uint64_t next_serial = 1;

static void process(conn *c);

/* Whether the dispatch slice of this iteration has run out. Frames of many
 * connections (a client pipelining thousands of submits, another sending a
 * 4 MiB frame) then wait for the next iteration instead of making the
 * timers and every other client wait. */
static bool slice_over(void) {
    uint64_t now = uv_hrtime();
    if (!slice_started) {
        slice_started = true;
        slice_end_ns = now + (uint64_t)LIMIT_DISPATCH_SLICE_MS * 1000000u;
        return false;
    }
    return now >= slice_end_ns;
}

static void mark_dirty(conn *c) {
    if (!c->closing && !list_linked(&c->dirty_node))
        list_insert_tail(&dirty, &c->dirty_node);
}

static void pause_reading(conn *c) {
    if (!c->paused) {
        c->paused = true;
        uv_read_stop((uv_stream_t *)&c->pipe);
    }
}

unsigned conn_count(void) {
    return n_conns;
}

static size_t queued(const conn *c) {
    return c->wlen + c->inflight_len;
}

size_t conn_queued(const conn *c) {
    return queued(c);
}

/* All connections' queued bytes, but those being dropped or closed. */
static size_t total_queued;

size_t conn_queued_total(void) {
    return total_queued;
}

/* Brings one connection's share of a total up to date. */
static void recount(size_t *total, size_t *share, size_t now) {
    *total = *total - *share + now;
    *share = now;
}

/* Brings the connection's share of total_queued up to date. */
static void account(conn *c) {
    recount(&total_queued, &c->counted_bytes, c->dropping || c->closing ? 0 : queued(c));
}

/* All connections' read buffers, but those being dropped or closed. */
static size_t total_read;

size_t conn_read_total(void) {
    return total_read;
}

/* Brings the connection's share of total_read up to date. */
static void account_read(conn *c) {
    recount(&total_read, &c->counted_read, c->dropping || c->closing ? 0 : c->rd.cap);
}

/* Refused connections kept open until their client hangs up, so that a
 * client writing its hello does not hit a reset before it reads why. */
static unsigned n_lingering;

/* Open connections per uid, for max_connections_per_uid. */
static hashmap *per_uid;

static uint32_t uid_count(uid_t uid) {
    return hashmap_count_get(per_uid, uid);
}

static void uid_add(uid_t uid, int delta) {
    hashmap_count_add(&per_uid, uid, delta);
}

static void on_closed(uv_handle_t *h) {
    conn *c = h->data;
    list_remove(&c->dirty_node);
    list_remove(&c->slice_node);
    if (c->refused)
        n_lingering--;
    if (c->counted)
        uid_add(c->uid, -1);
    frame_reader_done(&c->rd);
    free(c->wbuf);
    free(c->inflight_buf);
    n_conns--;
    free(c);
}

void conn_close(conn *c) {
    if (c->closing)
        return;
    c->closing = true;
    account(c);
    account_read(c);
    list_remove(&c->dirty_node);
    list_remove(&c->slice_node);
    list_remove(&c->all_node);
    list_remove(&c->greet_node);
    if (c->data)
        up->closing(c);
    c->data = NULL;
    uv_close((uv_handle_t *)&c->pipe, on_closed);
}

void conn_close_soon(conn *c) {
    if (c->closing || c->draining)
        return;
    c->draining = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    mark_dirty(c);
}

static void on_write(uv_write_t *req, int status) {
    conn *c = req->data;
    c->writing = false;
    free(c->inflight_buf);
    c->inflight_buf = NULL;
    c->inflight_len = 0;
    account(c);
    if (c->closing)
        return;
    if (status < 0) {
        log_debug_errno(status, "connection %llu: write failed, closing",
                        (unsigned long long)c->serial);
        conn_close(c);
        return;
    }
    mark_dirty(c);
}

/* Hands what is queued to one write, unless one is under way. Never closes:
 * a failed write leaves the bytes queued for flush to fail again on. */
static int start_write(conn *c) {
    if (c->writing || c->wlen == 0)
        return 0;
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_write);
    if (r < 0)
        return r;
    /* The bytes now belong to the write (on_write frees them). */
    c->inflight_buf = c->wbuf;
    c->inflight_len = c->wlen;
    c->wbuf = NULL;
    c->wlen = c->wcap = 0;
    c->writing = true;
    return 0;
}

/* Writes what is queued at once, without a write request, unless one is
 * under way. What the socket does not take stays queued; errors are left
 * for flush to report. */
static void write_now(conn *c) {
    if (c->writing || c->wlen == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
    int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
    if (n <= 0)
        return;
    c->wlen -= (size_t)n;
    memmove(c->wbuf, c->wbuf + n, c->wlen);
    account(c);
    /* The buffer is kept for the next replies, as the read buffer is,
     * unless a large reply grew it. */
    if (c->wlen == 0 && c->wcap > LIMIT_CONN_WBUF_KEEP) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
}

static void flush(conn *c) {
    write_now(c);
    int r = start_write(c);
    if (r < 0) {
        log_debug_errno(r, "connection %llu: write failed, closing", (unsigned long long)c->serial);
        conn_close(c);
    }
}

/* Marks the connection for closing at the end of the loop iteration
 * (conn_flush_all). */
static void drop(conn *c) {
    c->dropping = true;
    account(c);
    account_read(c);
    mark_dirty(c);
}

/* Over max_read_buffer_total: the connections whose unfinished frame has
 * waited longest for more bytes go first (a client sending quickly is not
 * the one holding memory for nothing), until the total is under the budget
 * again. Whole frames waiting for their turn are the daemon's own delay,
 * and a buffer lent to the layer above (held) cannot go: neither counts
 * as unfinished. */
static void shed_reads(void) {
    while (total_read > cfg.max_read_buffer_total) {
        conn *worst = NULL;
        list *pos, *tmp;
        list_foreach_safe(pos, tmp, &all) {
            conn *c = container_of(pos, conn, all_node);
            if (c->dropping || c->draining || c->held || c->refused ||
                frame_reader_pending(&c->rd) == 0 || frame_reader_ready(&c->rd))
                continue;
            if (!worst || c->last_read_ms < worst->last_read_ms)
                worst = c;
        }
        if (!worst)
            return;
        uint64_t waited_ms = uv_now(worst->pipe.loop) - worst->last_read_ms;
        log_warning("connection %llu (uid %u pid %d): an unfinished frame (%zu bytes so far) "
                    "waited %llu ms for its rest, the longest of any client, and all clients' "
                    "read buffers together hold %zu bytes, over max_read_buffer_total (%zu); "
                    "dropping the client",
                    (unsigned long long)worst->serial, (unsigned)worst->uid, (int)worst->pid,
                    frame_reader_pending(&worst->rd), (unsigned long long)waited_ms, total_read,
                    cfg.max_read_buffer_total);
        conn_send_error(worst, 0, AIOD__ERROR_CODE__ERROR_LIMIT,
                        "dropped: your unfinished frame (%zu bytes so far) waited the longest "
                        "for its rest while all clients' unfinished requests held more than "
                        "max_read_buffer_total (%zu bytes)",
                        frame_reader_pending(&worst->rd), cfg.max_read_buffer_total);
        /* The error goes out, then the connection closes; the buffer goes
         * now (nothing is read from a draining connection). */
        conn_close_soon(worst);
        frame_reader_done(&worst->rd);
        account_read(worst);
    }
}

/* Frees a big read buffer once everything in it was handled (and nothing
 * borrows it). */
static void release_read_buffer(conn *c) {
    if (c->rd.cap > LIMIT_CONN_READ_KEEP && frame_reader_pending(&c->rd) == 0 && !c->held &&
        !c->dispatching && !c->closing) {
        frame_reader_done(&c->rd);
        account_read(c);
    }
}

/* Over max_write_queue_total: the connections with the most queued go
 * first, until the total is under the budget again. */
static void shed(void) {
    while (total_queued > cfg.max_write_queue_total) {
        conn *worst = NULL;
        list *pos, *tmp;
        list_foreach_safe(pos, tmp, &all) {
            conn *c = container_of(pos, conn, all_node);
            if (!worst || c->counted_bytes > worst->counted_bytes)
                worst = c;
        }
        if (!worst || worst->counted_bytes == 0)
            return;
        log_warning("connection %llu (uid %u pid %d): %zu bytes of replies unread, the most of "
                    "any client, and all clients together have %zu, over max_write_queue_total "
                    "(%zu); dropping the client",
                    (unsigned long long)worst->serial, (unsigned)worst->uid, (int)worst->pid,
                    worst->counted_bytes, total_queued, cfg.max_write_queue_total);
        drop(worst);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(conn *c) {
    if (!c->paused || c->closing || c->draining)
        return;
    if (c->held || queued(c) > cfg.max_write_queue)
        return;
    c->paused = false;
    process(c);
    if (!c->paused && !c->closing && !c->draining && !c->peer_done)
        if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
            conn_close(c);
}

/* Whether the client closed the connection altogether (it is gone) rather
 * than only its sending side (it still reads): the socket then reports a
 * hang-up, which a half-close does not. */
static bool peer_gone(conn *c) {
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
        return true;
    struct pollfd p = {.fd = fd, .events = 0};
    return poll(&p, 1, 0) != 0 && (p.revents & (POLLHUP | POLLERR));
}

/* After a half-close: once every frame that came before it was handed up
 * (none is left whole; an unfinished one never will be), the layer above
 * is told, and closes the connection when it has answered them. */
static void maybe_tell_peer_done(conn *c) {
    if (!c->peer_done || c->told_peer_done || c->closing || c->draining || c->dropping)
        return;
    if (frame_reader_ready(&c->rd) || c->held || c->paused)
        return;
    c->told_peer_done = true;
    if (c->data && up->half_closed)
        up->half_closed(c);
    else
        conn_close_soon(c);
}

void conn_flush_all(void) {
    while (!list_empty(&dirty)) {
        conn *c = container_of(list_first(&dirty), conn, dirty_node);
        list_remove(&c->dirty_node);
        if (c->dropping) {
            conn_close(c);
            continue;
        }
        flush(c);
        if (c->closing)
            continue;
        if (c->draining && !c->writing && c->wlen == 0) {
            conn_close(c);
            continue;
        }
        if (c->kick_armed && queued(c) <= c->kick_below) {
            c->kick_armed = false;
            c->kicked = true;
        }
        if (c->kicked) {
            /* What the layer above resumes (followers catching up, parked
             * requests) shares the dispatch slice: past it, the connection
             * waits for its turn in the next iteration. */
            if (slice_over()) {
                if (!list_linked(&c->slice_node))
                    list_insert_tail(&out_of_slice, &c->slice_node);
                continue;
            }
            c->kicked = false;
            up->resume(c);
            if (c->closing)
                continue;
        }
        resume_reading(c);
    }
}

static void on_turns_waiting(uv_idle_t *h) {
    (void)h; /* its being active is what counts */
}

static void on_prepare(uv_prepare_t *h) {
    (void)h;
    /* The connections with frames left take turns in a slice of their own
     * (one that uses its turn goes to the back); the I/O callbacks after the
     * poll get another slice. */
    slice_started = false;
    while (!list_empty(&out_of_slice) && !slice_over()) {
        conn *c = container_of(list_first(&out_of_slice), conn, slice_node);
        list_remove(&c->slice_node);
        mark_dirty(c);
        conn_flush_all();
    }
    conn_flush_all();
    slice_started = false;
    if (!list_empty(&out_of_slice))
        uv_idle_start(&turns_waiting, on_turns_waiting);
    else
        uv_idle_stop(&turns_waiting);
}

/* A client that has not said hello by now is told so and closed; the
 * timer is then set for the next deadline. A connection already going
 * away needs nothing. Settings reloaded meanwhile: the deadlines follow
 * the accept order still, only the bound changed. */
static void on_greet_timer(uv_timer_t *h) {
    uint64_t now = uv_now(h->loop);
    while (!list_empty(&greeting)) {
        conn *c = container_of(list_first(&greeting), conn, greet_node);
        uint64_t deadline = c->accepted_ms + cfg.hello_timeout_ms;
        if (deadline > now) {
            uv_timer_start(&greet_timer, on_greet_timer, deadline - now, 0);
            return;
        }
        list_remove(&c->greet_node);
        if (c->closing || c->draining || c->dropping || (up->greeted && up->greeted(c)))
            continue;
        log_info("connection %llu (uid %u pid %d): no Hello within %u ms (hello_timeout_ms), "
                 "closing",
                 (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid,
                 cfg.hello_timeout_ms);
        conn_send_error(c, 0, AIOD__ERROR_CODE__ERROR_LIMIT,
                        "no Hello within %u ms of connecting: the limit hello_timeout_ms",
                        cfg.hello_timeout_ms);
        conn_close_soon(c);
    }
}

/* Awaits the hello of a connection now read. */
static void await_hello(conn *c) {
    uv_update_time(c->pipe.loop);
    c->accepted_ms = uv_now(c->pipe.loop);
    if (!c->accepted_ms)
        c->accepted_ms = 1; /* 0 means not yet */
    list_insert_tail(&greeting, &c->greet_node);
    if (!uv_is_active((uv_handle_t *)&greet_timer))
        uv_timer_start(&greet_timer, on_greet_timer, cfg.hello_timeout_ms, 0);
}

int conn_init(uv_loop_t *loop, const conn_handlers *h) {
    up = h;
    uv_timer_init(loop, &greet_timer);
    /* Pending deadlines alone do not keep the loop alive. */
    uv_unref((uv_handle_t *)&greet_timer);
    uv_prepare_init(loop, &flush_handle);
    uv_prepare_start(&flush_handle, on_prepare);
    uv_unref((uv_handle_t *)&flush_handle);
    uv_idle_init(loop, &turns_waiting);
    uv_unref((uv_handle_t *)&turns_waiting);
    return 0;
}

void conn_done(void) {
    uv_close((uv_handle_t *)&greet_timer, NULL);
    uv_close((uv_handle_t *)&flush_handle, NULL);
    uv_close((uv_handle_t *)&turns_waiting, NULL);
}

void conn_close_all(void) {
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &all)
        conn_close_soon(container_of(pos, conn, all_node));
}

void conn_abort_all(void) {
    while (!list_empty(&all))
        conn_close(container_of(list_first(&all), conn, all_node));
}

/* Room for `n` more bytes at the end of wbuf. */
static uint8_t *reserve(conn *c, size_t n) {
    if (c->wcap - c->wlen < n) {
        size_t ncap = c->wcap ? c->wcap : LIMIT_CONN_WBUF_FIRST;
        while (ncap - c->wlen < n)
            ncap *= 2;
        uint8_t *nb = alloc_realloc(c->wbuf, ncap);
        if (!nb)
            return NULL;
        c->wbuf = nb;
        c->wcap = ncap;
    }
    return c->wbuf + c->wlen;
}

uint8_t *conn_frame_begin(conn *c, uint64_t request_id, size_t size) {
    if (c->closing || c->dropping)
        return NULL;
    if (size > cfg.max_frame) {
        /* The client would refuse the frame: tell it why instead. */
        conn_send_error(c, request_id, AIOD__ERROR_CODE__ERROR_LIMIT,
                        "reply of %zu bytes exceeds the limit max_frame (%u bytes)", size,
                        cfg.max_frame);
        return NULL;
    }
    uint8_t *p = reserve(c, FRAME_HEADER_SIZE + size);
    if (!p) {
        log_error("connection %llu: out of memory queueing a reply, closing",
                  (unsigned long long)c->serial);
        drop(c);
        return NULL;
    }
    frame_put_header(p, (uint32_t)size);
    return p + FRAME_HEADER_SIZE;
}

void conn_send(conn *c, const Aiod__ServerMessage *m) {
    size_t size = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *p = conn_frame_begin(c, m->request_id, size);
    if (!p)
        return;
    protobuf_c_message_pack(&m->base, p);
    conn_frame_end(c, size);
}

/* Replies are written once per loop iteration, and whenever this many
 * bytes are queued with no write under way: a pipelining client then works
 * on the replies of a batch while the rest are being made, rather than
 * waiting for the whole batch. */

/* Past max_write_queue a connection is no longer read, but replies to what
 * it already asked still come (a task it awaits ends). It is dropped only
 * past twice max_write_queue, and never below max_write_queue plus one
 * whole frame: one reply the settings allow (a result up to max_result, in
 * a frame up to max_frame) does not cut off a client that reads. */
size_t conn_drop_line(void) {
    size_t frame = (size_t)cfg.max_frame + FRAME_HEADER_SIZE;
    return cfg.max_write_queue + MAX(cfg.max_write_queue, frame);
}

void conn_frame_end(conn *c, size_t size) {
    c->wlen += FRAME_HEADER_SIZE + size;
    mark_dirty(c);
    if (c->wlen >= LIMIT_CONN_EARLY_FLUSH)
        write_now(c);
    account(c);
    if (total_queued > cfg.max_write_queue_total)
        shed();
    if (c->dropping)
        return;
    /* A client that does not read its replies: stop reading its requests
     * and, past the drop line, drop it. */
    if (queued(c) > conn_drop_line()) {
        log_warning("connection %llu (uid %u pid %d): %zu bytes of replies unread, over "
                    "max_write_queue; dropping the client (the line is %zu bytes: twice "
                    "max_write_queue, and at least one max_frame frame more than it)",
                    (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid, queued(c),
                    conn_drop_line());
        drop(c);
    } else if (queued(c) > cfg.max_write_queue)
        pause_reading(c);
}

void conn_send_error(conn *c, uint64_t request_id, Aiod__ErrorCode code, const char *fmt, ...) {
    /* Whatever was formatted in (a function name, a value a client sent),
     * the message goes out as a protobuf string, which must be UTF-8: text
     * cut at the end loses the incomplete character, anything else that is
     * not UTF-8 becomes U+FFFD, and the result is cut between characters. */
    char raw[LIMIT_MESSAGE], msg[LIMIT_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof(raw))
        len = utf8_trim_partial(raw, sizeof(raw) - 1);
    utf8_sanitize_into(msg, sizeof(msg), raw, len);
    Aiod__Error e = AIOD__ERROR__INIT;
    e.code = code;
    e.message = msg;
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = request_id;
    m.body_case = AIOD__SERVER_MESSAGE__BODY_ERROR;
    m.error = &e;
    conn_send(c, &m);
}

void conn_hold(conn *c, bool hold) {
    c->held = hold;
    if (hold)
        pause_reading(c);
    else if (c->paused)
        mark_dirty(c);
}

void conn_kick(conn *c) {
    c->kicked = true;
    mark_dirty(c);
}

void conn_kick_below(conn *c, size_t bytes) {
    c->kick_armed = true;
    c->kick_below = bytes;
}

/* Tells the client why it is refused (request id 0), then lets it read that:
 * whatever it sends is discarded until it closes. Past LIMIT_LINGERING such
 * connections the refusal is sent and the connection closed at once. */
_printf_(2, 3) static void refuse(conn *c, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conn_send_error(c, 0, AIOD__ERROR_CODE__ERROR_LIMIT, "%s", msg);
    if (n_lingering >= LIMIT_LINGERING) {
        conn_close_soon(c);
        return;
    }
    n_lingering++;
    c->refused = true;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Handles the whole frames buffered, one turn's worth, unless backpressure
 * or the dispatch slice says stop. */
static void process(conn *c) {
    /* Frames this turn; frames and bytes since the clock was last read. */
    unsigned turn = 0, unclocked = 0;
    size_t unclocked_bytes = 0;
    if (c->refused) {
        c->rd.start = c->rd.end; /* discard */
        return;
    }
    if (c->dispatching)
        return;
    c->dispatching = true;
    while (!c->closing && !c->draining && !c->dropping) {
        if (c->held || queued(c) > cfg.max_write_queue) {
            pause_reading(c);
            break;
        }
        /* The clock is read every 16 frames or 64 KiB (and at the first:
         * it starts the slice), not at each small frame. */
        bool clock = unclocked >= 16 || unclocked_bytes >= 65536 || !slice_started;
        if (clock)
            unclocked = 0, unclocked_bytes = 0;
        if (frame_reader_ready(&c->rd) &&
            (turn == LIMIT_DISPATCH_TURN || (clock && slice_over()))) {
            pause_reading(c);
            if (!list_linked(&c->slice_node))
                list_insert_tail(&out_of_slice, &c->slice_node);
            break;
        }
        const uint8_t *payload;
        uint32_t len;
        int r = frame_reader_next(&c->rd, &payload, &len);
        if (r == 0)
            break;
        if (r < 0) {
            uint8_t hdr[FRAME_HEADER_SIZE];
            memcpy(hdr, c->rd.buf + c->rd.start, FRAME_HEADER_SIZE);
            log_warning("connection %llu (uid %u pid %d): frame of %u bytes exceeds max_frame "
                        "(%u), dropping the client",
                        (unsigned long long)c->serial, (unsigned)c->uid, (int)c->pid,
                        frame_get_header(hdr), cfg.max_frame);
            conn_send_error(c, 0, AIOD__ERROR_CODE__ERROR_BAD_MESSAGE,
                            "frame of %u bytes exceeds the limit max_frame (%u bytes)",
                            frame_get_header(hdr), cfg.max_frame);
            conn_close_soon(c);
            break;
        }
        up->frame(c, payload, len);
        turn++;
        unclocked++;
        unclocked_bytes += len;
    }
    c->dispatching = false;
    release_read_buffer(c);
    maybe_tell_peer_done(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn *c = h->data;
    size_t avail = 0;
    uint8_t *p = frame_reader_space(&c->rd, LIMIT_CONN_READ_ROOM, &avail);
    (void)suggested;
    account_read(c);
    *buf = uv_buf_init((char *)p, p ? (unsigned)MIN(avail, (size_t)1 << 20) : 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    conn *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread == UV_EOF && !c->refused && !peer_gone(c)) {
        /* A half-close: what it sent is still answered. */
        uv_read_stop(s);
        c->peer_done = true;
        maybe_tell_peer_done(c);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            log_debug_errno((int)nread, "connection %llu: read failed",
                            (unsigned long long)c->serial);
        conn_close(c);
        return;
    }
    frame_reader_commit(&c->rd, (size_t)nread);
    c->last_read_ms = uv_now(s->loop); /* the loop's clock: no clock read per read */
    process(c);
    if (total_read > cfg.max_read_buffer_total)
        shed_reads();
}

static conn *conn_alloc(uv_loop_t *loop) {
    conn *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (uv_pipe_init(loop, &c->pipe, 0) < 0) {
        free(c);
        return NULL;
    }
    c->pipe.data = c;
    n_conns++;
    list_init(&c->dirty_node);
    list_init(&c->slice_node);
    list_init(&c->all_node);
    list_init(&c->greet_node);
    frame_reader_init(&c->rd, cfg.max_frame);
    c->serial = next_serial++;
    list_insert_tail(&all, &c->all_node);
    return c;
}

/* Identifies the peer, applies the connection limits and starts reading. */
static int conn_start(conn *c) {
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
    } else {
        log_warning("connection %llu: no peer credentials, refusing",
                    (unsigned long long)c->serial);
        conn_close(c);
        return -EPERM;
    }
    if (c->uid != 0 && uid_count(c->uid) >= policy_lim.max_connections_per_uid) {
        log_warning("connection from uid %u pid %d refused: max_connections_per_uid (%u) reached",
                    (unsigned)c->uid, (int)c->pid, policy_lim.max_connections_per_uid);
        refuse(c,
               "too many connections for uid %u: the limit max_connections_per_uid (%u) is "
               "reached",
               (unsigned)c->uid, policy_lim.max_connections_per_uid);
        return -EMFILE;
    }
    uid_add(c->uid, +1);
    c->counted = true;
    if (n_conns > cfg.max_connections) {
        log_warning("connection from uid %u pid %d refused: max_connections (%u) reached",
                    (unsigned)c->uid, (int)c->pid, cfg.max_connections);
        refuse(c, "too many connections: the limit max_connections (%u) is reached",
               cfg.max_connections);
        return -EMFILE;
    }
    log_debug("connection %llu from uid %u pid %d", (unsigned long long)c->serial, (unsigned)c->uid,
              (int)c->pid);
    int r = up->opened(c);
    if (r < 0)
        conn_close(c);
    return r;
}

int conn_start_reading(conn *c) {
    if (c->closing || c->draining)
        return 0;
    int r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (r < 0) {
        conn_close(c);
        return r;
    }
    /* The hello's clock starts here, not at the accept: the time the
     * layer above took before reading (a slow lookup of the client's
     * groups) is not the client's. */
    if (!c->accepted_ms)
        await_hello(c);
    return 0;
}

int conn_open_fd(uv_loop_t *loop, int fd) {
    conn *c = conn_alloc(loop);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    int r = uv_pipe_open(&c->pipe, fd);
    if (r < 0) {
        close(fd); /* not the pipe's yet: closing it does not close fd */
        conn_close(c);
        return r;
    }
    return conn_start(c);
}
