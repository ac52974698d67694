/*
 * HTTP/1.x URL and response parsing for the net plugin (http_parse.h).
 *
 * Strict where leniency would be a smuggling or confusion risk (whitespace
 * before a field's colon, obsolete line folding, control characters, a
 * Content-Length that is not plain digits or disagrees with another, a
 * transfer coding other than chunked), lenient where RFC 9112 allows it (a
 * bare LF ends a line, an empty reason phrase). Every byte is looked at once;
 * nothing recurses; every buffer has a fixed bound.
 */
#include "http_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    ST_HEAD,
    ST_BODY_LENGTH,
    ST_BODY_CLOSE,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_CR,
    ST_CHUNK_LF,
    ST_TRAILER,
    ST_DONE,
    ST_ERROR,
};

/* Largest Content-Length or chunk size we parse at all (2^60). */
#define HTTP_MAX_SIZE ((uint64_t)1 << 60)

/* ---------------------------------------------------------------- characters */

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_value(unsigned char c) {
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char to_lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c) {
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Field content, reason phrase and chunk extensions: VCHAR, SP, HTAB and
 * obs-text; no other control characters. */
static bool is_text(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(unsigned char c) {
    return c == ' ' || c == '\t';
}

static bool equal_nocase(const char *a, size_t n, const char *lower) {
    size_t i = 0;
    for (; i < n && lower[i]; i++)
        if (to_lower((unsigned char)a[i]) != (unsigned char)lower[i])
            return false;
    return i == n && lower[i] == '\0';
}

/* ---------------------------------------------------------------- URLs */

static int url_fail(const char **ret_why, int r, const char *why) {
    if (ret_why)
        *ret_why = why;
    return r;
}

int http_url_parse(const char *url, size_t len, http_url *ret, const char **ret_why) {
    const unsigned char *u = (const unsigned char *)url;
    size_t i = 0;

    /* scheme ":" "//" */
    while (i < len && (is_alpha(u[i]) ||
                       (i > 0 && (is_digit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))))
        i++;
    if (i == 0 || len - i < 3 || memcmp(url + i, "://", 3) != 0)
        return url_fail(ret_why, -EINVAL, "not an absolute URL (expected http://HOST/...)");
    if (equal_nocase(url, i, "https"))
        return url_fail(ret_why, -EPROTONOSUPPORT, "https is not supported (no TLS yet)");
    if (!equal_nocase(url, i, "http"))
        return url_fail(ret_why, -EPROTONOSUPPORT, "only http:// URLs are supported");
    i += 3;

    http_url out = {.port = 80};
    if (i < len && u[i] == '[') {
        /* IPv6 literal; zone identifiers are not supported. */
        size_t start = ++i;
        while (i < len && (hex_value(u[i]) >= 0 || u[i] == ':' || u[i] == '.'))
            i++;
        if (i >= len || u[i] != ']' || i - start < 2 || i - start > 45)
            return url_fail(ret_why, -EINVAL, "bad IPv6 address in URL");
        out.host_off = start;
        out.host_len = i - start;
        out.host_ipv6 = true;
        i++;
    } else {
        size_t start = i;
        while (i < len &&
               (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '-' || u[i] == '.' || u[i] == '_'))
            i++;
        if (i < len && u[i] == '@')
            return url_fail(ret_why, -EINVAL, "user information in URLs is not supported");
        if (i == start)
            return url_fail(ret_why, -EINVAL, "no host in URL");
        if (i - start > HTTP_MAX_HOST)
            return url_fail(ret_why, -EINVAL, "host name in URL too long");
        out.host_off = start;
        out.host_len = i - start;
    }

    if (i < len && u[i] == ':') {
        i++;
        size_t start = i;
        uint32_t port = 0;
        while (i < len && is_digit(u[i]) && i - start < 5)
            port = port * 10 + (uint32_t)(u[i++] - '0');
        if (i < len && is_digit(u[i]))
            return url_fail(ret_why, -EINVAL, "port in URL out of range");
        if (i > start) {
            if (port == 0 || port > 65535)
                return url_fail(ret_why, -EINVAL, "port in URL out of range");
            out.port = (uint16_t)port;
        }
    }
    if (i < len && u[i] != '/' && u[i] != '?' && u[i] != '#')
        return url_fail(ret_why, -EINVAL, "bad character in the URL's host or port");

    out.target_off = i;
    while (i < len && u[i] != '#') {
        if (u[i] <= 0x20 || u[i] >= 0x7f)
            return url_fail(ret_why, -EINVAL,
                            "URL path holds a space, control or non-ASCII character "
                            "(percent-encode it)");
        i++;
    }
    out.target_len = i - out.target_off;
    *ret = out;
    return 0;
}

/* ---------------------------------------------------------------- responses */

static int fail(http_response *r, int err, const char *why) {
    r->state = ST_ERROR;
    r->result = err;
    r->why = why;
    return err;
}

void http_response_init(http_response *r, size_t max_body) {
    memset(r, 0, offsetof(http_response, head));
    r->max_body = max_body;
    r->state = ST_HEAD;
}

void http_response_free(http_response *r) {
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
}

const http_header *http_response_header(const http_response *r, const char *name) {
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return &r->headers[i];
    return NULL;
}

/* Makes room for `more` body bytes plus a NUL. */
static int body_reserve(http_response *r, uint64_t more) {
    if (more > r->max_body - r->body_len)
        return fail(r, -EFBIG, "response body larger than the limit");
    size_t need = r->body_len + (size_t)more + 1;
    if (need <= r->body_cap)
        return 0;
    size_t cap = r->body_cap ? r->body_cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (r->max_body < SIZE_MAX && cap > r->max_body + 1) /* SIZE_MAX: no limit */
        cap = r->max_body + 1;
    char *p = realloc(r->body, cap);
    if (!p)
        return fail(r, -ENOMEM, "out of memory for the response body");
    r->body = p;
    r->body_cap = cap;
    return 0;
}

static int body_append(http_response *r, const unsigned char *p, size_t n) {
    int e = body_reserve(r, n);
    if (e < 0)
        return e;
    if (n > 0)
        memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

/* Moves up to r->remaining bytes of a sized body or chunk into the body. */
static int take_remaining(http_response *r, const unsigned char **p, size_t *len) {
    size_t take = r->remaining < *len ? (size_t)r->remaining : *len;
    int e = body_append(r, *p, take);
    if (e < 0)
        return e;
    *p += take;
    *len -= take;
    r->remaining -= take;
    return 0;
}

static int complete(http_response *r) {
    int e = body_append(r, NULL, 0); /* a body buffer even when empty */
    if (e < 0)
        return e;
    r->state = ST_DONE;
    r->result = 1;
    return 1;
}

/*
 * Checks one field line p[0..n) (without its line end): name ":" OWS value
 * OWS. Lowercases the name and NUL-terminates name and value in place (the
 * byte at p[n] must be writable). 0 or -EBADMSG.
 */
static int field_line(http_response *r, char *p, size_t n, http_header *ret) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i])) {
        p[i] = (char)to_lower((unsigned char)p[i]);
        i++;
    }
    if (i == 0 || i == n || p[i] != ':')
        return fail(r, -EBADMSG,
                    is_ows((unsigned char)p[0]) ? "obsolete line folding in a header field"
                                                : "malformed header field name");
    p[i++] = '\0';
    while (i < n && is_ows((unsigned char)p[i]))
        i++;
    size_t start = i, end = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!is_text(c))
            return fail(r, -EBADMSG, "control character in a header field value");
        if (!is_ows(c))
            end = i + 1;
    }
    p[end] = '\0';
    if (ret) {
        ret->name = p;
        ret->value = p + start;
        ret->value_len = end - start;
    }
    return 0;
}

