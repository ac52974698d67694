/*
 * Output rings and followers (output.h).
 */
#include "core/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "net/conn.h"
#include "base/aiod_limits.h"

output *output_new(uint64_t task_id, uint32_t cap) {
    output *o = alloc_calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->refs = 1;
    o->task_id = task_id;
    o->cap = cap ? cap : 1;
    list_init(&o->followers);
    return o;
}

output *output_ref(output *o) {
    if (o)
        o->refs++;
    return o;
}

output *output_unref(output *o) {
    if (!o || --o->refs > 0)
        return NULL;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &o->followers)
        output_follower_free(container_of(pos, follower, node));
    if (o->lines)
        for (uint32_t i = 0; i < o->count; i++)
            free(o->lines[(o->head + i) % o->cap]);
    free(o->lines);
    free(o->streams);
    free(o);
    return NULL;
}

int output_append(output *o, int stream, const char *line, size_t len) {
    if (!o->lines) {
        o->lines = alloc_calloc(o->cap, sizeof(*o->lines));
        o->streams = alloc_calloc(o->cap, sizeof(*o->streams));
        if (!o->lines || !o->streams) {
            free(o->lines);
            free(o->streams);
            o->lines = NULL;
            o->streams = NULL;
            return -ENOMEM;
        }
    }
    if (len > LIMIT_MAX_LINE)
        len = LIMIT_MAX_LINE;
    char *copy = alloc_strndup(line, len);
    if (!copy)
        return -ENOMEM;
    uint32_t slot;
    if (o->count == o->cap) {
        slot = o->head;
        free(o->lines[slot]);
        o->head = (o->head + 1) % o->cap;
        o->dropped++;
    } else
        slot = (o->head + o->count++) % o->cap;
    o->lines[slot] = copy;
    o->streams[slot] = (uint8_t)stream;
    uint64_t seq = o->next_seq++;

    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &o->followers) {
        follower *f = container_of(pos, follower, node);
        conn_send_output(f->c, f->request_id, o->task_id, seq, stream, copy);
    }
    return 0;
}

int output_follow(output *o, conn *c, uint64_t request_id, bool replay, bool follow, int state_now,
                  bool holds_request) {
    uint64_t first_seq = o->next_seq - o->count;
    for (uint32_t i = 0; replay && i < o->count; i++) {
        uint32_t slot = (o->head + i) % o->cap;
        conn_send_output(c, request_id, o->task_id, first_seq + i, o->streams[slot],
                         o->lines[slot]);
    }
    if (!follow || o->ended) {
        conn_send_output_end(c, request_id, o->task_id, o->dropped,
                             o->ended ? o->end_state : state_now);
        return 1;
    }
    follower *f = alloc_calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->c = c;
    f->request_id = request_id;
    f->out = o;
    f->holds_request = holds_request;
    list_insert_tail(&o->followers, &f->node);
    conn_add_follower(c, f);
    return 0;
}

void output_end(output *o, int state) {
    o->ended = true;
    o->end_state = state;
    list *pos, *tmp;
    list_foreach_safe(pos, tmp, &o->followers) {
        follower *f = container_of(pos, follower, node);
        conn_send_output_end(f->c, f->request_id, o->task_id, o->dropped, state);
        output_follower_free(f);
    }
}

void output_follower_free(follower *f) {
    list_remove(&f->node);
    list_remove(&f->conn_node);
    if (f->holds_request)
        conn_request_done(f->c);
    free(f);
}
