/*
 * Sessions opened, fed and closed (serve.h).
 */
#include "request/serve.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "core/finish.h"
#include "core/idle.h"
#include "core/task.h"
#include "request/dispatch.h"
#include "request/ack.h"
#include "request/follow.h"
#include "request/offload.h"
#include "request/remote.h"
#include "request/session.h"
#include "request/waiting.h"
#include "system/log.h"
#include "system/stall.h"

static void on_identity(void *data, const gid_t *groups, size_t n) {
    session *s = data;
    s->lookup = NULL;
    if (n) {
        s->peer.groups = alloc_malloc(n * sizeof(*groups));
        if (s->peer.groups) {
            memcpy(s->peer.groups, groups, n * sizeof(*groups));
            s->peer.n_groups = n;
        }
    }
    s->peer.admin = policy_is_admin(&s->peer);
    conn_start_reading(s->c);
}

static int on_opened(conn *c) {
    session *s = alloc_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->c = c;
    s->peer.uid = c->uid;
    s->peer.gid = c->gid;
    s->peer.pid = c->pid;
    list_init(&s->tasks);
    list_init(&s->followers);
    list_init(&s->waits);
    list_init(&s->acks);
    list_init(&s->cancel_acks);
    list_init(&s->remotes);
    list_init(&s->parked);
    c->data = s;
    /* Root passes every rule whatever its groups: no lookup. */
    if (c->uid == 0) {
        on_identity(s, NULL, 0);
        return 0;
    }
    int r = identity_lookup(c->pipe.loop, c->uid, c->gid, on_identity, s, &s->lookup);
    if (r < 0) {
        /* Serve it without its groups rather than not at all: call rules
         * naming a group then refuse it, which the error says. */
        log_warning_errno(r, "connection %llu: cannot look up the groups of uid %u",
                          (unsigned long long)c->serial, (unsigned)c->uid);
        on_identity(s, NULL, 0);
    }
    return 0;
}

static void close_session(conn *c);

/* A frame this big may leave memory behind that no task's end hands back
 * (say a request of 200,000 values refused): idle trimming is armed for it
 * too. Smaller frames do not rearm its timer, which costs a heap update. */
#define IDLE_FRAME_BYTES ((size_t)64 * 1024)

static void on_frame(conn *c, const uint8_t *payload, size_t len) {
    /* The stall detector names the connection while its request holds the
     * loop (a frame's checks can take long before any task exists). */
    stall_enter_request(c->serial, c->uid);
    dispatch_frame(session_of(c), payload, len);
    stall_leave();
    if (len >= IDLE_FRAME_BYTES)
        idle_maybe();
}

static void on_resume(conn *c) {
    session *s = session_of(c);
    stall_enter_request(c->serial, c->uid);
    dispatch_resume(s);
    follow_pump(s);
    waiting_retry(s); /* after the followers it may have waited for */
    stall_leave();
}

static void on_closing(conn *c) {
    /* Seen by the stall detector like a request of the connection: the
     * outcomes its close releases are sized, and those evicted freed. */
    stall_enter_request(c->serial, c->uid);
    close_session(c);
    stall_leave();
}

static void close_session(conn *c) {
    session *s = session_of(c);
    identity_cancel(s->lookup);
    offload_session_closed(s);
    dispatch_drop_parked(s);
    while (!list_empty(&s->tasks)) {
        task *t = task_of(list_first(&s->tasks), owner_node);
        if (t->pinned) {
            task_release_pin(t); /* finished: its outcome joins the retention */
            continue;
        }
        task_detach_owner(t);
        task_cancel(t);
    }
    while (!list_empty(&s->followers))
        follow_stop(container_of(list_first(&s->followers), follower, session_node));
    waiting_session_closed(s);
    ack_session_closed(s);
    remote_session_closed(s);
    caller_unref(s->caller);
    free(s->peer.groups);
    free(s);
    /* Its buffers and released outcomes are freed with no task ending. */
    idle_maybe();
}

/* The client shut down its sending side and everything it sent was read:
 * its requests are still answered (as `nc -U` expects), then the
 * connection closes. Attached tasks nobody awaits end with it, as at a
 * close. */
static void on_half_closed(conn *c) {
    session *s = session_of(c);
    s->half_closed = true;
    session_close_if_answered(s);
}

static bool on_greeted(conn *c) {
    return session_of(c)->hello_done;
}

static const conn_handlers handlers = {
    .opened = on_opened,
    .frame = on_frame,
    .resume = on_resume,
    .half_closed = on_half_closed,
    .closing = on_closing,
    .greeted = on_greeted,
};

const conn_handlers *session_handlers(void) {
    return &handlers;
}
