/*
 * Listening socket (server.h).
 *
 * The socket is non-blocking and watched with a uv_poll_t (level-triggered):
 * each time it is readable, every waiting client is accepted with accept4
 * and handed to conn.c, until EAGAIN. On EMFILE or ENFILE the reserve
 * descriptor is closed, which frees one slot; each waiting client is then
 * accepted into that slot, sent the refusal frame and closed, until the
 * queue is empty; then the reserve is opened again. If the slot was taken
 * meanwhile (a thread-pool lookup, a child's pipe), or the reserve could
 * not be had back, the waiting clients stay queued and accepting pauses.
 */
#include "net/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "aiod-pb.h"
#include "alloc.h"
#include "base/aiod_limits.h"
#include "frame.h"
#include "macro.h"
#include "net/conn.h"
#include "net/refuse.h"
#include "system/log.h"

/* The mode of a socket aiod makes itself (not one systemd passes). */
#define SOCKET_MODE 0660

/* The listen(2) backlog. */
#define BACKLOG 511

static uv_loop_t *loop;
static int listen_fd = -1;
static uv_poll_t poller;
/* The poll handle and the timers were initialised (server_start got that
 * far), and closed (server_stop). */
static bool started;
static bool stopped;
static bool activated;
static char *created_path;

/* Kept open so that one descriptor is always there to refuse with. */
static int reserve_fd = -1;
/* Accepting is paused until this fires (no descriptor even to refuse). */
static uv_timer_t retry_timer;
/* Refusals are logged at most once per LIMIT_ACCEPT_REPORT_MS: the first
 * at once, later ones when this fires. */
static uv_timer_t report_timer;

/* Counts since start, and since the last report line. */
static uint64_t no_fd_total, no_fd_new;
static uint64_t over_cap_total, over_cap_new;
static uint64_t paused_new;

/* server_set_fd_cap. */
static unsigned fd_cap;
static unsigned long long fd_cap_nofile;

/* The refusal frames, encoded once: no allocation when descriptors are
 * short. */
static uint8_t no_fd_frame[512];
static size_t no_fd_len;
static uint8_t over_cap_frame[512];
static size_t over_cap_len;

bool server_activated(void) {
    return activated;
}

int server_listen_fd(void) {
    return listen_fd;
}

static unsigned long long nofile_now(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (unsigned long long)rl.rlim_cur;
}

void server_set_fd_cap(unsigned cap, unsigned long long nofile) {
    fd_cap = cap;
    fd_cap_nofile = nofile;
    char msg[300];
    snprintf(msg, sizeof(msg),
             "too many connections: the daemon's open-file limit (RLIMIT_NOFILE %llu) leaves "
             "room for %u, and they are all open",
             nofile, cap);
    over_cap_len = refuse_error_frame(AIOD__ERROR_CODE__ERROR_LIMIT, msg, over_cap_frame,
                                      sizeof(over_cap_frame));
}

static void on_report(uv_timer_t *h);

/* One line with what happened since the last one, if anything did; then
 * nothing more for LIMIT_ACCEPT_REPORT_MS. */
static void report_now(void) {
    if (no_fd_new + over_cap_new + paused_new == 0)
        return;
    char line[600];
    size_t n = 0;
    line[0] = '\0';
    if (no_fd_new)
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              "refused %llu connection%s for want of file descriptors (%llu "
                              "since start; RLIMIT_NOFILE is %llu)",
                              (unsigned long long)no_fd_new, no_fd_new == 1 ? "" : "s",
                              (unsigned long long)no_fd_total, nofile_now());
    if (over_cap_new && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              "%srefused %llu connection%s over the %u that RLIMIT_NOFILE %llu "
                              "leaves room for (%llu since start)",
                              n ? "; " : "", (unsigned long long)over_cap_new,
                              over_cap_new == 1 ? "" : "s", fd_cap, fd_cap_nofile,
                              (unsigned long long)over_cap_total);
    if (paused_new && n < sizeof(line))
        snprintf(line + n, sizeof(line) - n,
                 "%sno file descriptor left even to refuse a connection: accepting paused "
                 "%llu time%s for %u ms",
                 n ? "; " : "", (unsigned long long)paused_new, paused_new == 1 ? "" : "s",
                 LIMIT_ACCEPT_RETRY_MS);
    log_warning("%s", line);
    no_fd_new = over_cap_new = paused_new = 0;
    uv_timer_start(&report_timer, on_report, LIMIT_ACCEPT_REPORT_MS, 0);
}

