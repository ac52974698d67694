/*
 * The net plugin's HTTP/1.x parser (daemon/plugins/http_parse.c): status
 * lines, header fields, bodies framed by Content-Length, by chunked transfer
 * coding (extensions, trailers, sizes cut across reads) and by the end of the
 * connection; interim responses; every error feed and eof promise (malformed
 * input, the HTTP_MAX_* limits, lengths that overflow, a body over max_body,
 * transfer codings other than chunked, out of memory) with its exact errno;
 * that results stick once reached; and that a response fed in one piece,
 * one byte at a time or cut anywhere in two gives the same outcome. Also
 * absolute http:// URLs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_parse.h"

/* A string literal as (pointer, length), for texts holding NUL bytes. */
#define LIT(s) (s), (sizeof(s) - 1)

/* ---------------------------------------------------------------- helpers */

/* The linker routes http_parse.c's realloc here (-Wl,--wrap=realloc), so a
 * test can make the body allocation fail: the parser uses plain realloc, not
 * the daemon's allocation wrapper. */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool realloc_fails;

void *__wrap_realloc(void *p, size_t n) {
    return realloc_fails ? NULL : __real_realloc(p, n);
}

/* The parser's state is about 80 KiB, so each parse gets one on the heap. */
static http_response *response_new(size_t max_body) {
    http_response *r = malloc(sizeof(*r));
    assert_non_null(r);
    http_response_init(r, max_body);
    return r;
}

static void response_delete(http_response *r) {
    http_response_free(r);
    free(r);
}

/*
 * Feeds data[0..len) in pieces of at most `step` bytes (0: all at once) and
 * returns the first nonzero result, or 0. Every piece after that result must
 * give it again: the header promises that an ended parse stays ended.
 */
static int feed_steps(http_response *r, const void *data, size_t len, size_t step) {
    const char *p = data;
    int result = 0;
    size_t off = 0;
    do {
        size_t n = step == 0 || len - off < step ? len - off : step;
        int k = http_response_feed(r, p + off, n);
        if (result == 0)
            result = k;
        else
            assert_int_equal(k, result);
        off += n;
    } while (off < len);
    return result;
}

/* Parses a whole text in one feed, then tells the parser the connection
 * ended if `eof` and the response is not complete yet. */
static int parse(http_response *r, const char *data, size_t len, bool eof) {
    int k = feed_steps(r, data, len, 0);
    if (k == 0 && eof)
        k = http_response_eof(r);
    return k;
}

/* Expects `text` to fail with `err` both in one feed and one byte at a time,
 * with a reason set, and to keep failing the same way. */
static void expect_error(const char *name, const char *text, size_t len, size_t max_body, bool eof,
                         int err) {
    for (size_t step = 0; step <= 1; step++) {
        http_response *r = response_new(max_body);
        int k = feed_steps(r, text, len, step);
        if (k == 0 && eof)
            k = http_response_eof(r);
        if (k != err)
            fail_msg("%s (step %zu): got %d, expected %d (%s)", name, step, k, err,
                     r->why ? r->why : "no reason");
        if (!r->why)
            fail_msg("%s: error %d without a reason", name, err);
        /* Sticky: more input, or the end, changes nothing. */
        assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\n\r\n")), err);
        assert_int_equal(http_response_eof(r), err);
        response_delete(r);
    }
}

/* Expects a complete response from `text` in one feed (then eof if asked). */
static http_response *expect_complete(const char *text, size_t len, size_t max_body, bool eof) {
    http_response *r = response_new(max_body);
    int k = parse(r, text, len, eof);
    if (k != 1)
        fail_msg("got %d (%s), expected a complete response", k, r->why ? r->why : "no reason");
    assert_null(r->why);
    /* A body buffer even when empty, NUL-terminated after the body. */
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    return r;
}

static void assert_header(const http_response *r, const char *name, const char *value) {
    const http_header *h = http_response_header(r, name);
    if (!h)
        fail_msg("no header '%s'", name);
    assert_string_equal(h->value, value);
    assert_int_equal(h->value_len, strlen(value));
}

static void assert_body(const http_response *r, const char *body, size_t len) {
    assert_int_equal(r->body_len, len);
    assert_memory_equal(r->body, body, len);
}

