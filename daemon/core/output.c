/*
 * Output rings and their sinks (output.h).
 */
#include "core/output.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/utf8.h"
#include "system/config.h"

output *output_new(uint64_t task_id, uint32_t cap) {
    output *o = alloc_calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->refs = 1;
    o->task_id = task_id;
    o->cap = cap ? cap : 1;
    list_init(&o->sinks);
    list_init(&o->waiters);
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
    while (!list_empty(&o->waiters))
        list_remove(list_first(&o->waiters));
    if (o->lines)
        for (uint32_t i = 0; i < o->count; i++)
            free(o->lines[(o->head + i) % o->cap]);
    free(o->lines);
    free(o->streams);
    free(o);
    return NULL;
}

static uint64_t now_ms(void) {
    return uv_hrtime() / 1000000u;
}

static uint64_t first_seq(const output *o) {
    return o->next_seq - o->count;
}

/* The producer may go on: every waiter is called (and unhooked). */
static void wake_waiters(output *o) {
    while (!list_empty(&o->waiters) && !output_held(o)) {
        output_waiter *w = container_of(list_first(&o->waiters), output_waiter, node);
        list_remove(&w->node);
        w->fn(w);
    }
}

static void detach(output_sink *s) {
    output *o = s->o;
    list_remove(&s->node);
    o->n_sinks--;
    s->o = NULL;
    if (s->holds)
        wake_waiters(o);
    output_unref(o);
}

int output_sink_pump(output_sink *s) {
    output *o = s->o;
    if (!o)
        return 0;
    /* Lines that left the ring before the sink got them. */
    if (s->next_seq < first_seq(o)) {
        s->dropped += first_seq(o) - s->next_seq;
        s->next_seq = first_seq(o);
    }
    uint64_t stop = s->stop_seq < o->next_seq ? s->stop_seq : o->next_seq;
    bool sent = false;
    while (s->next_seq < stop) {
        if (!s->ops->room(s)) {
            if (!s->stuck_since)
                s->stuck_since = now_ms();
            break;
        }
        uint32_t slot = (uint32_t)((o->head + (s->next_seq - first_seq(o))) % o->cap);
        s->ops->line(s, o->task_id, s->next_seq, o->streams[slot], o->lines[slot]);
        s->next_seq++;
        s->stuck_since = 0;
        sent = true;
    }
    if (s->next_seq >= s->stop_seq || (o->ended && s->next_seq == o->next_seq)) {
        int state = o->ended ? o->end_state : s->state_now;
        uint64_t dropped = s->dropped;
        uint64_t task_id = o->task_id;
        output_ref(o); /* detaching may drop the last reference */
        detach(s);
        s->ops->end(s, task_id, dropped, state);
        output_unref(o);
        return 1;
    }
    if (sent && s->holds)
        wake_waiters(o);
    return 0;
}

bool output_sink_behind(const output_sink *s) {
    return s->o && s->next_seq < s->o->next_seq;
}

bool output_held(const output *o) {
    uint64_t half = o->cap / 2 ? o->cap / 2 : 1, now = 0;
    for (const list *pos = o->sinks.next; pos != &o->sinks; pos = pos->next) {
        const output_sink *s = container_of(pos, output_sink, node);
        if (!s->holds || o->next_seq - s->next_seq < half)
            continue;
        if (!s->stuck_since)
            return true;
        if (!now)
            now = now_ms();
        if (now - s->stuck_since < cfg.output_hold_ms)
            return true;
    }
    return false;
}

uint64_t output_hold_left_ms(const output *o) {
    uint64_t half = o->cap / 2 ? o->cap / 2 : 1, now = 0, left = 0;
    for (const list *pos = o->sinks.next; pos != &o->sinks; pos = pos->next) {
        const output_sink *s = container_of(pos, output_sink, node);
        if (!s->holds || o->next_seq - s->next_seq < half)
            continue;
        uint64_t l = cfg.output_hold_ms; /* not stuck yet: all of it */
        if (s->stuck_since) {
            if (!now)
                now = now_ms();
            uint64_t stuck = now - s->stuck_since;
            l = stuck < cfg.output_hold_ms ? cfg.output_hold_ms - stuck : 0;
        }
        if (l > left)
            left = l;
    }
    return left;
}

void output_wait_room(output *o, output_waiter *w) {
    list_insert_tail(&o->waiters, &w->node);
}

void output_waiter_cancel(output_waiter *w) {
    list_remove(&w->node);
}

/* Each sink takes what it can. A sink's end may free others' owners (a
 * gather that ends stops its followers), so the walk starts over from the
 * first sink not yet pumped, by sequence of attachment. */
static void pump_all(output *o) {
    list pending;
    list_init(&pending);
    /* Move the sinks aside, then put each back before pumping it: whatever
     * a pump detaches leaves whichever list it is on. */
    while (!list_empty(&o->sinks)) {
        list *n = list_first(&o->sinks);
        list_remove(n);
        list_insert_tail(&pending, n);
    }
    while (!list_empty(&pending)) {
        output_sink *s = container_of(list_first(&pending), output_sink, node);
        list_remove(&s->node);
        list_insert_tail(&o->sinks, &s->node);
        output_sink_pump(s);
    }
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
    o->next_seq++;
    pump_all(o);
    return 0;
}

int output_attach(output *o, output_sink *s, bool replay, bool follow, int state_now, bool holds) {
    s->o = output_ref(o);
    s->next_seq = replay ? first_seq(o) : o->next_seq;
    s->dropped = replay ? first_seq(o) : 0;
    s->stop_seq = follow ? UINT64_MAX : o->next_seq;
    s->state_now = state_now;
    s->holds = holds;
    s->stuck_since = 0;
    list_insert_tail(&o->sinks, &s->node);
    o->n_sinks++;
    return output_sink_pump(s);
}

void output_sink_detach(output_sink *s) {
    if (s->o)
        detach(s);
}

size_t output_footprint(const output *o) {
    if (!o)
        return 0;
    size_t n = alloc_block_size(sizeof(*o));
    if (o->lines)
        n += alloc_block_size(o->cap * sizeof(*o->lines)) +
             alloc_block_size(o->cap * sizeof(*o->streams));
    for (uint32_t i = 0; o->lines && i < o->count; i++)
        n += alloc_block_size(strlen(o->lines[(o->head + i) % o->cap]) + 1);
    return n;
}

bool output_followed(const output *o) {
    return !list_empty(&o->sinks);
}

uint32_t output_sink_count(const output *o) {
    return o->n_sinks;
}

void output_end(output *o, int state) {
    assert(!o->ended);
    o->ended = true;
    o->end_state = state;
    output_ref(o);
    pump_all(o);
    /* Nothing more is printed: a producer still waiting may go on. */
    while (!list_empty(&o->waiters)) {
        output_waiter *w = container_of(list_first(&o->waiters), output_waiter, node);
        list_remove(&w->node);
        w->fn(w);
    }
    output_unref(o);
}
