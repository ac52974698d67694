/*
 * The bundled net plugin: HTTP/1.1 GET over the api's sockets.
 *
 *   net.fetch(url: string, timeout: double = 30) -> map
 *       {"status": int, "headers": map, "body": string or bytes}
 *   net.fetch_many(urls: list, limit: int = 8, timeout: double = 30) -> list
 *       one fetch result per URL, in order, at most `limit` at once; a
 *       failed fetch's place holds {"error": kind, "message": text}
 *
 * http:// only: https needs TLS, and TLS cannot be layered over the api's
 * sockets without a TLS library driven by hand (see docs/plugins.md). Each
 * fetch is one connection with "Connection: close"; the response is parsed
 * by http_parse.c (Content-Length, chunked, or read to the end).
 *
 * Everything a fetch keeps across a suspension (the parser, the request,
 * the read buffer) lives on the heap: a suspended task's stack is copied
 * aside, and large buffers there would be copied at every switch.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <aiod/plugin.h>

#include "http_parse.h"

/* Largest body fetch accepts: 16 MiB. A result goes to the client in one
 * frame (4 MiB by default), but a task may fetch for its own use. */
#define NET_MAX_BODY (16u * 1024 * 1024)
/* Bytes asked of sock_read at a time. */
#define NET_READ_SIZE (64u * 1024)
/* Most fetches fetch_many runs at once. */
#define NET_MAX_LIMIT 1024

/* One fetch's heap state. */
typedef struct fetch_state {
    http_response resp;
    char host[HTTP_MAX_HOST + 1];
    char port[8];
    char *request;
    size_t request_len;
    char buf[NET_READ_SIZE];
} fetch_state;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds left before `deadline` (0: none) as an api timeout, or -1 when it
 * has passed. */
static double left(double deadline) {
    if (deadline == 0)
        return 0;
    double l = deadline - now_seconds();
    return l > 0 ? l : -1;
}

/* Turns a socket error into the task's error; cancellation passes through.
 * `when` says what the fetch was doing ("connecting", ...). */
static int net_error(aiod_task *task, const struct aiod_api *api, int r, const char *when,
                     const char *url, double timeout) {
    switch (r) {
    case -ECANCELED:
        return r;
    case -ETIMEDOUT:
        return api->fail(task, "TimeoutError", "%s: timed out after %g s (while %s)", url, timeout,
                         when);
    case -ECONNREFUSED:
        return api->fail(task, "ConnectionRefusedError", "%s: connection refused", url);
    case -ECONNRESET:
    case -EPIPE:
        return api->fail(task, "ConnectionResetError", "%s: connection reset by peer (while %s)",
                         url, when);
    case -ENOENT:
        return api->fail(task, "OSError", "%s: unknown host", url);
    default:
        return api->fail(task, "OSError", "%s: %s (while %s)", url, strerror(r < 0 ? -r : EIO),
                         when);
    }
}

/* A string value if the bytes are UTF-8 without NUL, else bytes. */
static aiod_value *text_or_bytes(const struct aiod_api *api, const char *s, size_t len) {
    if (!memchr(s, '\0', len)) {
        aiod_value *v = api->value_string(s); /* NULL if not UTF-8 */
        if (v)
            return v;
    }
    return api->value_bytes(s, len);
}

/* {"status", "headers", "body"} from a complete response; repeated header
 * fields are joined with ", " (RFC 9110, 5.3). NULL on out-of-memory. */
static aiod_value *result_map(const struct aiod_api *api, http_response *resp) {
    aiod_value *headers = api->value_map(), *m = api->value_map();
    if (!headers || !m)
        goto oom;
    for (size_t i = 0; i < resp->n_headers; i++) {
        const http_header *h = &resp->headers[i];
        const aiod_value *old = api->map_get(headers, h->name);
        aiod_value *v;
        if (old && api->get_string(old)) {
            const char *o = api->get_string(old);
            size_t n = strlen(o) + 2 + h->value_len + 1;
            char *joined = malloc(n);
            if (!joined)
                goto oom;
            snprintf(joined, n, "%s, %s", o, h->value);
            v = text_or_bytes(api, joined, n - 1);
            free(joined);
        } else {
            v = text_or_bytes(api, h->value, h->value_len);
        }
        if (!v || api->map_set(headers, h->name, v) < 0)
            goto oom;
    }
    /* map_set takes the item, also on failure (and refuses a NULL one). */
    if (api->map_set(m, "status", api->value_int(resp->status)) < 0)
        goto oom;
    int r = api->map_set(m, "headers", headers);
    headers = NULL;
    if (r < 0 || api->map_set(m, "body", text_or_bytes(api, resp->body, resp->body_len)) < 0)
        goto oom;
    return m;
oom:
    api->value_free(headers);
    api->value_free(m);
    return NULL;
}

