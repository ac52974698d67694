/*
 * client: connecting (blocking with a deadline, or started and finished by
 * aioc_process), the hello, the default socket path, the client's
 * accessors, and the blocking request/reply call (client.h). A blocking
 * call sends its request and reads frames until its final frame comes,
 * handing every other frame to the engine on the way.
 */
#include "client.h"

#include <assert.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "engine.h"
#include "frame.h"
#include "macro.h"
#include "wire.h"

/* The name sent in the hello; glibc sets it from argv[0]. */
extern char *program_invocation_short_name;

AIOC_EXPORT int aioc_default_socket_path(char *buf, size_t len) {
    const char *env, *xdg;
    int n;
    if (!buf || len == 0)
        return -EINVAL;
    env = getenv("AIOD_SOCKET");
    xdg = getenv("XDG_RUNTIME_DIR");
    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else {
        /* The user's own instance when its socket is there, else the
         * system one: a member of group aiod needs no flag. "Own": the
         * socket belongs to the caller's effective uid. root with another
         * user's XDG_RUNTIME_DIR (su without -) is not sent to that user's
         * daemon, nor is a user to a socket someone else put there. */
        struct stat st;
        char user[sizeof(((struct sockaddr_un *)0)->sun_path)];
        n = -1;
        if (xdg && *xdg == '/') {
            /* Looked for in a buffer of its own: one that does not fit a
             * socket address cannot be the user's socket, but one that only
             * does not fit the caller's buffer is, and is not to be taken
             * for the system daemon's. */
            int u = snprintf(user, sizeof(user), "%s/aiod/aiod.sock", xdg);
            if (u > 0 && (size_t)u < sizeof(user) && stat(user, &st) == 0 && S_ISSOCK(st.st_mode) &&
                st.st_uid == geteuid())
                n = snprintf(buf, len, "%s", user);
        }
        if (n < 0)
            n = snprintf(buf, len, "%s", "/run/aiod/aiod.sock");
    }
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

int client_begin(aioc_client *c) {
    if (c->in_callback)
        return -EBUSY;
    if (c->dead)
        return c->dead;
    c->last_error[0] = '\0';
    return 0;
}

/* Is `m` the final frame of a blocking request waiting for `want`? */
static bool blocking_final(const Aiod__ServerMessage *m, Aiod__ServerMessage__BodyCase want) {
    if (m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)
        return want == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END;
    return !engine_is_event(m->body_case);
}

/* Reads until the final frame of request `id` comes; its OutputEnd events
 * go into `ends` when it is not NULL. */
static int wait_reply(aioc_client *c, uint64_t id, Aiod__ServerMessage__BodyCase want,
                      output_ends *ends, Aiod__ServerMessage **ret_reply) {
    for (;;) {
        const uint8_t *payload;
        uint32_t len;
        Aiod__ServerMessage *m;

        int r = conn_read_frame(&c->conn, &payload, &len);
        if (r < 0)
            return engine_die(c, r == -EMSGSIZE ? -EPROTO : r);
        r = wire_unpack(payload, len, &m);
        if (r < 0)
            return engine_die(c, r);

        if (m->request_id == id && blocking_final(m, want)) {
            *ret_reply = m;
            return 0;
        }
        /* A followed task of this request ended its output: what it lost
         * (an allocation failure loses only that task's count). */
        if (ends && m->request_id == id && m->body_case == AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)
            (void)output_ends_add(ends, m->output_end->task_id, m->output_end->dropped);
        /* Output lines go to the callbacks, frames of started requests to
         * them; events of this request (Started, a followed task's
         * OutputEnd, a newer daemon's) are skipped. A connection-level
         * error ends it all. */
        engine_dispatch(c, m);
        if (c->dead)
            return c->dead;
    }
}

int client_call(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                Aiod__ServerMessage **ret_reply) {
    return client_call_ends(c, m, want, ret_reply, NULL);
}

int client_call_ends(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                     Aiod__ServerMessage **ret_reply, output_ends *ends) {
    Aiod__ServerMessage *reply = NULL;
    int r = engine_queue(c, m);
    if (r < 0)
        return r;
    r = engine_flush_all(c);
    if (r < 0)
        return r;
    r = wait_reply(c, m->request_id, want, ends, &reply);
    if (r < 0)
        return r;
    if (reply->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        engine_set_error(c, reply->error->message);
        r = wire_error_errno(reply->error->code);
        if (r == -EIO && reply->error->outcome) {
            *ret_reply = reply;
            return r;
        }
        wire_free(reply);
        return r == -EIO ? -EPROTO : r;
    }
    if (reply->body_case != want) {
        wire_free(reply);
        return -EPROTO;
    }
    *ret_reply = reply;
    return 0;
}

static void hello_message(Aiod__Hello *h, Aiod__ClientMessage *m) {
    const char *name = program_invocation_short_name;
    h->protocol_version = AIOD_PROTOCOL_VERSION;
    h->client_name = (char *)(name && *name ? name : "libaioclient");
    m->body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m->hello = h;
}

static int hello(aioc_client *c) {
    Aiod__Hello h = AIOD__HELLO__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;

    hello_message(&h, &m);
    int r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_HELLO, &reply);
    if (r < 0)
        return r;
    r = engine_apply_hello(c, reply->hello);
    wire_free(reply);
    return r;
}

