/*
 * The state store's log: the blob format and the index of unfolded changes
 * (storelog.h).
 */
#include "system/storelog.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---------------------------------------------------------------- the blob */

static uint8_t *grow(slog_buf *b, size_t more) {
    if (b->cap - b->len < more) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < more)
            cap *= 2;
        uint8_t *p = alloc_realloc(b->p, cap);
        if (!p)
            return NULL;
        b->p = p;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->len;
    b->len += more;
    b->n++;
    return at;
}

static uint8_t *le64(uint8_t *at, uint64_t v) {
    for (int i = 0; i < 8; i++)
        *at++ = (uint8_t)(v >> (8 * i));
    return at;
}

static uint8_t *le32(uint8_t *at, uint32_t v) {
    for (int i = 0; i < 4; i++)
        *at++ = (uint8_t)(v >> (8 * i));
    return at;
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void *slog_put_reserve(slog_buf *b, uint64_t id, int32_t state, uint64_t finished_usec,
                       size_t len) {
    assert(len <= UINT32_MAX);
    uint8_t *at = grow(b, 1 + 8 + 4 + 8 + 4 + len);
    if (!at)
        return NULL;
    *at++ = SLOG_PUT;
    at = le64(at, id);
    at = le32(at, (uint32_t)state);
    at = le64(at, finished_usec);
    return le32(at, (uint32_t)len);
}

int slog_put(slog_buf *b, uint64_t id, int32_t state, uint64_t finished_usec, const void *record,
             size_t len) {
    void *at = slog_put_reserve(b, id, state, finished_usec, len);
    if (!at)
        return -ENOMEM;
    if (len)
        memcpy(at, record, len);
    return 0;
}

int slog_delete(slog_buf *b, uint64_t id) {
    uint8_t *at = grow(b, 1 + 8);
    if (!at)
        return -ENOMEM;
    *at++ = SLOG_DELETE;
    le64(at, id);
    return 0;
}

int slog_meta(slog_buf *b, const char *key, uint64_t value) {
    size_t kl = strlen(key);
    assert(kl <= UINT8_MAX);
    uint8_t *at = grow(b, 1 + 1 + kl + 8);
    if (!at)
        return -ENOMEM;
    *at++ = SLOG_META;
    *at++ = (uint8_t)kl;
    memcpy(at, key, kl);
    le64(at + kl, value);
    return 0;
}

int slog_append(slog_buf *b, const slog_buf *from) {
    if (!from->len)
        return 0;
    size_t n = b->n;
    uint8_t *at = grow(b, from->len);
    if (!at)
        return -ENOMEM;
    memcpy(at, from->p, from->len);
    b->n = n + from->n;
    return 0;
}

void slog_clear(slog_buf *b) {
    b->len = 0;
    b->n = 0;
}

void slog_free(slog_buf *b) {
    free(b->p);
    *b = (slog_buf){0};
}

int slog_next(const uint8_t *p, size_t len, size_t *pos, slog_op *op) {
    size_t at = *pos;
    if (at == len)
        return 0;
    if (at > len)
        return -EBADMSG;
    size_t left = len - at;
    *op = (slog_op){.kind = p[at], .off = at};
    const uint8_t *q = p + at + 1;
    left--;
    switch (op->kind) {
    case SLOG_PUT:
        if (left < 24)
            return -EBADMSG;
        op->id = get64(q);
        op->state = (int32_t)get32(q + 8);
        op->finished_usec = get64(q + 12);
        op->len = get32(q + 20);
        if (left - 24 < op->len)
            return -EBADMSG;
        op->record = q + 24;
        *pos = at + 1 + 24 + op->len;
        return 1;
    case SLOG_DELETE:
        if (left < 8)
            return -EBADMSG;
        op->id = get64(q);
        *pos = at + 1 + 8;
        return 1;
    case SLOG_META:
        if (left < 1 || left - 1 < (size_t)q[0] + 8u || q[0] == 0)
            return -EBADMSG;
        op->key_len = q[0];
        op->key = (const char *)q + 1;
        op->id = get64(q + 1 + op->key_len);
        *pos = at + 2 + op->key_len + 8;
        return 1;
    default:
        return -EBADMSG;
    }
}

/* ---------------------------------------------------------------- the index */

/*
 * id -> a tagged word: the row's sequence number (low 32 bits: rows alive
 * at once are far fewer), the change's offset (30 bits), and whether
 * `tasks` may hold the task's row. Open addressing with linear probing and
 * backward-shift deletion: the ids come and go as a sliding window, which
 * would leave a table with tombstones (base/hashmap.h) full of them and its
 * lookups long. Id 0 is never a task's, and marks an empty slot.
 */
typedef struct slog_entry {
    uint64_t id, tag;
} slog_entry;

struct slog_index {
    slog_entry *t;
    size_t cap; /* a power of two */
    size_t n;
    unsigned shift; /* 64 - log2(cap) */
    /* An entry could not be recorded (out of memory, a bad blob): every
     * change is then folded, in order, until the log is empty
     * (slog_index_reset). */
    bool broken;
};

#define INDEX_MIN_CAP 1024u

static uint64_t tag(uint64_t seq, size_t off, bool in_table) {
    return (seq & 0xffffffffu) << 32 | (uint64_t)off << 2 | (uint64_t)in_table << 1 | 1u;
}

static bool tag_is(uint64_t v, uint64_t seq, size_t off) {
    return (v | 2u) == tag(seq, off, true);
}

static size_t home(const slog_index *x, uint64_t id) {
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> x->shift);
}

