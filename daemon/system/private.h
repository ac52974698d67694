/*
 * The state directory and the store's files are aiod's own and closed to
 * others (private.c): they hold every user's calls and the id counter.
 */
#ifndef AIOD_PRIVATE_H
#define AIOD_PRIVATE_H

#include <stddef.h>

/*
 * Checks the file or directory open as `fd`, called `what` ("state
 * directory") at `path` in messages: owned by another uid it is refused
 * (-EPERM), since its owner could change what aiod reads; open to group or
 * others it is narrowed to its owner's bits, with a notice. 0; -EPERM, or
 * the errno of fstat or fchmod, negative, with the reason and the fix in
 * `err`.
 */
int private_check(int fd, const char *what, const char *path, char *err, size_t err_len);

#endif
