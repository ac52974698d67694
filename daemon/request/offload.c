/*
 * Big frames decoded off the loop thread (offload.h).
 */
#include "request/offload.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/list.h"
#include "net/wire.h"
#include "pbvalue.h"
#include "request/session.h"
#include "system/stall.h"

/* A value pbvalue_check refused, and why (copied: the reason may live in
 * the pool thread's own buffer). Values it passed are not listed. */
typedef struct verdict {
    const Aiod__Value *v;
    int r;
    char why[192];
} verdict;

/* A text argument parsed as JSON on the pool, for a list, map or any
 * parameter to take (offload_text); anything else reads the text itself. */
typedef struct parsed {
    const Aiod__Value *arg;
    int r;          /* pbvalue_from_json_bounded's */
    Aiod__Value *v; /* when r == 0, until taken */
    char why[160];
} parsed;

/* The parsed text arguments of one frame, sorted by argument. Apart from
 * the offload, so that its handler, which sees it const, can take from it. */
typedef struct texts {
    parsed *p;
    size_t n;
    /* The values they make together: at most LIMIT_FRAME_VALUES, as a
     * request's own values. */
    size_t values;
} texts;

struct offload {
    uv_work_t work;
    uv_loop_t *loop;
    /* In `waiting` until handed to the pool. */
    list node;
    bool started;
    /* NULL once the session closed: the frame is then only freed. */
    session *s;
    offload_handler done;
    bool may_park;
    /* The frame in the connection's read buffer, which stays put while
     * reading is held, until it is copied when its decode starts: a frame
     * waiting its turn costs no second copy. */
    const uint8_t *borrowed;
    uint8_t *payload;
    size_t len;
    /* What the pool made: the message or the error, and the refusals of
     * pbvalue_check sorted by value. */
    Aiod__ClientMessage *m;
    int rc;
    char why[256];
    verdict *verdicts;
    size_t n_verdicts;
    texts *texts;
};

static list waiting = {&waiting, &waiting};
static unsigned running;

/* Records pbvalue_check's refusal of v. false: no memory. */
static bool add_verdict(offload *o, const Aiod__Value *v, int r, const char *why) {
    if ((o->n_verdicts & (o->n_verdicts - 1)) == 0) {
        size_t cap = o->n_verdicts ? 2 * o->n_verdicts : 1;
        verdict *n = alloc_realloc(o->verdicts, cap * sizeof(*n));
        if (!n)
            return false;
        o->verdicts = n;
    }
    verdict *d = &o->verdicts[o->n_verdicts++];
    d->v = v;
    d->r = r;
    snprintf(d->why, sizeof(d->why), "%s", why ? why : "invalid value");
    return true;
}

static void texts_free(texts *t) {
    for (size_t i = 0; t && i < t->n; i++)
        pbvalue_free(t->p[i].v);
    if (t)
        free(t->p);
    free(t);
}

/* Parses text argument v of call c as JSON, as value_from_text would on the
 * loop, within what the frame's earlier text arguments left of
 * LIMIT_FRAME_VALUES. 0, -E2BIG (the request is refused: `why`), -ENOMEM. */
static int parse_text(offload *o, const Aiod__Call *c, size_t i, char *why, size_t why_len) {
    texts *t = o->texts ? o->texts : (o->texts = alloc_calloc(1, sizeof(*t)));
    if (!t)
        return -ENOMEM;
    if ((t->n & (t->n - 1)) == 0) {
        parsed *n = alloc_realloc(t->p, (t->n ? 2 * t->n : 1) * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->p = n;
    }
    parsed *p = &t->p[t->n++];
    *p = (parsed){.arg = c->args[i]};
    size_t made = 0;
    p->r = pbvalue_from_json_bounded(c->args[i]->string_value, LIMIT_VALUE_DEPTH,
                                     LIMIT_FRAME_VALUES - t->values, &p->v, &made, p->why,
                                     sizeof(p->why));
    if (p->r == -ENOMEM)
        return -ENOMEM;
    if (p->r == -E2BIG) {
        /* Text that is not JSON counts for nothing; JSON makes values
         * whichever parameter it is for. */
        snprintf(why, why_len,
                 "%s: argument %zu: the text arguments of one request make more than %u values "
                 "(the limit)",
                 c->function ? c->function : "?", i + 1, LIMIT_FRAME_VALUES);
        return -E2BIG;
    }
    t->values += made;
    return 0;
}

static int check_args(offload *o, Aiod__Call *c) {
    for (size_t i = 0; c && i < c->n_args; i++) {
        const char *why = NULL;
        int r = c->args[i] ? pbvalue_check(c->args[i], LIMIT_VALUE_DEPTH, &why) : 0;
        if (r < 0 && !add_verdict(o, c->args[i], r, why))
            return -ENOMEM;
        if (r < 0 || !c->args[i])
            continue;
        /* Taken as decoded, it must not keep what a Value does not have
         * (a frame of unknown fields is some 100 MB of nodes). */
        pbvalue_drop_unknown(c->args[i]);
        /* Text is converted here too: JSON of 4 MiB holds the loop for
         * seconds. */
        if (c->args_are_text && pbvalue_type(c->args[i]) == PBVALUE_STRING &&
            (r = parse_text(o, c, i, o->why, sizeof(o->why))) < 0)
            return r;
    }
    return 0;
}

static int by_arg(const void *a, const void *b) {
    const Aiod__Value *x = ((const parsed *)a)->arg, *y = ((const parsed *)b)->arg;
    return x < y ? -1 : x > y;
}

static int by_value(const void *a, const void *b) {
    const Aiod__Value *x = ((const verdict *)a)->v, *y = ((const verdict *)b)->v;
    return x < y ? -1 : x > y;
}

/* On a pool thread: the decode and the signature-free checks of every
 * call's arguments. */
static void decode(uv_work_t *w) {
    offload *o = container_of(w, offload, work);
    if (!o->payload) {
        o->rc = -ENOMEM; /* no copy could be made */
        return;
    }
    o->rc = wire_decode_detached(o->payload, o->len, &o->m, o->why, sizeof(o->why));
    if (o->rc < 0)
        return;
    Aiod__ClientMessage *m = o->m;
    int r = 0;
    if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_SUBMIT && m->submit)
        r = check_args(o, m->submit->call);
    if (m->body_case == AIOD__CLIENT_MESSAGE__BODY_GATHER && m->gather)
        for (size_t k = 0; r == 0 && k < m->gather->n_items; k++)
            if (m->gather->items[k] &&
                m->gather->items[k]->item_case == AIOD__GATHER_ITEM__ITEM_CALL)
                r = check_args(o, m->gather->items[k]->call);
    if (r < 0) {
        /* -E2BIG is answered as a binary request of too many values is
         * (ERROR_LIMIT), with the reason check_args wrote. */
        wire_free_detached(m);
        o->m = NULL;
        texts_free(o->texts);
        o->texts = NULL;
        o->rc = r;
        return;
    }
    if (o->n_verdicts > 1)
        qsort(o->verdicts, o->n_verdicts, sizeof(*o->verdicts), by_value);
    if (o->texts && o->texts->n > 1)
        qsort(o->texts->p, o->texts->n, sizeof(*o->texts->p), by_arg);
}