/* A growable text for the big inputs of the limit tests. */
typedef struct text {
    char *p;
    size_t len;
    size_t cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->p = __real_realloc(t->p, cap);
        assert_non_null(t->p);
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_str(text *t, const char *s) {
    text_add(t, s, strlen(s));
}

/* Appends n copies of c. */
static void text_fill(text *t, char c, size_t n) {
    for (size_t i = 0; i < n; i++)
        text_add(t, &c, 1);
}

/* ---------------------------------------------------------------- status line */

static void test_status_line(void **state) {
    (void)state;
    http_response *r =
        expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 100, false);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->minor, 1);
    assert_int_equal(r->n_headers, 1);
    response_delete(r);

    r = expect_complete(LIT("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"), 100, false);
    assert_int_equal(r->status, 404);
    assert_int_equal(r->minor, 0);
    response_delete(r);

    /* A later 1.x is read as 1.1 (RFC 9112 section 2.3). */
    r = expect_complete(LIT("HTTP/1.9 200 OK\r\nContent-Length: 0\r\n\r\n"), 100, false);
    assert_int_equal(r->minor, 1);
    response_delete(r);

    /* The reason phrase may be empty, with or without its space, and may
     * hold tabs and obs-text. */
    r = expect_complete(LIT("HTTP/1.1 599\r\nContent-Length: 0\r\n\r\n"), 100, false);
    assert_int_equal(r->status, 599);
    response_delete(r);
    r = expect_complete(LIT("HTTP/1.1 302 \r\nContent-Length: 0\r\n\r\n"), 100, false);
    assert_int_equal(r->status, 302);
    response_delete(r);
    r = expect_complete(LIT("HTTP/1.1 200 \xc3\xa7"
                            "a\tva\r\nContent-Length: 0\r\n\r\n"),
                        100, false);
    assert_int_equal(r->status, 200);
    response_delete(r);
}

static void test_status_line_malformed(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *status_line;
    } cases[] = {
        {"HTTP/2", "HTTP/2 200 OK"},
        {"HTTP/2.0", "HTTP/2.0 200 OK"},
        {"lowercase protocol", "http/1.1 200 OK"},
        {"not a version digit", "HTTP/1.x 200 OK"},
        {"two-digit status", "HTTP/1.1 20 OK"},
        {"four-digit status", "HTTP/1.1 2000 OK"},
        {"status 600", "HTTP/1.1 600 Nope"},
        {"status 099", "HTTP/1.1 099 Nope"},
        {"letters in status", "HTTP/1.1 2x0 OK"},
        {"two spaces", "HTTP/1.1  200 OK"},
        {"no space before the reason", "HTTP/1.1 200OK"},
        {"tab instead of space", "HTTP/1.1\t200 OK"},
        {"control character in the reason", "HTTP/1.1 200 O\x01K"},
        {"DEL in the reason", "HTTP/1.1 200 O\x7fK"},
        {"bare CR in the status line", "HTTP/1.1 200 O\rK"},
        {"truncated", "HTTP/1.1"},
        {"another protocol", "ICY 200 OK"},
        {"101 is not an interim response we can follow", "HTTP/1.1 101 Switching Protocols"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), "%s\r\nContent-Length: 0\r\n\r\n", cases[i].status_line);
        expect_error(cases[i].name, buf, (size_t)n, 100, false, -EBADMSG);
    }
    /* An empty line where the status line should be. */
    expect_error("empty first line", LIT("\r\nHTTP/1.1 200 OK\r\n\r\n"), 100, false, -EBADMSG);
    expect_error("bare LF first line", LIT("\nHTTP/1.1 200 OK\r\n\r\n"), 100, false, -EBADMSG);
    /* A NUL byte inside the reason phrase. */
    expect_error("NUL in the reason", LIT("HTTP/1.1 200 O\0K\r\n\r\n"), 100, false, -EBADMSG);
}

/* ---------------------------------------------------------------- header fields */

static void test_headers(void **state) {
    (void)state;
    http_response *r = expect_complete(LIT("HTTP/1.1 200 OK\r\n"
                                           "Content-TYPE: text/plain\r\n"
                                           "X-Spaces: \t  padded value \t \r\n"
                                           "X-Empty:\r\n"
                                           "X-Empty-Spaces:   \r\n"
                                           "X-Multi: first\r\n"
                                           "x-multi: second\r\n"
                                           "X-Obs: caf\xc3\xa9\r\n"
                                           "X-Tchars!#$%&'*+-.^_`|~09: v:w\r\n"
                                           "Content-Length: 0\r\n"
                                           "\r\n"),
                                       100, false);
    assert_int_equal(r->n_headers, 9);
    /* Names lowercased and kept in order, values trimmed. */
    assert_string_equal(r->headers[0].name, "content-type");
    assert_string_equal(r->headers[0].value, "text/plain");
    assert_string_equal(r->headers[5].name, "x-multi");
    assert_string_equal(r->headers[5].value, "second");
    assert_header(r, "x-spaces", "padded value");
    assert_header(r, "x-empty", "");
    assert_header(r, "x-empty-spaces", "");
    assert_header(r, "x-obs", "caf\xc3\xa9");
    assert_header(r, "x-tchars!#$%&'*+-.^_`|~09", "v:w");
    /* The first of several fields with one name. */
    assert_header(r, "x-multi", "first");
    /* Lookups take the lowercase name; absent names give NULL. */
    assert_null(http_response_header(r, "Content-Type"));
    assert_null(http_response_header(r, "x-absent"));
    response_delete(r);
}

/* RFC 9112 lets a bare LF end a line: the same result as CR LF. */
static void test_bare_lf_lines(void **state) {
    (void)state;
    http_response *r = expect_complete(LIT("HTTP/1.1 200 OK\n"
                                           "X-A: 1\n"
                                           "Content-Length: 2\n"
                                           "\n"
                                           "hi"),
                                       100, false);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->n_headers, 2);
    assert_header(r, "x-a", "1");
    assert_body(r, LIT("hi"));
    response_delete(r);
}