/* "HTTP/1.x SP 3DIGIT [SP reason]" */
static int status_line(http_response *r, const char *p, size_t n) {
    const unsigned char *u = (const unsigned char *)p;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !is_digit(u[7]) || u[8] != ' ' || u[9] < '1' ||
        u[9] > '5' || !is_digit(u[10]) || !is_digit(u[11]) || (n > 12 && u[12] != ' '))
        return fail(r, -EBADMSG, "malformed status line (expected HTTP/1.x NNN reason)");
    for (size_t i = 13; i < n; i++)
        if (!is_text(u[i]))
            return fail(r, -EBADMSG, "control character in the status line");
    /* A later 1.x is read as 1.1, the highest this parser speaks (RFC 9112
     * section 2.3). */
    r->minor = u[7] == '0' ? 0 : 1;
    r->status = (u[9] - '0') * 100 + (u[10] - '0') * 10 + (u[11] - '0');
    return 0;
}

/* 1*DIGIT, at most HTTP_MAX_SIZE. */
static int parse_length(const char *s, size_t n, uint64_t *ret) {
    uint64_t v = 0;
    if (n == 0)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -EBADMSG;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > HTTP_MAX_SIZE)
            return -EBADMSG;
    }
    *ret = v;
    return 0;
}

/* The head r->head[0..head_len) is complete: parse it and choose how the
 * body is framed. */
