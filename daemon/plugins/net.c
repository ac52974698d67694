/*
 * The bundled net plugin: HTTP(S) GET through libcurl's multi interface,
 * driven by the daemon's loop.
 *
 *   net.fetch(url: string, timeout: double = 30) -> map
 *       {"status": int, "headers": map, "body": string or bytes}
 *   net.fetch_many(urls: list, limit: int = 8, timeout: double = 30) -> list
 *       one fetch result per URL, in order, at most `limit` at once; a
 *       failed fetch's place holds {"error": kind, "message": text}
 *
 * One multi handle serves every fetch of the daemon, so connections (and
 * HTTP/2 streams) are shared between fetches to the same server. libcurl
 * tells the plugin which sockets to watch (CURLMOPT_SOCKETFUNCTION ->
 * api->watch_fd) and when it next wants to run (CURLMOPT_TIMERFUNCTION ->
 * api->call_later); those callbacks run on the loop outside any task,
 * call curl_multi_socket_action and, when a transfer ends, set the future
 * its task awaits. A fetch task itself only adds its easy handle and awaits
 * that future: no libcurl work runs on a task's stack while it waits.
 *
 * A cancelled fetch hands its transfer to a call_soon callback that removes
 * it from the multi handle, which closes its connection (a transfer cut
 * short is never reused), and frees it.
 *
 * What libcurl gives: http and https (certificates verified against the
 * system store, or the CA file or directory named by CURL_CA_BUNDLE,
 * SSL_CERT_FILE, SSL_CERT_DIR as the curl tool reads them), HTTP/2 where
 * the server offers it over TLS, redirects (at most NET_MAX_REDIRS; from https only to https), the
 * proxies of the environment (http_proxy, https_proxy, no_proxy...) and
 * every content coding it was built with, decoded.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <curl/curl.h>

#include <aiod/plugin.h>

/* Largest body fetch accepts, after decoding: 16 MiB. A result goes to the
 * client in one frame (4 MiB by default), but a task may fetch for its own
 * use. */
#define NET_MAX_BODY (16u * 1024 * 1024)
/* One response's status line and header fields, in bytes, and how many
 * fields: far beyond what real servers send, and a bound on what a hostile
 * one costs (a redirect's head is counted apart from the final one's). */
#define NET_MAX_HEAD (64u * 1024)
#define NET_MAX_HEADERS 128u
/* Redirects followed before a fetch fails (browsers allow 20). */
#define NET_MAX_REDIRS 10L
/* Most fetches fetch_many runs at once. */
#define NET_MAX_LIMIT 1024
/* fetch_many keeps the results of finished fetches until all are done:
 * past this many bytes of bodies it stops (the list would be refused by
 * any sane max_result anyway, and the fetches still to come would keep
 * the daemon's memory growing). */
#define NET_MANY_MAX_BYTES (64u * 1024 * 1024)
/* How many net.fetch tasks run at once, in the whole daemon (fetch_many's
 * too); the rest wait in FIFO order, shown as waiting. Each running fetch
 * holds a connection (a file descriptor) and libcurl's state: without a
 * bound, 100,000 submitted fetches would take the daemon's descriptors
 * from everyone. `limit = net.fetch N` in aiod.conf overrides it, as
 * aiohttp's connector limit (100) is set per session. */
#define NET_MAX_TRANSFERS 256
/* Sent as User-Agent. */
#define NET_USER_AGENT "aiod-net/2.0"

/* One received header field; name lowercased, value trimmed. */
typedef struct net_header {
    char *name;
    char *value;
    size_t value_len;
} net_header;

/* One fetch: owned by its task until the transfer is handed to abort_soon
 * (cancellation), then by that callback. */
typedef struct fetch_state {
    CURL *easy;
    /* Set (to null) by the loop when the transfer ends; the fetch task
     * awaits it. One reference, dropped when the state is freed. */
    aiod_future *future;
    /* Whether easy is in the multi handle. */
    bool added;
    /* The URL is https: its redirects may only go to https. */
    bool tls;
    /* How the transfer ended (valid once future is done). */
    CURLcode result;
    /* Why a write or header callback stopped the transfer. */
    enum {
        REFUSED_NONE,
        REFUSED_BODY,
        REFUSED_HEAD,
        REFUSED_FIELDS,
        REFUSED_NAME,
        REFUSED_NOMEM
    } refused;
    /* The byte of a refused field name (REFUSED_NAME). */
    unsigned char bad_name_byte;
    /* The call_soon that aborts a cancelled fetch, for fini. */
    aiod_handle *abort;
    /* The decoded body, NUL-terminated for value_string. */
    char *body;
    size_t body_len;
    size_t body_cap;
    /* The header fields of the latest response (a redirect's are dropped
     * when the next response starts). */
    net_header headers[NET_MAX_HEADERS];
    size_t n_headers;
    size_t head_bytes;
    /* After the blank line that ends a head, until the next status line:
     * trailer fields, which are ignored. */
    bool head_done;
    /* Live states, for fini. */
    struct fetch_state *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
} fetch_state;

/* The plugin's loop-wide state, set up by net_init. Only the loop thread
 * touches it. */
static struct {
    const struct aiod_api *api;
    CURLM *multi;
    /* The pending call_later for libcurl's timeout, or NULL. */
    aiod_handle *timer;
    /* Every fetch_state not yet freed. */
    fetch_state *live;
    /* Transfers in the multi handle. */
    unsigned n_added;
    /* Lookups that removed transfers left behind, still running. */
    struct lingering *lingering;
    unsigned n_lingering;
    /* Set while a fetch may start (see NET_MAX_TRANSFERS above). */
    aiod_sync *room;
} net;