static void on_report(uv_timer_t *h) {
    (void)h;
    report_now();
}

/* Something to report: at once, unless a line went out less than
 * LIMIT_ACCEPT_REPORT_MS ago (then when that time is up). */
static void note(void) {
    if (!uv_is_active((uv_handle_t *)&report_timer))
        report_now();
}

static int open_reserve(void) {
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Tells an accepted client why it is refused, and closes it. What it sent
 * (its hello) is read first: closing a Unix socket with unread input makes
 * the peer's reads fail with ECONNRESET. */
static void refuse_fd(int fd, const uint8_t *frame, size_t len) {
    char sink[4096];
    for (int i = 0; i < 16 && read(fd, sink, sizeof(sink)) > 0; i++)
        ;
    if (len)
        (void)!write(fd, frame, len);
    close(fd);
}

static void on_readable(uv_poll_t *h, int status, int events);
static void on_retry(uv_timer_t *h);

/* Stops accepting for LIMIT_ACCEPT_RETRY_MS. */
static void pause_accepting(void) {
    uv_poll_stop(&poller);
    uv_timer_start(&retry_timer, on_retry, LIMIT_ACCEPT_RETRY_MS, 0);
}

static void on_retry(uv_timer_t *h) {
    (void)h;
    if (reserve_fd < 0)
        reserve_fd = open_reserve();
    int r = uv_poll_start(&poller, UV_READABLE, on_readable);
    if (r < 0)
        log_error_errno(r, "cannot watch the listening socket again");
}

/* Out of descriptors with clients waiting: refuse them through the
 * reserve's slot, or pause. */
static void shed(void) {
    if (reserve_fd < 0)
        reserve_fd = open_reserve(); /* perhaps a descriptor came free */
    if (reserve_fd < 0) {
        paused_new++;
        pause_accepting();
        note();
        return;
    }
    close(reserve_fd);
    reserve_fd = -1;
    int err;
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            err = errno;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            break;
        }
        refuse_fd(fd, no_fd_frame, no_fd_len);
        no_fd_total++;
        no_fd_new++;
    }
    reserve_fd = open_reserve();
    if ((err != EAGAIN && err != EWOULDBLOCK) || reserve_fd < 0) {
        /* The slot was taken meanwhile, or could not be had back. */
        paused_new++;
        pause_accepting();
    }
    note();
}

/* An accepted client over the cap: refused at once, without lingering, since
 * lingering would hold the very descriptors the cap keeps free. */
static void refuse_over_cap(int fd) {
    refuse_fd(fd, over_cap_frame, over_cap_len);
    over_cap_total++;
    over_cap_new++;
    note();
}

static void serve(int fd) {
    int r = conn_open_fd(loop, fd); /* takes fd, also on failure */
    if (r < 0 && r != -EMFILE && r != -EPERM)
        log_warning_errno(r, "cannot set up a new connection, ignoring");
}

static void on_readable(uv_poll_t *h, int status, int events) {
    (void)h, (void)events;
    if (status < 0) {
        log_warning_errno(status,
                          "the listening socket reported an error; accepting again in "
                          "%u ms",
                          LIMIT_ACCEPT_RETRY_MS);
        pause_accepting();
        return;
    }
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EINTR || err == ECONNABORTED)
                continue;
            if (err == EMFILE || err == ENFILE) {
                shed();
                return;
            }
            log_warning_errno(-err, "accept failed; accepting again in %u ms",
                              LIMIT_ACCEPT_RETRY_MS);
            pause_accepting();
            return;
        }
        if (fd_cap && conn_count() >= fd_cap)
            refuse_over_cap(fd);
        else
            serve(fd);
    }
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

/* Binds and listens on `path`: the listening descriptor or a negative
 * errno (logged). */
