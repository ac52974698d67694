/*
 * Fuzz target: the frame reader. The first byte picks the chunk size, so
 * inputs explore frames split across reads and many frames in one read.
 */
#include <stdint.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    frame_reader r;
    frame_reader_init(&r, 4096);
    data++;
    size--;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (frame_reader_feed(&r, data + off, n) < 0)
            break;
        const uint8_t *p;
        uint32_t len;
        int k;
        while ((k = frame_reader_next(&r, &p, &len)) == 1) {
            /* Touch every byte so ASan sees any out-of-bounds payload. */
            volatile uint8_t sum = 0;
            for (uint32_t i = 0; i < len; i++)
                sum = (uint8_t)(sum + p[i]);
        }
        if (k < 0)
            break;
    }
    frame_reader_done(&r);
    return 0;
}
