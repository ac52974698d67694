/*
 * One connection to the cluster's Redis, on the daemon's loop: hiredis's
 * asynchronous API (rloop.h), so no thread; the address is resolved once,
 * at start (link.c), so connecting never blocks on a name lookup. The connection makes itself again
 * after a failure, with a backoff (LIMIT_CLUSTER_BACKOFF_MIN_MS doubling to ..._MAX_MS),
 * authenticates and selects the database, and says when it is up and when it went down. Commands
 * given while it is down fail at once (-ENOTCONN): the caller decides what waits.
 */
#ifndef AIOD_CLUSTER_REDIS_H
#define AIOD_CLUSTER_REDIS_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "system/cluster_cfg.h"

typedef struct rconn rconn;

typedef struct rconn_ops {
    /* Connected, authenticated, database selected: commands may go. */
    void (*up)(rconn *rc, void *data);
    /* The connection was lost (every command's callback has had its NULL
     * reply); `why` says what happened. It reconnects by itself. */
    void (*down)(rconn *rc, void *data, const char *why);
    /* The longest a command of this connection blocks in Redis (BLOCK,
     * WAIT), in ms: added to LIMIT_CLUSTER_REPLY_TIMEOUT_MS, past which a
     * connection owed a reply that had none is given up. */
    unsigned blocks_ms;
} rconn_ops;

/* A reply callback: `reply` is NULL when the connection went before the
 * reply came; else borrowed for the call. */
typedef void (*rconn_cb)(rconn *rc, redisReply *reply, void *priv);

/*
 * A connection to `url` (copied), authenticating with `password` (copied;
 * "PASSWORD" or "USER PASSWORD"; NULL for none), named `name` for the log
 * ("commands", "reader"...). It starts connecting at once. `ops` and `data`
 * are borrowed for its life. 0, -ENOMEM.
 */
int rconn_new(uv_loop_t *loop, const cluster_url *url, const char *password, const char *name,
              const rconn_ops *ops, void *data, rconn **ret);
/* Closes the connection (pending callbacks get NULL) and frees it;
 * accepts NULL. */
void rconn_free(rconn *rc);
/* Whether commands may be sent now. */
bool rconn_up(const rconn *rc);
/* Why the connection is down (its last error), for messages. */
const char *rconn_why(const rconn *rc);

/*
 * Sends one command of `argc` arguments (`argv`/`lens` borrowed, copied
 * into the output buffer); `cb` gets its reply once, NULL if the connection
 * goes first (no `cb`: the reply is not wanted). 0, -ENOTCONN (down: cb is not called), -ENOMEM.
 */
int rconn_send(rconn *rc, rconn_cb cb, void *priv, int argc, const char **argv, const size_t *lens);

/* Subscribes to `channel`: `cb` gets the confirmation, then every message
 * (never NULL), until the connection goes; subscribe again once it is up.
 * 0, -ENOTCONN. */
int rconn_subscribe(rconn *rc, const char *channel, rconn_cb cb, void *priv);

/* The text of a string reply, or NULL for any other type (nil, an integer,
 * an array): a reply is checked before its text is read, whatever Redis
 * sends. */
static inline const char *redis_str(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

/* hiredis's reply as text for a message: the error's text, or what kind
 * of reply came instead of the one expected. */
const char *rconn_reply_text(const redisReply *r);

#endif
