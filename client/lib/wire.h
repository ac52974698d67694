/*
 * wire: turning ClientMessages into frames and frames into checked
 * ServerMessages for libaioclient. Pure: no I/O, no state. Everything a
 * ServerMessage from wire_unpack holds has been checked: values obey the
 * value rules, strings are valid UTF-8 (bad bytes replaced by '?'), and a
 * done outcome always has a result (null when the daemon sent none).
 */
#ifndef AIOC_WIRE_H
#define AIOC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "aiod.pb-c.h"

/* Deepest value nesting accepted from the daemon (it sends at most 32). */
/* A timeout as the daemon takes it: seconds up to 1e9 (about 31 years), 0
 * for none. Zero, negative, infinite or longer: no limit. */
static inline double wire_timeout(double timeout) {
    return timeout > 0 && timeout <= 1e9 ? timeout : 0;
}

#define WIRE_MAX_VALUE_DEPTH 64u
/* Deepest protobuf message nesting accepted before unpacking. */
#define WIRE_MAX_MESSAGE_DEPTH 160u

/*
 * Encodes `m` as one frame (header and payload) in a new buffer the caller
 * frees. 0, -EMSGSIZE when the payload exceeds max_frame, -ENOMEM.
 */
int wire_pack(const Aiod__ClientMessage *m, uint32_t max_frame, uint8_t **ret_buf, size_t *ret_len);

/* Decodes and checks one payload. *ret is new (free with wire_free).
 * 0, -EPROTO (undecodable or breaking the rules), -ENOMEM. */
int wire_unpack(const uint8_t *data, size_t len, Aiod__ServerMessage **ret);

/* Accepts NULL. */
void wire_free(Aiod__ServerMessage *m);

/* Frees any protobuf-c message built by unpack or by the alloc.h helpers. */
void wire_free_message(void *m);

/* The errno for a daemon error code (aioc.h lists them); unknown codes
 * give -EFAULT, as ERROR_INTERNAL does. */
int wire_error_errno(uint32_t code);

/* The daemon's message for a refused run without what it adds for the
 * one-item Gather a run is sent as ("gather item 1: "): aioc_run and
 * aioc_start_run word their refusals as the call they are (aioc_connect(3)).
 * Returns a pointer into msg. */
const char *wire_run_message(const char *msg);

/* Replaces each byte of an invalid UTF-8 sequence in `s` with '?'. */
void wire_fix_utf8(char *s);

/* Checks and normalises an outcome received from the daemon (see above).
 * 0, -EPROTO, -ENOMEM. */
int wire_check_outcome(Aiod__Outcome *o);

#endif
