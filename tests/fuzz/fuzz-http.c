/*
 * Fuzz target: the net plugin's HTTP response parser and URL parser
 * (daemon/plugins/http_parse.c). The first byte picks how the rest is split
 * into reads (1 to 64 bytes at a time, so heads, chunk-size lines and CRLFs
 * are cut everywhere) and whether the connection then ends; the same bytes
 * are also parsed as a URL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so the body limit is reached too. */
#define FUZZ_MAX_BODY 4096u

/* Where reads of the results go, so they are not optimised away. */
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] & 63) + 1;
    int eof = data[0] & 64;
    data++;
    size--;

    http_url url;
    const char *why = NULL;
    if (http_url_parse((const char *)data, size, &url, &why) == 0) {
        if (url.host_off + url.host_len > size || url.target_off + url.target_len > size ||
            url.host_len == 0)
            abort();
    } else if (!why) {
        abort();
    }

    http_response *r = malloc(sizeof(*r));
    if (!r)
        return 0;
    http_response_init(r, FUZZ_MAX_BODY);
    int k = 0;
    for (size_t off = 0; off < size && k == 0; off += chunk)
        k = http_response_feed(r, data + off, size - off < chunk ? size - off : chunk);
    if (k == 0 && eof)
        k = http_response_eof(r);
    if (k < 0 && !r->why)
        abort();
    if (k == 1) {
        /* Touch everything a caller would read, so ASan sees bad pointers. */
        size_t sum = r->body_len;
        if (!r->body || r->body_len > FUZZ_MAX_BODY || r->body[r->body_len] != '\0')
            abort();
        for (size_t i = 0; i < r->body_len; i++)
            sum += (uint8_t)r->body[i];
        for (size_t i = 0; i < r->n_headers; i++)
            sum += strlen(r->headers[i].name) + strlen(r->headers[i].value);
        if (r->status < 200 || r->status > 599)
            abort();
        sink = sum;
    }
    http_response_free(r);
    free(r);
    return 0;
}
