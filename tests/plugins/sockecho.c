/*
 * Test plugin "sockecho": drives the api's sockets against servers that
 * tests/integration/test_net.py starts (a Unix-socket line echo server, a
 * TCP echo server), for what net.fetch does not reach: unix_connect, resolve,
 * a read that times out on a socket that stays usable, a read waiting
 * forever (for cancellation), big round trips, and argument checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <aiod/plugin.h>

/* Reads until end of stream into a heap buffer of at most cap bytes. */
static long read_to_eof(aiod_task *t, const struct aiod_api *api, aiod_sock *s, char *buf,
                        size_t cap, double timeout) {
    size_t have = 0;
    for (;;) {
        if (have == cap)
            return -EMSGSIZE;
        long n = api->sock_read(t, s, buf + have, cap - have, timeout);
        if (n < 0)
            return n;
        if (n == 0)
            return (long)have;
        have += (size_t)n;
    }
}

/* echo(path, text): sends text over a Unix socket, returns what comes back
 * before the server closes. */
static int echo(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    const char *text = api->get_string(args[1]);
    aiod_sock *s = NULL;
    int r = api->unix_connect(t, api->get_string(args[0]), 5, &s);
    if (r < 0)
        return r;
    char *buf = malloc(65536);
    long n = buf ? api->sock_write(t, s, text, strlen(text), 5) : -ENOMEM;
    if (n == 0)
        n = read_to_eof(t, api, s, buf, 65535, 5);
    if (n >= 0) {
        buf[n] = '\0';
        *ret = api->value_string(buf);
    }
    api->sock_close(t, s);
    free(buf);
    return n < 0 ? (int)n : 0;
}

/* read_timeout(path, seconds): a read that times out, then the same socket
 * still works: sends "ping\n" and returns "timeout;" + the echo. */
static int read_timeout(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    aiod_sock *s = NULL;
    char *buf = malloc(4096);
    int r = buf ? api->unix_connect(t, api->get_string(args[0]), 5, &s) : -ENOMEM;
    if (r == 0) {
        long n = api->sock_read(t, s, buf, 4096, api->get_double(args[1]));
        if (n != -ETIMEDOUT)
            r = api->fail(t, "AssertionError", "read returned %ld, expected -ETIMEDOUT", n);
    }
    if (r == 0)
        r = api->sock_write(t, s, "ping\n", 5, 5);
    if (r == 0) {
        memcpy(buf, "timeout;", 8);
        long n = read_to_eof(t, api, s, buf + 8, 4096 - 9, 5);
        if (n < 0) {
            r = (int)n;
        } else {
            buf[8 + n] = '\0';
            *ret = api->value_string(buf);
        }
    }
    api->sock_close(t, s);
    free(buf);
    return r;
}

/* hold(path): connects and reads with no timeout until cancelled; closes
 * the socket on the way out, so the server sees the end. */
static int hold(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                aiod_value **ret) {
    aiod_sock *s = NULL;
    char *buf = malloc(256);
    int r = buf ? api->unix_connect(t, api->get_string(args[0]), 5, &s) : -ENOMEM;
    long n = 1;
    while (r == 0 && n > 0) {
        n = api->sock_read(t, s, buf, 256, 0);
        if (n < 0)
            r = (int)n;
    }
    api->sock_close(t, s);
    free(buf);
    (void)ret;
    return r;
}

/* roundtrip(host, port, nbytes): writes nbytes of a pattern in 64 KiB
 * pieces to a TCP echo server, reading each piece back before the next;
 * returns nbytes once every byte matched. */
static int roundtrip(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                     aiod_value **ret) {
    const size_t piece = 65536;
    int64_t total = api->get_int(args[2]);
    aiod_sock *s = NULL;
    char *out = malloc(piece), *in = malloc(piece);
    int r = out && in
                ? api->tcp_connect(t, api->get_string(args[0]), api->get_string(args[1]), 5, &s)
                : -ENOMEM;
    for (int64_t done = 0; r == 0 && done < total;) {
        size_t n = (size_t)(total - done) < piece ? (size_t)(total - done) : piece;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)((done + (int64_t)i) * 7 % 251);
        r = api->sock_write(t, s, out, n, 10);
        for (size_t got = 0; r == 0 && got < n;) {
            long k = api->sock_read(t, s, in + got, n - got, 10);
            if (k <= 0)
                r = k == 0 ? api->fail(t, "EOFError", "echo server closed early") : (int)k;
            else
                got += (size_t)k;
        }
        if (r == 0 && memcmp(in, out, n) != 0)
            r = api->fail(t, "AssertionError", "echoed bytes differ near offset %lld",
                          (long long)done);
        done += (int64_t)n;
    }
    api->sock_close(t, s);
    free(out);
    free(in);
    if (r == 0)
        *ret = api->value_int(total);
    return r;
}

/* fetch_digest(url): net.fetch as a child task; returns {"status",
 * "length", "fnv"} (FNV-1a 64 of the body, as a signed int) instead of the
 * body, so a large body need not fit in a result. */
