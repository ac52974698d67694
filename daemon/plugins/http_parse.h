/*
 * A small, strict HTTP/1.x client-side parser for the net plugin: absolute
 * http:// URLs and responses (status line, header fields, a body framed by
 * Content-Length, chunked transfer coding or the end of the connection).
 *
 * Pure: no I/O, no logging, no globals; it allocates only the body buffer
 * (malloc), up to the caller's limit. Everything else is bounded by the
 * HTTP_MAX_* limits below, so a hostile server costs at most
 * sizeof(http_response) + max_body bytes. It is fuzzed
 * (tests/fuzz/fuzz-http.c).
 */
#ifndef AIOD_HTTP_PARSE_H
#define AIOD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status line plus header fields, in bytes. 64 KiB is far beyond what real
 * servers send (most stop at 8 KiB) and small enough to keep inline. */
#define HTTP_MAX_HEAD (64u * 1024)
/* Header fields in one response. */
#define HTTP_MAX_HEADERS 128u
/* One chunk-size line (with extensions) or trailer field line. */
#define HTTP_MAX_LINE 8192u
/* All trailer fields together, in bytes (they are checked and dropped). */
#define HTTP_MAX_TRAILERS (64u * 1024)
/* Interim (1xx) responses skipped before the final one. */
#define HTTP_MAX_INTERIM 16u
/* Longest host name in a URL (DNS allows 253). */
#define HTTP_MAX_HOST 255u

/* ---- URLs */

/* The parts of an absolute http:// URL, as offsets into the parsed text. */
typedef struct http_url {
    /* The host without brackets (an IPv6 literal's brackets are dropped). */
    size_t host_off;
    size_t host_len;
    /* Whether the host was an IPv6 literal in brackets. */
    bool host_ipv6;
    /* The port (80 when the URL gives none). */
    uint16_t port;
    /* Path and query ("/" when empty); the fragment is dropped. */
    size_t target_off;
    size_t target_len;
    /* target_len == 0 means the target is "/". */
} http_url;

/*
 * Parses `len` bytes of `url`. 0 on success; -EPROTONOSUPPORT for a scheme
 * other than http (https included), -EINVAL for anything malformed. On
 * failure *ret_why (may be NULL) gets a static reason.
 */
int http_url_parse(const char *url, size_t len, http_url *ret, const char **ret_why);

/* ---- responses */

typedef struct http_header {
    /* NUL-terminated, pointing into the response's head buffer. The name is
     * lowercased; the value has no leading or trailing white space. */
    const char *name;
    const char *value;
    size_t value_len;
} http_header;

/* Large (about 80 KiB): allocate it on the heap. Fields are read-only for
 * the caller except as noted. */
typedef struct http_response {
    /* ---- results, valid once http_response_feed returned 1 */
    int status;
    /* HTTP minor version of the response: 0, or 1 for 1.1 and any later 1.x. */
    int minor;
    size_t n_headers;
    http_header headers[HTTP_MAX_HEADERS];
    /* The body (malloc'd, NUL-terminated for convenience; may also contain
     * NUL bytes). The caller may take it (set to NULL) before
     * http_response_free. */
    char *body;
    size_t body_len;

    /* Why parsing failed (static text), or NULL. */
    const char *why;

    /* ---- parser state */
    size_t max_body;
    size_t body_cap;
    int state;
    /* What feed returns once done (1) or failed (a negative errno). */
    int result;
    /* Bytes left of the Content-Length body or of the current chunk. */
    uint64_t remaining;
    unsigned interim;
    size_t trailer_bytes;
    /* The raw head (status line and fields) while it is collected, and where
     * its current line starts. */
    size_t head_len;
    size_t head_line;
    /* A chunk-size or trailer line while it is collected. */
    size_t line_len;
    /* Buffers last: http_response_init does not clear them. */
    char head[HTTP_MAX_HEAD];
    char line[HTTP_MAX_LINE];
} http_response;

/* Prepares `r` for one response whose body may be at most max_body bytes. */
void http_response_init(http_response *r, size_t max_body);

/*
 * Feeds the next `len` bytes received. Returns 1 when the response is
 * complete (bytes after its end are ignored), 0 when more are needed, or a
 * negative errno with r->why set: -EBADMSG malformed, -EMSGSIZE head or line
 * too long, -EFBIG body over max_body, -ENOTSUP a transfer coding other than
 * chunked, -ENOMEM. After an error or completion, further calls return the
 * same result.
 */
int http_response_feed(http_response *r, const void *data, size_t len);

/* The connection ended: 1 if that completes the response (a body delimited
 * by the end of the connection), otherwise -EBADMSG (truncated), or the
 * earlier result. */
int http_response_eof(http_response *r);

/* The first header with this (lowercase) name, or NULL. */
const http_header *http_response_header(const http_response *r, const char *name);

/* Frees the body (if still there). Accepts NULL. */
void http_response_free(http_response *r);

#endif
