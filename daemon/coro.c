/*
 * Coroutine stacks and switching (coro.h). The register switch itself is in
 * coro_switch_*.{S,c}; this file owns stack mapping, the guard page, the
 * pool of reusable stacks and the sanitizer annotations that tell ASan which
 * stack is live.
 */
#include "coro.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "coro_switch.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#endif

#ifdef CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

struct coro {
    /* Saved registers while suspended. */
    coro_ctx ctx;
    /* Start of the mapping: the guard page, then the usable stack. */
    uint8_t *map;
    size_t map_size;
    coro_fn fn;
    void *arg;
    void *user;
    bool finished;
#ifdef CORO_ASAN
    /* ASan's fake stack of this coroutine while it is switched out. */
    void *fake_stack;
#endif
};

static size_t stack_size = 256 * 1024;
static size_t page_size;
static unsigned pool_max = 1024;
/* Freed stacks kept for reuse: an array so that no page of a pooled stack is
 * touched just to link it. */
static uint8_t **pool;
static unsigned pool_len;
static size_t mapped;

/* The scheduler's context and the coroutine now running. */
static coro_ctx main_ctx;
static coro *current;
#ifdef CORO_ASAN
static void *main_fake_stack;
static const void *main_stack_bottom;
static size_t main_stack_size;
#endif

static size_t page(void) {
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return page_size;
}

void coro_configure(size_t size, unsigned max) {
    size_t p = page();
    coro_pool_clear();
    stack_size = (size + p - 1) / p * p;
    if (stack_size < 4 * p)
        stack_size = 4 * p;
    pool_max = max;
}

static uint8_t *stack_get(void) {
    if (pool_len > 0)
        return pool[--pool_len];
    size_t total = stack_size + page();
    uint8_t *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m, page(), PROT_NONE) < 0) {
        munmap(m, total);
        return NULL;
    }
    mapped++;
    return m;
}

static void stack_put(uint8_t *m) {
    if (!pool && pool_max > 0)
        pool = alloc_malloc(pool_max * sizeof(*pool));
    if (pool && pool_len < pool_max) {
        pool[pool_len++] = m;
        return;
    }
    munmap(m, stack_size + page());
    mapped--;
}

void coro_pool_clear(void) {
    while (pool_len > 0) {
        munmap(pool[--pool_len], stack_size + page());
        mapped--;
    }
    free(pool);
    pool = NULL;
}

size_t coro_stacks_mapped(void) {
    return mapped;
}

static void trampoline(void *arg) {
    coro *c = arg;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &main_stack_bottom, &main_stack_size);
#endif
    c->fn(c->arg);
    coro_exit();
}

int coro_new(coro_fn fn, void *arg, coro **ret) {
    coro *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->map = stack_get();
    if (!c->map) {
        free(c);
        return -ENOMEM;
    }
    c->map_size = stack_size + page();
    c->fn = fn;
    c->arg = arg;
    coro_ctx_make(&c->ctx, c->map + page(), stack_size, trampoline, c);
    *ret = c;
    return 0;
}

void coro_free(coro *c) {
    if (!c)
        return;
    stack_put(c->map);
    free(c);
}

void coro_resume(coro *c) {
    current = c;
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(&main_fake_stack, c->map + page(), stack_size);
#endif
    coro_ctx_switch(&main_ctx, &c->ctx);
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(main_fake_stack, NULL, NULL);
#endif
    current = NULL;
}

void coro_yield(void) {
    coro *c = current;
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(&c->fake_stack, main_stack_bottom, main_stack_size);
#endif
    coro_ctx_switch(&c->ctx, &main_ctx);
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(c->fake_stack, &main_stack_bottom, &main_stack_size);
#endif
}

_Noreturn void coro_exit(void) {
    coro *c = current;
    c->finished = true;
#ifdef CORO_ASAN
    /* NULL: this stack is dead, let ASan drop its fake frames. */
    __sanitizer_start_switch_fiber(NULL, main_stack_bottom, main_stack_size);
#endif
    coro_ctx_switch(&c->ctx, &main_ctx);
    abort(); /* never resumed after exit */
}

coro *coro_current(void) {
    return current;
}

bool coro_finished(const coro *c) {
    return c->finished;
}

void coro_set_user(coro *c, void *user) {
    c->user = user;
}

void *coro_get_user(const coro *c) {
    return c->user;
}

void *coro_fault_in_guard(const void *addr) {
    coro *c = current;
    if (!c || !page_size)
        return NULL;
    const uint8_t *a = addr;
    /* Also count a fault just below the guard page: a big frame can skip it. */
    if (a >= c->map - 16 * page_size && a < c->map + page_size)
        return c->user ? c->user : c;
    return NULL;
}
