/*
 * Output rings and their sinks (output.h).
 */
#include "core/output.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"

output *output_new(uint64_t task_id, uint32_t cap) {
    output *o = alloc_calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->refs = 1;
    o->task_id = task_id;
    o->cap = cap ? cap : 1;
    list_init(&o->sinks);
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
    /* Sinks still attached (the daemon is exiting) are only unlinked: their
     * owners free them. */
    while (!list_empty(&o->sinks))
        list_remove(list_first(&o->sinks));
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
    /* Lines go to clients as protobuf strings, which must be UTF-8: a plugin
     * may print any bytes (proc prints a child's), so what is not UTF-8
     * becomes U+FFFD, and a long line is cut between two characters. */
    char *copy = utf8_sanitize(line, len, LIMIT_MAX_LINE, NULL);
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
    list_foreach_safe(pos, tmp, &o->sinks) {
        output_sink *s = container_of(pos, output_sink, node);
        s->ops->line(s, o->task_id, seq, stream, copy);
    }
    return 0;
}

int output_attach(output *o, output_sink *s, bool replay, bool follow, int state_now) {
    uint64_t first_seq = o->next_seq - o->count;
    list_init(&s->node);
    for (uint32_t i = 0; replay && i < o->count; i++) {
        uint32_t slot = (o->head + i) % o->cap;
        s->ops->line(s, o->task_id, first_seq + i, o->streams[slot], o->lines[slot]);
    }
    if (!follow || o->ended) {
        s->ops->end(s, o->task_id, o->dropped, o->ended ? o->end_state : state_now);
        return 1;
    }
    list_insert_tail(&o->sinks, &s->node);
    return 0;
}

void output_sink_detach(output_sink *s) {
    list_remove(&s->node);
}

bool output_followed(const output *o) {
    return !list_empty(&o->sinks);
}

void output_end(output *o, int state) {
    assert(!o->ended);
    o->ended = true;
    o->end_state = state;
    while (!list_empty(&o->sinks)) {
        output_sink *s = container_of(list_first(&o->sinks), output_sink, node);
        list_remove(&s->node);
        s->ops->end(s, o->task_id, o->dropped, state);
    }
}