/* libcurl resolves a host name with getaddrinfo on a thread of its own,
 * which signals the end through a socket pair; nothing can stop it. A
 * transfer removed while its name resolves (cancelled, or timed out) leaves
 * that thread behind with its end of the pair (CURLOPT_QUICK_EXIT: else the
 * removal would block the loop until the lookup ends). Such a lookup keeps
 * its place among the NET_MAX_TRANSFERS until it ends: while there are any,
 * a fetch waits to start as long as the transfers and the lookups left
 * behind together reach that many. Without that, rounds of fetches
 * cancelled during slow lookups grew the daemon's threads and descriptors
 * without bound. */

/* A lookup left behind: a duplicate of the read end of its socket pair,
 * which sees the end of the stream when the thread closes the other end,
 * its last act. */
struct lingering {
    int fd;
    aiod_fdwatch *watch;
    struct lingering *prev, *next;
};

/* Sets or clears net.room after a change of n_added or n_lingering. */
static bool no_room(void);

static void update_room(void) {
    if (no_room())
        net.api->sync_clear(net.room);
    else
        net.api->sync_set(net.room);
}

static void lingering_free(struct lingering *l) {
    net.api->watch_fd_close(l->watch);
    close(l->fd);
    if (l->prev)
        l->prev->next = l->next;
    else
        net.lingering = l->next;
    if (l->next)
        l->next->prev = l->prev;
    free(l);
    net.n_lingering--;
}

/* watch_fd callback of a lingering lookup's socket: its thread has closed
 * its end (it writes nothing once its transfer is gone). */
static void on_lingering_ready(aiod_fdwatch *w, int fd, uint32_t revents, void *data) {
    (void)w;
    (void)revents;
    char buf[64];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return; /* not yet */
    lingering_free(data);
    update_room();
}

/* libcurl stops watching socket s and closes it next. If s is a resolver's
 * socket pair whose thread still runs (its other end open), watches a
 * duplicate of it until the thread ends, counted in n_lingering. A
 * transfer's own connections are TCP. */
static void track_lookup(curl_socket_t s) {
    int domain = 0;
    socklen_t len = sizeof(domain);
    if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
        return;
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
        return; /* the lookup has ended */
    struct lingering *l = calloc(1, sizeof(*l));
    int r = -ENOMEM;
    if (l) {
        l->fd = fcntl(s, F_DUPFD_CLOEXEC, 3);
        r = l->fd < 0 ? -errno
                      /* Weak: a stop does not wait for the resolver thread
                       * (fini closes the watch). */
                      : net.api->watch_fd(l->fd, AIOD_FD_READ | AIOD_FD_WEAK, on_lingering_ready, l,
                                          &l->watch);
    }
    if (r < 0) {
        /* Not counted: the bound is off by one lookup. */
        net.api->log(NULL, LOG_WARNING, "net: cannot follow a lookup left behind: %s",
                     strerror(-r));
        if (l && l->fd >= 0)
            close(l->fd);
        free(l);
        return;
    }
    l->next = net.lingering;
    if (net.lingering)
        net.lingering->prev = l;
    net.lingering = l;
    net.n_lingering++;
    update_room();
}

/* ---------------------------------------------------------------- states */

static void headers_clear(fetch_state *fs) {
    for (size_t i = 0; i < fs->n_headers; i++) {
        free(fs->headers[i].name);
        free(fs->headers[i].value);
    }
    fs->n_headers = 0;
    fs->head_bytes = 0;
}

/* Frees the state; removes its transfer from the multi handle first, which
 * closes the connection of a transfer that has not ended. */
static void state_free(fetch_state *fs) {
    if (!fs)
        return;
    if (fs->easy) {
        if (fs->added) {
            /* A lookup under way becomes a lingering one (on_socket). */
            curl_multi_remove_handle(net.multi, fs->easy);
            net.n_added--;
            update_room();
        }
        curl_easy_cleanup(fs->easy);
    }
    net.api->future_release(fs->future);
    headers_clear(fs);
    free(fs->body);
    if (fs->prev)
        fs->prev->next = fs->next;
    else if (net.live == fs)
        net.live = fs->next;
    if (fs->next)
        fs->next->prev = fs->prev;
    free(fs);
}

/* call_soon callback of a cancelled fetch: aborts its transfer on the
 * loop's own stack. */
static void abort_soon(void *data) {
    fetch_state *fs = data;
    net.api->handle_release(fs->abort);
    fs->abort = NULL;
    state_free(fs);
}

/* ---------------------------------------------------------------- loop side */

/* Sets the future of every transfer that has ended. */
static void collect_done(void) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(net.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *p = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
        fetch_state *fs = (fetch_state *)p;
        if (!fs)
            continue;
        fs->result = msg->data.result;
        /* -EBUSY when its task was cancelled meanwhile: abort_soon frees it. */
        net.api->future_set_result(fs->future, NULL);
    }
}

