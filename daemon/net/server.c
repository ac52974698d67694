/*
 * Listening socket (server.h).
 */
#include "net/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "alloc.h"
#include "net/conn.h"
#include "system/log.h"
#include "macro.h"

static uv_pipe_t listener;
static bool listening;
static bool activated;
static char *created_path;

bool server_activated(void) {
    return activated;
}

static void on_connection(uv_stream_t *s, int status) {
    if (status < 0) {
        log_warning_errno(status, "accept failed, ignoring");
        return;
    }
    int r = conn_accept(s);
    if (r < 0 && r != -EMFILE && r != -EPERM)
        log_warning_errno(r, "cannot set up a new connection, ignoring");
}

/* Is a daemon answering on `path`? */
static bool someone_listens(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
    bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return live;
}

/* mkdir -p of the socket's directory (0755). */
static int make_parent(const char *path) {
    _cleanup_free_ char *d = alloc_strdup(path);
    if (!d)
        return -ENOMEM;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

int server_start(uv_loop_t *loop, const char *path) {
    int r = uv_pipe_init(loop, &listener, 0);
    if (r < 0)
        return log_error_errno(r, "cannot create the listener");
    listening = true;

    int n = sd_listen_fds(1);
    if (n > 1)
        return log_error_errno(-EINVAL, "systemd passed %d sockets, expected one", n);
    if (n == 1) {
        if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
            return log_error_errno(-EINVAL, "the socket systemd passed is not a listening "
                                            "Unix stream socket");
        r = uv_pipe_open(&listener, SD_LISTEN_FDS_START);
        if (r < 0)
            return log_error_errno(r, "cannot use the socket systemd passed");
        activated = true;
        log_info("listening on the socket passed by systemd");
    } else {
        if (!path)
            return log_error_errno(-EINVAL, "no socket from systemd and no socket path; pass "
                                            "--socket PATH");
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return log_error_errno(-ENAMETOOLONG, "socket path %s is too long", path);
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode))
                return log_error_errno(-EEXIST, "%s exists and is not a socket; not touching it",
                                       path);
            if (someone_listens(path))
                return log_error_errno(-EADDRINUSE,
                                       "another aiod is already listening on %s; stop it first "
                                       "or use --socket",
                                       path);
            unlink(path); /* stale: left by a daemon that died */
        }
        r = make_parent(path);
        if (r < 0)
            return log_error_errno(r, "cannot create the directory of %s", path);
        r = uv_pipe_bind(&listener, path);
        if (r < 0)
            return log_error_errno(r, "cannot bind %s", path);
        created_path = alloc_strdup(path);
        if (!created_path)
            return log_error_errno(-ENOMEM, "out of memory");
        log_info("listening on %s", path);
    }
    r = uv_listen((uv_stream_t *)&listener, 511, on_connection);
    if (r < 0)
        return log_error_errno(r, "cannot listen");
    return 0;
}

void server_stop(void) {
    if (listening && !uv_is_closing((uv_handle_t *)&listener))
        uv_close((uv_handle_t *)&listener, NULL);
    if (created_path) {
        unlink(created_path);
        free(created_path);
        created_path = NULL;
    }
}