static slog_entry *find(const slog_index *x, uint64_t id) {
    size_t mask = x->cap - 1;
    for (size_t i = home(x, id);; i = (i + 1) & mask) {
        if (x->t[i].id == id)
            return &x->t[i];
        if (x->t[i].id == 0)
            return NULL;
    }
}

static int table_init(slog_index *x, size_t cap) {
    slog_entry *t = alloc_calloc(cap, sizeof(*t));
    if (!t)
        return -ENOMEM;
    x->t = t;
    x->cap = cap;
    x->n = 0;
    x->shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        x->shift--;
    return 0;
}

static void place(slog_index *x, uint64_t id, uint64_t v) {
    size_t mask = x->cap - 1, i = home(x, id);
    while (x->t[i].id)
        i = (i + 1) & mask;
    x->t[i] = (slog_entry){id, v};
    x->n++;
}

/* Adds an entry for id, known absent (kept at most half full). 0 or
 * -ENOMEM. */
static int insert(slog_index *x, uint64_t id, uint64_t v) {
    if ((x->n + 1) * 2 > x->cap) {
        slog_index old = *x;
        if (table_init(x, old.cap * 2) < 0) {
            *x = old;
            return -ENOMEM;
        }
        for (size_t i = 0; i < old.cap; i++)
            if (old.t[i].id)
                place(x, old.t[i].id, old.t[i].tag);
        free(old.t);
    }
    place(x, id, v);
    return 0;
}

/* Removes the entry at e, shifting back those its removal would cut off
 * from their home slot. */
static void unset(slog_index *x, slog_entry *e) {
    size_t mask = x->cap - 1, i = (size_t)(e - x->t);
    for (size_t j = (i + 1) & mask; x->t[j].id; j = (j + 1) & mask) {
        size_t k = home(x, x->t[j].id);
        /* Entry j may fill the hole at i if its home is not in (i, j]. */
        bool between = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!between) {
            x->t[i] = x->t[j];
            i = j;
        }
    }
    x->t[i].id = 0;
    x->n--;
}

slog_index *slog_index_new(void) {
    slog_index *x = alloc_calloc(1, sizeof(*x));
    if (!x || table_init(x, INDEX_MIN_CAP) < 0) {
        free(x);
        return NULL;
    }
    return x;
}

void slog_index_free(slog_index *x) {
    if (!x)
        return;
    free(x->t);
    free(x);
}

int slog_index_add(slog_index *x, uint64_t seq, const uint8_t *p, size_t len,
                   uint64_t table_max_id) {
    size_t pos = 0;
    slog_op op;
    int r;
    while ((r = slog_next(p, len, &pos, &op)) > 0) {
        if (op.kind == SLOG_META)
            continue;
        /* Id 0 is no task's; offsets are kept in 30 bits (store.c cuts
         * rows at 16 MiB). */
        if (op.id == 0 || op.off >= (size_t)1 << 30) {
            r = -EBADMSG;
            break;
        }
        /* An older unfolded change keeps what it knew of the table: none
         * of its changes reached it since. One lookup per change. */
        slog_entry *old = find(x, op.id);
        if (old) {
            old->tag = tag(seq, op.off, (old->tag & 2u) != 0);
            continue;
        }
        if (insert(x, op.id, tag(seq, op.off, op.id <= table_max_id)) < 0) {
            r = -ENOMEM;
            break;
        }
    }
    if (r < 0)
        x->broken = true;
    return r;
}

bool slog_index_broken(const slog_index *x) {
    return x->broken;
}

int slog_index_reset(slog_index *x) {
    slog_index fresh = {0};
    if (table_init(&fresh, INDEX_MIN_CAP) < 0)
        return -ENOMEM;
    free(x->t);
    *x = fresh;
    return 0;
}

bool slog_index_is_latest(const slog_index *x, uint64_t seq, const slog_op *op,
                          bool *ret_in_table) {
    if (x->broken) {
        *ret_in_table = true;
        return true;
    }
    const slog_entry *e = find(x, op->id);
    *ret_in_table = e && (e->tag & 2u);
    return e && tag_is(e->tag, seq, op->off);
}

void slog_index_forget(slog_index *x, uint64_t seq, const uint8_t *p, size_t len) {
    size_t pos = 0;
    slog_op op;
    if (x->broken)
        return;
    while (slog_next(p, len, &pos, &op) > 0) {
        if (op.kind == SLOG_META)
            continue;
        slog_entry *e = find(x, op.id);
        if (e && tag_is(e->tag, seq, op.off))
            unset(x, e);
    }
}

size_t slog_index_size(const slog_index *x) {
    return x->n;
}