static void test_header_malformed(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *field;
    } cases[] = {
        {"space before the colon", "X-A : 1"},
        {"tab before the colon", "X-A\t: 1"},
        {"no colon", "X-A 1"},
        {"name only", "X-A"},
        {"empty name", ": 1"},
        {"non-token name", "X(A): 1"},
        {"non-ASCII name", "X-\xc3\xa9: 1"},
        {"control character in the value", "X-A: a\x01z"},
        {"DEL in the value", "X-A: a\x7fz"},
        {"escape in the value", "X-A: \x1b[0m"},
        {"bare CR in the value", "X-A: a\rz"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n",
                         cases[i].field);
        expect_error(cases[i].name, buf, (size_t)n, 100, false, -EBADMSG);
    }
    /* Obsolete line folding: a continuation line starting with white space. */
    expect_error("obs-fold", LIT("HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n"),
                 100, false, -EBADMSG);
    expect_error("obs-fold tab", LIT("HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\n\r\n"), 100, false,
                 -EBADMSG);
    /* NUL bytes in a name or a value. */
    expect_error("NUL in the value", LIT("HTTP/1.1 200 OK\r\nX-A: a\0z\r\n\r\n"), 100, false,
                 -EBADMSG);
    expect_error("NUL in the name", LIT("HTTP/1.1 200 OK\r\nX\0A: 1\r\n\r\n"), 100, false,
                 -EBADMSG);
    /* A CR right before the CR LF. */
    expect_error("CR CR LF", LIT("HTTP/1.1 200 OK\r\nX-A: 1\r\r\n\r\n"), 100, false, -EBADMSG);
}

static void test_too_many_headers(void **state) {
    (void)state;
    /* HTTP_MAX_HEADERS fields are fine (Content-Length is one of them)... */
    text t = {0};
    text_str(&t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for (unsigned i = 1; i < HTTP_MAX_HEADERS; i++) {
        char line[32];
        snprintf(line, sizeof(line), "X-H%u: %u\r\n", i, i);
        text_str(&t, line);
    }
    size_t at_limit = t.len;
    text_str(&t, "\r\n");
    http_response *r = expect_complete(t.p, t.len, 0, false);
    assert_int_equal(r->n_headers, HTTP_MAX_HEADERS);
    assert_header(r, "x-h127", "127");
    response_delete(r);

    /* ...one more is refused as too large. */
    t.len = at_limit;
    text_str(&t, "X-One-More: 1\r\n\r\n");
    expect_error("too many header fields", t.p, t.len, 0, false, -EMSGSIZE);
    free(t.p);
}

static void test_head_too_large(void **state) {
    (void)state;
    /* A head well within HTTP_MAX_HEAD is accepted... */
    text t = {0};
    text_str(&t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Big: ");
    text_fill(&t, 'a', HTTP_MAX_HEAD - 1024);
    text_str(&t, "\r\n\r\n");
    http_response *r = expect_complete(t.p, t.len, 0, false);
    assert_int_equal(http_response_header(r, "x-big")->value_len, HTTP_MAX_HEAD - 1024);
    response_delete(r);
    free(t.p);

    /* ...one over it is refused, whole or a line at a time, and so is a
     * single line that never ends. */
    t = (text){0};
    text_str(&t, "HTTP/1.1 200 OK\r\n");
    while (t.len <= HTTP_MAX_HEAD)
        text_str(&t, "X-Filler: 0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    text_str(&t, "\r\n");
    expect_error("head too large", t.p, t.len, 0, false, -EMSGSIZE);
    free(t.p);

    t = (text){0};
    text_str(&t, "HTTP/1.1 200 OK\r\nX-Endless: ");
    text_fill(&t, 'a', HTTP_MAX_HEAD);
    expect_error("endless header line", t.p, t.len, 0, false, -EMSGSIZE);
    free(t.p);
}

/* ---------------------------------------------------------------- Content-Length */

static void test_content_length(void **state) {
    (void)state;
    /* Bytes after the body are not part of it (the response is complete). */
    http_response *r = expect_complete(
        LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200"), 100, false);
    assert_body(r, LIT("hello"));
    response_delete(r);

    /* The body may hold NUL bytes and anything else. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n\0\r\n\xff\0z"), 100,
                        false);
    assert_body(r, LIT("\0\r\n\xff\0z"));
    response_delete(r);

    /* Zero: complete at the end of the head, with an empty body. */
    r = response_new(100);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r")), 0);
    assert_int_equal(http_response_feed(r, LIT("\n")), 1);
    assert_non_null(r->body);
    assert_int_equal(r->body_len, 0);
    assert_string_equal(r->body, "");
    response_delete(r);

    /* Repeated with the same value, and with leading zeros. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length:  3 \r\n\r\n"
                            "abc"),
                        100, false);
    assert_body(r, LIT("abc"));
    response_delete(r);
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0003\r\n\r\nabc"), 100, false);
    assert_body(r, LIT("abc"));
    response_delete(r);

    /* Not complete until the last byte. */
    r = response_new(100);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab")),
                     0);
    assert_int_equal(http_response_feed(r, LIT("")), 0);
    assert_int_equal(http_response_feed(r, LIT("c")), 1);
    assert_body(r, LIT("abc"));
    response_delete(r);
}

static void test_content_length_malformed(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *fields;
    } cases[] = {
        {"conflicting", "Content-Length: 3\r\nContent-Length: 4\r\n"},
        {"list", "Content-Length: 3, 3\r\n"},
        {"empty", "Content-Length:\r\n"},
        {"sign", "Content-Length: +3\r\n"},
        {"negative", "Content-Length: -1\r\n"},
        {"hex", "Content-Length: 0x10\r\n"},
        {"inner space", "Content-Length: 1 0\r\n"},
        {"fraction", "Content-Length: 1.5\r\n"},
        /* Lengths that overflow: 2^60 + 1 (over the parser's bound), 2^64
         * and far beyond. */
        {"2^60 + 1", "Content-Length: 1152921504606846977\r\n"},
        {"2^64", "Content-Length: 18446744073709551616\r\n"},
        {"huge", "Content-Length: 99999999999999999999999999999999999999\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s\r\nabcd", cases[i].fields);
        expect_error(cases[i].name, buf, (size_t)n, 100, false, -EBADMSG);
    }
}

/* SIZE_MAX as max_body means no limit: the buffer is not clamped to
 * max_body + 1, which would wrap to 0. */
static void test_unlimited_body(void **state) {
    (void)state;
    http_response *r =
        expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), SIZE_MAX, false);
    assert_body(r, "hi", 2);
    response_delete(r);
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), SIZE_MAX, false);
    assert_body(r, "", 0);
    response_delete(r);
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n"),
                        SIZE_MAX, false);
    assert_body(r, "abc", 3);
    response_delete(r);
}