static void socket_action(curl_socket_t s, int how) {
    int running;
    CURLMcode mc = curl_multi_socket_action(net.multi, s, how, &running);
    if (mc != CURLM_OK)
        net.api->log(NULL, LOG_ERR, "net: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    collect_done();
}

/* watch_fd callback: a socket libcurl watches is ready. An error alone
 * (libuv reports POLLERR as a failed poll, without the readable bit that
 * comes with it) is passed to libcurl as readable and writable: a peer that
 * sent a whole response and reset the connection leaves both the data and
 * the error pending, and libcurl must read them, taking the response or
 * seeing ECONNRESET itself. CURL_CSELECT_ERR would fail the transfer
 * unread, with "select/poll returned error". */
static void on_ready(aiod_fdwatch *w, int fd, uint32_t revents, void *data) {
    (void)w;
    (void)data;
    int how = 0;
    if (revents & AIOD_FD_READ)
        how |= CURL_CSELECT_IN;
    if (revents & AIOD_FD_WRITE)
        how |= CURL_CSELECT_OUT;
    if ((revents & AIOD_FD_ERROR) && how == 0)
        how = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    socket_action(fd, how);
}

static void set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* CURLMOPT_SOCKETFUNCTION: what to watch on socket s. The watch is the
 * socket's libcurl-assigned pointer (socketp). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    (void)userp;
    aiod_fdwatch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        track_lookup(s);
        net.api->watch_fd_close(w);
        curl_multi_assign(net.multi, s, NULL);
        return 0;
    }
    uint32_t events =
        (what & CURL_POLL_IN ? AIOD_FD_READ : 0u) | (what & CURL_POLL_OUT ? AIOD_FD_WRITE : 0u);
    int r;
    if (w) {
        r = net.api->watch_fd_update(w, events);
    } else {
        /* libcurl 7.88 makes its sockets (connections, the resolver's
         * socket pair) without close-on-exec; they must not reach the
         * programs proc_run starts. A socket is watched in the same
         * libcurl call that made it, before the loop can start any. */
        set_cloexec(s);
        r = net.api->watch_fd(s, events, on_ready, NULL, &w);
        if (r >= 0)
            curl_multi_assign(net.multi, s, w);
    }
    if (r < 0) {
        net.api->log(NULL, LOG_ERR, "net: cannot watch socket %d: %s", (int)s, strerror(-r));
        return -1; /* libcurl fails the transfers using it */
    }
    return 0;
}

