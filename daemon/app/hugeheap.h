/*
 * The heap in transparent huge pages: glibc's malloc advises the memory it
 * takes from the kernel as huge pages when its tunable glibc.malloc.hugetlb
 * is 1, and reads its tunables only from the environment when a program
 * starts. So aiod, started without it, starts itself again with it, once,
 * at the top of main.
 */
#ifndef AIOD_HUGEHEAP_H
#define AIOD_HUGEHEAP_H

/*
 * Re-executes the daemon (/proc/self/exe, the same argv) with
 * glibc.malloc.hugetlb=1 added to GLIBC_TUNABLES, unless: the kernel's
 * transparent huge pages are "never" or absent; GLIBC_TUNABLES already
 * names glibc.malloc.hugetlb (the administrator's choice, or this function's
 * own, after the re-exec); AIOD_HEAP_HUGE_PAGES is "0"; a sanitizer or
 * valgrind replaces malloc. Returns only if it did not re-execute (or exec
 * failed, which changes nothing). After the re-exec it puts GLIBC_TUNABLES
 * back as it was, so that nothing started with the daemon's environment
 * inherits it, and the process name (comm) the first start had, which
 * executing /proc/self/exe would have made "exe".
 */
void hugeheap_setup(char **argv);

#endif
