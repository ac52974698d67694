/*
 * The heap in transparent huge pages (hugeheap.h).
 *
 * Why: a request that brings a map of 200,000 keys makes about 600,000
 * small blocks (its unpacked arguments, then a plugin's copy such as
 * demo.echo's result). With 4 KiB pages that
 * is some 6,000 page faults, and on a virtual machine where a fault costs
 * several microseconds they were half of the 100-150 ms that one request
 * held the loop. With the heap in huge pages it is a few dozen faults.
 */
#include "app/hugeheap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/memcheck.h"
#include "base/slab.h"

/* The sanitizers replace malloc. */
#if defined(AIOD_ASAN) || defined(AIOD_TSAN)
#define MALLOC_REPLACED 1
#else
#define MALLOC_REPLACED 0
#endif

#define TUNABLE "glibc.malloc.hugetlb"
/* Set by the first start for the second one: what GLIBC_TUNABLES was
 * (absent: it was unset). */
#define SAVED "AIOD_SAVED_GLIBC_TUNABLES"
/* The process name (comm) of the first start: executing /proc/self/exe
 * would name the process "exe" in ps, pgrep and the journal's _COMM. */
#define SAVED_COMM "AIOD_SAVED_COMM"

/* After the re-exec: GLIBC_TUNABLES and the process name as they were. */
static void restore(void) {
    const char *was = getenv(SAVED), *comm = getenv(SAVED_COMM);
    if (comm && *comm)
        (void)prctl(PR_SET_NAME, comm, 0, 0, 0);
    unsetenv(SAVED_COMM);
    if (!was)
        return;
    if (strcmp(was, "-") == 0)
        unsetenv("GLIBC_TUNABLES");
    else
        setenv("GLIBC_TUNABLES", was + 1, 1);
    unsetenv(SAVED);
}

void hugeheap_setup(char **argv) {
    const char *tun = getenv("GLIBC_TUNABLES");
    if (getenv(SAVED)) {
        restore();
        return;
    }
    const char *off = getenv("AIOD_HEAP_HUGE_PAGES");
    if (MALLOC_REPLACED || RUNNING_ON_VALGRIND || (off && strcmp(off, "0") == 0) ||
        (tun && strstr(tun, TUNABLE)) || slab_thp_mode() == 0)
        return;
    size_t len = (tun ? strlen(tun) + 1 : 0) + sizeof(TUNABLE "=1");
    char *value = malloc(len), *saved = malloc(len + 2);
    if (!value || !saved) {
        free(value);
        free(saved);
        return;
    }
    snprintf(value, len, "%s%s" TUNABLE "=1", tun ? tun : "", tun ? ":" : "");
    /* "-": it was unset; "=VALUE": it was VALUE (possibly empty). */
    snprintf(saved, len + 2, "%s%s", tun ? "=" : "-", tun ? tun : "");
    char comm[17] = "";
    (void)prctl(PR_GET_NAME, comm, 0, 0, 0);
    if (setenv(SAVED_COMM, comm, 1) == 0 && setenv(SAVED, saved, 1) == 0 &&
        setenv("GLIBC_TUNABLES", value, 1) == 0)
        execv("/proc/self/exe", argv);
    /* exec failed: carry on as we are. */
    restore();
    free(value);
    free(saved);
}
