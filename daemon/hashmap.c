/*
 * Open-addressing hash map (hashmap.h): keys, hashes and values sit inline
 * in one array, probed linearly, so a lookup touches one or two cache lines
 * and an insert allocates nothing until the table doubles (at 1/2 load); it
 * halves again when an eighth full.
 * Removal shifts the following entries back (no tombstones), so long-lived
 * maps with churn, like the task table, never degrade.
 */
#include "hashmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct slot {
    /* 0 marks an empty slot; real hashes are forced nonzero. */
    uint64_t hash;
    union {
        uint64_t u64;
        const char *str;
    } key;
    void *value;
} slot;

struct hashmap {
    slot *slots;
    size_t cap; /* a power of two */
    size_t size;
    int string_keys;
};

static uint64_t hash_u64(uint64_t x) {
    /* splitmix64 finaliser: ids are sequential, so mix them. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x ? x : 1;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
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

/* The slot holding the key, or the empty slot where it would go. */
static slot *probe(const hashmap *m, uint64_t h, uint64_t k, const char *str) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (s->hash == 0 || same_key(m, s, h, k, str))
            return s;
    }
}

static int resize(hashmap *m, size_t ncap) {
    slot *ns = alloc_calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (!s->hash)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

static int put(hashmap *m, uint64_t h, uint64_t k, const char *str, void *value) {
    if ((m->size + 1) * 2 > m->cap && resize(m, m->cap * 2) < 0)
        return -ENOMEM;
    slot *s = probe(m, h, k, str);
    if (s->hash)
        return -EEXIST;
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
    slot *s = probe(m, h, k, str);
    if (!s->hash)
        return NULL;
    void *v = s->value;
    /* Backward-shift deletion: move later members of the probe run into
     * the hole so that lookups never stop early at it. */
    size_t mask = m->cap - 1, hole = (size_t)(s - m->slots);
    for (size_t i = (hole + 1) & mask; m->slots[i].hash; i = (i + 1) & mask) {
        size_t home = m->slots[i].hash & mask;
        /* Entry i may move to the hole if its home is not within (hole, i]. */
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            m->slots[hole] = m->slots[i];
            hole = i;
        }
    }
    m->slots[hole].hash = 0;
    m->slots[hole].value = NULL;
    m->size--;
    /* Shrink when an eighth full, so that a burst of a million tasks does
     * not leave a 64 MB table behind; halving keeps it amortised. A failed
     * shrink just keeps the bigger table. */
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
    return probe(m, hash_u64(key), key, NULL)->value;
}

void *hashmap_get_str(const hashmap *m, const char *key) {
    return probe(m, hash_str(key), 0, key)->value;
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
        if (m->slots[i].hash) {
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
