/*
 * Big frames decoded off the loop thread.
 *
 * A frame of WIRE_DETACHED_FROM bytes or more is copied, then unpacked on
 * libuv's thread pool (wire_decode_detached), and its calls' argument values
 * are checked there too (pbvalue_check: nesting, UTF-8, duplicate keys),
 * the costly part of value_check_call. Meanwhile the loop serves everyone
 * else: a 4 MiB frame of the worst shape costs it the copy of its bytes,
 * the checks that need the function's signature, and the reply. The
 * message is freed on the pool as well.
 *
 * The connection reads nothing more until the frame has been handled, so
 * its requests keep their order (a session has at most one frame here). At
 * most OFFLOAD_RUNNING frames are decoded at once, since each may unpack to
 * some 30 MB of nodes; later ones wait their turn in order, in their
 * connection's read buffer (copied when their turn comes).
 */
#ifndef AIOD_OFFLOAD_H
#define AIOD_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiod-pb.h"

typedef struct session session;
typedef struct offload offload;

#define OFFLOAD_RUNNING 2

/*
 * Called on the loop thread once the frame is decoded: `m`, or rc < 0 and
 * `why` as from wire_decode. m belongs to the offload, which frees it after
 * the call; the handler may take call arguments from it, asking
 * offload_verdict for their checks (value_check_call_take). Not called when
 * the session closed meanwhile; s->offload is NULL again during the call.
 */
typedef void (*offload_handler)(session *s, const offload *o, Aiod__ClientMessage *m, int rc,
                                const char *why);

/*
 * Hands the frame of session `s` (at least WIRE_DETACHED_FROM bytes) to the
 * pool, holds the connection's reading and sets s->offload. With `in_conn`
 * the payload lies in the connection's read buffer, which stays put while
 * reading is held: it is copied only when its decode starts. Otherwise it
 * is borrowed for the call and copied now. `may_park` is kept for the
 * handler. 0, or -ENOMEM with nothing done (the caller decodes it itself).
 * A copy that fails when the decode starts comes to the handler as
 * -ENOMEM.
 */
int offload_start(session *s, const uint8_t *payload, size_t len, bool may_park, bool in_conn,
                  offload_handler done);

/* The frame's bytes (NULL if they could not be copied: rc is then
 * -ENOMEM) and the flag given to offload_start. */
const uint8_t *offload_payload(const offload *o, size_t *ret_len);
bool offload_may_park(const offload *o);

/* A value_verdict_fn (base/value.h) for the call arguments of o's message:
 * pbvalue_check's verdict, made on the pool. */
int offload_verdict(const void *o, const Aiod__Value *v, const char **why);

/* A value_json_fn (base/value.h) for the text arguments of o's message:
 * each parsed as JSON on the pool (within LIMIT_VALUE_DEPTH, and
 * LIMIT_FRAME_VALUES values for all of them together; over that the frame
 * was refused with -E2BIG), for the handler to take. */
int offload_text(const void *o, const Aiod__Value *v, Aiod__Value **ret, const char **why);

/* The session closes: its frame, if any, is dropped once its decode ends. */
void offload_session_closed(session *s);

#endif
