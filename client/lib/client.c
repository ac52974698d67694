/*
 * client: connecting, the hello, the default socket path, the last error,
 * and matching replies to requests (client.h). The library is blocking: each
 * public call sends its request(s) and reads frames until its reply comes,
 * handing Output events to the callback on the way.
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
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
         * system one: a member of group aiod needs no flag. */
        struct stat st;
        n = -1;
        if (xdg && *xdg == '/') {
            n = snprintf(buf, len, "%s/aiod/aiod.sock", xdg);
            if (n >= 0 && (size_t)n < len && (stat(buf, &st) < 0 || !S_ISSOCK(st.st_mode)))
                n = -1;
        }
        if (n < 0)
            n = snprintf(buf, len, "%s", "/run/aiod/aiod.sock");
    }
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

void client_set_error(aioc_client *c, const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof(c->last_error)) {
        n = sizeof(c->last_error) - 1;
        /* Do not cut a UTF-8 sequence in half. */
        while (n > 0 && ((unsigned char)message[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(c->last_error, message, n);
    c->last_error[n] = '\0';
}

int client_begin(aioc_client *c) {
    if (c->in_callback)
        return -EBUSY;
    if (c->dead)
        return c->dead;
    c->last_error[0] = '\0';
    return 0;
}

int client_die(aioc_client *c, int r) {
    if (!c->dead) {
        c->dead = r;
        /* Wake up a program polling the socket, and tell the daemon. */
        if (c->conn.fd >= 0)
            shutdown(c->conn.fd, SHUT_RDWR);
        c->wpos = c->wlen = 0;
        request_fail_all(c, r);
    }
    return c->dead;
}

int client_queue(aioc_client *c, Aiod__ClientMessage *m) {
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    m->request_id = c->next_request_id++;
    int r = wire_pack(m, c->max_frame, &buf, &len);
    if (r < 0)
        return r; /* too big or no memory: the connection is still fine */
    if (c->wpos == c->wlen)
        c->wpos = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        if (c->wpos > 0) {
            memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
            c->wlen -= c->wpos;
            c->wpos = 0;
        }
        if (c->wlen + len > c->wcap) {
            size_t cap = MAX(c->wcap * 2, c->wlen + len);
            uint8_t *w = alloc_realloc(c->wbuf, cap);
            if (!w)
                return -ENOMEM;
            c->wbuf = w;
            c->wcap = cap;
        }
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    return 0;
}

int client_flush_some(aioc_client *c) {
    if (c->dead)
        return c->dead;
    if (c->wpos == c->wlen)
        return 0;
    ssize_t n = conn_send_some(&c->conn, c->wbuf + c->wpos, c->wlen - c->wpos);
    if (n < 0)
        return client_die(c, (int)n);
    c->wpos += (size_t)n;
    if (c->wpos == c->wlen)
        c->wpos = c->wlen = 0;
    return 0;
}

/* Queues `m` and writes the whole queue, waiting for room as needed. */
static int send_message(aioc_client *c, Aiod__ClientMessage *m) {
    int r = client_queue(c, m);
    if (r < 0)
        return r;
    r = conn_write(&c->conn, c->wbuf + c->wpos, c->wlen - c->wpos);
    if (r < 0)
        return client_die(c, r);
    c->wpos = c->wlen = 0;
    return 0;
}

/* Reads until the reply to request `id` comes. */
static int wait_reply(aioc_client *c, uint64_t id, Aiod__ServerMessage__BodyCase want,
                      Aiod__ServerMessage **ret_reply) {
    for (;;) {
        const uint8_t *payload;
        uint32_t len;
        Aiod__ServerMessage *m;

        int r = conn_read_frame(&c->conn, &payload, &len);
        if (r < 0)
            return client_die(c, r == -EMSGSIZE ? -EPROTO : r);
        r = wire_unpack(payload, len, &m);
        if (r < 0)
            return client_die(c, r);

        if (m->request_id == id && m->body_case != AIOD__SERVER_MESSAGE__BODY_OUTPUT &&
            (m->body_case == want || m->body_case != AIOD__SERVER_MESSAGE__BODY_OUTPUT_END)) {
            *ret_reply = m;
            return 0;
        }
        /* Output events go to the callbacks, replies of started requests
         * to them; an OutputEnd of a followed task or a newer daemon's
         * message is skipped. A connection-level error ends it all. */
        r = client_dispatch(c, m);
        if (r < 0)
            return r;
    }
}

int client_call(aioc_client *c, Aiod__ClientMessage *m, Aiod__ServerMessage__BodyCase want,
                Aiod__ServerMessage **ret_reply) {
    Aiod__ServerMessage *reply = NULL;
    int r = send_message(c, m);
    if (r < 0)
        return r;
    r = wait_reply(c, m->request_id, want, &reply);
    if (r < 0)
        return r;
    if (reply->body_case == AIOD__SERVER_MESSAGE__BODY_ERROR) {
        client_set_error(c, reply->error->message);
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

static int hello(aioc_client *c) {
    Aiod__Hello h = AIOD__HELLO__INIT;
    Aiod__ClientMessage m = AIOD__CLIENT_MESSAGE__INIT;
    Aiod__ServerMessage *reply = NULL;
    const char *name = program_invocation_short_name;

    h.protocol_version = AIOD_PROTOCOL_VERSION;
    h.client_name = (char *)(name && *name ? name : "libaioclient");
    m.body_case = AIOD__CLIENT_MESSAGE__BODY_HELLO;
    m.hello = &h;
    int r = client_call(c, &m, AIOD__SERVER_MESSAGE__BODY_HELLO, &reply);
    if (r < 0)
        return r;
    if (reply->hello->protocol_version != AIOD_PROTOCOL_VERSION) {
        wire_free(reply);
        return -EPROTONOSUPPORT;
    }
    c->server_version = alloc_strdup(reply->hello->server_version);
    if (!c->server_version) {
        wire_free(reply);
        return -ENOMEM;
    }
    if (reply->hello->max_frame > 0)
        c->max_frame = reply->hello->max_frame;
    c->max_in_flight = reply->hello->max_in_flight;
    conn_set_max_frame(&c->conn, c->max_frame);
    wire_free(reply);
    return 0;
}

AIOC_EXPORT int aioc_connect(const char *socket_path, aioc_client **ret) {
    return aioc_connect_ex(socket_path, ret, NULL, 0);
}

AIOC_EXPORT int aioc_connect_ex(const char *socket_path, aioc_client **ret, char *err,
                                size_t err_len) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int r;

    if (err && err_len)
        err[0] = '\0';
    if (!ret)
        return -EINVAL;
    if (!socket_path) {
        r = aioc_default_socket_path(path, sizeof(path));
        if (r < 0)
            return r;
        socket_path = path;
    }
    aioc_client *c = alloc_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->next_request_id = 1;
    c->max_frame = CLIENT_DEFAULT_MAX_FRAME;
    r = conn_open(&c->conn, socket_path, c->max_frame);
    if (r >= 0)
        r = hello(c);
    if (r < 0) {
        if (err && err_len)
            snprintf(err, err_len, "%s", c->last_error);
        aioc_close(c);
        return r;
    }
    *ret = c;
    return 0;
}

AIOC_EXPORT void aioc_close(aioc_client *c) {
    if (!c)
        return;
    request_detach_all(c);
    free(c->entries);
    free(c->wbuf);
    conn_close(&c->conn);
    free(c->server_version);
    free(c);
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