static void test_body_limit(void **state) {
    (void)state;
    /* Exactly max_body bytes is fine. */
    http_response *r =
        expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"), 10, false);
    assert_body(r, LIT("0123456789"));
    response_delete(r);

    /* A larger Content-Length is refused at the end of the head, before any
     * of the body arrives, even a well-formed 2^60. */
    r = response_new(10);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")),
                     -EFBIG);
    assert_non_null(r->why);
    response_delete(r);
    expect_error("2^60", LIT("HTTP/1.1 200 OK\r\nContent-Length: 1152921504606846976\r\n\r\n"), 10,
                 false, -EFBIG);

    /* max_body 0 still takes an empty body. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0, false);
    assert_int_equal(r->body_len, 0);
    response_delete(r);
}

/* 204 and 304 never have a body, whatever the fields say. */
static void test_no_body_statuses(void **state) {
    (void)state;
    http_response *r = response_new(100);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n"
                                               "\r\nHTTP/1.1 200 OK\r\n")),
                     1);
    assert_int_equal(r->status, 204);
    assert_int_equal(r->body_len, 0);
    assert_string_equal(r->body, "");
    response_delete(r);

    r = expect_complete(LIT("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), 100,
                        false);
    assert_int_equal(r->status, 304);
    assert_int_equal(r->body_len, 0);
    response_delete(r);
}

/* ---------------------------------------------------------------- body until the end */

static void test_body_until_eof(void **state) {
    (void)state;
    /* Without a length or chunked coding the body runs to the end of the
     * connection: feeding never completes it. */
    http_response *r = response_new(100);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.0 200 OK\r\nServer: t\r\n\r\nuntil ")), 0);
    assert_int_equal(http_response_feed(r, LIT("the\0end")), 0);
    assert_int_equal(http_response_eof(r), 1);
    assert_int_equal(r->status, 200);
    assert_body(r, LIT("until the\0end"));
    /* Ended: more bytes and another end change nothing. */
    assert_int_equal(http_response_feed(r, LIT("more")), 1);
    assert_int_equal(http_response_eof(r), 1);
    assert_body(r, LIT("until the\0end"));
    response_delete(r);

    /* An empty body that way. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\n\r\n"), 100, true);
    assert_int_equal(r->body_len, 0);
    response_delete(r);

    /* Its limit: max_body bytes are fine, one more is not. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\n\r\n0123456789"), 10, true);
    assert_body(r, LIT("0123456789"));
    response_delete(r);
    r = response_new(10);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\n\r\n0123456789")), 0);
    assert_int_equal(http_response_feed(r, LIT("a")), -EFBIG);
    assert_non_null(r->why);
    assert_int_equal(http_response_eof(r), -EFBIG);
    response_delete(r);
}

/* The end of the connection anywhere else truncates the response. */
static void test_eof_truncated(void **state) {
    (void)state;
    expect_error("nothing at all", "", 0, 100, true, -EBADMSG);
    expect_error("in the status line", LIT("HTTP/1.1 20"), 100, true, -EBADMSG);
    expect_error("in the head", LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), 100, true,
                 -EBADMSG);
    expect_error("after an interim response", LIT("HTTP/1.1 100 Continue\r\n\r\n"), 100, true,
                 -EBADMSG);
    expect_error("in a sized body", LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"), 100,
                 true, -EBADMSG);
    expect_error("in a chunk", LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc"),
                 100, true, -EBADMSG);
    expect_error("before the last chunk",
                 LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), 100,
                 true, -EBADMSG);
    expect_error("in the trailers",
                 LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n"), 100,
                 true, -EBADMSG);
}

