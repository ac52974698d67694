/*
 * A small open-addressing hash map (linear probing) from keys (uint64_t or
 * C strings) to pointers, for the task table (by id) and the function
 * registry (by name). Keys are
 * borrowed: the caller keeps them alive while the entry exists.
 *
 * The table grows and shrinks incrementally: no insert or removal moves
 * more than a bounded number of entries (hashmap.c). Not thread-safe.
 */
#ifndef AIOD_HASHMAP_H
#define AIOD_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hashmap hashmap;

/* A map keyed by uint64_t (string_keys = 0) or by C strings (1). NULL on OOM. */
hashmap *hashmap_new(int string_keys);
/* Frees the map, not the values. Accepts NULL. */
void hashmap_free(hashmap *m);
/* 0, -EEXIST, -ENOMEM. */
int hashmap_put_u64(hashmap *m, uint64_t key, void *value);
int hashmap_put_str(hashmap *m, const char *key, void *value);
void *hashmap_get_u64(const hashmap *m, uint64_t key);
void *hashmap_get_str(const hashmap *m, const char *key);
/* Returns the removed value or NULL. */
void *hashmap_remove_u64(hashmap *m, uint64_t key);
void *hashmap_remove_str(hashmap *m, const char *key);
size_t hashmap_size(const hashmap *m);
/* Slots of the table inserts go to: for tests and statistics. */
size_t hashmap_capacity(const hashmap *m);
/* Finishes a rebuild under way and, if the table is less than an eighth
 * full, shrinks it to a quarter full at once: for a caller that has time,
 * since removals alone shrink it only once a 32nd full (a table of 2M
 * slots with 261k entries took 7.7 ms). Keeps the table as it is when out
 * of memory. */
void hashmap_compact(hashmap *m);
/* Slots of the previous table still to be moved while the map is rebuilt
 * (0 when it is not): for tests and statistics. */
size_t hashmap_rehash_pending(const hashmap *m);

/* Iteration: start with *state = 0; returns the next value or NULL at the
 * end. The map must not change during an iteration. */
void *hashmap_next(const hashmap *m, size_t *state, void **ret_entry_cursor);

/*
 * Counters keyed by uint64_t (connections and tasks per uid): *m is created
 * on the first increment and freed when the last counter drops to zero, so
 * nothing is left at exit. hashmap_count_add ignores a failed allocation
 * (the count then reads low, never high), and a decrement stops at zero.
 */
uint32_t hashmap_count_get(hashmap *m, uint64_t key);
void hashmap_count_add(hashmap **m, uint64_t key, int delta);

#endif
