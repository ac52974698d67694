/*
 * aiod-bench: aiod as a child process. Starts it on a socket in a fresh
 * temporary directory with the bench plugins, waits for READY=1 on a
 * NOTIFY_SOCKET datagram socket (as systemd would), and reads the child's
 * memory (VmRSS, VmHWM) and CPU time from /proc.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define READY_TIMEOUT_MS 20000
#define STOP_GRACE_MS 10000

void state_dir_remove(const char *dir) {
    static const char *const names[] = {"next-id",      "next-id.lock", "tasks.db",
                                        "tasks.db-wal", "tasks.db-shm", "tasks.db.lock"};
    char p[600];
    if (getenv("AIOD_BENCH_KEEP"))
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void rm_dir(const char *dir) {
    char p[400];
    const char *names[] = {"aiod.sock", "notify", "echo.sock", "aiod.log"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/state", dir);
    state_dir_remove(p);
    rmdir(dir);
}

int daemon_start(bench_daemon *d, const char *aiod_path, const char *plugin_dir,
                 const char *const *extra, char *err, size_t err_len) {
    return daemon_start_in(d, NULL, NULL, aiod_path, plugin_dir, extra, err, err_len);
}

int daemon_start_in(bench_daemon *d, const char *base, const char *state_dir, const char *aiod_path,
                    const char *plugin_dir, const char *const *extra, char *err, size_t err_len) {
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    const char *tmp = base ? base : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(d->dir, sizeof(d->dir), "%s/aiod-bench.XXXXXX", tmp);
    if (!mkdtemp(d->dir)) {
        bench_note(err, err_len, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    snprintf(d->socket, sizeof(d->socket), "%s/aiod.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/aiod.log", d->dir);
    char notify[300];
    snprintf(notify, sizeof(notify), "%s/notify", d->dir);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(notify) >= sizeof(sa.sun_path)) {
        bench_note(err, err_len, "temporary directory path too long: %s", d->dir);
        rm_dir(d->dir);
        return -1;
    }
    memcpy(sa.sun_path, notify, strlen(notify) + 1);
    int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (nfd < 0 || bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        bench_note(err, err_len, "notify socket: %s", strerror(errno));
        if (nfd >= 0)
            close(nfd);
        rm_dir(d->dir);
        return -1;
    }

    const char *argv[32];
    size_t argc = 0;
    argv[argc++] = aiod_path;
    argv[argc++] = "--socket";
    argv[argc++] = d->socket;
    argv[argc++] = "--no-default-plugins";
    argv[argc++] = "--plugin-dir";
    argv[argc++] = plugin_dir;
    argv[argc++] = "--log-level";
    argv[argc++] = "warning";
    char state[sizeof(d->dir) + 8];
    snprintf(state, sizeof(state), "%s", state_dir ? state_dir : "");
    if (!state_dir)
        snprintf(state, sizeof(state), "%s/state", d->dir);
    argv[argc++] = "--state-dir";
    argv[argc++] = state;
    for (size_t i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        bench_note(err, err_len, "fork: %s", strerror(errno));
        close(nfd);
        rm_dir(d->dir);
        return -1;
    }
    if (pid == 0) {
        int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        setenv("NOTIFY_SOCKET", notify, 1);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("WATCHDOG_USEC");
        execv(aiod_path, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", aiod_path, strerror(errno));
        _exit(127);
    }
    d->pid = pid;

    uint64_t deadline = bench_now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
    for (;;) {
        struct pollfd pfd = {.fd = nfd, .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r > 0) {
            char buf[1024];
            ssize_t n = recv(nfd, buf, sizeof(buf) - 1, 0);
            if (n > 0) {
                buf[n] = 0;
                if (strstr(buf, "READY=1"))
                    break;
            }
        }
        char why[200];
        if (!daemon_alive(d, why, sizeof(why))) {
            char last[300];
            daemon_last_log(d, last, sizeof(last));
            bench_note(err, err_len, "aiod %s before READY=1%s%s", why, *last ? ": " : "", last);
            close(nfd);
            d->pid = -1;
            rm_dir(d->dir);
            return -1;
        }
        if (bench_now_ns() > deadline) {
            bench_note(err, err_len, "aiod sent no READY=1 within %d ms", READY_TIMEOUT_MS);
            close(nfd);
            daemon_stop(d);
            return -1;
        }
    }
    close(nfd);
    return 0;
}

bool daemon_alive(bench_daemon *d, char *why, size_t why_len) {
    if (d->pid <= 0) {
        bench_note(why, why_len, "not running");
        return false;
    }
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == 0)
        return true;
    if (r == d->pid) {
        if (WIFSIGNALED(st))
            bench_note(why, why_len, "was killed by signal %d (%s)", WTERMSIG(st),
                       strsignal(WTERMSIG(st)));
        else
            bench_note(why, why_len, "exited with status %d", WEXITSTATUS(st));
        d->pid = 0;
    } else {
        bench_note(why, why_len, "is gone");
    }
    return false;
}

void daemon_stop_keep(bench_daemon *d) {
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        uint64_t deadline = bench_now_ns() + (uint64_t)STOP_GRACE_MS * 1000000u;
        for (;;) {
            pid_t r = waitpid(d->pid, NULL, WNOHANG);
            if (r == d->pid || r < 0)
                break;
            if (bench_now_ns() > deadline) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
                break;
            }
            usleep(5000);
        }
    }
    d->pid = -1;
}

void daemon_remove_dir(bench_daemon *d) {
    if (*d->dir && !getenv("AIOD_BENCH_KEEP"))
        rm_dir(d->dir);
}

void daemon_stop(bench_daemon *d) {
    daemon_stop_keep(d);
    daemon_remove_dir(d);
}

void daemon_explain(bench_daemon *d, char *reason, size_t len) {
    char why[200], last[300];
    size_t n = strlen(reason);
    if (!daemon_alive(d, why, sizeof(why)))
        snprintf(reason + n, len - n, "; aiod %s", why);
    daemon_last_log(d, last, sizeof(last));
    n = strlen(reason);
    if (*last)
        snprintf(reason + n, len - n, "; aiod's last log line: %s", last);
}

bool daemon_log_find(const bench_daemon *d, const char *needle, char *buf, size_t len) {
    FILE *f = fopen(d->log, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(buf, len, "%s", line);
            found = true;
        }
    }
    fclose(f);
    return found;
}

void daemon_last_log(const bench_daemon *d, char *buf, size_t len) {
    *buf = 0;
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (*line)
            snprintf(buf, len, "%s", line);
    }
    fclose(f);
}

/* ---------------------------------------------------------------- /proc */