/* The connect and hello timeout aioc_connect uses: $AIOC_CONNECT_TIMEOUT
 * (seconds; 0 or less: none) when it is a number, else the default. */
static double default_timeout(void) {
    const char *env = getenv("AIOC_CONNECT_TIMEOUT");
    if (env && *env) {
        /* Read as C reads numbers ("2.5"), whatever LC_NUMERIC the program
         * set: strtod would stop at the '.' under a German locale, and the
         * setting would be ignored without a word. */
        locale_t c_numbers = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (c_numbers) {
            char *end;
            double t = strtod_l(env, &end, c_numbers);
            freelocale(c_numbers);
            if (*end == '\0' && !isnan(t))
                return t;
        }
    }
    return CLIENT_CONNECT_TIMEOUT_DEFAULT;
}

/* A new client with nothing connected. */
static aioc_client *client_new(void) {
    aioc_client *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->next_request_id = 1;
    c->max_frame = CLIENT_DEFAULT_MAX_FRAME;
    c->conn.fd = -1;
    return c;
}

static const char *resolve_path(const char *socket_path, char *buf, size_t len, int *ret_r) {
    *ret_r = 0;
    if (socket_path)
        return socket_path;
    *ret_r = aioc_default_socket_path(buf, len);
    return *ret_r < 0 ? NULL : buf;
}

/* aioc_connect_ex (describe false: err gets the daemon's refusals only) and
 * aioc_connect_timeout (describe true: err says what went wrong always). */
static int connect_blocking(const char *socket_path, double timeout, aioc_client **ret, char *err,
                            size_t err_len, bool describe) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int r;

    if (err && err_len)
        err[0] = '\0';
    /* Said in err only when asked to describe every failure. */
    bool say = describe && err && err_len;
    if (!ret || isnan(timeout)) {
        if (say)
            snprintf(err, err_len, "%s",
                     !ret ? "no place for the client (ret is NULL)"
                          : "the timeout is not a number (NaN)");
        return -EINVAL;
    }
    socket_path = resolve_path(socket_path, path, sizeof(path), &r);
    if (r < 0) {
        if (say)
            snprintf(err, err_len, "the socket path is too long for a Unix socket address");
        return r;
    }
    aioc_client *c = client_new();
    if (!c) {
        if (say)
            snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (timeout > 0)
        c->conn.deadline = conn_now_ms() + (int64_t)(MIN(timeout, 1e9) * 1000.0 + 0.999);
    r = conn_open(&c->conn, socket_path, c->max_frame);
    if (r >= 0)
        r = hello(c);
    c->conn.deadline = 0;
    if (r < 0) {
        if (err && err_len) {
            if (c->last_error[0] || !describe)
                snprintf(err, err_len, "%s", c->last_error);
            else if (r == -ETIMEDOUT)
                snprintf(err, err_len, "aiod at %s did not answer within %g s", socket_path,
                         timeout);
            else
                snprintf(err, err_len, "cannot connect to aiod at %s: %s", socket_path,
                         strerror(-r));
        }
        aioc_close(c);
        return r;
    }
    *ret = c;
    return 0;
}

AIOC_EXPORT int aioc_connect(const char *socket_path, aioc_client **ret) {
    return aioc_connect_ex(socket_path, ret, NULL, 0);
}

AIOC_EXPORT int aioc_connect_ex(const char *socket_path, aioc_client **ret, char *err,
                                size_t err_len) {
    return connect_blocking(socket_path, default_timeout(), ret, err, err_len, false);
}

