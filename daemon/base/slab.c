/*
 * Slabs of fixed-size objects in 2 MiB chunks (slab.h).
 */
#include "base/slab.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_balloon.h>

#include "base/memcheck.h"

/* The header at the start of every chunk; the objects follow it. */
typedef struct slab_chunk {
    /* On the slab's avail list (circular) while the chunk has room. */
    struct slab_chunk *next, *prev;
    /* Every mapped chunk (circular), for slab_release. */
    struct slab_chunk *all_next, *all_prev;
    /* Freed objects of this chunk; the link is the object's first word. */
    void *free;
    /* Never-used space: [fresh, end) is still zero from mmap. */
    uint8_t *fresh, *end;
    size_t live;
    bool on_avail;
} slab_chunk;

#define HEADER (((sizeof(slab_chunk) + 63) / 64) * 64)

/* Transparent huge pages: -1 not read yet, else slab_thp_mode's answer,
 * and whether the host takes freed memory back (slab_free_pages_reported).
 * Read once; only the loop thread maps chunks. */
static int thp_mode = -1;
static bool reported;

int slab_thp_mode(void) {
    char buf[128];
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    if (strstr(buf, "[always]"))
        return 2;
    if (strstr(buf, "[madvise]"))
        return 1;
    return 0;
}

bool slab_features_report_free_pages(const char *features) {
    return features && strlen(features) > VIRTIO_BALLOON_F_REPORTING &&
           features[VIRTIO_BALLOON_F_REPORTING] == '1';
}

