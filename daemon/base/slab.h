/*
 * Slabs: objects of one fixed size carved from large chunks of memory, for
 * what the daemon creates by the million (task structs and their run parts).
 *
 * A chunk is SLAB_CHUNK bytes (2 MiB) of anonymous memory mapped at a
 * SLAB_CHUNK-aligned address, so the chunk of an object is found by masking
 * its address. A slab's first chunk uses normal pages, so that a daemon
 * with a handful of tasks keeps a small RSS; later chunks are advised to the
 * kernel as huge pages (madvise MADV_HUGEPAGE) when transparent huge pages
 * are available in "always" or "madvise" mode, so that a burst of a million
 * tasks takes a few hundred page faults instead of a few hundred thousand;
 * but not on a virtual machine whose balloon reports free memory to the
 * host, where a fresh huge page costs far more than the faults it saves.
 * Each chunk keeps its own free list; an object is taken from the chunk
 * used most recently that has room, then from never-used space at the end
 * of the newest chunk.
 *
 * A chunk whose objects are all freed is kept for reuse, not unmapped: a
 * second burst reuses the memory of the first instead of faulting it in
 * again. At most max_idle_bytes of such empty chunks are kept (the others
 * are unmapped when they empty); slab_trim gives the kept ones back, for
 * the daemon to call once it has been idle for a while.
 *
 * Not thread-safe: a slab belongs to one thread (in the daemon, the loop
 * thread), and every call on it must come from that thread.
 *
 * Under AddressSanitizer, and when running under valgrind, every object is
 * a calloc'd block and every free a free(), so that those tools see each
 * use after free; the counters then count objects only.
 */
#ifndef AIOD_SLAB_H
#define AIOD_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#define SLAB_CHUNK ((size_t)2 << 20)
/* The largest object a slab serves (a chunk then holds at least 31). */
#define SLAB_MAX_OBJECT ((size_t)64 << 10)

struct slab_chunk;

/* Everything in it is private to slab.c; declare one with SLAB_INIT. */
typedef struct slab {
    size_t size;           /* asked for */
    size_t stride;         /* size rounded up to 16 bytes */
    size_t max_idle_bytes; /* empty chunks kept at most, in bytes */
    /* Chunks with room (free objects or never-used space), most recently
     * used first, empty ones last; full chunks are on no list. */
    struct slab_chunk *avail;
    struct slab_chunk *all; /* every mapped chunk */
    size_t n_chunks;        /* mapped */
    size_t n_empty;         /* mapped with no live object */
    size_t live;            /* objects allocated and not freed */
    bool malloc_mode;
    bool ready;
} slab;

/* A slab of objects of `object_size` bytes (1..SLAB_MAX_OBJECT), keeping at
 * most `max_idle` bytes of empty chunks mapped. Nothing is allocated until
 * the first slab_alloc. */
#define SLAB_INIT(object_size, max_idle)                                                           \
    { .size = (object_size), .max_idle_bytes = (max_idle) }

/* A zeroed object of the slab's size, 16-byte aligned, owned by the caller
 * until slab_free; NULL when out of memory (errno ENOMEM) or when the size
 * given to SLAB_INIT is 0 or over SLAB_MAX_OBJECT (errno EINVAL). */
void *slab_alloc(slab *s);
/* Takes back an object from slab_alloc of the same slab; accepts NULL. */
void slab_free(slab *s, void *p);
/* Unmaps empty chunks until at most keep_bytes of them stay mapped. Returns
 * the bytes unmapped. Chunks holding a live object stay. */
size_t slab_trim(slab *s, size_t keep_bytes);
/* Unmaps every chunk. Only with no object live, or at exit when none of
 * them will be touched again. The slab can then be used again. */
void slab_release(slab *s);

typedef struct slab_stats {
    size_t live;         /* objects allocated and not freed */
    size_t chunks;       /* chunks mapped (0 in malloc mode) */
    size_t empty_chunks; /* of them, with no live object */
    size_t mapped_bytes; /* chunks * SLAB_CHUNK */
    size_t per_chunk;    /* objects a chunk holds (0 in malloc mode) */
    bool malloc_mode;    /* objects come from calloc (ASan, valgrind) */
} slab_stats;

void slab_get_stats(const slab *s, slab_stats *ret);

/* The kernel's transparent huge pages, read now from sysfs: 0 never (or
 * not there), 1 madvise, 2 always. */
int slab_thp_mode(void);

/* Whether a virtio balloon reports free memory to the host (free page
 * reporting, which hands back free blocks of 2 MiB): read now from sysfs.
 * Slabs then keep every chunk in small pages. */
bool slab_free_pages_reported(void);
/* Whether a virtio device's `features` file (one '0' or '1' per feature
 * bit) has VIRTIO_BALLOON_F_REPORTING; false for NULL or a short string. */
bool slab_features_report_free_pages(const char *features);

#endif