AIOC_EXPORT int aioc_connect_timeout(const char *socket_path, double timeout, aioc_client **ret,
                                     char *err, size_t err_len) {
    return connect_blocking(socket_path, timeout, ret, err, err_len, true);
}

AIOC_EXPORT int aioc_connect_start(const char *socket_path, aioc_connect_cb cb, void *userdata,
                                   aioc_client **ret) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    Aiod__Hello h = AIOD__HELLO__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    int r;

    if (!ret)
        return -EINVAL;
    socket_path = resolve_path(socket_path, path, sizeof(path), &r);
    if (r < 0)
        return r;
    aioc_client *c = client_new();
    if (!c)
        return -ENOMEM;
    aioc_request *req = NULL;
    r = conn_open_nowait(&c->conn, socket_path, c->max_frame);
    if (r >= 0) {
        req = engine_request_new(c, REQUEST_HELLO, NULL, NULL);
        r = req ? 0 : -ENOMEM;
    }
    if (r >= 0) {
        /* The library's own: the engine ends it at the hello reply and
         * makes the connect callback due. */
        req->internal = true;
        c->connecting = true;
        hello_message(&h, &m);
        r = engine_send(c, req, &m);
        if (r < 0)
            engine_request_destroy(req);
        else if (c->dead)
            r = c->dead; /* the write failed; the engine ended the hello */
    }
    if (r < 0) {
        aioc_close(c);
        return r;
    }
    c->connect_cb = cb;
    c->connect_userdata = userdata;
    *ret = c;
    return 0;
}

AIOC_EXPORT int aioc_connection_error(const aioc_client *c) {
    if (!c)
        return -EINVAL;
    if (c->dead)
        return c->dead;
    return c->connecting ? -EINPROGRESS : 0;
}

AIOC_EXPORT int aioc_set_flags(aioc_client *c, unsigned flags) {
    if (!c || (flags & ~AIOC_FLAG_FINAL_CALLBACKS))
        return -EINVAL;
    c->flags = flags;
    return 0;
}

static void close_now(aioc_client *c) {
    c->closing = true;
    engine_close(c);
    free(c->wbuf);
    conn_close(&c->conn);
    free(c->server_version);
    free(c);
}

aioc_client *client_enter(aioc_client *c) {
    if (c)
        c->depth++;
    return c;
}

void client_leave(aioc_client **scope) {
    aioc_client *c = *scope;
    if (!c)
        return;
    assert(c->depth > 0);
    if (--c->depth == 0 && c->close_asked)
        close_now(c);
}

AIOC_EXPORT void aioc_close(aioc_client *c) {
    if (!c || c->closing)
        return; /* a final callback run by this close closing again */
    if (c->depth > 0) {
        /* From a callback: the library call running it still uses c. The
         * connection ends now (a blocking wait wakes up, the daemon sees
         * the close); the rest when that call returns (client_leave). */
        c->close_asked = true;
        if (!c->dead)
            c->dead = -ECONNABORTED;
        if (c->conn.fd >= 0)
            shutdown(c->conn.fd, SHUT_RDWR);
        return;
    }
    close_now(c);
}

AIOC_EXPORT int aioc_fd(const aioc_client *c) {
    if (!c)
        return -EINVAL;
    return c->conn.fd >= 0 ? c->conn.fd : -ENOTCONN;
}

AIOC_EXPORT const char *aioc_last_error(const aioc_client *c) {
    return c ? c->last_error : "";
}

AIOC_EXPORT const char *aioc_server_version(const aioc_client *c) {
    return c && c->server_version ? c->server_version : "";
}

AIOC_EXPORT void aioc_set_output_callback(aioc_client *c, aioc_output_cb cb, void *userdata) {
    if (!c)
        return;
    c->output_cb = cb;
    c->output_userdata = userdata;
}

/* The idle callback is a callback like the others: a library call from it
 * gets -EBUSY instead of reading a reply a waiting call is owed. */
static void idle_trampoline(void *data) {
    aioc_client *c = data;
    bool was = c->in_callback;
    c->in_callback = true;
    c->idle_cb(c->idle_userdata);
    c->in_callback = was;
}

AIOC_EXPORT void aioc_set_idle_callback(aioc_client *c, void (*cb)(void *userdata),
                                        void *userdata) {
    if (!c)
        return;
    c->idle_cb = cb;
    c->idle_userdata = userdata;
    c->conn.before_wait = cb ? idle_trampoline : NULL;
    c->conn.before_wait_data = c;
}
