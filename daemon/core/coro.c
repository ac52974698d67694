/*
 * Coroutine stacks and switching (coro.h).
 *
 * Every coroutine runs on one shared run stack (mmap'd, with a PROT_NONE
 * guard page below it). When another coroutine needs the run stack, the
 * part the resident one uses — from its saved stack pointer to the top,
 * usually well under a kilobyte for a task waiting at an await point — is
 * copied to a heap buffer, and copied back before it runs again. A
 * suspended task thus costs its live frames, not a whole stack, and there
 * is one mapping in all instead of two per task (the kernel's
 * vm.max_map_count of 65530 would stop us at ~32k tasks). The copy is
 * skipped when the same coroutine runs again with nobody in between.
 *
 * Consequence for the rest of the daemon: memory on a coroutine's stack is
 * only valid while that coroutine runs. Anything another task or a callback
 * may touch while it is suspended (waiters, gather state) lives on the heap
 * or in the task struct.
 *
 * The register switch itself is in coro_switch_*.{S,c}.
 */
#include "core/coro.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "base/memcheck.h"
#include "base/slab.h"
#include "core/coro_switch.h"

/* Under valgrind, memcheck must know that the run stack is a stack and
 * that frames copied into it are addressable (they may lie below where the
 * previous coroutine's stack pointer last was). The client requests are a
 * few no-op instructions when not running under valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define CORO_VALGRIND 1
#endif
#endif
#ifndef CORO_VALGRIND
#define VALGRIND_STACK_REGISTER(a, b) 0
#define VALGRIND_MAKE_MEM_UNDEFINED(a, n) ((void)(a), (void)(n))
#endif

#ifdef AIOD_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

/* Under ThreadSanitizer each coroutine is a TSan fiber with its own shadow
 * call stack: a stack switch TSan is not told about unbalances the thread's
 * one shadow stack and corrupts TSan's state. Switches synchronise (flags
 * 0), which is the truth: they all happen on the loop thread. That orders
 * the frame copies to and from the run stack with the coroutines' own
 * accesses, so the copies need no ignore annotations; left checked, they
 * catch another thread writing into a suspended coroutine's frames. */
#ifdef AIOD_TSAN
#include <signal.h>

#include <sanitizer/tsan_interface.h>
#endif

struct coro {
    /* Saved registers while suspended (the pointer is into the run stack). */
    coro_ctx ctx;
    /* The copied-out part of the run stack while another coroutine uses it. */
    uint8_t *saved;
    size_t saved_len;
    size_t saved_cap;
    coro_fn fn;
    void *arg;
    void *user;
    bool started;
    bool finished;
#ifdef AIOD_TSAN
    /* This coroutine's TSan fiber, from coro_new to coro_free. */
    void *tsan_fiber;
#endif
};

/* Coroutine structs and saved frames of up to SAVED_SLAB_MAX bytes (in
 * 256-byte classes) come from slabs (slab.h): a million suspended tasks
 * then take a few hundred huge-page chunks, not a few hundred thousand
 * page faults, and a second burst reuses them. Given back when idle. */
#define SAVED_SLAB_MAX 1024u
#define CORO_SLAB_IDLE ((size_t)128 << 20)
static slab coro_slab = SLAB_INIT(sizeof(struct coro), CORO_SLAB_IDLE);
static slab saved_slabs[SAVED_SLAB_MAX / 256] = {
    SLAB_INIT(256, CORO_SLAB_IDLE), SLAB_INIT(512, CORO_SLAB_IDLE), SLAB_INIT(768, CORO_SLAB_IDLE),
    SLAB_INIT(1024, CORO_SLAB_IDLE)};

static void saved_free(uint8_t *b, size_t cap) {
    if (b && cap <= SAVED_SLAB_MAX)
        slab_free(&saved_slabs[cap / 256 - 1], b);
    else
        free(b);
}

static size_t stack_size = LIMIT_STACK_SIZE;
static size_t page_size;
/* The run stack: map = guard page + stack. */
static uint8_t *run_map;
static uint8_t *run_base;
static uint8_t *run_top;
static size_t live;
/* The run stack's id for valgrind (unused otherwise). */
static unsigned valgrind_stack;