static uint64_t status_kb(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoull(line + kl + 1, NULL, 10) * 1024u;
            break;
        }
    }
    fclose(f);
    return v;
}

uint64_t proc_rss(pid_t pid) {
    return status_kb(pid, "VmRSS");
}

uint64_t proc_rss_anon(pid_t pid) {
    return status_kb(pid, "RssAnon");
}

uint64_t proc_hwm(pid_t pid) {
    return status_kb(pid, "VmHWM");
}

void proc_reset_hwm(pid_t pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "5", 1) != 1)
        bench_log("cannot reset VmHWM of %d", (int)pid);
    close(fd);
}

uint64_t proc_cpu_ticks(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* Fields after the command name, which may hold spaces: field 3 is
     * right after the last ')'; utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p += 2;
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

struct rss_sampler {
    pid_t pid;
    pthread_t th;
    atomic_bool stop;
    uint64_t peak;
};

static void *sampler(void *arg) {
    rss_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        uint64_t r = proc_rss(s->pid);
        if (r > s->peak)
            s->peak = r;
        usleep(5000);
    }
    return NULL;
}

rss_sampler *rss_sampler_start(pid_t pid) {
    rss_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->pid = pid;
    if (pthread_create(&s->th, NULL, sampler, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

uint64_t rss_sampler_stop(rss_sampler *s) {
    if (!s)
        return 0;
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    uint64_t p = s->peak;
    free(s);
    return p;
}
