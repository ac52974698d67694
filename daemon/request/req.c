/*
 * Requests that end exactly once (req.h).
 */
#include "request/req.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "request/session.h"
#include "system/config.h"

void req_init(req *r, conn *c, uint64_t id) {
    r->c = c;
    r->id = id;
    r->state = REQ_OPEN;
    session_of(c)->in_flight++;
}

/* An open request is answered: one less in flight, and parked requests
 * may run (at the end of the loop iteration: not inside whatever answered
 * this one). */
static void done(req *r) {
    session *s = session_of(r->c);
    assert(s->in_flight > 0);
    s->in_flight--;
    if (!list_empty(&s->parked))
        conn_kick(r->c);
    session_close_if_answered(s);
}

void req_move(req *to, req *from) {
    assert(from->state == REQ_OPEN || from->state == REQ_ANSWERED);
    *to = *from;
    from->state = REQ_MOVED;
}

bool req_over(const req *r) {
    return r->state == REQ_ENDED || r->state == REQ_MOVED;
}

/* The one envelope of every message the request layer sends. */
void reply_send(conn *c, uint64_t request_id, Aiod__ServerMessage__BodyCase body_case, void *body) {
    Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
    m.request_id = request_id;
    m.body_case = body_case;
    switch (body_case) {
    case AIOD__SERVER_MESSAGE__BODY_ERROR:
        m.error = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_HELLO:
        m.hello = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_SUBMITTED:
        m.submitted = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_OUTCOMES:
        m.outcomes = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_CANCELLED:
        m.cancelled = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_TASK_LIST:
        m.task_list = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_TASK_INFO:
        m.task_info = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_PLUGIN_LIST:
        m.plugin_list = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_OUTPUT:
        m.output = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_OUTPUT_END:
        m.output_end = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_RELOADED:
        m.reloaded = body;
        break;
    case AIOD__SERVER_MESSAGE__BODY_STARTED:
        m.started = body;
        break;
    default:
        assert(!"a body case without its member");
        return;
    }
    conn_send(c, &m);
}

void req_send(req *r, Aiod__ServerMessage__BodyCase body_case, void *body) {
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    reply_send(r->c, r->id, body_case, body);
}

/* An Output frame holds its line and at most this much more (request id,
 * task id, stream, seq, tags and lengths). */
#define OUTPUT_FRAME_EXTRA 64u

bool req_send_output(req *r, Aiod__Output *o) {
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    if (strlen(o->line) + OUTPUT_FRAME_EXTRA > cfg.max_frame) {
        Aiod__ServerMessage m = AIOD__SERVER_MESSAGE__INIT;
        m.request_id = r->id;
        m.body_case = AIOD__SERVER_MESSAGE__BODY_OUTPUT;
        m.output = o;
        if (protobuf_c_message_get_packed_size(&m.base) > cfg.max_frame)
            return false;
    }
    req_send(r, AIOD__SERVER_MESSAGE__BODY_OUTPUT, o);
    return true;
}

void req_answered(req *r) {
    assert(r->state == REQ_OPEN);
    r->state = REQ_ANSWERED;
    /* Counted before done(): a half-closed connection must not close
     * before this stream's final frame. */
    session_of(r->c)->answered++;
    done(r);
}

/* The one place a request ends. */
static void end(req *r) {
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    if (r->state == REQ_OPEN) {
        r->state = REQ_ENDED;
        done(r);
        return;
    }
    session *s = session_of(r->c);
    assert(s->answered > 0);
    s->answered--;
    r->state = REQ_ENDED;
    session_close_if_answered(s);
}

void req_end(req *r, Aiod__ServerMessage__BodyCase body_case, void *body) {
    req_send(r, body_case, body);
    end(r);
}

void req_end_error(req *r, Aiod__ErrorCode code, const char *fmt, ...) {
    char msg[LIMIT_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Cut short, the text loses its incomplete last character, not just
     * bytes of it; conn_send_error makes the rest valid UTF-8. */
    if (n >= (int)sizeof(msg))
        msg[utf8_trim_partial(msg, sizeof(msg) - 1)] = '\0';
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    conn_send_error(r->c, r->id, code, "%s", msg);
    end(r);
}

uint8_t *req_frame_begin(req *r, size_t size) {
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    return conn_frame_begin(r->c, r->id, size);
}

void req_end_frame(req *r, size_t size, bool written) {
    if (written)
        conn_frame_end(r->c, size);
    end(r);
}

void req_frame_send(req *r, size_t size) {
    assert(r->state == REQ_OPEN || r->state == REQ_ANSWERED);
    conn_frame_end(r->c, size);
}

void req_abandon(req *r) {
    if (r->state == REQ_OPEN || r->state == REQ_ANSWERED)
        end(r);
}
