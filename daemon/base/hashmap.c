/*
 * Open-addressing hash map (hashmap.h): keys, hashes and values sit inline
 * in one array, probed linearly, so a lookup touches one or two cache lines
 * and an insert allocates nothing until the table is rebuilt. Removal leaves
 * a tombstone (O(1), where shifting entries back would scan the whole run of
 * a dense table of sequential ids); tombstones are swept when live plus
 * removed entries reach half the slots. Removals shrink the table only once
 * it is a 32nd full, straight to a quarter full: the tasks of a burst end
 * in a few tight runs, and a shrink at each halving on the way down would
 * fault in a fresh table each time, one of the dearest steps of those runs
 * on a VM that hands freed memory back to its host. hashmap_compact
 * shrinks any table an eighth full, for a caller that has time (idle).
 *
 * The table is rebuilt incrementally, as Redis's dict rehashes: a rebuild
 * allocates the new table and leaves the entries in the old one; every
 * insert and removal then moves the entries of REHASH_STEP slots of the old
 * table, and the old table is freed once drained. Lookups, removals and
 * iteration look in both tables meanwhile. An entry moved leaves a tombstone
 * in the old table, so the probe runs of those still there stay whole. No
 * insert thus costs more than a bounded number of moves; the rebuild of a
 * million-entry table, which took tens of milliseconds in one insert, is
 * spread over the next few tens of thousands of operations, which is before
 * the new table can fill (see put).
 *
 * Tables of 2 MiB and more are mapped directly and advised as transparent
 * huge pages where the kernel offers them: the table of a million tasks is
 * then faulted in a few dozen faults, not twelve thousand.
 */
#include "base/hashmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"

typedef struct slot {
    /* EMPTY, TOMB (a removed entry) or a real hash, whose top bit is set. */
    uint64_t hash;
    union {
        uint64_t u64;
        const char *str;
    } key;
    void *value;
} slot;

#define EMPTY UINT64_C(0)
#define TOMB UINT64_C(1)
#define LIVE(h) ((h) >> 63)

/* Removals shrink a table once it is this many times emptier than full;
 * hashmap_compact once COMPACT_BELOW. */
#define SHRINK_BELOW 32
#define COMPACT_BELOW 8

/* Old slots moved per insert or removal during a rebuild. */
#define REHASH_STEP 64
/* Tables this large are mmap'd (huge pages), smaller ones calloc'd. */
#define MAP_BYTES ((size_t)2 << 20)

struct hashmap {
    /* The table inserts go to. */
    slot *slots;
    size_t cap; /* a power of two */
    /* Removed entries still marking slots of `slots`. */
    size_t tombs;
    /* Live entries, in both tables. */
    size_t size;
    /* During a rebuild, the table being drained (else NULL): its slots
     * below old_pos hold no live entry any more. */
    slot *old;
    size_t old_cap;
    size_t old_pos;
    /* Live entries still in `old`. */
    size_t old_live;
    int string_keys;
};

static uint64_t hash_u64(uint64_t x) {
    /* Identity in the low bits: the u64 keys are task ids the daemon hands
     * out in sequence (and uids), so neighbouring keys land in neighbouring
     * slots and a million-entry table stays cache-friendly; no client
     * chooses them. The top bit marks a live slot. */
    return x | (UINT64_C(1) << 63);
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h | (UINT64_C(1) << 63);
}

/* A zeroed table of n slots, or NULL. */
static slot *table_new(size_t n) {
    size_t bytes = n * sizeof(slot);
    if (bytes < MAP_BYTES)
        return alloc_calloc(n, sizeof(slot));
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* fails harmlessly without THP */
#endif
    return p;
}

static void table_free(slot *t, size_t n) {
    if (!t)
        return;
    if (n * sizeof(slot) < MAP_BYTES)
        free(t);
    else
        munmap(t, n * sizeof(slot));
}

hashmap *hashmap_new(int string_keys) {
    hashmap *m = alloc_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = table_new(m->cap);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->string_keys = string_keys;
    return m;
}

