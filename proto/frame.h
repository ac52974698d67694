/*
 * Length-prefixed framing, shared by the daemon and libaioclient.
 *
 * A frame is a 4-byte big-endian payload length followed by the payload (one
 * protobuf message). The reader here is pure: it is fed bytes as they arrive
 * (split across reads or many frames in one read) and hands out whole
 * payloads. It does no I/O and allocates only its own buffer, so it can be
 * fuzzed on its own.
 */
#ifndef AIOD_PROTO_FRAME_H
#define AIOD_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The protocol version spoken in Hello. To change the wire incompatibly:
 * bump this number, keep the daemon answering the previous version for one
 * release (it replies with the highest version both sides know), document the
 * change in docs/protocol.md and add a test that an old client still works.
 * Appending fields does not need a bump.
 */
#define AIOD_PROTOCOL_VERSION 1u

/* Size of the length prefix. */
#define FRAME_HEADER_SIZE 4u

/* Writes the header for a payload of `len` bytes into out[0..3]. */
void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t len);

/* Reads a header written by frame_put_header. */
uint32_t frame_get_header(const uint8_t in[FRAME_HEADER_SIZE]);

typedef struct frame_reader {
    /* Bytes received and not yet handed out. */
    uint8_t *buf;
    /* Allocated size of buf. */
    size_t cap;
    /* Offset of the first byte not yet consumed. */
    size_t start;
    /* Offset one past the last byte received. */
    size_t end;
    /* Largest payload accepted; a larger header is an error. */
    uint32_t max_frame;
} frame_reader;

/* Prepares an empty reader. Nothing is allocated until data arrives. */
void frame_reader_init(frame_reader *r, uint32_t max_frame);

/* Frees the buffer; the reader may be initialised again. */
void frame_reader_done(frame_reader *r);

/*
 * Returns a writable area of at least `want` bytes (growing or compacting the
 * buffer) where the caller may put received bytes, then calls
 * frame_reader_commit with how many it wrote. *ret_len gets the usable size.
 * Returns NULL on out-of-memory.
 */
uint8_t *frame_reader_space(frame_reader *r, size_t want, size_t *ret_len);
void frame_reader_commit(frame_reader *r, size_t n);

/* Copies `len` bytes in (for callers whose data already sits elsewhere).
 * 0 or -ENOMEM. */
int frame_reader_feed(frame_reader *r, const void *data, size_t len);

/*
 * Takes the next whole frame: 1 and *ret_payload, *ret_len point into the
 * reader's buffer (valid until the next call on the reader); 0 when more
 * bytes are needed; -EMSGSIZE when the next header announces more than
 * max_frame (the stream cannot be resynchronised after that). A zero-length
 * frame is returned as 1 with *ret_len == 0.
 */
int frame_reader_next(frame_reader *r, const uint8_t **ret_payload, uint32_t *ret_len);

/* Bytes buffered and not yet returned. */
size_t frame_reader_pending(const frame_reader *r);

/* Whether frame_reader_next would return something other than 0: a whole
 * frame is buffered, or a header announcing too much. */
bool frame_reader_ready(const frame_reader *r);

#endif