/* ---------------------------------------------------------------- chunked */

static void test_chunked(void **state) {
    (void)state;
    http_response *r = expect_complete(LIT("HTTP/1.1 200 OK\r\n"
                                           "Transfer-Encoding: chunked\r\n"
                                           "X-Head: h\r\n"
                                           "\r\n"
                                           "4\r\nWiki\r\n"
                                           "5;name=value\r\npedia\r\n"
                                           "e ; quoted=\"a;b\" ;x\r\n in\r\n\r\nchunks.\r\n"
                                           "A\t;\r\n0123456789\r\n"
                                           "00000003\r\n\0\r\0\r\n"
                                           "0;last=1\r\n"
                                           "X-Trailer: t\r\n"
                                           "X-Other: u\r\n"
                                           "\r\n"
                                           "HTTP/1.1 200 OK\r\n"),
                                       100, false);
    assert_body(r, LIT("Wikipedia in\r\n\r\nchunks.0123456789\0\r\0"));
    /* Trailer fields are checked and dropped, not added to the head's. */
    assert_int_equal(r->n_headers, 2);
    assert_header(r, "x-head", "h");
    assert_null(http_response_header(r, "x-trailer"));
    response_delete(r);

    /* The coding's name is case-insensitive; with a Content-Length too, the
     * chunked framing wins. A bare LF may end the data and the lines. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\n"
                            "Content-Length: 1\r\n"
                            "Transfer-Encoding:  ChunKed \r\n"
                            "\r\n"
                            "3\nabc\n"
                            "0\n"
                            "\n"),
                        100, false);
    assert_body(r, LIT("abc"));
    response_delete(r);

    /* Only the last chunk: an empty body. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 100,
                        false);
    assert_int_equal(r->body_len, 0);
    response_delete(r);
}

/* A chunk-size line cut across reads is one size, not two. */
static void test_chunk_size_split(void **state) {
    (void)state;
    http_response *r = response_new(100);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                               "\r\n1")),
                     0);
    assert_int_equal(http_response_feed(r, LIT("a")), 0);
    assert_int_equal(http_response_feed(r, LIT(";e")), 0);
    assert_int_equal(http_response_feed(r, LIT("xt\r")), 0);
    assert_int_equal(http_response_feed(r, LIT("\nabcdefghijklmnopqrstuvwxy")), 0);
    /* 0x1a = 26 bytes: one still missing. */
    assert_int_equal(r->body_len, 25);
    assert_int_equal(http_response_feed(r, LIT("z\r")), 0);
    assert_int_equal(http_response_feed(r, LIT("\n0\r\nX-T: 1")), 0);
    assert_int_equal(http_response_feed(r, LIT("\r\n\r")), 0);
    assert_int_equal(http_response_feed(r, LIT("\n")), 1);
    assert_body(r, LIT("abcdefghijklmnopqrstuvwxyz"));
    response_delete(r);
}

static void test_chunked_malformed(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *body;
    } cases[] = {
        {"empty size line", "\r\nabc\r\n0\r\n\r\n"},
        {"not hex", "g\r\n"},
        {"leading space", " 3\r\nabc\r\n0\r\n\r\n"},
        {"junk after the size", "3x\r\nabc\r\n0\r\n\r\n"},
        {"junk after white space", "3 x\r\nabc\r\n0\r\n\r\n"},
        {"negative", "-3\r\nabc\r\n0\r\n\r\n"},
        {"0x prefix", "0x3\r\nabc\r\n0\r\n\r\n"},
        {"control character in an extension", "3;a=\x01\r\nabc\r\n0\r\n\r\n"},
        {"bare CR in the size line", "3\r;a\r\nabc\r\n0\r\n\r\n"},
        {"data longer than the size", "3\r\nabcd\r\n0\r\n\r\n"},
        {"no line end after the data", "3\r\nabc0\r\n\r\n"},
        {"CR then no LF after the data", "3\r\nabc\rx\r\n0\r\n\r\n"},
        {"CR CR after the data", "3\r\nabc\r\r\n0\r\n\r\n"},
        {"trailer without a colon", "0\r\nX-T 1\r\n\r\n"},
        {"trailer with space before the colon", "0\r\nX-T : 1\r\n\r\n"},
        {"folded trailer", "0\r\nX-T: 1\r\n 2\r\n\r\n"},
        {"control character in a trailer", "0\r\nX-T: \x01\r\n\r\n"},
        {"bare CR in a trailer", "0\r\nX-T: a\rb\r\n\r\n"},
        /* Sizes that overflow: 2^60 + 1 (over the parser's bound) and a
         * size that passes 2^64 on its way. */
        {"size 2^60 + 1", "1000000000000001\r\n"},
        {"size 2^80 - 1", "FFFFFFFFFFFFFFFFFFFF\r\n"},
        /* 2^60 followed by one more digit: 2^64 would wrap to 0 and leave
         * the last digit as the size. */
        {"size 2^64 + 5", "10000000000000005\r\nhello\r\n0\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", cases[i].body);
        expect_error(cases[i].name, buf, (size_t)n, 100, false, -EBADMSG);
    }
}