static int fetch_digest(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    aiod_value *cargs[] = {api->value_copy(args[0]), api->value_double(30)};
    aiod_child *c = NULL;
    aiod_value *res = NULL;
    int r = api->spawn(t, "net.fetch", cargs, 2, &c);
    if (r < 0)
        return r;
    r = api->await(t, c, &res);
    api->child_release(t, c);
    if (r < 0)
        return r;
    const aiod_value *body = api->map_get(res, "body");
    size_t len = 0;
    const unsigned char *p = api->get_bytes(body, &len);
    if (!p) {
        p = (const unsigned char *)api->get_string(body);
        len = p ? strlen((const char *)p) : 0;
    }
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211u;
    aiod_value *m = api->value_map();
    if (m && (api->map_set(m, "status", api->value_copy(api->map_get(res, "status"))) < 0 ||
              api->map_set(m, "length", api->value_int((int64_t)len)) < 0 ||
              api->map_set(m, "fnv", api->value_int((int64_t)h)) < 0)) {
        api->value_free(m);
        m = NULL;
    }
    api->value_free(res);
    *ret = m;
    return m ? 0 : -ENOMEM;
}

/* write_timeout(host, port, nbytes, seconds): writes nbytes to a server
 * that reads nothing; returns "timeout" when the write times out. */
static int write_timeout(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                         aiod_value **ret) {
    size_t n = (size_t)api->get_int(args[2]);
    aiod_sock *s = NULL;
    char *data = calloc(1, n);
    int r = data ? api->tcp_connect(t, api->get_string(args[0]), api->get_string(args[1]), 5, &s)
                 : -ENOMEM;
    if (r == 0) {
        r = api->sock_write(t, s, data, n, api->get_double(args[3]));
        if (r == -ETIMEDOUT) {
            *ret = api->value_string("timeout");
            r = 0;
        } else {
            r = api->fail(t, "AssertionError", "write returned %d, expected -ETIMEDOUT", r);
        }
    }
    api->sock_close(t, s);
    free(data);
    return r;
}

static int resolve(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                   aiod_value **ret) {
    return api->resolve(t, api->get_string(args[0]), ret);
}

/* misuse(path): calls that must fail cleanly; returns how many did. */
static int misuse(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                  aiod_value **ret) {
    aiod_sock *s = NULL;
    char longpath[200];
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    int ok = 0;
    ok += api->tcp_connect(t, NULL, "80", 1, &s) == -EINVAL;
    ok += api->tcp_connect(NULL, "127.0.0.1", "80", 1, &s) == -EINVAL;
    ok += api->unix_connect(t, longpath, 1, &s) == -ENAMETOOLONG;
    ok += api->unix_connect(t, "", 1, &s) == -EINVAL;
    ok += api->unix_connect(t, api->get_string(args[0]), 1, &s) == -ENOENT;
    ok += api->sock_read(t, NULL, longpath, 1, 1) == -EINVAL;
    ok += api->sock_write(t, NULL, "x", 1, 1) == -EINVAL;
    ok += api->resolve(t, NULL, NULL) == -EINVAL;
    api->sock_close(t, NULL);
    *ret = api->value_int(ok);
    return 0;
}

static const struct aiod_param echo_params[] = {
    {"path", AIOD_TYPE_STRING, NULL},
    {"text", AIOD_TYPE_STRING, NULL},
};
static const struct aiod_param timeout_params[] = {
    {"path", AIOD_TYPE_STRING, NULL},
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
};
static const struct aiod_param path_params[] = {
    {"path", AIOD_TYPE_STRING, NULL},
};
static const struct aiod_param roundtrip_params[] = {
    {"host", AIOD_TYPE_STRING, NULL},
    {"port", AIOD_TYPE_STRING, NULL},
    {"nbytes", AIOD_TYPE_INT, NULL},
};
static const struct aiod_param url_params[] = {
    {"url", AIOD_TYPE_STRING, NULL},
};
static const struct aiod_param write_timeout_params[] = {
    {"host", AIOD_TYPE_STRING, NULL},
    {"port", AIOD_TYPE_STRING, NULL},
    {"nbytes", AIOD_TYPE_INT, NULL},
    {"seconds", AIOD_TYPE_DOUBLE, NULL},
};
static const struct aiod_param host_params[] = {
    {"host", AIOD_TYPE_STRING, NULL},
};

#define FN(n, p, rt, d)                                                                            \
    {                                                                                              \
        .struct_size = sizeof(struct aiod_function), .name = #n, .doc = d, .params = p,            \
        .n_params = sizeof(p) / sizeof(p[0]), .result_type = rt, .fn = n,                          \
    }

static const struct aiod_function functions[] = {
    FN(echo, echo_params, AIOD_TYPE_STRING, "Send text over a Unix socket; return the reply."),
    FN(read_timeout, timeout_params, AIOD_TYPE_STRING, "A read times out; the socket still works."),
    FN(hold, path_params, AIOD_TYPE_NULL, "Read from a Unix socket until cancelled."),
    FN(roundtrip, roundtrip_params, AIOD_TYPE_INT, "Echo NBYTES through a TCP echo server."),
    FN(fetch_digest, url_params, AIOD_TYPE_MAP, "net.fetch a URL; return status, length, FNV."),
    FN(write_timeout, write_timeout_params, AIOD_TYPE_STRING,
       "A write to a stalled peer times out."),
    FN(resolve, host_params, AIOD_TYPE_LIST, "Resolve a host name."),
    FN(misuse, path_params, AIOD_TYPE_INT, "Socket calls with bad arguments."),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "sockecho",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
};
