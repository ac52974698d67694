/*
 * Open-addressing hash map (hashmap.h): keys, hashes and values sit inline
 * in one array, probed linearly, so a lookup touches one or two cache lines
 * and an insert allocates nothing until the table is rebuilt. Removal leaves
 * a tombstone (O(1), where shifting entries back would scan the whole run of
 * a dense table of sequential ids); tombstones are swept when live plus
 * removed entries reach half the slots, and the table halves when an eighth
 * full.
 */
#include "base/hashmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

struct hashmap {
    slot *slots;
    size_t cap; /* a power of two */
    size_t size;
    /* Removed entries still marking their slots. */
    size_t tombs;
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

hashmap *hashmap_new(int string_keys) {
    hashmap *m = alloc_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = alloc_calloc(m->cap, sizeof(*m->slots));
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
    free(m->slots);
    free(m);
}

size_t hashmap_size(const hashmap *m) {
    return m->size;
}

static bool same_key(const hashmap *m, const slot *s, uint64_t h, uint64_t k, const char *str) {
    return s->hash == h && (m->string_keys ? strcmp(s->key.str, str) == 0 : s->key.u64 == k);
}

/* The slot holding the key, or NULL. Removed entries are stepped over. */
static slot *find(const hashmap *m, uint64_t h, uint64_t k, const char *str) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (s->hash == EMPTY)
            return NULL;
        if (same_key(m, s, h, k, str))
            return s;
    }
}

/* Rebuilds the table at `ncap` slots, dropping the removed entries. */
static int resize(hashmap *m, size_t ncap) {
    slot *ns = alloc_calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (!LIVE(s->hash))
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash != EMPTY)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->tombs = 0;
    return 0;
}

static int put(hashmap *m, uint64_t h, uint64_t k, const char *str, void *value) {
    if (find(m, h, k, str))
        return -EEXIST;
    /* Keep live and removed entries under half the slots, so probes stay
     * short: double when the live ones need it, else just sweep. */
    if ((m->size + m->tombs + 1) * 2 > m->cap &&
        resize(m, (m->size + 1) * 4 > m->cap ? m->cap * 2 : m->cap) < 0)
        return -ENOMEM;
    size_t mask = m->cap - 1, i = h & mask;
    while (LIVE(m->slots[i].hash))
        i = (i + 1) & mask;
    slot *s = &m->slots[i];
    if (s->hash == TOMB)
        m->tombs--;
    s->hash = h;
    if (m->string_keys)
        s->key.str = str;
    else
        s->key.u64 = k;
    s->value = value;
    m->size++;
    return 0;
}

static void *take(hashmap *m, uint64_t h, uint64_t k, const char *str) {
    slot *s = find(m, h, k, str);
    if (!s)
        return NULL;
    void *v = s->value;
    s->hash = TOMB;
    s->value = NULL;
    m->size--;
    m->tombs++;
    /* Shrink when an eighth full, so that a burst of a million tasks does
     * not leave a 64 MB table behind; a failed shrink keeps the big one. */
    if (m->cap > 16 && m->size * 8 < m->cap)
        (void)resize(m, m->cap / 2);
    return v;
}

int hashmap_put_u64(hashmap *m, uint64_t key, void *value) {
    return put(m, hash_u64(key), key, NULL, value);
}

int hashmap_put_str(hashmap *m, const char *key, void *value) {
    return put(m, hash_str(key), 0, key, value);
}

void *hashmap_get_u64(const hashmap *m, uint64_t key) {
    slot *s = find(m, hash_u64(key), key, NULL);
    return s ? s->value : NULL;
}

void *hashmap_get_str(const hashmap *m, const char *key) {
    slot *s = find(m, hash_str(key), 0, key);
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
    for (size_t i = *state; i < m->cap; i++)
        if (LIVE(m->slots[i].hash)) {
            *state = i + 1;
            return m->slots[i].value;
        }
    *state = m->cap;
    return NULL;
}

uint32_t hashmap_count_get(hashmap *m, uint64_t key) {
    return m ? (uint32_t)(uintptr_t)hashmap_get_u64(m, key) : 0;
}

void hashmap_count_add(hashmap **m, uint64_t key, int delta) {
    if (!*m && (delta < 0 || !(*m = hashmap_new(0))))
        return;
    uint32_t n = hashmap_count_get(*m, key) + (uint32_t)delta;
    hashmap_remove_u64(*m, key);
    if (n > 0)
        hashmap_put_u64(*m, key, (void *)(uintptr_t)n);
    else if (hashmap_size(*m) == 0) {
        hashmap_free(*m);
        *m = NULL;
    }
}