/* call_later callback: libcurl's timeout has come. */
static void on_timeout(void *data) {
    (void)data;
    /* It has started, so cancelling it is moot; on_timer may set a new one
     * from inside socket_action. */
    net.api->handle_release(net.timer);
    net.timer = NULL;
    socket_action(CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: call socket_action(CURL_SOCKET_TIMEOUT) after
 * timeout_ms (-1: never). Must not call libcurl itself, hence call_later
 * even for 0. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    (void)userp;
    if (net.timer) {
        net.api->handle_cancel(net.timer);
        net.api->handle_release(net.timer);
        net.timer = NULL;
    }
    if (timeout_ms < 0)
        return 0;
    int r = net.api->call_later((double)timeout_ms / 1000.0, on_timeout, NULL, &net.timer);
    if (r < 0) {
        net.api->log(NULL, LOG_ERR, "net: cannot set a timer: %s", strerror(-r));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- transfer callbacks */

/* CURLOPT_WRITEFUNCTION: appends decoded body bytes, up to NET_MAX_BODY. */
static size_t on_body(char *data, size_t size, size_t n, void *userp) {
    fetch_state *fs = userp;
    size_t len = size * n;
    if (len > NET_MAX_BODY - fs->body_len) {
        fs->refused = REFUSED_BODY;
        return 0;
    }
    if (fs->body_len + len + 1 > fs->body_cap) {
        size_t cap = fs->body_cap ? fs->body_cap : 16 * 1024;
        while (cap < fs->body_len + len + 1)
            cap *= 2;
        char *b = realloc(fs->body, cap);
        if (!b) {
            fs->refused = REFUSED_NOMEM;
            return 0;
        }
        fs->body = b;
        fs->body_cap = cap;
    }
    memcpy(fs->body + fs->body_len, data, len);
    fs->body_len += len;
    fs->body[fs->body_len] = '\0';
    return len;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* CURLOPT_HEADERFUNCTION: one whole line of a response head (status line,
 * field, or the blank line), of every response libcurl reads: interim 1xx,
 * redirects, the final one, then trailers. Keeps the fields of the latest. */
static size_t on_header(char *line, size_t size, size_t n, void *userp) {
    fetch_state *fs = userp;
    size_t len = size * n;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        headers_clear(fs);
        fs->head_done = false;
    }
    if (fs->head_done)
        return len; /* trailer fields are dropped */
    fs->head_bytes += len;
    if (fs->head_bytes > NET_MAX_HEAD) {
        fs->refused = REFUSED_HEAD;
        return 0;
    }
    size_t end = len;
    while (end > 0 && is_space(line[end - 1]))
        end--;
    if (end == 0) {
        fs->head_done = true;
        return len;
    }
    const char *colon = memchr(line, ':', end);
    if (!colon || (len >= 5 && memcmp(line, "HTTP/", 5) == 0))
        return len; /* the status line (libcurl checked the head's syntax) */
    if (line[0] == ' ' || line[0] == '\t')
        return len; /* an obsolete line folding's continuation: dropped */
    /* A name is a token (RFC 9110, 5.1): visible ASCII. Anything else is a
     * malformed response, and could not be a key of the headers map (UTF-8
     * without NUL) either. */
    for (const char *c = line; c < colon; c++)
        if (*c < 0x21 || *c > 0x7e) {
            fs->bad_name_byte = (unsigned char)*c;
            fs->refused = REFUSED_NAME;
            return 0;
        }
    if (fs->n_headers == NET_MAX_HEADERS) {
        fs->refused = REFUSED_FIELDS;
        return 0;
    }
    size_t name_len = (size_t)(colon - line);
    size_t v = name_len + 1;
    while (v < end && is_space(line[v]))
        v++;
    net_header *h = &fs->headers[fs->n_headers];
    h->name = malloc(name_len + 1);
    h->value = malloc(end - v + 1);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        fs->refused = REFUSED_NOMEM;
        return 0;
    }
    for (size_t i = 0; i < name_len; i++) {
        char c = line[i];
        h->name[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    h->name[name_len] = '\0';
    memcpy(h->value, line + v, end - v);
    h->value[end - v] = '\0';
    h->value_len = end - v;
    fs->n_headers++;
    return len;
}

/* ---------------------------------------------------------------- results */

/* A string value if the bytes are UTF-8 without NUL, else bytes. */
static aiod_value *text_or_bytes(const struct aiod_api *api, const char *s, size_t len) {
    if (!memchr(s, '\0', len)) {
        aiod_value *v = api->value_string(s); /* NULL if not UTF-8 */
        if (v)
            return v;
    }
    return api->value_bytes(s, len);
}

/* {"status", "headers", "body"}; repeated header fields are joined with
 * ", " (RFC 9110, 5.3), byte for byte: the joined value is a string when
 * the whole is UTF-8, else bytes. NULL on out-of-memory (on_header let
 * only ASCII names through, valid keys). */
static aiod_value *result_map(const struct aiod_api *api, fetch_state *fs) {
    aiod_value *headers = api->value_map(), *m = api->value_map();
    if (!headers || !m)
        goto oom;
    for (size_t i = 0; i < fs->n_headers; i++) {
        const net_header *h = &fs->headers[i];
        if (api->map_get(headers, h->name))
            continue; /* joined with its first occurrence */
        size_t n = h->value_len;
        for (size_t j = i + 1; j < fs->n_headers; j++)
            if (strcmp(fs->headers[j].name, h->name) == 0)
                n += 2 + fs->headers[j].value_len;
        aiod_value *v;
        if (n == h->value_len) {
            v = text_or_bytes(api, h->value, h->value_len);
        } else {
            char *joined = malloc(n + 1);
            if (!joined)
                goto oom;
            memcpy(joined, h->value, h->value_len);
            size_t at = h->value_len;
            for (size_t j = i + 1; j < fs->n_headers; j++) {
                const net_header *o = &fs->headers[j];
                if (strcmp(o->name, h->name) != 0)
                    continue;
                memcpy(joined + at, ", ", 2);
                memcpy(joined + at + 2, o->value, o->value_len);
                at += 2 + o->value_len;
            }
            joined[n] = '\0';
            v = text_or_bytes(api, joined, n);
            free(joined);
        }
        if (!v || api->map_set(headers, h->name, v) < 0)
            goto oom;
    }
    long status = 0;
    curl_easy_getinfo(fs->easy, CURLINFO_RESPONSE_CODE, &status);
    /* map_set takes the item, also on failure (and refuses a NULL one). */
    if (api->map_set(m, "status", api->value_int(status)) < 0)
        goto oom;
    int r = api->map_set(m, "headers", headers);
    headers = NULL;
    if (r < 0 ||
        api->map_set(m, "body", text_or_bytes(api, fs->body ? fs->body : "", fs->body_len)) < 0)
        goto oom;
    return m;
oom:
    api->value_free(headers);
    api->value_free(m);
    return NULL;
}

/* A copy of url to put in messages, which reach the client and the
 * daemon's log: the password of its user information, if any, replaced by
 * "***" (http://user:***@host/). Plain string work, so that a URL libcurl
 * refuses is shown the same way. NULL on out-of-memory. */
static char *url_for_messages(const char *url) {
    /* The authority: after "scheme://" (or from the start without one), up
     * to the path, query or fragment. */
    const char *auth = strstr(url, "://");
    auth = auth && (size_t)(auth - url) < strcspn(url, "/?#") ? auth + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return strdup(url);
    size_t head = (size_t)(colon + 1 - url), tail = strlen(at);
    char *s = malloc(head + 3 + tail + 1);
    if (!s)
        return NULL;
    memcpy(s, url, head);
    memcpy(s + head, "***", 3);
    memcpy(s + head + 3, at, tail + 1);
    return s;
}

/* The task's error for a transfer that failed; `url` is the one to show. */
static int fetch_error(aiod_task *task, const struct aiod_api *api, fetch_state *fs,
                       const char *url, double timeout) {
    CURLcode c = fs->result;
    const char *detail = fs->errbuf[0] ? fs->errbuf : curl_easy_strerror(c);
    long os_errno = 0;
    curl_easy_getinfo(fs->easy, CURLINFO_OS_ERRNO, &os_errno);

    switch (fs->refused) {
    case REFUSED_NONE:
        break;
    case REFUSED_NOMEM:
        return -ENOMEM;
    case REFUSED_BODY:
        return api->fail(task, "ValueError", "%s: response body larger than %u bytes", url,
                         NET_MAX_BODY);
    case REFUSED_HEAD:
        return api->fail(task, "ProtocolError", "%s: response head larger than %u bytes", url,
                         NET_MAX_HEAD);
    case REFUSED_FIELDS:
        return api->fail(task, "ProtocolError", "%s: more than %u header fields", url,
                         NET_MAX_HEADERS);
    case REFUSED_NAME:
        return api->fail(task, "ProtocolError",
                         "%s: a header field name holds byte 0x%02x: names are visible ASCII", url,
                         fs->bad_name_byte);
    }
    switch (c) {
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_FILESIZE_EXCEEDED:
        return api->fail(task, "ValueError", "%s: response body larger than %u bytes", url,
                         NET_MAX_BODY);
    case CURLE_OPERATION_TIMEDOUT:
        if (timeout == 0) /* no timeout of its own: libcurl's connect timeout */
            return api->fail(task, "TimeoutError", "%s: timed out (%s)", url, detail);
        return api->fail(task, "TimeoutError", "%s: timed out after %g s (%s)", url, timeout,
                         detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return api->fail(task, "OSError", "%s: unknown host (%s)", url, detail);
    case CURLE_COULDNT_RESOLVE_PROXY:
        return api->fail(task, "OSError", "%s: unknown proxy host (%s)", url, detail);
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            return api->fail(task, "ConnectionRefusedError", "%s: connection refused", url);
        return api->fail(task, "OSError", "%s: cannot connect (%s)", url, detail);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        if (os_errno == ECONNRESET || os_errno == EPIPE)
            return api->fail(task, "ConnectionResetError", "%s: connection reset by peer", url);
        return api->fail(task, "OSError", "%s: %s", url, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
        return api->fail(task, "SSLCertVerificationError",
                         "%s: the server's certificate is not trusted (%s)", url, detail);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return api->fail(task, "SSLError", "%s: %s", url, detail);
    case CURLE_TOO_MANY_REDIRECTS:
        return api->fail(task, "TooManyRedirects", "%s: more than %ld redirects", url,
                         NET_MAX_REDIRS);
    case CURLE_UNSUPPORTED_PROTOCOL: {
        /* The URL's own scheme was checked before the transfer started, so
         * this is either a redirect to a scheme refused (libcurl has made
         * its target the effective URL) or a reply that is not HTTP: an
         * HTTP/0.9 one (an SSH banner), an unknown version. */
        char *to = NULL;
        long redirects = 0;
        curl_easy_getinfo(fs->easy, CURLINFO_EFFECTIVE_URL, &to);
        curl_easy_getinfo(fs->easy, CURLINFO_REDIRECT_COUNT, &redirects);
        if (redirects > 0 && to) {
            bool to_http = strncasecmp(to, "http://", 7) == 0;
            bool to_https = strncasecmp(to, "https://", 8) == 0;
            if ((fs->tls && to_http) || (!to_http && !to_https)) {
                char *to_shown = url_for_messages(to);
                if (!to_shown)
                    return -ENOMEM;
                int r = fs->tls && to_http
                            ? api->fail(task, "ProtocolError",
                                        "%s: refused a redirect from https to plain http (%s): "
                                        "what started over TLS stays on TLS",
                                        url, to_shown)
                            : api->fail(task, "NotImplementedError",
                                        "%s: refused a redirect to %s: only http:// and https:// "
                                        "are followed",
                                        url, to_shown);
                free(to_shown);
                return r;
            }
        }
        return api->fail(task, "ProtocolError", "%s: not an HTTP response: %s", url, detail);
    }
    case CURLE_URL_MALFORMAT:
        return api->fail(task, "ValueError", "%s: %s", url, detail);
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_RANGE_ERROR:
        return api->fail(task, "ProtocolError", "%s: %s", url, detail);
    default:
        return api->fail(task, "OSError", "%s: %s", url, detail);
    }
}

/* ---------------------------------------------------------------- fetch */

/* A CA file or directory from the environment, as the curl tool reads them
 * (libcurl itself uses the paths it was built with). */
static CURLcode set_ca(CURL *easy) {
    const char *file = getenv("CURL_CA_BUNDLE");
    if (!file || !*file)
        file = getenv("SSL_CERT_FILE");
    const char *dir = getenv("SSL_CERT_DIR");
    CURLcode c = CURLE_OK;
    if (file && *file)
        c = curl_easy_setopt(easy, CURLOPT_CAINFO, file);
    if (c == CURLE_OK && dir && *dir)
        c = curl_easy_setopt(easy, CURLOPT_CAPATH, dir);
    return c;
}

/* Sets every option of the fetch; a failure means out-of-memory or a
 * libcurl built without what the plugin needs. */
static CURLcode setup(fetch_state *fs, const char *url, double timeout) {
    CURL *e = fs->easy;
    CURLcode c;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if ((c = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                       \
            return c;                                                                              \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PRIVATE, fs);
    SET(CURLOPT_ERRORBUFFER, fs->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    /* A transfer removed while its name is still being resolved leaves the
     * resolver thread behind instead of blocking the loop until it ends
     * (track_lookup counts it until then). */
    SET(CURLOPT_QUICK_EXIT, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    /* No downgrade: a response asked for over TLS is not taken from plain
     * http, where anyone on the path could write it (libcurl's default
     * follows https to http). */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, fs->tls ? "https" : "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, NET_MAX_REDIRS);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, NET_USER_AGENT);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)NET_MAX_BODY);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, fs);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, fs);
    if (timeout > 0) {
        /* At least 1 ms: 0 would mean no limit. */
        double ms = ceil(timeout * 1000.0);
        SET(CURLOPT_TIMEOUT_MS, ms > 1e12 ? 1000000000000L : (long)ms);
    }
#undef SET
    return set_ca(e);
}

static bool no_room(void) {
    return net.n_lingering > 0 && net.n_added + net.n_lingering >= NET_MAX_TRANSFERS;
}

/* Waits while lookups left behind take the places (NET_MAX_TRANSFERS
 * above); the wait counts in the fetch's timeout. */
static int wait_for_room(aiod_task *task, const struct aiod_api *api, fetch_state *fs,
                         const char *shown, double timeout) {
    if (!no_room())
        return 0;
    double start = api->loop_time();
    aiod_timeout *tm = NULL;
    int r = timeout > 0 ? api->timeout_enter(task, timeout, &tm) : 0;
    if (r < 0)
        return r;
    while (r == 0 && no_room())
        r = api->sync_wait(task, net.room);
    if (tm)
        r = api->timeout_exit(task, tm, r);
    if (r == -ETIMEDOUT)
        return api->fail(task, "TimeoutError",
                         "%s: timed out after %g s waiting to start: %u host name lookups of "
                         "fetches cancelled or timed out are still under way",
                         shown, timeout, net.n_lingering);
    if (r < 0 || timeout <= 0)
        return r;
    double ms = ceil((timeout - (api->loop_time() - start)) * 1000.0);
    CURLcode c = curl_easy_setopt(fs->easy, CURLOPT_TIMEOUT_MS,
                                  ms < 1      ? 1L
                                  : ms > 1e12 ? 1000000000000L
                                              : (long)ms);
    return c == CURLE_OK ? 0 : -ENOMEM;
}

/* One fetch of url; its messages name it as `shown`. */
static int fetch_url(aiod_task *task, const struct aiod_api *api, const char *url,
                     const char *shown, double timeout, aiod_value **ret_result) {
    int r;

    if (!(timeout >= 0) || isinf(timeout))
        return api->fail(task, "ValueError", "timeout must be >= 0 seconds (0: none), got %g",
                         timeout);
    /* The URL's shape and scheme, checked before anything starts. */
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    char *scheme = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        r = -ENOMEM;
    } else if (uc != CURLUE_OK) {
        r = api->fail(task, "ValueError", "bad URL '%s': %s%s", shown, curl_url_strerror(uc),
                      uc == CURLUE_BAD_SCHEME ? " (expected http://HOST/... or https://HOST/...)"
                                              : "");
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        r = api->fail(task, "NotImplementedError",
                      "%s: only http:// and https:// URLs are supported", shown);
    } else {
        r = 0;
    }
    bool tls = r == 0 && strcmp(scheme, "https") == 0;
    curl_free(scheme);
    curl_url_cleanup(u);
    if (r < 0)
        return r;

    fetch_state *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->tls = tls;
    fs->next = net.live;
    if (net.live)
        net.live->prev = fs;
    net.live = fs;
    fs->easy = curl_easy_init();
    if (!fs->easy) {
        r = -ENOMEM;
        goto out;
    }
    CURLcode c = setup(fs, url, timeout);
    if (c != CURLE_OK) {
        r = c == CURLE_OUT_OF_MEMORY ? -ENOMEM
                                     : api->fail(task, "OSError", "%s: cannot set up libcurl: %s",
                                                 shown, curl_easy_strerror(c));
        goto out;
    }
    r = api->future_new(task, &fs->future);
    if (r < 0)
        goto out;
    r = wait_for_room(task, api, fs, shown, timeout);
    if (r < 0)
        goto out;
    CURLMcode mc = curl_multi_add_handle(net.multi, fs->easy);
    if (mc != CURLM_OK) {
        r = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM
                                      : api->fail(task, "OSError", "%s: cannot start: %s", shown,
                                                  curl_multi_strerror(mc));
        goto out;
    }
    fs->added = true;
    net.n_added++;
    update_room();

    r = api->future_await(task, fs->future, NULL);
    if (r == -ECANCELED) {
        /* Abort on the loop's stack; done at once if that cannot be
         * scheduled. */
        if (api->call_soon(abort_soon, fs, &fs->abort) == 0)
            return r;
        goto out;
    }
    if (r < 0)
        goto out;
    if (fs->result != CURLE_OK) {
        r = fetch_error(task, api, fs, shown, timeout);
        goto out;
    }
    *ret_result = result_map(api, fs);
    r = *ret_result ? 0 : -ENOMEM;
out:
    state_free(fs);
    return r;
}

/* fetch(url: string, timeout: double = 30) -> map */
static int fetch(aiod_task *task, const struct aiod_api *api, const aiod_value *const *args,
                 aiod_value **ret_result) {
    const char *url = api->get_string(args[0]);
    char *shown = url_for_messages(url);
    if (!shown)
        return -ENOMEM;
    int r = fetch_url(task, api, url, shown, api->get_double(args[1]), ret_result);
    free(shown);
    return r;
}

/* ---------------------------------------------------------------- fetch_many */

/* {"error": kind, "message": text} for a fetch that could not start. */
static aiod_value *error_entry(const struct aiod_api *api, const char *kind, const char *msg) {
    aiod_value *m = api->value_map();
    if (m && (api->map_set(m, "error", api->value_string(kind)) < 0 ||
              api->map_set(m, "message", api->value_string(msg)) < 0)) {
        api->value_free(m);
        return NULL;
    }
    return m;
}

/* The outcome of a finished child as a result entry. */
static aiod_value *child_entry(aiod_task *task, const struct aiod_api *api, aiod_child *c) {
    aiod_value *one = NULL;
    /* A fetch that ended well: its result, copied once (it may hold 16 MiB;
     * a gather's list would be copied a second time to take it out). */
    if (api->child_state(c) == AIOD_STATE_DONE)
        return api->child_result(task, c, &one) == 0 ? one : NULL;
    /* Failed or cancelled: gather returns at once, with an error map in
     * place of the failure (return_exceptions). */
    if (api->gather(task, &c, 1, 1, &one) < 0)
        return NULL;
    aiod_value *v = api->value_copy(api->list_get(one, 0));
    api->value_free(one);
    return v;
}

/* What a fetch_many entry holds, roughly: its body, and 1 KiB besides. */
static size_t entry_bytes(const struct aiod_api *api, const aiod_value *v) {
    const aiod_value *body = api->map_get(v, "body");
    size_t len = 0;
    const char *text = body ? api->get_string(body) : NULL;
    if (text)
        len = strlen(text);
    else if (body)
        (void)api->get_bytes(body, &len);
    return len + 1024;
}

/* fetch_many(urls: list, limit: int = 8, timeout: double = 30) -> list */
static int fetch_many(aiod_task *task, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret_result) {
    const aiod_value *urls = args[0];
    int64_t limit = api->get_int(args[1]);
    double timeout = api->get_double(args[2]);
    size_t n = api->length(urls);
    int r = 0;

    if (limit < 1 || limit > NET_MAX_LIMIT)
        return api->fail(task, "ValueError", "limit must be between 1 and %d, got %lld",
                         NET_MAX_LIMIT, (long long)limit);
    /* Checked as fetch checks it, once for the whole call rather than as
     * every entry's error. */
    if (!(timeout >= 0) || isinf(timeout))
        return api->fail(task, "ValueError", "timeout must be >= 0 seconds (0: none), got %g",
                         timeout);
    for (size_t i = 0; i < n; i++)
        if (api->value_type(api->list_get(urls, i)) != AIOD_TYPE_STRING)
            return api->fail(task, "ValueError", "urls[%zu] is not a string", i);

    aiod_value **results = calloc(n ? n : 1, sizeof(*results));
    aiod_child **active = calloc((size_t)limit, sizeof(*active));
    size_t *active_idx = calloc((size_t)limit, sizeof(*active_idx));
    size_t n_active = 0, next = 0, held = 0, taken = 0;
    if (!results || !active || !active_idx) {
        r = -ENOMEM;
        goto out;
    }

    while (next < n || n_active > 0) {
        /* Fill the window. */
        while (n_active < (size_t)limit && next < n) {
            aiod_value *cargs[2] = {api->value_copy(api->list_get(urls, next)),
                                    api->value_double(timeout)};
            aiod_child *c = NULL;
            int k = api->spawn(task, "net.fetch", cargs, 2, &c);
            if (k == -EPERM) {
                /* A call rule refuses net.fetch to this task's caller: the
                 * whole call fails with it (PermissionError naming the
                 * rule, the pending error spawn set). */
                r = k;
                goto out;
            }
            if (k < 0) {
                results[next] = error_entry(api, k == -EAGAIN ? "LimitError" : "OSError",
                                            k == -EAGAIN ? "task limit reached" : strerror(-k));
                if (!results[next]) {
                    r = -ENOMEM;
                    goto out;
                }
                next++;
                continue;
            }
            active[n_active] = c;
            active_idx[n_active++] = next++;
        }
        if (n_active == 0)
            break;
        r = api->wait(task, active, n_active, AIOD_FOREVER, AIOD_FIRST_COMPLETED);
        if (r < 0)
            goto out;
        r = 0;
        /* Collect whatever finished and free its place in the window. The
         * bound is checked as each result is taken: the next one's copy
         * would add up to 16 MiB more. */
        for (size_t i = 0; i < n_active;) {
            uint32_t st = api->child_state(active[i]);
            if (st != AIOD_STATE_DONE && st != AIOD_STATE_FAILED && st != AIOD_STATE_CANCELLED) {
                i++;
                continue;
            }
            aiod_value *v = child_entry(task, api, active[i]);
            if (!v) {
                r = -ENOMEM;
                goto out;
            }
            results[active_idx[i]] = v;
            held += entry_bytes(api, v);
            taken++;
            api->child_release(task, active[i]);
            active[i] = active[n_active - 1];
            active_idx[i] = active_idx[n_active - 1];
            n_active--;
            if (held > NET_MANY_MAX_BYTES) {
                r = api->fail(task, "LimitError",
                              "fetch_many: the results of %zu of the %zu fetches already take "
                              "more than %u MiB; fetch fewer or smaller pages at once",
                              taken, n, NET_MANY_MAX_BYTES >> 20);
                goto out;
            }
        }
    }

    aiod_value *list = api->value_list();
    if (!list) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (api->list_append(list, results[i]) < 0) {
            results[i] = NULL; /* taken, also on failure */
            api->value_free(list);
            r = -ENOMEM;
            goto out;
        }
        results[i] = NULL;
    }
    *ret_result = list;
out:
    /* Cancelled or failed: stop the fetches still running. */
    for (size_t i = 0; i < n_active; i++) {
        api->cancel(task, active[i]);
        api->child_release(task, active[i]);
    }
    for (size_t i = 0; results && i < n; i++)
        api->value_free(results[i]);
    free(results);
    free(active);
    free(active_idx);
    return r;
}

/* ---------------------------------------------------------------- plugin */

static const struct aiod_param fetch_params[] = {
    {"url", AIOD_TYPE_STRING, NULL},
    {"timeout", AIOD_TYPE_DOUBLE, "30"},
};

static const struct aiod_param fetch_many_params[] = {
    {"urls", AIOD_TYPE_LIST, NULL},
    {"limit", AIOD_TYPE_INT, "8"},
    {"timeout", AIOD_TYPE_DOUBLE, "30"},
};

static const struct aiod_function net_functions[] = {
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "fetch",
        .doc = "HTTP(S) GET a URL: {status, headers, body}; timeout in seconds (0: none).",
        .params = fetch_params,
        .n_params = sizeof(fetch_params) / sizeof(fetch_params[0]),
        .result_type = AIOD_TYPE_MAP,
        .fn = fetch,
        .max_concurrent = NET_MAX_TRANSFERS,
    },
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "fetch_many",
        .doc = "Fetch many URLs, at most LIMIT at once; results in order, errors as maps.",
        .params = fetch_many_params,
        .n_params = sizeof(fetch_many_params) / sizeof(fetch_many_params[0]),
        .result_type = AIOD_TYPE_LIST,
        .fn = fetch_many,
    },
};

/* Keeps libcurl loaded for the rest of the process: the daemon unloads a
 * plugin generation whose last task has ended, and a resolver thread that a
 * cancelled fetch left behind (CURLOPT_QUICK_EXIT) may still be running in
 * libcurl's code then. */
static void pin_libcurl(const struct aiod_api *api) {
    Dl_info info;
    void *h = NULL;
    if (dladdr((void *)curl_version, &info) && info.dli_fname)
        h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    if (!h)
        api->log(NULL, LOG_WARNING, "net: cannot pin libcurl in memory: %s", dlerror());
    /* The handle is dropped on purpose: NODELETE outlives it. */
}

/* Which fds are open: *ret_open[fd] for fd < the count returned (0 with
 * *ret_open NULL when /proc cannot be read or memory is short). */
static int open_fds(bool **ret_open) {
    *ret_open = NULL;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    bool *open = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd < 0 || fd > 1 << 24 || fd == dirfd(d))
            continue;
        if (fd >= n) {
            int m = (int)fd + 64;
            bool *o = realloc(open, (size_t)m * sizeof(*o));
            if (!o) {
                free(open);
                closedir(d);
                return 0;
            }
            memset(o + n, 0, (size_t)(m - n) * sizeof(*o));
            open = o;
            n = m;
        }
        open[fd] = true;
    }
    closedir(d);
    *ret_open = open;
    return n;
}

/* Marks close-on-exec every fd opened since open_fds gave `before`: what
 * curl_multi_init made without the flag (libcurl 7.88's wake-up socket
 * pair), which would otherwise reach every program proc_run starts. */
static void cloexec_new_fds(const bool *before, int n_before) {
    if (!before)
        return; /* nothing known of what was open before */
    bool *now = NULL;
    int n = open_fds(&now);
    for (int fd = 0; fd < n; fd++)
        if (now[fd] && !(fd < n_before && before[fd]))
            set_cloexec(fd);
    free(now);
}

/* The daemon must offer the ABI 1.4 futures, callbacks and fd watches. */
static int net_init(const struct aiod_api *api) {
    if (api->struct_size < offsetof(struct aiod_api, sync_wait) + sizeof(api->sync_wait))
        return -ENOTSUP;
    pin_libcurl(api);
    CURLcode c = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (c != CURLE_OK) {
        api->log(NULL, LOG_ERR, "net: curl_global_init: %s", curl_easy_strerror(c));
        return -EIO;
    }
    net.api = api;
    if (api->sync_new(AIOD_SYNC_EVENT, 0, NULL, &net.room) < 0) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    api->sync_set(net.room);
    bool *before = NULL;
    int n_before = open_fds(&before);
    net.multi = curl_multi_init();
    /* Its wake-up socket pair. */
    cloexec_new_fds(before, n_before);
    free(before);
    if (!net.multi ||
        curl_multi_setopt(net.multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(net.multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK) {
        if (net.multi)
            curl_multi_cleanup(net.multi);
        net.multi = NULL;
        api->sync_free(net.room);
        net.room = NULL;
        curl_global_cleanup();
        return -ENOMEM;
    }
    return 0;
}

static void net_fini(const struct aiod_api *api) {
    (void)api;
    /* Transfers whose abort had not run yet. */
    while (net.live) {
        fetch_state *fs = net.live;
        if (fs->abort) {
            net.api->handle_cancel(fs->abort);
            net.api->handle_release(fs->abort);
        }
        state_free(fs);
    }
    /* Closes the cached connections (their watches go through on_socket). */
    curl_multi_cleanup(net.multi);
    net.multi = NULL;
    /* Lookups left behind end on their own (libcurl stays loaded). */
    while (net.lingering)
        lingering_free(net.lingering);
    net.api->sync_free(net.room);
    net.room = NULL;
    if (net.timer) {
        net.api->handle_cancel(net.timer);
        net.api->handle_release(net.timer);
        net.timer = NULL;
    }
    curl_global_cleanup();
}

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "net",
    .version = "2.0.0",
    .functions = net_functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(net_functions) / sizeof(net_functions[0]),
    .init = net_init,
    .fini = net_fini,
};