/* Builds the GET request for the parsed URL. */
static int build_request(fetch_state *fs, const char *url, const http_url *u) {
    const char *target = url + u->target_off;
    int tlen = (int)u->target_len;
    /* "http://h?q" and "http://h" have no path: the target starts with '/'. */
    const char *slash = u->target_len == 0 || target[0] == '?' ? "/" : "";
    char hostport[HTTP_MAX_HOST + 16];
    snprintf(hostport, sizeof(hostport), "%s%s%s", u->host_ipv6 ? "[" : "", fs->host,
             u->host_ipv6 ? "]" : "");
    if (u->port != 80)
        snprintf(hostport + strlen(hostport), sizeof(hostport) - strlen(hostport), ":%u",
                 (unsigned)u->port);
    size_t cap = u->target_len + strlen(hostport) + 256;
    fs->request = malloc(cap);
    if (!fs->request)
        return -ENOMEM;
    int n = snprintf(fs->request, cap,
                     "GET %s%.*s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: aiod-net/1.0\r\n"
                     "Accept: */*\r\n"
                     "Accept-Encoding: identity\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     slash, tlen, target, hostport);
    if (n < 0 || (size_t)n >= cap)
        return -EINVAL;
    fs->request_len = (size_t)n;
    return 0;
}

/* fetch(url: string, timeout: double = 30) -> map */
static int fetch(aiod_task *task, const struct aiod_api *api, const aiod_value *const *args,
                 aiod_value **ret_result) {
    const char *url = api->get_string(args[0]);
    double timeout = api->get_double(args[1]);
    aiod_sock *sock = NULL;
    http_url u;
    const char *why = NULL;
    int r;

    if (!(timeout >= 0) || isinf(timeout))
        return api->fail(task, "ValueError", "timeout must be >= 0 seconds (0: none), got %g",
                         timeout);
    r = http_url_parse(url, strlen(url), &u, &why);
    if (r == -EPROTONOSUPPORT)
        return api->fail(task, "NotImplementedError", "%s: %s", url, why);
    if (r < 0)
        return api->fail(task, "ValueError", "bad URL '%s': %s", url, why);

    fetch_state *fs = malloc(sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    http_response_init(&fs->resp, NET_MAX_BODY);
    fs->request = NULL;
    memcpy(fs->host, url + u.host_off, u.host_len);
    fs->host[u.host_len] = '\0';
    snprintf(fs->port, sizeof(fs->port), "%u", (unsigned)u.port);
    double deadline = timeout > 0 ? now_seconds() + timeout : 0;

    r = build_request(fs, url, &u);
    if (r < 0)
        goto out;
    double t = left(deadline);
    r = t < 0 ? -ETIMEDOUT : api->tcp_connect(task, fs->host, fs->port, t, &sock);
    if (r < 0) {
        r = net_error(task, api, r, "connecting", url, timeout);
        goto out;
    }
    t = left(deadline);
    r = t < 0 ? -ETIMEDOUT : api->sock_write(task, sock, fs->request, fs->request_len, t);
    if (r < 0) {
        r = net_error(task, api, r, "sending the request", url, timeout);
        goto out;
    }
    for (;;) {
        t = left(deadline);
        long n = t < 0 ? -ETIMEDOUT : api->sock_read(task, sock, fs->buf, sizeof(fs->buf), t);
        if (n < 0) {
            r = net_error(task, api, (int)n, "reading the response", url, timeout);
            goto out;
        }
        r = n == 0 ? http_response_eof(&fs->resp)
                   : http_response_feed(&fs->resp, fs->buf, (size_t)n);
        if (r == -ENOMEM)
            goto out;
        if (r == -EFBIG) {
            r = api->fail(task, "ValueError", "%s: response body larger than %u bytes", url,
                          NET_MAX_BODY);
            goto out;
        }
        if (r < 0) {
            r = api->fail(task, "ProtocolError", "%s: %s", url, fs->resp.why);
            goto out;
        }
        if (r == 1)
            break;
    }
    *ret_result = result_map(api, &fs->resp);
    r = *ret_result ? 0 : -ENOMEM;
out:
    api->sock_close(task, sock);
    http_response_free(&fs->resp);
    free(fs->request);
    free(fs);
    return r;
}

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
    /* The child has finished: gather returns at once, with an error map in
     * place of a failure (return_exceptions). */
    if (api->gather(task, &c, 1, 1, &one) < 0)
        return NULL;
    aiod_value *v = api->value_copy(api->list_get(one, 0));
    api->value_free(one);
    return v;
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
    for (size_t i = 0; i < n; i++)
        if (api->value_type(api->list_get(urls, i)) != AIOD_TYPE_STRING)
            return api->fail(task, "ValueError", "urls[%zu] is not a string", i);

    aiod_value **results = calloc(n ? n : 1, sizeof(*results));
    aiod_child **active = calloc((size_t)limit, sizeof(*active));
    size_t *active_idx = calloc((size_t)limit, sizeof(*active_idx));
    size_t n_active = 0, next = 0;
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
        r = api->wait(task, active, n_active, 0, AIOD_FIRST_COMPLETED);
        if (r < 0)
            goto out;
        r = 0;
        /* Collect whatever finished and free its place in the window. */
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
            api->child_release(task, active[i]);
            active[i] = active[n_active - 1];
            active_idx[i] = active_idx[n_active - 1];
            n_active--;
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
        .doc = "HTTP GET an http:// URL: {status, headers, body}; timeout in seconds (0: none).",
        .params = fetch_params,
        .n_params = sizeof(fetch_params) / sizeof(fetch_params[0]),
        .result_type = AIOD_TYPE_MAP,
        .fn = fetch,
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

/* The daemon must offer the ABI 1.1 socket entries. */
static int net_init(const struct aiod_api *api) {
    if (api->struct_size < offsetof(struct aiod_api, resolve) + sizeof(api->resolve))
        return -ENOTSUP;
    return 0;
}

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "net",
    .version = "1.0.0",
    .functions = net_functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(net_functions) / sizeof(net_functions[0]),
    .init = net_init,
};