static int end_of_head(http_response *r) {
    size_t pos = 0;
    bool first = true;
    r->n_headers = 0;
    while (pos < r->head_len) {
        char *nl = memchr(r->head + pos, '\n', r->head_len - pos);
        /* The head ends with an empty line, so every line has its LF. */
        size_t end = (size_t)(nl - r->head), next = end + 1;
        if (end > pos && r->head[end - 1] == '\r')
            end--;
        if (memchr(r->head + pos, '\r', end - pos))
            return fail(r, -EBADMSG, "bare CR in the response head");
        if (end == pos)
            break; /* the empty line */
        int e;
        if (first) {
            e = status_line(r, r->head + pos, end - pos);
            first = false;
        } else if (r->n_headers == HTTP_MAX_HEADERS) {
            e = fail(r, -EMSGSIZE, "too many header fields");
        } else {
            e = field_line(r, r->head + pos, end - pos, &r->headers[r->n_headers]);
            if (e == 0)
                r->n_headers++;
        }
        if (e < 0)
            return e;
        pos = next;
    }

    if (r->status < 200) {
        if (r->status == 101)
            return fail(r, -EBADMSG, "unexpected 101 Switching Protocols");
        /* An interim response: the final one follows. */
        if (++r->interim > HTTP_MAX_INTERIM)
            return fail(r, -EBADMSG, "too many interim (1xx) responses");
        r->head_len = 0;
        r->head_line = 0;
        r->n_headers = 0;
        return 0;
    }

    const http_header *te = NULL;
    bool have_length = false;
    uint64_t length = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        const http_header *h = &r->headers[i];
        if (strcmp(h->name, "transfer-encoding") == 0) {
            if (te || !equal_nocase(h->value, h->value_len, "chunked"))
                return fail(r, -ENOTSUP, "transfer coding other than chunked");
            te = h;
        } else if (strcmp(h->name, "content-length") == 0) {
            uint64_t v;
            if (parse_length(h->value, h->value_len, &v) < 0 || (have_length && v != length))
                return fail(r, -EBADMSG, "bad or conflicting Content-Length");
            have_length = true;
            length = v;
        }
    }

    if (r->status == 204 || r->status == 304)
        return complete(r);
    if (te) {
        r->state = ST_CHUNK_SIZE;
        r->line_len = 0;
        return 0;
    }
    if (have_length) {
        int e = body_reserve(r, length);
        if (e < 0)
            return e;
        if (length == 0)
            return complete(r);
        r->remaining = length;
        r->state = ST_BODY_LENGTH;
        return 0;
    }
    r->state = ST_BODY_CLOSE;
    return 0;
}

/* Collects one line into r->line. Returns the bytes used from p[0..n) and
 * sets *ret_done when the line (now without its CR LF, NUL-terminated) is
 * complete; a negative errno on overflow. */
static long collect_line(http_response *r, const unsigned char *p, size_t n, bool *ret_done) {
    const unsigned char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    if (take > HTTP_MAX_LINE - 1 - r->line_len)
        return fail(r, -EMSGSIZE, "chunk-size or trailer line too long");
    memcpy(r->line + r->line_len, p, take);
    r->line_len += take;
    *ret_done = nl != NULL;
    if (nl) {
        r->line_len--; /* the LF */
        if (r->line_len > 0 && r->line[r->line_len - 1] == '\r')
            r->line_len--;
        r->line[r->line_len] = '\0';
        if (memchr(r->line, '\r', r->line_len))
            return fail(r, -EBADMSG, "bare CR in a chunk-size or trailer line");
    }
    return (long)take;
}