static void release(uv_work_t *w) {
    offload *o = container_of(w, offload, work);
    wire_free_detached(o->m);
    texts_free(o->texts);
}

static void released(uv_work_t *w, int status) {
    (void)status;
    free(container_of(w, offload, work));
}

static void decoded(uv_work_t *w, int status);

/* Hands waiting frames to the pool while fewer than OFFLOAD_RUNNING run. */
static void start_waiting(void) {
    while (running < OFFLOAD_RUNNING && !list_empty(&waiting)) {
        offload *o = container_of(list_first(&waiting), offload, node);
        list_remove(&o->node);
        o->started = true;
        running++;
        if (o->borrowed && (o->payload = alloc_malloc(o->len)))
            memcpy(o->payload, o->borrowed, o->len);
        o->borrowed = NULL;
        int r = uv_queue_work(o->loop, &o->work, decode, decoded);
        assert(r == 0); /* fails only for a NULL callback */
        (void)r;
    }
}

static void decoded(uv_work_t *w, int status) {
    offload *o = container_of(w, offload, work);
    (void)status; /* never cancelled */
    running--;
    start_waiting();
    session *s = o->s;
    if (s) {
        s->offload = NULL;
        stall_enter_request(s->c->serial, s->c->uid);
        o->done(s, o, o->m, o->rc, o->why);
        stall_leave();
    }
    free(o->payload);
    free(o->verdicts);
    o->payload = NULL;
    o->verdicts = NULL;
    /* What the handler did not take goes back on the pool: a refused
     * 4 MiB frame is some 600,000 nodes to free, and as many again may
     * have been parsed from its text. */
    if ((o->m || o->texts) && uv_queue_work(o->loop, &o->work, release, released) == 0)
        return;
    wire_free_detached(o->m);
    texts_free(o->texts);
    free(o);
}

int offload_start(session *s, const uint8_t *payload, size_t len, bool may_park, bool in_conn,
                  offload_handler done) {
    assert(!s->offload);
    assert(len >= WIRE_DETACHED_FROM);
    offload *o = alloc_calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    if (in_conn)
        o->borrowed = payload;
    else if ((o->payload = alloc_malloc(len)))
        memcpy(o->payload, payload, len);
    else {
        free(o);
        return -ENOMEM;
    }
    o->loop = s->c->pipe.loop;
    o->s = s;
    o->done = done;
    o->may_park = may_park;
    o->len = len;
    s->offload = o;
    conn_hold(s->c, true);
    list_insert_tail(&waiting, &o->node);
    start_waiting();
    return 0;
}

const uint8_t *offload_payload(const offload *o, size_t *ret_len) {
    *ret_len = o->len;
    return o->payload;
}

bool offload_may_park(const offload *o) {
    return o->may_park;
}

int offload_verdict(const void *ctx, const Aiod__Value *v, const char **why) {
    const offload *o = ctx;
    if (!o->n_verdicts)
        return 0;
    verdict key = {.v = v};
    const verdict *d = bsearch(&key, o->verdicts, o->n_verdicts, sizeof(key), by_value);
    if (!d)
        return 0;
    *why = d->why;
    return d->r;
}

int offload_text(const void *ctx, const Aiod__Value *v, Aiod__Value **ret, const char **why) {
    const offload *o = ctx;
    if (!o->texts)
        return 0;
    parsed key = {.arg = v};
    parsed *p = bsearch(&key, o->texts->p, o->texts->n, sizeof(key), by_arg);
    if (!p)
        return 0;
    if (p->r < 0) {
        *why = p->why;
        return p->r;
    }
    if (!p->v)
        return 0; /* taken already: parse it again */
    *ret = p->v;
    p->v = NULL;
    return 1;
}

void offload_session_closed(session *s) {
    offload *o = s->offload;
    if (!o)
        return;
    s->offload = NULL;
    o->s = NULL;
    if (!o->started) {
        list_remove(&o->node);
        free(o->payload);
        free(o);
    }
}