void hashmap_free(hashmap *m) {
    if (!m)
        return;
    table_free(m->slots, m->cap);
    table_free(m->old, m->old_cap);
    free(m);
}

size_t hashmap_size(const hashmap *m) {
    return m->size;
}

size_t hashmap_capacity(const hashmap *m) {
    return m->cap;
}

size_t hashmap_rehash_pending(const hashmap *m) {
    return m->old ? m->old_cap - m->old_pos : 0;
}

static bool same_key(const hashmap *m, const slot *s, uint64_t h, uint64_t k, const char *str) {
    return s->hash == h && (m->string_keys ? strcmp(s->key.str, str) == 0 : s->key.u64 == k);
}

/* The slot of table t (cap slots) holding the key, or NULL. Removed (and
 * moved) entries are stepped over. */
static slot *find_in(const hashmap *m, slot *t, size_t cap, uint64_t h, uint64_t k,
                     const char *str) {
    size_t mask = cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &t[i];
        if (s->hash == EMPTY)
            return NULL;
        if (same_key(m, s, h, k, str))
            return s;
    }
}

/* The slot holding the key in either table, or NULL; *in_old says which. */
static slot *find(const hashmap *m, uint64_t h, uint64_t k, const char *str, bool *in_old) {
    slot *s = find_in(m, m->slots, m->cap, h, k, str);
    *in_old = false;
    if (!s && m->old && m->old_live > 0) {
        s = find_in(m, m->old, m->old_cap, h, k, str);
        *in_old = s != NULL;
    }
    return s;
}

/* Puts an entry known to be absent into the current table. */
static void place(hashmap *m, const slot *e) {
    size_t mask = m->cap - 1, i = e->hash & mask;
    while (LIVE(m->slots[i].hash))
        i = (i + 1) & mask;
    slot *s = &m->slots[i];
    if (s->hash == TOMB)
        m->tombs--;
    *s = *e;
}

/* Moves the entries of up to `n` slots of the old table; frees it once
 * drained. */
static void rehash(hashmap *m, size_t n) {
    if (!m->old)
        return;
    size_t end = m->old_cap - m->old_pos < n ? m->old_cap : m->old_pos + n;
    for (; m->old_pos < end && m->old_live > 0; m->old_pos++) {
        slot *s = &m->old[m->old_pos];
        if (!LIVE(s->hash))
            continue;
        place(m, s);
        /* A tombstone, not EMPTY: entries further down its probe run are
         * still found. */
        s->hash = TOMB;
        s->value = NULL;
        m->old_live--;
    }
    if (m->old_live == 0 || m->old_pos == m->old_cap) {
        table_free(m->old, m->old_cap);
        m->old = NULL;
        m->old_cap = m->old_pos = 0;
    }
}

/* Starts a rebuild into a new table of `ncap` slots, dropping the removed
 * entries as they are moved. */
static int start_rebuild(hashmap *m, size_t ncap) {
    slot *ns = table_new(ncap);
    if (!ns)
        return -ENOMEM;
    m->old = m->slots;
    m->old_cap = m->cap;
    m->old_pos = 0;
    m->old_live = m->size;
    m->slots = ns;
    m->cap = ncap;
    m->tombs = 0;
    rehash(m, REHASH_STEP);
    return 0;
}

/* The slots of a table that `n` entries fill a quarter of (16 at least). */
static size_t fit_cap(size_t n) {
    size_t cap = 16;
    while (cap < n * 4)
        cap *= 2;
    return cap;
}

/* Live entries and tombstones the current table will hold once the old
 * one is drained. */
static size_t load(const hashmap *m) {
    return m->size + m->tombs;
}