static int bind_path(const char *path) {
    /* A relative path would be made in whatever directory aiod was started
     * from, and "@name" is not an abstract socket here, only a file name. */
    if (path[0] != '/')
        return log_error_errno(-EINVAL,
                               "socket path %s is not absolute: give an absolute path (aiod "
                               "makes no abstract sockets; a leading '@' would be a file in the "
                               "working directory)",
                               path);
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return log_error_errno(-ENAMETOOLONG, "socket path %s is too long", path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return log_error_errno(-EEXIST, "%s exists and is not a socket; not touching it", path);
        if (someone_listens(path))
            return log_error_errno(-EADDRINUSE,
                                   "another aiod is already listening on %s; stop it first "
                                   "or use --socket",
                                   path);
        unlink(path); /* stale: left by a daemon that died */
    }
    int r = make_parent(path);
    if (r < 0)
        return log_error_errno(r, "cannot create the directory of %s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return log_error_errno(-errno, "cannot create the listening socket");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    /* bind takes the socket file's mode from the umask (0777 under umask
     * 000: any local user could connect). Made under a umask of its own it
     * is SOCKET_MODE at once, owner and group as aiod.socket makes it: no
     * chmod afterwards, which would follow a symlink put in its place. */
    mode_t old_mask = umask(0777 & ~SOCKET_MODE);
    int b = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int bind_errno = errno;
    umask(old_mask);
    if (b < 0) {
        close(fd);
        return log_error_errno(-bind_errno, "cannot bind %s", path);
    }
    created_path = alloc_strdup(path);
    if (!created_path) {
        close(fd);
        unlink(path);
        return log_error_errno(-ENOMEM, "out of memory");
    }
    return fd;
}

int server_start(uv_loop_t *l, const char *path) {
    loop = l;
    int n = sd_listen_fds(1);
    if (n > 1)
        return log_error_errno(-EINVAL, "systemd passed %d sockets, expected one", n);
    if (n == 1) {
        if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
            return log_error_errno(-EINVAL, "the socket systemd passed is not a listening "
                                            "Unix stream socket");
        int flags = fcntl(SD_LISTEN_FDS_START, F_GETFL);
        if (flags < 0 || fcntl(SD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) < 0)
            return log_error_errno(-errno, "cannot use the socket systemd passed");
        listen_fd = SD_LISTEN_FDS_START;
        activated = true;
        log_info("listening on the socket passed by systemd");
    } else {
        if (!path)
            return log_error_errno(-EINVAL, "no socket from systemd and no socket path; pass "
                                            "--socket PATH");
        int fd = bind_path(path);
        if (fd < 0)
            return fd;
        listen_fd = fd;
        log_info("listening on %s", path);
    }

    char msg[300];
    snprintf(msg, sizeof(msg),
             "too many open files: the daemon has no file descriptor left for a new "
             "connection (its limit RLIMIT_NOFILE is %llu); try again later",
             nofile_now());
    no_fd_len =
        refuse_error_frame(AIOD__ERROR_CODE__ERROR_LIMIT, msg, no_fd_frame, sizeof(no_fd_frame));
    reserve_fd = open_reserve();
    if (reserve_fd < 0)
        log_warning_errno(-errno, "cannot open a reserve descriptor; clients refused for want "
                                  "of descriptors may get no reply, ignoring");

    int r = uv_poll_init(loop, &poller, listen_fd);
    if (r < 0)
        return log_error_errno(r, "cannot watch the listening socket");
    uv_timer_init(loop, &retry_timer);
    uv_timer_init(loop, &report_timer);
    uv_unref((uv_handle_t *)&report_timer);
    started = true;
    if (listen(listen_fd, BACKLOG) < 0)
        return log_error_errno(-errno, "cannot listen");
    r = uv_poll_start(&poller, UV_READABLE, on_readable);
    if (r < 0)
        return log_error_errno(r, "cannot listen");
    return 0;
}

void server_stop(void) {
    if (started && !stopped) {
        stopped = true;
        /* uv_close stops the watch at once, so the descriptor may go now. */
        uv_close((uv_handle_t *)&poller, NULL);
        uv_close((uv_handle_t *)&retry_timer, NULL);
        uv_close((uv_handle_t *)&report_timer, NULL);
    }
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
    }
    if (reserve_fd >= 0) {
        close(reserve_fd);
        reserve_fd = -1;
    }
    if (created_path) {
        unlink(created_path);
        free(created_path);
        created_path = NULL;
    }
}