bool slab_free_pages_reported(void) {
    glob_t g;
    bool yes = false;
    /* globfree on every answer: a failed glob may still hold a partial list. */
    if (glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*/features", 0, NULL, &g) != 0) {
        globfree(&g);
        return false;
    }
    for (size_t i = 0; i < g.gl_pathc && !yes; i++) {
        char buf[256] = "";
        int fd = open(g.gl_pathv[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        yes = slab_features_report_free_pages(buf);
    }
    globfree(&g);
    return yes;
}

static slab_chunk *chunk_of(const void *p) {
    return (slab_chunk *)((uintptr_t)p & ~(uintptr_t)(SLAB_CHUNK - 1));
}

static void avail_unlink(slab *s, slab_chunk *c) {
    if (c->next == c)
        s->avail = NULL;
    else {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (s->avail == c)
            s->avail = c->next;
    }
    c->on_avail = false;
}

/* Links c in front of the avail list (head) or behind it (tail). */
static void avail_link(slab *s, slab_chunk *c, bool head) {
    slab_chunk *h = s->avail;
    if (!h) {
        c->next = c->prev = c;
        s->avail = c;
    } else {
        c->next = h;
        c->prev = h->prev;
        h->prev->next = c;
        h->prev = c;
        if (head)
            s->avail = c;
    }
    c->on_avail = true;
}

static void chunk_unmap(slab *s, slab_chunk *c) {
    if (c->on_avail)
        avail_unlink(s, c);
    slab_chunk **all = &s->all;
    if (c->all_next == c)
        *all = NULL;
    else {
        c->all_prev->all_next = c->all_next;
        c->all_next->all_prev = c->all_prev;
        if (*all == c)
            *all = c->all_next;
    }
    if (c->live == 0)
        s->n_empty--;
    s->n_chunks--;
    munmap(c, SLAB_CHUNK);
}

/* A SLAB_CHUNK-aligned mapping of SLAB_CHUNK bytes, or NULL. */
static void *map_aligned(void) {
    uint8_t *p = mmap(NULL, SLAB_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (((uintptr_t)p & (SLAB_CHUNK - 1)) == 0)
        return p;
    /* Map twice the size and cut the unaligned ends off. The kernel tends
     * to place the next mapping right below this one, aligned as well. */
    munmap(p, SLAB_CHUNK);
    p = mmap(NULL, 2 * SLAB_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + SLAB_CHUNK - 1) & ~(uintptr_t)(SLAB_CHUNK - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + SLAB_CHUNK < p + 2 * SLAB_CHUNK)
        munmap(a + SLAB_CHUNK, (size_t)(p + 2 * SLAB_CHUNK - (a + SLAB_CHUNK)));
    return a;
}

static slab_chunk *chunk_new(slab *s) {
    slab_chunk *c = map_aligned();
    if (!c)
        return NULL;
    if (thp_mode < 0) {
        thp_mode = slab_thp_mode();
        reported = slab_free_pages_reported();
    }
#ifdef MADV_HUGEPAGE
    /* The first chunk in small pages: a daemon with a few tasks then keeps
     * a few kilobytes resident, not 2 MiB per slab. Once a slab needs more
     * than one chunk, it is in a burst, and huge pages save the faults,
     * unless the host takes freed memory back in 2 MiB blocks: then a huge
     * page is memory the host must provide again, which on the machine
     * measured cost about 1.4 ms each, where small pages come from what
     * was freed a moment ago (docs/benchmarks.md). */
    if (s->n_chunks == 0 || reported) {
        if (thp_mode == 2)
            (void)madvise(c, SLAB_CHUNK, MADV_NOHUGEPAGE);
    } else if (thp_mode > 0)
        (void)madvise(c, SLAB_CHUNK, MADV_HUGEPAGE);
#endif
    /* The header is written into fresh memory: its other fields are 0. */
    c->fresh = (uint8_t *)c + HEADER;
    c->end = c->fresh + ((SLAB_CHUNK - HEADER) / s->stride) * s->stride;
    slab_chunk **all = &s->all;
    if (!*all) {
        c->all_next = c->all_prev = c;
        *all = c;
    } else {
        c->all_next = *all;
        c->all_prev = (*all)->all_prev;
        (*all)->all_prev->all_next = c;
        (*all)->all_prev = c;
    }
    s->n_chunks++;
    s->n_empty++;
    avail_link(s, c, true);
    return c;
}

static bool setup(slab *s) {
    if (s->ready)
        return true;
    if (s->size == 0 || s->size > SLAB_MAX_OBJECT)
        return false;
    s->stride = (s->size + 15) & ~(size_t)15;
#ifdef AIOD_ASAN
    s->malloc_mode = true;
#else
    s->malloc_mode = RUNNING_ON_VALGRIND;
#endif
    s->ready = true;
    return true;
}

void *slab_alloc(slab *s) {
    if (!setup(s)) {
        errno = EINVAL;
        return NULL;
    }
    if (s->malloc_mode) {
        void *p = calloc(1, s->size);
        if (p)
            s->live++;
        return p;
    }
    slab_chunk *c = s->avail;
    if (!c && !(c = chunk_new(s))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p;
    if (c->free) {
        p = c->free;
        c->free = *(void **)p;
        memset(p, 0, s->size);
    } else {
        p = c->fresh;
        c->fresh += s->stride;
    }
    if (c->live++ == 0)
        s->n_empty--;
    s->live++;
    if (!c->free && c->fresh == c->end)
        avail_unlink(s, c);
    return p;
}

void slab_free(slab *s, void *p) {
    if (!p)
        return;
    if (s->malloc_mode) {
        free(p);
        s->live--;
        return;
    }
    slab_chunk *c = chunk_of(p);
    *(void **)p = c->free;
    c->free = p;
    s->live--;
    if (--c->live > 0) {
        /* It was full: it has room again, and is the warmest. */
        if (!c->on_avail)
            avail_link(s, c, true);
        return;
    }
    s->n_empty++;
    if (s->n_empty * SLAB_CHUNK > s->max_idle_bytes) {
        chunk_unmap(s, c);
        return;
    }
    /* Empty chunks go last, so that the partly used ones fill up first and
     * the empty ones stay empty, to be reused whole or trimmed. */
    if (c->on_avail)
        avail_unlink(s, c);
    avail_link(s, c, false);
}

size_t slab_trim(slab *s, size_t keep_bytes) {
    size_t released = 0;
    if (!s->ready || s->malloc_mode)
        return 0;
    /* The empty chunks are at the tail of the avail list. */
    while (s->avail && s->n_empty * SLAB_CHUNK > keep_bytes) {
        slab_chunk *c = s->avail->prev;
        if (c->live > 0)
            break;
        chunk_unmap(s, c);
        released += SLAB_CHUNK;
    }
    return released;
}

void slab_release(slab *s) {
    if (!s->ready || s->malloc_mode)
        return;
    while (s->all)
        chunk_unmap(s, s->all);
    s->live = 0;
}

void slab_get_stats(const slab *s, slab_stats *ret) {
    ret->live = s->live;
    ret->malloc_mode = s->ready && s->malloc_mode;
    ret->chunks = s->n_chunks;
    ret->empty_chunks = s->n_empty;
    ret->mapped_bytes = s->n_chunks * SLAB_CHUNK;
    ret->per_chunk = s->ready && !s->malloc_mode ? (SLAB_CHUNK - HEADER) / s->stride : 0;
}