static void test_transfer_codings(void **state) {
    (void)state;
    static const char *const fields[] = {
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        /* Twice, even with the same coding: chunked applied twice. */
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char buf[256];
        int n =
            snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s\r\n3\r\nabc\r\n0\r\n\r\n", fields[i]);
        expect_error(fields[i], buf, (size_t)n, 100, false, -ENOTSUP);
    }
}

static void test_chunked_limits(void **state) {
    (void)state;
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    /* A chunk-size line with extensions up to well under HTTP_MAX_LINE is
     * fine; over it is refused. */
    text t = {0};
    text_str(&t, head);
    text_str(&t, "3;x=");
    text_fill(&t, 'a', HTTP_MAX_LINE - 64);
    text_str(&t, "\r\nabc\r\n0\r\n\r\n");
    http_response *r = expect_complete(t.p, t.len, 100, false);
    assert_body(r, LIT("abc"));
    response_delete(r);
    t.len = 0;
    text_str(&t, head);
    text_str(&t, "3;x=");
    text_fill(&t, 'a', HTTP_MAX_LINE);
    text_str(&t, "\r\nabc\r\n0\r\n\r\n");
    expect_error("chunk-size line too long", t.p, t.len, 100, false, -EMSGSIZE);

    /* The same for one trailer field line. */
    t.len = 0;
    text_str(&t, head);
    text_str(&t, "0\r\nX-T: ");
    text_fill(&t, 'a', HTTP_MAX_LINE);
    text_str(&t, "\r\n\r\n");
    expect_error("trailer line too long", t.p, t.len, 100, false, -EMSGSIZE);

    /* All trailers together: under HTTP_MAX_TRAILERS, then over it. */
    size_t line = HTTP_MAX_LINE - 256, lines = HTTP_MAX_TRAILERS / line;
    t.len = 0;
    text_str(&t, head);
    text_str(&t, "0\r\n");
    for (size_t i = 0; i < lines; i++) {
        text_str(&t, "X-T: ");
        text_fill(&t, 'a', line - 5);
        text_str(&t, "\r\n");
    }
    size_t under = t.len;
    text_str(&t, "\r\n");
    r = expect_complete(t.p, t.len, 100, false);
    response_delete(r);
    t.len = under;
    text_str(&t, "X-T: ");
    text_fill(&t, 'a', line - 5);
    text_str(&t, "\r\n\r\n");
    expect_error("trailers too large", t.p, t.len, 100, false, -EMSGSIZE);
    free(t.p);

    /* The body limit counts all chunks together, and a chunk is refused
     * from its size alone. */
    r = expect_complete(LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"),
                        10, false);
    assert_body(r, LIT("0123456789"));
    response_delete(r);
    r = response_new(10);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                               "\r\n5\r\n01234\r\n")),
                     0);
    assert_int_equal(http_response_feed(r, LIT("6\r\n")), -EFBIG);
    assert_non_null(r->why);
    response_delete(r);
    expect_error("chunk over max_body",
                 LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n"), 10, false,
                 -EFBIG);
    /* The largest size the parser takes at all (2^60): over the limit. */
    expect_error("chunk of 2^60",
                 LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n"),
                 10, false, -EFBIG);
}

/* ---------------------------------------------------------------- interim responses */

