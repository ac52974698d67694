/*
 * hiredis's asynchronous context on the daemon's libuv loop: a uv_poll_t on
 * the context's socket, started and stopped as hiredis asks.
 *
 * This replaces hiredis 0.14's bundled adapter (adapters/libuv.h) for one
 * reason: when libuv sees an error on the socket (a refused connect, a
 * reset) it stops the poll and reports the error, and that adapter ignores
 * the report, so hiredis never learns that the connection failed and its
 * callbacks never come. Here the error goes to hiredis as a read (or, while
 * connecting, a write), whose failing system call tells it what happened.
 */
#ifndef AIOD_CLUSTER_RLOOP_H
#define AIOD_CLUSTER_RLOOP_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches `ac` to `loop`; hiredis frees what this makes (its cleanup
 * hook). REDIS_OK, or REDIS_ERR (out of memory, or `ac` is attached). */
int rloop_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
