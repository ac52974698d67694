/*
 * Followers of task output (follow.h).
 */
#include "request/follow.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "core/persist.h"
#include "core/task.h"
#include "host/registry.h"
#include "macro.h"
#include "request/session.h"
#include "system/config.h"

static void follower_free(follower *f) {
    if (f->kind != FOLLOW_GATHER) {
        assert(f->s->streams > 0);
        f->s->streams--;
    }
    list_remove(&f->session_node);
    list_remove(&f->gather_node);
    free(f);
}

/* A follower gets lines while its connection has fewer than this many bytes
 * queued: LIMIT_FOLLOW_QUEUE, or half of max_write_queue when that is less.
 * One more line then (at most LIMIT_MAX_LINE) keeps the queue under
 * max_write_queue, so a follower neither stops its connection from being
 * read nor comes near the line where a client is dropped
 * (conn_drop_line): one that reads slowly falls behind instead. */
static size_t follow_queue_bound(void) {
    return MIN((size_t)LIMIT_FOLLOW_QUEUE, cfg.max_write_queue / 2);
}

static void on_line(output_sink *sink, uint64_t task_id, uint64_t seq, int stream,
                    const char *line) {
    follower *f = container_of(sink, follower, sink);
    Aiod__Output o = AIOD__OUTPUT__INIT;
    o.task_id = task_id;
    o.stream = (uint32_t)stream;
    o.line = (char *)line;
    o.seq = seq;
    if (!req_send_output(&f->r, &o))
        f->unsent++;
}

static bool on_room(output_sink *sink) {
    follower *f = container_of(sink, follower, sink);
    conn *c = f->r.c;
    if (c->closing)
        return true; /* what is sent is discarded: let it end */
    size_t bound = follow_queue_bound();
    if (conn_queued(c) < bound)
        return true;
    conn_kick_below(c, bound / 2);
    return false;
}

static void on_end(output_sink *sink, uint64_t task_id, uint64_t dropped, int state) {
    follower *f = container_of(sink, follower, sink);
    const task *t = state == OUTPUT_END_CUT_OFF ? task_lookup(task_id) : NULL;
    if (t && f->kind != FOLLOW_GATHER) {
        /* Not over: "cancelled" here would have the client submit it again. */
        req_end_error(&f->r, AIOD__ERROR_CODE__ERROR_SHUTTING_DOWN,
                      "aiod is stopping: task %llu (%s) %s; follow its output again then",
                      (unsigned long long)task_id, t->fn->full_name, persist_cut_off_fate(t));
        follower_free(f);
        return;
    }
    if (state == OUTPUT_END_CUT_OFF)
        state = TASK_CANCELLED;
    Aiod__OutputEnd e = AIOD__OUTPUT_END__INIT;
    e.task_id = task_id;
    e.dropped = dropped + f->unsent;
    e.state = (Aiod__TaskState)state;
    if (f->kind == FOLLOW_GATHER)
        req_send(&f->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
    else
        req_end(&f->r, AIOD__SERVER_MESSAGE__BODY_OUTPUT_END, &e);
    void (*ended)(list *) = f->gather_follower_ended;
    list *gather_list = f->gather_list;
    follower_free(f);
    if (ended)
        ended(gather_list);
}

static const output_sink_ops ops = {.line = on_line, .room = on_room, .end = on_end};

int follow_start(session *s, output *o, follow_kind kind, req *r, list *gather_list, bool replay,
                 bool follow, int state_now, void (*ended)(list *gather_list)) {
    /* A stream waits for the client to read; one that never reads must not
     * open them without end (each holds a task's output). A gather's
     * followers count with the gather, a request in flight. */
    if (kind != FOLLOW_GATHER && s->streams >= cfg.max_in_flight)
        return -EMFILE;
    follower *f = alloc_calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->sink.ops = &ops;
    f->s = s;
    f->kind = kind;
    list_init(&f->gather_node);
    list_insert_tail(&s->followers, &f->session_node);
    if (kind != FOLLOW_GATHER)
        s->streams++;
    if (kind == FOLLOW_GATHER) {
        f->r = *r; /* names the gather's id; the gather ends it */
        list_insert_tail(gather_list, &f->gather_node);
        f->gather_list = gather_list;
        f->gather_follower_ended = ended;
    } else
        req_move(&f->r, r);
    /* The task's own client holds back its producer; a Logs follower,
     * perhaps another user's, does not. */
    output_attach(o, &f->sink, replay, follow, state_now,
                  kind != FOLLOW_LOGS); /* may end and free f */
    return 0;
}

void follow_pump(session *s) {
    /* Each behind follower gets a turn. Ending one may stop others (a
     * gather that ends stops its followers): take them off one at a time. */
    list turn;
    list_init(&turn);
    list_move_all(&turn, &s->followers);
    while (!list_empty(&turn)) {
        follower *f = container_of(list_first(&turn), follower, session_node);
        list_remove(&f->session_node);
        list_insert_tail(&s->followers, &f->session_node);
        if (output_sink_behind(&f->sink))
            output_sink_pump(&f->sink); /* may end and free f */
    }
}

void follow_stop(follower *f) {
    conn *c = f->s->c;
    if (f->sink.o && f->sink.o->ended && !c->closing)
        conn_kick(c); /* a wait may be waiting for this follower's end */
    output_sink_detach(&f->sink);
    if (f->kind != FOLLOW_GATHER)
        req_abandon(&f->r);
    follower_free(f);
}

bool follow_behind(const session *s, const output *o) {
    /* A sink still attached to an ended output has not caught up: those
     * that had end as the output ends. */
    for (const list *pos = o->sinks.next; pos != &o->sinks; pos = pos->next) {
        const output_sink *sink = container_of(pos, output_sink, node);
        if (sink->ops == &ops && container_of(sink, follower, sink)->s == s)
            return true;
    }
    return false;
}