/* chunk-size [BWS ";" chunk-ext] */
static int chunk_size_line(http_response *r) {
    const unsigned char *u = (const unsigned char *)r->line;
    size_t i = 0;
    uint64_t size = 0;
    int h;
    while (i < r->line_len && (h = hex_value(u[i])) >= 0) {
        /* Checked before the shift too: 2^60 * 16 would wrap to 0. */
        if (size > HTTP_MAX_SIZE / 16)
            return fail(r, -EBADMSG, "chunk size too large");
        size = size * 16 + (uint64_t)h;
        if (size > HTTP_MAX_SIZE)
            return fail(r, -EBADMSG, "chunk size too large");
        i++;
    }
    if (i == 0)
        return fail(r, -EBADMSG, "malformed chunk size");
    while (i < r->line_len && is_ows(u[i]))
        i++;
    if (i < r->line_len && u[i] != ';')
        return fail(r, -EBADMSG, "malformed chunk size");
    for (; i < r->line_len; i++)
        if (!is_text(u[i]))
            return fail(r, -EBADMSG, "control character in a chunk extension");
    r->line_len = 0;
    if (size == 0) {
        r->state = ST_TRAILER;
        return 0;
    }
    int e = body_reserve(r, size);
    if (e < 0)
        return e;
    r->remaining = size;
    r->state = ST_CHUNK_DATA;
    return 0;
}

int http_response_feed(http_response *r, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {
        switch (r->state) {
        case ST_HEAD: {
            /* Up to and including the next LF, into the head. */
            const unsigned char *nl = memchr(p, '\n', len);
            size_t take = nl ? (size_t)(nl - p) + 1 : len;
            if (take > HTTP_MAX_HEAD - 1 - r->head_len)
                return fail(r, -EMSGSIZE, "response head too large");
            memcpy(r->head + r->head_len, p, take);
            r->head_len += take;
            p += take;
            len -= take;
            if (!nl)
                break;
            size_t line = r->head_len - r->head_line;
            bool empty = line == 1 || (line == 2 && r->head[r->head_line] == '\r');
            if (empty && r->head_line == 0)
                return fail(r, -EBADMSG, "empty line instead of a status line");
            r->head_line = r->head_len;
            if (empty) {
                int e = end_of_head(r);
                if (e != 0)
                    return e;
            }
            break;
        }
        case ST_BODY_LENGTH: {
            int e = take_remaining(r, &p, &len);
            if (e < 0)
                return e;
            if (r->remaining == 0)
                return complete(r);
            break;
        }
        case ST_BODY_CLOSE: {
            int e = body_append(r, p, len);
            if (e < 0)
                return e;
            len = 0;
            break;
        }
        case ST_CHUNK_SIZE:
        case ST_TRAILER: {
            bool done = false;
            long n = collect_line(r, p, len, &done);
            if (n < 0)
                return (int)n;
            p += n;
            len -= (size_t)n;
            if (!done)
                break;
            int e;
            if (r->state == ST_CHUNK_SIZE) {
                e = chunk_size_line(r);
            } else if (r->line_len == 0) {
                return complete(r);
            } else {
                r->trailer_bytes += r->line_len;
                e = r->trailer_bytes > HTTP_MAX_TRAILERS
                        ? fail(r, -EMSGSIZE, "trailer fields too large")
                        : field_line(r, r->line, r->line_len, NULL);
                r->line_len = 0;
            }
            if (e < 0)
                return e;
            break;
        }
        case ST_CHUNK_DATA: {
            int e = take_remaining(r, &p, &len);
            if (e < 0)
                return e;
            if (r->remaining == 0)
                r->state = ST_CHUNK_CR;
            break;
        }
        case ST_CHUNK_CR:
        case ST_CHUNK_LF:
            if (*p == '\r' && r->state == ST_CHUNK_CR) {
                r->state = ST_CHUNK_LF;
            } else if (*p == '\n') {
                r->state = ST_CHUNK_SIZE;
                r->line_len = 0;
            } else {
                return fail(r, -EBADMSG, "chunk data not followed by CRLF");
            }
            p++;
            len--;
            break;
        default:
            return r->result;
        }
    }
    return r->state == ST_DONE || r->state == ST_ERROR ? r->result : 0;
}

int http_response_eof(http_response *r) {
    switch (r->state) {
    case ST_BODY_CLOSE:
        return complete(r);
    case ST_DONE:
    case ST_ERROR:
        return r->result;
    default:
        return fail(r, -EBADMSG, "connection closed before the response was complete");
    }
}