static int put(hashmap *m, uint64_t h, uint64_t k, const char *str, void *value) {
    bool in_old;
    if (find(m, h, k, str, &in_old))
        return -EEXIST;
    rehash(m, REHASH_STEP);
    /* Keep live and removed entries under half the slots, so probes stay
     * short: double when the live ones need it, else just sweep. During a
     * rebuild the new table is at most about a quarter full when it starts
     * (twice the slots for half as many entries, or the same slots for a
     * quarter when sweeping), and the old one drains REHASH_STEP slots per
     * operation, so it is drained long before this triggers; if it ever
     * did, the rest is moved at once. */
    if ((load(m) + 1) * 2 > m->cap) {
        if (m->old)
            rehash(m, m->old_cap);
        if ((load(m) + 1) * 2 > m->cap &&
            start_rebuild(m, (m->size + 1) * 4 > m->cap ? m->cap * 2 : m->cap) < 0)
            return -ENOMEM;
    }
    slot e = {.hash = h, .value = value};
    if (m->string_keys)
        e.key.str = str;
    else
        e.key.u64 = k;
    place(m, &e);
    m->size++;
    return 0;
}

static void *take(hashmap *m, uint64_t h, uint64_t k, const char *str) {
    bool in_old;
    slot *s = find(m, h, k, str, &in_old);
    if (!s)
        return NULL;
    void *v = s->value;
    s->hash = TOMB;
    s->value = NULL;
    m->size--;
    if (in_old)
        m->old_live--;
    else
        m->tombs++;
    rehash(m, REHASH_STEP);
    /* A burst of a million tasks does not leave a 96 MB table behind; a
     * failed shrink keeps the big one. */
    if (!m->old && m->cap > 16 && m->size * SHRINK_BELOW < m->cap)
        (void)start_rebuild(m, fit_cap(m->size));
    return v;
}

void hashmap_compact(hashmap *m) {
    if (m->old)
        rehash(m, m->old_cap);
    if (m->cap > 16 && m->size * COMPACT_BELOW < m->cap && start_rebuild(m, fit_cap(m->size)) == 0)
        rehash(m, m->old_cap);
}

int hashmap_put_u64(hashmap *m, uint64_t key, void *value) {
    return put(m, hash_u64(key), key, NULL, value);
}

int hashmap_put_str(hashmap *m, const char *key, void *value) {
    return put(m, hash_str(key), 0, key, value);
}

void *hashmap_get_u64(const hashmap *m, uint64_t key) {
    bool in_old;
    slot *s = find(m, hash_u64(key), key, NULL, &in_old);
    return s ? s->value : NULL;
}

void *hashmap_get_str(const hashmap *m, const char *key) {
    bool in_old;
    slot *s = find(m, hash_str(key), 0, key, &in_old);
    return s ? s->value : NULL;
}

void *hashmap_remove_u64(hashmap *m, uint64_t key) {
    return take(m, hash_u64(key), key, NULL);
}

void *hashmap_remove_str(hashmap *m, const char *key) {
    return take(m, hash_str(key), 0, key);
}

void *hashmap_next(const hashmap *m, size_t *state, void **cursor) {
    (void)cursor;
    /* During a rebuild, the old table's slots come first, then the new
     * table's: *state counts through both. */
    size_t old_cap = m->old ? m->old_cap : 0;
    for (size_t i = *state; i < old_cap + m->cap; i++) {
        const slot *s = i < old_cap ? &m->old[i] : &m->slots[i - old_cap];
        if (LIVE(s->hash)) {
            *state = i + 1;
            return s->value;
        }
    }
    *state = old_cap + m->cap;
    return NULL;
}

uint32_t hashmap_count_get(hashmap *m, uint64_t key) {
    return m ? (uint32_t)(uintptr_t)hashmap_get_u64(m, key) : 0;
}

void hashmap_count_add(hashmap **m, uint64_t key, int delta) {
    if (!*m && (delta < 0 || !(*m = hashmap_new(0))))
        return;
    uint32_t cur = hashmap_count_get(*m, key), down = delta < 0 ? (uint32_t) - (int64_t)delta : 0;
    /* A count that reads low (an increment whose allocation failed) stops
     * at zero on the way down. */
    uint32_t n = delta >= 0 ? cur + (uint32_t)delta : cur > down ? cur - down : 0;
    hashmap_remove_u64(*m, key);
    if (n > 0)
        hashmap_put_u64(*m, key, (void *)(uintptr_t)n);
    else if (hashmap_size(*m) == 0) {
        hashmap_free(*m);
        *m = NULL;
    }
}
