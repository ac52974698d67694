/*
 * Chained hash map (hashmap.h). Buckets double when the load passes 1, so
 * lookups stay O(1) from a handful of plugin functions to a million tasks.
 * Entries are small separate allocations; iteration walks buckets in order.
 */
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    union {
        uint64_t u64;
        const char *str;
    } key;
    void *value;
} entry;

struct hashmap {
    entry **buckets;
    size_t n_buckets;
    size_t size;
    int string_keys;
};

static uint64_t hash_u64(uint64_t x) {
    /* splitmix64 finaliser: ids are sequential, so mix them. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

hashmap *hashmap_new(int string_keys) {
    hashmap *m = alloc_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_buckets = 16;
    m->buckets = alloc_calloc(m->n_buckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->string_keys = string_keys;
    return m;
}

void hashmap_free(hashmap *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++)
        for (entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    free(m->buckets);
    free(m);
}

size_t hashmap_size(const hashmap *m) {
    return m->size;
}

static void grow(hashmap *m) {
    size_t nb = m->n_buckets * 2;
    entry **b = alloc_calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep working with longer chains */
    for (size_t i = 0; i < m->n_buckets; i++)
        for (entry *e = m->buckets[i], *n; e; e = n) {
            n = e->next;
            size_t j = e->hash & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
}

static entry **find(const hashmap *m, uint64_t h, uint64_t k, const char *s) {
    entry **p = &m->buckets[h & (m->n_buckets - 1)];
    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h &&
            (m->string_keys ? strcmp((*p)->key.str, s) == 0 : (*p)->key.u64 == k))
            return p;
    return p;
}

static int put(hashmap *m, uint64_t h, uint64_t k, const char *s, void *value) {
    entry **p = find(m, h, k, s);
    if (*p)
        return -EEXIST;
    entry *e = alloc_malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->next = NULL;
    e->hash = h;
    if (m->string_keys)
        e->key.str = s;
    else
        e->key.u64 = k;
    e->value = value;
    *p = e;
    if (++m->size > m->n_buckets)
        grow(m);
    return 0;
}

static void *take(hashmap *m, uint64_t h, uint64_t k, const char *s) {
    entry **p = find(m, h, k, s);
    entry *e = *p;
    if (!e)
        return NULL;
    *p = e->next;
    void *v = e->value;
    free(e);
    m->size--;
    return v;
}

int hashmap_put_u64(hashmap *m, uint64_t key, void *value) {
    return put(m, hash_u64(key), key, NULL, value);
}

int hashmap_put_str(hashmap *m, const char *key, void *value) {
    return put(m, hash_str(key), 0, key, value);
}

void *hashmap_get_u64(const hashmap *m, uint64_t key) {
    entry *e = *find(m, hash_u64(key), key, NULL);
    return e ? e->value : NULL;
}

void *hashmap_get_str(const hashmap *m, const char *key) {
    entry *e = *find(m, hash_str(key), 0, key);
    return e ? e->value : NULL;
}

void *hashmap_remove_u64(hashmap *m, uint64_t key) {
    return take(m, hash_u64(key), key, NULL);
}

void *hashmap_remove_str(hashmap *m, const char *key) {
    return take(m, hash_str(key), 0, key);
}

void *hashmap_next(const hashmap *m, size_t *state, void **cursor) {
    entry *e = *cursor;
    if (e && e->next) {
        *cursor = e->next;
        return e->next->value;
    }
    for (size_t i = *state; i < m->n_buckets; i++)
        if (m->buckets[i]) {
            *state = i + 1;
            *cursor = m->buckets[i];
            return m->buckets[i]->value;
        }
    *state = m->n_buckets;
    *cursor = NULL;
    return NULL;
}
