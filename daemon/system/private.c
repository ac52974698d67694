/* Files and directories that must be aiod's own (private.h). */
#include "system/private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "system/log.h"

int private_check(int fd, const char *what, const char *path, char *err, size_t err_len) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        snprintf(err, err_len, "%s %s: cannot stat it: %s", what, path, strerror(-r));
        return r;
    }
    unsigned me = (unsigned)geteuid(), mode = (unsigned)(st.st_mode & 07777);
    if (st.st_uid != me) {
        snprintf(err, err_len,
                 "%s %s is owned by uid %u, not by aiod's uid %u: its owner could change what "
                 "aiod reads (task ids, tasks). Run aiod as uid %u (as its service does), or "
                 "give it another state directory (--state-dir); only if it is to be this "
                 "daemon's from now on, give it to uid %u (chown), with the daemon stopped",
                 what, path, (unsigned)st.st_uid, me, (unsigned)st.st_uid, me);
        return -EPERM;
    }
    if (!(mode & 077))
        return 0;
    if (fchmod(fd, mode & 0700) < 0) {
        int r = -errno;
        snprintf(err, err_len,
                 "%s %s is open to others (readable or writable, mode %04o) and cannot be made "
                 "%04o: %s",
                 what, path, mode, mode & 0700, strerror(-r));
        return r;
    }
    log_notice("%s %s was open to others (readable or writable, mode %04o): made %04o", what, path,
               mode, mode & 0700);
    return 0;
}