/* The scheduler's context, the coroutine running now, and the one whose
 * frames currently occupy the run stack. */
static coro_ctx main_ctx;
static coro *current;
static coro *resident;
#ifdef AIOD_ASAN
static void *main_fake_stack;
static const void *main_stack_bottom;
static size_t main_stack_size;
#endif
#ifdef AIOD_TSAN
/* The loop's own TSan fiber (its thread), which coroutines yield to. */
static void *main_tsan_fiber;

/* TSan holds back an asynchronous signal until the fiber that was current
 * when it came next leaves an intercepted call: on a coroutine's fiber it
 * would wait for that coroutine to run again, or vanish with it (a lost
 * SIGTERM hangs the daemon). TSan also makes a fiber current while it
 * creates or destroys it. So around those and while a coroutine runs they
 * stay blocked, and come in on the loop's fiber when it unblocks them. The
 * signals TSan handles at once (faults, aborts, SIGPIPE) are left alone. */
static void block_async_signals(sigset_t *old) {
    static const int sync_signals[] = {SIGSEGV, SIGBUS,  SIGILL, SIGFPE,
                                       SIGABRT, SIGTRAP, SIGSYS, SIGPIPE};
    sigset_t set;
    sigfillset(&set);
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
        sigdelset(&set, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}
#endif

static size_t page(void) {
    if (!page_size)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return page_size;
}

void coro_configure(size_t size) {
    size_t p = page();
    coro_pool_clear();
    stack_size = (size + p - 1) / p * p;
    if (stack_size < LIMIT_STACK_MIN_PAGES * p)
        stack_size = LIMIT_STACK_MIN_PAGES * p;
}

static int run_stack_map(void) {
    if (run_map)
        return 0;
    size_t total = stack_size + page();
    uint8_t *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    if (mprotect(m, page(), PROT_NONE) < 0) {
        int r = -errno;
        munmap(m, total);
        return r;
    }
    run_map = m;
    run_base = m + page();
    run_top = run_base + stack_size;
    valgrind_stack = VALGRIND_STACK_REGISTER(run_base, run_top);
    return 0;
}

void coro_pool_clear(void) {
    if (run_map && live == 0) {
#ifdef CORO_VALGRIND
        VALGRIND_STACK_DEREGISTER(valgrind_stack);
#endif
        munmap(run_map, stack_size + page());
        run_map = run_base = run_top = NULL;
        resident = NULL;
    }
}

void coro_release_stack(void) {
    /* Only with no coroutine alive: nobody's frames sit on the stack. */
    if (run_map && live == 0) {
        madvise(run_base, stack_size, MADV_DONTNEED);
        resident = NULL;
    }
    slab_trim(&coro_slab, 0);
    for (size_t i = 0; i < SAVED_SLAB_MAX / 256; i++)
        slab_trim(&saved_slabs[i], 0);
}

size_t coro_stacks_mapped(void) {
    return run_map ? 1 : 0;
}

size_t coro_saved_bytes(const coro *c) {
    return c->saved_cap;
}

/* Plain byte copies that ASan does not check: the run stack holds other
 * coroutines' frames whose redzones ASan has poisoned. */
static NO_ASAN void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

static void stack_copy(uint8_t *dst, const uint8_t *src, size_t n) {
#ifdef AIOD_ASAN
    copy_bytes(dst, src, n);
#else
    (void)copy_bytes;
    memcpy(dst, src, n);
#endif
}

/* Moves the resident coroutine's frames off the run stack. 0 or -ENOMEM. */
static int evict_resident(void) {
    coro *r = resident;
    if (!r)
        return 0;
    if (r->finished) {
        resident = NULL;
        return 0;
    }
    size_t used = (size_t)(run_top - (uint8_t *)r->ctx.sp);
    if (used > r->saved_cap) {
        /* Round up so that a task whose depth varies a little does not
         * reallocate on every suspension. */
        size_t cap = (used + 255) & ~(size_t)255;
        /* The whole content is copied below: nothing to carry over. */
        uint8_t *b =
            cap <= SAVED_SLAB_MAX ? slab_alloc(&saved_slabs[cap / 256 - 1]) : alloc_malloc(cap);
        if (!b)
            return -ENOMEM;
        saved_free(r->saved, r->saved_cap);
        r->saved = b;
        r->saved_cap = cap;
    }
    stack_copy(r->saved, run_top - used, used);
    r->saved_len = used;
    resident = NULL;
    return 0;
}

static void trampoline(void *arg) {
    coro *c = arg;
#ifdef AIOD_ASAN
    __sanitizer_finish_switch_fiber(NULL, &main_stack_bottom, &main_stack_size);
#endif
    c->fn(c->arg);
    coro_exit();
}

int coro_new(coro_fn fn, void *arg, coro **ret) {
    int r = run_stack_map();
    if (r < 0)
        return r;
    coro *c = slab_alloc(&coro_slab);
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
#ifdef AIOD_TSAN
    sigset_t old_mask;
    block_async_signals(&old_mask);
    c->tsan_fiber = __tsan_create_fiber(0);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
#endif
    live++;
    *ret = c;
    return 0;
}

void coro_free(coro *c) {
    if (!c)
        return;
    if (resident == c)
        resident = NULL;
#ifdef AIOD_TSAN
    sigset_t old_mask;
    block_async_signals(&old_mask);
    __tsan_destroy_fiber(c->tsan_fiber);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
#endif
    saved_free(c->saved, c->saved_cap);
    slab_free(&coro_slab, c);
    live--;
}

int coro_resume(coro *c) {
    if (resident != c) {
        if (evict_resident() < 0)
            return -ENOMEM;
#ifdef AIOD_ASAN
        /* Redzones poisoned by other coroutines' frames are stale here. */
        __asan_unpoison_memory_region(run_base, stack_size);
#endif
        if (!c->started) {
            VALGRIND_MAKE_MEM_UNDEFINED(run_top - 256, 256);
            coro_ctx_make(&c->ctx, run_base, stack_size, trampoline, c);
        } else {
            VALGRIND_MAKE_MEM_UNDEFINED(run_top - c->saved_len, c->saved_len);
            stack_copy(run_top - c->saved_len, c->saved, c->saved_len);
        }
        resident = c;
    }
    c->started = true;
    current = c;
#ifdef AIOD_ASAN
    __sanitizer_start_switch_fiber(&main_fake_stack, run_base, stack_size);
#endif
#ifdef AIOD_TSAN
    sigset_t old_mask;
    block_async_signals(&old_mask);
    main_tsan_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(c->tsan_fiber, 0);
#endif
    coro_ctx_switch(&main_ctx, &c->ctx);
#ifdef AIOD_ASAN
    __sanitizer_finish_switch_fiber(main_fake_stack, NULL, NULL);
#endif
#ifdef AIOD_TSAN
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
#endif
    current = NULL;
    return 0;
}

void coro_yield(void) {
    coro *c = current;
#ifdef AIOD_ASAN
    __sanitizer_start_switch_fiber(NULL, main_stack_bottom, main_stack_size);
#endif
#ifdef AIOD_TSAN
    __tsan_switch_to_fiber(main_tsan_fiber, 0);
#endif
    coro_ctx_switch(&c->ctx, &main_ctx);
#ifdef AIOD_ASAN
    __sanitizer_finish_switch_fiber(NULL, &main_stack_bottom, &main_stack_size);
#endif
}

_Noreturn void coro_exit(void) {
    coro *c = current;
    c->finished = true;
#ifdef AIOD_ASAN
    __sanitizer_start_switch_fiber(NULL, main_stack_bottom, main_stack_size);
#endif
#ifdef AIOD_TSAN
    __tsan_switch_to_fiber(main_tsan_fiber, 0);
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

bool coro_on_run_stack(const void *p) {
    const uint8_t *a = p;
    return run_map && a >= run_map && a < run_top;
}

void *coro_fault_in_guard(const void *addr) {
    coro *c = current;
    if (!c || !run_map)
        return NULL;
    const uint8_t *a = addr;
    /* Also count a fault just below the guard page: a big frame can skip it. */
    if (a >= run_map - LIMIT_STACK_GUARD_SLACK_PAGES * page_size && a < run_base)
        return c->user ? c->user : c;
    return NULL;
}
