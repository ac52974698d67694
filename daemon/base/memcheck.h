/*
 * Whether a sanitizer watches this build (AIOD_ASAN: AddressSanitizer;
 * AIOD_TSAN: ThreadSanitizer; with gcc or clang) or a memory checker this
 * run (RUNNING_ON_VALGRIND). Allocators that recycle memory themselves
 * (freelist.c, slab.c) step aside for them, so that a use after free is
 * still caught; the coroutines tell them about stack switches (coro.c).
 */
#ifndef AIOD_MEMCHECK_H
#define AIOD_MEMCHECK_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIOD_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AIOD_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOD_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define AIOD_TSAN 1
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#endif
