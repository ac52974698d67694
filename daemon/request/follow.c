/*
 * Followers of task output (follow.h).
 */
#include "request/follow.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "request/session.h"

static void follower_free(follower *f) {
    list_remove(&f->session_node);
    list_remove(&f->gather_node);
    free(f);
}

static void on_line(output_sink *sink, uint64_t task_id, uint64_t seq, int stream,
                    const char *line) {
    follower *f = container_of(sink, follower, sink);
    Aiod__Output o = AIOD__OUTPUT__INIT;
    o.task_id = task_id;
    o.stream = (uint32_t)stream;
    o.line = (char *)line;
    o.seq = seq;
    req_send(&f->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT, &o);
}

static void on_end(output_sink *sink, uint64_t task_id, uint64_t dropped, int state) {
    follower *f = container_of(sink, follower, sink);
    Aiod__OutputEnd e = AIOD__OUTPUT_END__INIT;
    e.task_id = task_id;
    e.dropped = dropped;
    e.state = (Aiod__TaskState)state;
    if (f->kind == FOLLOW_GATHER)
        req_send(&f->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
    else
        req_end(&f->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
    follower_free(f);
}

static const output_sink_ops ops = {.line = on_line, .end = on_end};

int follow_start(session *s, output *o, follow_kind kind, req *r, list *gather_list, bool replay,
                 bool follow, int state_now) {
    follower *f = alloc_calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->sink.ops = &ops;
    f->s = s;
    f->kind = kind;
    list_init(&f->gather_node);
    list_insert_tail(&s->followers, &f->session_node);
    if (kind == FOLLOW_GATHER) {
        f->r = *r; /* names the gather's id; the gather ends it */
        list_insert_tail(gather_list, &f->gather_node);
    } else
        req_move(&f->r, r);
    output_attach(o, &f->sink, replay, follow, state_now); /* may end and free f */
    return 0;
}

void follow_stop(follower *f) {
    output_sink_detach(&f->sink);
    if (f->kind != FOLLOW_GATHER)
        req_abandon(&f->r);
    follower_free(f);
}