static void test_interim_responses(void **state) {
    (void)state;
    http_response *r = expect_complete(LIT("HTTP/1.1 100 Continue\r\n\r\n"
                                           "HTTP/1.1 103 Early Hints\r\n"
                                           "Link: </style.css>; rel=preload\r\n"
                                           "\r\n"
                                           "HTTP/1.1 201 Created\r\n"
                                           "Location: /new\r\n"
                                           "Content-Length: 2\r\n"
                                           "\r\n"
                                           "ok"),
                                       100, false);
    /* Only the final response's status and fields remain. */
    assert_int_equal(r->status, 201);
    assert_int_equal(r->n_headers, 2);
    assert_header(r, "location", "/new");
    assert_null(http_response_header(r, "link"));
    assert_body(r, LIT("ok"));
    response_delete(r);

    /* HTTP_MAX_INTERIM of them are skipped; one more is refused. */
    text t = {0};
    for (unsigned i = 0; i < HTTP_MAX_INTERIM; i++)
        text_str(&t, "HTTP/1.1 100 Continue\r\n\r\n");
    size_t at_limit = t.len;
    text_str(&t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    r = expect_complete(t.p, t.len, 100, false);
    assert_int_equal(r->status, 200);
    response_delete(r);
    t.len = at_limit;
    text_str(&t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    expect_error("too many interim responses", t.p, t.len, 100, false, -EBADMSG);
    free(t.p);
}

/* ---------------------------------------------------------------- however it is cut */

static void assert_same_outcome(const char *name, const http_response *a, int ka,
                                const http_response *b, int kb) {
    if (ka != kb)
        fail_msg("%s: %d whole, %d when cut", name, ka, kb);
    if (ka < 0) {
        assert_non_null(a->why);
        assert_non_null(b->why);
        assert_string_equal(a->why, b->why);
        return;
    }
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->minor, b->minor);
    assert_int_equal(a->n_headers, b->n_headers);
    for (size_t i = 0; i < a->n_headers; i++) {
        assert_string_equal(a->headers[i].name, b->headers[i].name);
        assert_string_equal(a->headers[i].value, b->headers[i].value);
        assert_int_equal(a->headers[i].value_len, b->headers[i].value_len);
    }
    assert_int_equal(a->body_len, b->body_len);
    assert_memory_equal(a->body, b->body, a->body_len);
}

/* Cuts `data` every way: one byte at a time, in threes, and in two pieces
 * at every offset; each must end as parsing it whole does. */
static void assert_cut_anywhere(const char *name, const char *data, size_t len, bool eof) {
    http_response *whole = response_new(4096);
    int k_whole = parse(whole, data, len, eof);
    /* The samples are chosen to end, one way or the other. */
    assert_int_not_equal(k_whole, 0);

    for (size_t step = 1; step <= 3; step += 2) {
        http_response *r = response_new(4096);
        int k = feed_steps(r, data, len, step);
        if (k == 0 && eof)
            k = http_response_eof(r);
        assert_same_outcome(name, whole, k_whole, r, k);
        response_delete(r);
    }
    for (size_t cut = 0; cut <= len; cut++) {
        http_response *r = response_new(4096);
        int k = http_response_feed(r, data, cut);
        if (k == 0)
            k = http_response_feed(r, data + cut, len - cut);
        if (k == 0 && eof)
            k = http_response_eof(r);
        assert_same_outcome(name, whole, k_whole, r, k);
        response_delete(r);
    }
    response_delete(whole);
}

static void test_cut_anywhere(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *data;
        size_t len;
        bool eof;
    } samples[] = {
        {"sized",
         LIT("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
             "hello world"),
         false},
        {"chunked",
         LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  1 \r\n\r\n"
             "4;n=\"v\"\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
             "3\nabc\n0;last\r\nX-Trailer: t\r\n\r\n"),
         false},
        {"interim",
         LIT("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n"
             "\r\nHTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"),
         false},
        {"until eof, bare LF", LIT("HTTP/1.0 200 OK\nServer: t\n\nbody\0until\r\neof"), true},
        {"no content", LIT("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"), false},
        {"conflicting lengths",
         LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), false},
        {"bad chunk size", LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc"),
         false},
        {"chunk without CRLF",
         LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"), false},
        {"bare CR", LIT("HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n"), false},
        {"gzip", LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"), false},
        {"over max_body", LIT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n"),
         false},
        {"truncated", LIT("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"), true},
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        assert_cut_anywhere(samples[i].name, samples[i].data, samples[i].len, samples[i].eof);
}

/* ---------------------------------------------------------------- ownership, memory */

/* The caller may take the body; http_response_free then leaves it alone. */
static void test_take_body(void **state) {
    (void)state;
    http_response *r =
        expect_complete(LIT("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmine"), 100, false);
    char *body = r->body;
    r->body = NULL;
    response_delete(r);
    assert_string_equal(body, "mine");
    free(body);
    http_response_free(NULL);
}

static void test_out_of_memory(void **state) {
    (void)state;
    /* The body buffer for a Content-Length, made at the end of the head. */
    http_response *r = response_new(100);
    realloc_fails = true;
    int k = http_response_feed(r, LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    realloc_fails = false;
    assert_int_equal(k, -ENOMEM);
    assert_non_null(r->why);
    assert_int_equal(http_response_feed(r, LIT("hello")), -ENOMEM);
    assert_int_equal(http_response_eof(r), -ENOMEM);
    response_delete(r);

    /* Growing a body that runs to the end of the connection. */
    r = response_new(1 << 20);
    assert_int_equal(http_response_feed(r, LIT("HTTP/1.1 200 OK\r\n\r\nfirst")), 0);
    char big[8192];
    memset(big, 'b', sizeof(big));
    realloc_fails = true;
    k = http_response_feed(r, big, sizeof(big));
    realloc_fails = false;
    assert_int_equal(k, -ENOMEM);
    assert_non_null(r->why);
    assert_int_equal(http_response_eof(r), -ENOMEM);
    /* What it had is still owned by the response and freed with it. */
    assert_memory_equal(r->body, "first", 5);
    response_delete(r);
}

/* ---------------------------------------------------------------- URLs */

static void assert_url(const char *url, const char *host, bool ipv6, uint16_t port,
                       const char *target) {
    http_url u;
    const char *why = NULL;
    int k = http_url_parse(url, strlen(url), &u, &why);
    if (k != 0)
        fail_msg("%s: got %d (%s)", url, k, why ? why : "no reason");
    assert_int_equal(u.host_len, strlen(host));
    assert_memory_equal(url + u.host_off, host, u.host_len);
    assert_int_equal(u.host_ipv6, ipv6);
    assert_int_equal(u.port, port);
    assert_int_equal(u.target_len, strlen(target));
    assert_memory_equal(url + u.target_off, target, u.target_len);
}

static void test_url(void **state) {
    (void)state;
    assert_url("http://example.com/path?q=1#fragment", "example.com", false, 80, "/path?q=1");
    assert_url("HTTP://Example.COM:8080", "Example.COM", false, 8080, "");
    assert_url("http://[::1]:81/x", "::1", true, 81, "/x");
    assert_url("http://[2001:db8::7]", "2001:db8::7", true, 80, "");
    assert_url("http://[::ffff:192.0.2.1]/", "::ffff:192.0.2.1", true, 80, "/");
    assert_url("http://127.0.0.1:65535/a/b", "127.0.0.1", false, 65535, "/a/b");
    assert_url("http://a_b-c.d:00080/", "a_b-c.d", false, 80, "/");
    /* An empty port is the default. */
    assert_url("http://host:/p", "host", false, 80, "/p");
    /* Path empty: the target is empty (meaning "/") or just the query. */
    assert_url("http://host?q", "host", false, 80, "?q");
    assert_url("http://host#f", "host", false, 80, "");

    /* Only `len` bytes count. */
    http_url u;
    assert_int_equal(http_url_parse("http://host/path", 11, &u, NULL), 0);
    assert_int_equal(u.host_len, 4);
    assert_int_equal(u.target_len, 0);

    /* The longest host name allowed. */
    char url[HTTP_MAX_HOST + 32];
    memcpy(url, "http://", 7);
    memset(url + 7, 'h', HTTP_MAX_HOST);
    strcpy(url + 7 + HTTP_MAX_HOST, "/");
    assert_int_equal(http_url_parse(url, strlen(url), &u, NULL), 0);
    assert_int_equal(u.host_len, HTTP_MAX_HOST);
}

static void test_url_errors(void **state) {
    (void)state;
    static const struct {
        const char *url;
        int err;
    } cases[] = {
        {"https://example.com/", -EPROTONOSUPPORT},
        {"HTTPS://example.com/", -EPROTONOSUPPORT},
        {"ftp://example.com/", -EPROTONOSUPPORT},
        {"httpx://example.com/", -EPROTONOSUPPORT},
        {"", -EINVAL},
        {"example.com/path", -EINVAL},
        {"//example.com/", -EINVAL},
        {"http:/example.com/", -EINVAL},
        {"http:example.com", -EINVAL},
        {"1http://example.com/", -EINVAL},
        {"http://", -EINVAL},
        {"http:///path", -EINVAL},
        {"http://:80/", -EINVAL},
        {"http://user@example.com/", -EINVAL},
        {"http://user:pw@example.com/", -EINVAL},
        {"http://exa mple.com/", -EINVAL},
        {"http://ex%61mple.com/", -EINVAL},
        {"http://example.com:0/", -EINVAL},
        {"http://example.com:65536/", -EINVAL},
        {"http://example.com:123456/", -EINVAL},
        {"http://example.com:8x/", -EINVAL},
        {"http://example.com/a b", -EINVAL},
        {"http://example.com/a\x7f", -EINVAL},
        {"http://example.com/caf\xc3\xa9", -EINVAL},
        {"http://example.com/\t", -EINVAL},
        {"http://[::1/", -EINVAL},
        {"http://[]/", -EINVAL},
        {"http://[1]/", -EINVAL},
        {"http://[fe80::1%eth0]/", -EINVAL},
        {"http://[::g]/", -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_url u;
        const char *why = NULL;
        int k = http_url_parse(cases[i].url, strlen(cases[i].url), &u, &why);
        if (k != cases[i].err)
            fail_msg("'%s': got %d, expected %d", cases[i].url, k, cases[i].err);
        if (!why)
            fail_msg("'%s': no reason", cases[i].url);
        /* The reason is optional. */
        assert_int_equal(http_url_parse(cases[i].url, strlen(cases[i].url), &u, NULL),
                         cases[i].err);
    }

    /* One character over the longest host name. */
    char url[HTTP_MAX_HOST + 32];
    http_url u;
    memcpy(url, "http://", 7);
    memset(url + 7, 'h', HTTP_MAX_HOST + 1);
    strcpy(url + 8 + HTTP_MAX_HOST, "/");
    assert_int_equal(http_url_parse(url, strlen(url), &u, NULL), -EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_status_line_malformed),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_bare_lf_lines),
        cmocka_unit_test(test_header_malformed),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_content_length_malformed),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_unlimited_body),
        cmocka_unit_test(test_no_body_statuses),
        cmocka_unit_test(test_body_until_eof),
        cmocka_unit_test(test_eof_truncated),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunk_size_split),
        cmocka_unit_test(test_chunked_malformed),
        cmocka_unit_test(test_transfer_codings),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_cut_anywhere),
        cmocka_unit_test(test_take_body),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_url_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
