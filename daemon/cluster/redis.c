/*
 * One connection to Redis (redis.h).
 */
#include "cluster/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "cluster/rloop.h"
#include "system/log.h"

struct rconn {
    uv_loop_t *loop;
    cluster_url url;
    char *password;
    char *name;
    const rconn_ops *ops;
    void *data;
    /* The live context, or NULL while down. */
    redisAsyncContext *ac;
    /* Connected and ready for commands (AUTH and SELECT done). */
    bool up;
    /* The reconnect timer and its next wait. */
    uv_timer_t *timer;
    unsigned backoff_ms;
    /* When it last became ready (uv_now): only a connection that stayed up
     * LIMIT_CLUSTER_BACKOFF_MAX_MS resets the backoff when it goes. */
    uint64_t up_since_ms;
    char why[256];
    /* Logged once per outage; once while Redis loads its data set. */
    bool said_down;
    bool said_loading;
    /* AUTH or SELECT was refused: the reason outlives the disconnect. */
    bool refused;
    /* The subscription's callback, called for every message. */
    rconn_cb sub_cb;
    void *sub_priv;
    /* Replies owed (the setup's and the commands', not the subscription's
     * messages). While any is, `timer` runs: no reply for reply_timeout()
     * and the connection is given up (on_silent). */
    unsigned owed;
    /* Waiting for the lookup of url.host (R), on R.waiting. */
    bool resolving;
    rconn *next_waiting;
    /* on_silent is freeing the context, whose commands' callbacks may ask
     * to free the rconn itself: done once that is over. */
    bool freeing_context;
    bool free_asked;
};

/* A command in flight: whose reply it is. */
typedef struct rpending {
    rconn *rc;
    rconn_cb cb;
    void *priv;
} rpending;

static void connect_now(rconn *rc);

static void on_timer(uv_timer_t *t) {
    connect_now(t->data);
}

static void went_down(rconn *rc, const char *why);

/* A connect that did not complete in time (a host that drops the SYN, a
 * network partition): given up, to try again. */
static void on_connect_timeout(uv_timer_t *t) {
    rconn *rc = t->data;
    redisAsyncContext *ac = rc->ac;
    if (!ac)
        return;
    ac->data = NULL;
    rc->ac = NULL;
    redisAsyncFree(ac);
    went_down(rc, "cannot connect: no answer (refused, or nothing listens there)");
}

static void retry_later(rconn *rc) {
    uv_timer_start(rc->timer, on_timer, rc->backoff_ms, 0);
    rc->backoff_ms *= 2;
    if (rc->backoff_ms > LIMIT_CLUSTER_BACKOFF_MAX_MS)
        rc->backoff_ms = LIMIT_CLUSTER_BACKOFF_MAX_MS;
}

static void went_down_from(rconn *rc, bool was_up, const char *why) {
    rc->up = false;
    rc->owed = 0;
    rc->ac = NULL;
    if (!rc->refused)
        snprintf(rc->why, sizeof(rc->why), "%s", why);
    rc->refused = false;
    if (!rc->said_down) {
        log_warning("cluster: Redis at %s:%d (%s connection): %s; reconnecting", rc->url.host,
                    rc->url.port, rc->name, rc->why);
        rc->said_down = true;
    }
    if (was_up && rc->ops->down)
        rc->ops->down(rc, rc->data, rc->why);
    /* A connection that is made and dropped at once (a Redis at
     * maxclients, a proxy with nothing behind it) is still an outage: the
     * waits go on doubling. One that served a while starts again fast. */
    if (was_up && uv_now(rc->loop) - rc->up_since_ms >= LIMIT_CLUSTER_BACKOFF_MAX_MS)
        rc->backoff_ms = LIMIT_CLUSTER_BACKOFF_MIN_MS;
    retry_later(rc);
}

static void went_down(rconn *rc, const char *why) {
    went_down_from(rc, rc->up, why);
}

static unsigned reply_timeout(const rconn *rc) {
    return LIMIT_CLUSTER_REPLY_TIMEOUT_MS + rc->ops->blocks_ms;
}

/* Owed a reply for reply_timeout() without one: the context is freed at
 * once (its commands' callbacks get their NULL reply), not asked to close,
 * which would wait for those replies. */
static void on_silent(uv_timer_t *t) {
    rconn *rc = t->data;
    redisAsyncContext *ac = rc->ac;
    if (!ac || rc->owed == 0)
        return;
    bool was_up = rc->up;
    char why[160];
    snprintf(why, sizeof(why),
             "no answer for %u ms (the Redis process is stopped or hangs, or its host is cut "
             "off)",
             reply_timeout(rc));
    /* What the callbacks below say, and they must not send on it. */
    snprintf(rc->why, sizeof(rc->why), "%s", why);
    rc->up = false;
    rc->ac = NULL;
    ac->data = NULL;
    rc->freeing_context = true;
    redisAsyncFree(ac);
    rc->freeing_context = false;
    if (rc->free_asked) {
        rconn_free(rc);
        return;
    }
    went_down_from(rc, was_up, why);
}

static void owe(rconn *rc) {
    if (rc->owed++ == 0)
        uv_timer_start(rc->timer, on_silent, reply_timeout(rc), 0);
}

/* A reply came: the silence counts again from now. */
static void paid(rconn *rc) {
    if (rc->owed == 0)
        return;
    if (--rc->owed == 0)
        uv_timer_stop(rc->timer);
    else
        uv_timer_start(rc->timer, on_silent, reply_timeout(rc), 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    rconn *rc = ac->data;
    if (!rc)
        return; /* rconn_free */
    went_down(rc, status == REDIS_OK ? "the connection was closed" : ac->errstr);
}

static void became_ready(rconn *rc) {
    rc->up = true;
    rc->said_loading = false;
    rc->up_since_ms = uv_now(rc->loop);
    if (rc->said_down)
        log_info("cluster: Redis at %s:%d (%s connection) is reachable again", rc->url.host,
                 rc->url.port, rc->name);
    rc->said_down = false;
    rc->why[0] = '\0';
    if (rc->ops->up)
        rc->ops->up(rc, rc->data);
}

static void send_ping(rconn *rc);

static void on_ping_timer(uv_timer_t *t) {
    rconn *rc = t->data;
    if (rc->ac && !rc->up)
        send_ping(rc);
}

/* The reply to the PING that ends the setup. A Redis that restarted with a
 * big data set accepts connections at once but answers LOADING to nearly
 * every command until it has read it: the connection is not ready (its
 * scripts, consumer groups and reads would all be refused) until PING
 * gets PONG. It is asked again every LIMIT_CLUSTER_LOADING_POLL_MS. */
static void on_ping(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *rc = ac->data;
    redisReply *r = reply;
    (void)priv;
    if (!rc || !r)
        return; /* freed, or the connection went: on_disconnect retries */
    paid(rc);
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0) {
        snprintf(rc->why, sizeof(rc->why), "Redis is loading its data set (%s)", r->str);
        if (!rc->said_loading) {
            log_notice("cluster: Redis at %s:%d (%s connection) is loading its data set; "
                       "waiting until it answers",
                       rc->url.host, rc->url.port, rc->name);
            rc->said_loading = true;
        }
        uv_timer_start(rc->timer, on_ping_timer, LIMIT_CLUSTER_LOADING_POLL_MS, 0);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(rc->why, sizeof(rc->why), "PING refused: %s", r->str);
        rc->refused = true;
        redisAsyncDisconnect(ac);
        return;
    }
    became_ready(rc);
}

static void send_ping(rconn *rc) {
    if (redisAsyncCommand(rc->ac, on_ping, NULL, "PING") != REDIS_OK)
        redisAsyncDisconnect(rc->ac);
    else
        owe(rc);
}

/* The reply to AUTH or SELECT, in that order; the last one is followed by
 * the PING that makes it ready. */
static void on_setup(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *rc = ac->data;
    redisReply *r = reply;
    if (!rc || !r)
        return; /* freed, or the connection went: on_disconnect retries */
    paid(rc);
    if (r->type == REDIS_REPLY_ERROR) {
        char why[256];
        snprintf(why, sizeof(why), "%s refused: %s", priv ? "SELECT" : "AUTH", r->str);
        /* A wrong password (the file is read once, at start) or a missing
         * database does not get better by itself, but Redis's side may be
         * changed (requirepass, an ACL): keep trying, slowly. */
        snprintf(rc->why, sizeof(rc->why), "%s", why);
        rc->refused = true;
        redisAsyncDisconnect(ac);
        return;
    }
    if (priv || rc->url.db == 0)
        send_ping(rc);
}

static void on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *rc = ac->data;
    if (!rc)
        return;
    uv_timer_stop(rc->timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        char why[256];
        snprintf(why, sizeof(why), "cannot connect: %s", ac->errstr);
        went_down(rc, why);
        return;
    }
    if (rc->password) {
        const char *sp = strchr(rc->password, ' ');
        if (sp)
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %b %s", rc->password,
                              (size_t)(sp - rc->password), sp + 1);
        else
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %s", rc->password);
        owe(rc);
    }
    if (rc->url.db) {
        redisAsyncCommand(ac, on_setup, (void *)1, "SELECT %d", rc->url.db);
        owe(rc);
    } else if (!rc->password)
        send_ping(rc);
}

static void connect_to(rconn *rc, const char *addr);

/*
 * The lookup of the cluster's Redis name, one at a time for every
 * connection (they all name the same host): each of its own would hold a
 * thread of libuv's pool (4 of them) for as long as an unanswered DNS
 * query takes, seconds, while identity lookups and the pool's other work
 * wait. The connections that want an address meanwhile wait on `waiting`;
 * a result serves the connects of the next LIMIT_CLUSTER_BACKOFF_MIN_MS too
 * (connections that went down together reconnect together).
 */
static struct {
    uv_getaddrinfo_t *req; /* in flight, or NULL */
    rconn *waiting;        /* through rconn.next_waiting */
    bool have;             /* a result since at_ms */
    uint64_t at_ms;
    char addr[INET6_ADDRSTRLEN]; /* the last found; "" after a failure */
    char why[300];               /* why the last lookup failed */
    char said[INET6_ADDRSTRLEN]; /* the last address logged */
} R;

static void resolved_for(rconn *rc) {
    if (R.addr[0])
        connect_to(rc, R.addr);
    else
        went_down(rc, R.why);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    const char *host = req->data;
    R.req = NULL;
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res) {
        const void *a = res->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
        if (!inet_ntop(res->ai_family, a, ip, sizeof(ip)))
            ip[0] = '\0';
    }
    uv_freeaddrinfo(res);
    snprintf(R.addr, sizeof(R.addr), "%s", ip);
    if (!ip[0])
        snprintf(R.why, sizeof(R.why), "cannot resolve Redis's host '%s': %s", host,
                 status ? uv_strerror(status) : "no address");
    else if (strcmp(ip, R.said) != 0) {
        log_info("cluster: Redis's host %s is %s", host, ip);
        snprintf(R.said, sizeof(R.said), "%s", ip);
    }
    /* A lookup cancelled (its last waiter went) tells nothing of the name. */
    R.have = status != UV_ECANCELED;
    R.at_ms = uv_now(req->loop);
    free(req->data);
    free(req);
    while (R.waiting) {
        rconn *rc = R.waiting;
        R.waiting = rc->next_waiting;
        rc->next_waiting = NULL;
        rc->resolving = false;
        resolved_for(rc);
    }
}

/* Connects to url.host: an address at once; a name looked up first on
 * libuv's thread pool, at every connect (hiredis 0.14 would look it up in
 * the calling thread, the loop's), so that a lookup that fails (DNS not
 * up yet at boot) is retried with the backoff like a refused connect, and
 * a changed address is followed. */
static void connect_now(rconn *rc) {
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, rc->url.host, buf) == 1 || inet_pton(AF_INET6, rc->url.host, buf) == 1) {
        connect_to(rc, rc->url.host);
        return;
    }
    if (!R.req && R.have && uv_now(rc->loop) - R.at_ms < LIMIT_CLUSTER_BACKOFF_MIN_MS) {
        resolved_for(rc);
        return;
    }
    if (!R.req) {
        uv_getaddrinfo_t *req = alloc_malloc(sizeof(*req));
        char *host = alloc_strdup(rc->url.host);
        int r = -ENOMEM;
        if (req && host) {
            req->data = host;
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
            r = uv_getaddrinfo(rc->loop, req, on_resolved, host, NULL, &hints);
        }
        if (r < 0) {
            free(req);
            free(host);
            char why[300];
            snprintf(why, sizeof(why), "cannot resolve Redis's host '%s': %s", rc->url.host,
                     uv_strerror(r));
            went_down(rc, why);
            return;
        }
        R.req = req;
    }
    rc->next_waiting = R.waiting;
    R.waiting = rc;
    rc->resolving = true;
}

static void connect_to(rconn *rc, const char *addr) {
    redisAsyncContext *ac = redisAsyncConnect(addr, rc->url.port);
    if (!ac) {
        went_down(rc, "out of memory");
        return;
    }
    if (ac->err) {
        char why[256];
        snprintf(why, sizeof(why), "cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        went_down(rc, why);
        return;
    }
    ac->data = rc;
    /* TCP keepalive (hiredis: idle 15 s, then probes): a Redis host that
     * loses power, or a partition, leaves an idle connection (the reader's
     * blocking XREADGROUP) open for good otherwise, and nothing is read
     * again. Probes that go unanswered end it, and it is made again. */
    if (redisEnableKeepAlive(&ac->c) != REDIS_OK)
        log_warning("cluster: %s: cannot turn on TCP keepalive; a dead Redis host may go "
                    "unnoticed",
                    rc->name);
    if (rloop_attach(ac, rc->loop) != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        went_down(rc, "cannot watch the socket");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rc->ac = ac;
    uv_timer_start(rc->timer, on_connect_timeout, LIMIT_CLUSTER_CONNECT_TIMEOUT_MS, 0);
}

int rconn_new(uv_loop_t *loop, const cluster_url *url, const char *password, const char *name,
              const rconn_ops *ops, void *data, rconn **ret) {
    rconn *rc = alloc_calloc(1, sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    rc->loop = loop;
    rc->url = *url;
    rc->ops = ops;
    rc->data = data;
    rc->backoff_ms = LIMIT_CLUSTER_BACKOFF_MIN_MS;
    rc->password = password ? alloc_strdup(password) : NULL;
    rc->name = alloc_strdup(name);
    rc->timer = alloc_malloc(sizeof(*rc->timer));
    if ((password && !rc->password) || !rc->name || !rc->timer) {
        free(rc->password);
        free(rc->name);
        free(rc->timer);
        free(rc);
        return -ENOMEM;
    }
    uv_timer_init(loop, rc->timer);
    uv_unref((uv_handle_t *)rc->timer);
    rc->timer->data = rc;
    snprintf(rc->why, sizeof(rc->why), "not connected yet");
    connect_now(rc);
    *ret = rc;
    return 0;
}

static void free_timer(uv_handle_t *h) {
    free(h);
}

void rconn_free(rconn *rc) {
    if (!rc)
        return;
    if (rc->freeing_context) {
        rc->free_asked = true; /* on_silent frees it */
        return;
    }
    if (rc->resolving) {
        /* Off the lookup's waiters; the lookup goes on, for the others. */
        for (rconn **p = &R.waiting; *p; p = &(*p)->next_waiting)
            if (*p == rc) {
                *p = rc->next_waiting;
                break;
            }
        if (!R.waiting && R.req)
            uv_cancel((uv_req_t *)R.req);
    }
    if (rc->ac) {
        /* Callbacks that come from the free see no rconn. */
        redisAsyncContext *ac = rc->ac;
        rc->ac = NULL;
        rc->up = false;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)rc->timer, free_timer);
    free(rc->password);
    free(rc->name);
    free(rc);
}

bool rconn_up(const rconn *rc) {
    return rc->up;
}

const char *rconn_why(const rconn *rc) {
    return rc->why[0] ? rc->why : "not connected";
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
    (void)ac;
    rpending *cmd = priv;
    if (reply)
        paid(cmd->rc);
    if (cmd->cb)
        cmd->cb(cmd->rc, reply, cmd->priv);
    free(cmd);
}

int rconn_send(rconn *rc, rconn_cb cb, void *priv, int argc, const char **argv,
               const size_t *lens) {
    if (!rc->up)
        return -ENOTCONN;
    rpending *cmd = alloc_malloc(sizeof(*cmd));
    if (!cmd)
        return -ENOMEM;
    *cmd = (rpending){rc, cb, priv};
    if (redisAsyncCommandArgv(rc->ac, on_reply, cmd, argc, argv, lens) != REDIS_OK) {
        free(cmd);
        return -ENOTCONN;
    }
    owe(rc);
    return 0;
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *priv) {
    rconn *rc = priv;
    if (ac->data != rc || !reply)
        return; /* being freed, or gone */
    rc->sub_cb(rc, reply, rc->sub_priv);
}

int rconn_subscribe(rconn *rc, const char *channel, rconn_cb cb, void *priv) {
    if (!rc->up)
        return -ENOTCONN;
    rc->sub_cb = cb;
    rc->sub_priv = priv;
    return redisAsyncCommand(rc->ac, on_sub_message, rc, "SUBSCRIBE %s", channel) == REDIS_OK
               ? 0
               : -ENOTCONN;
}

const char *rconn_reply_text(const redisReply *r) {
    if (!r)
        return "the connection to Redis was lost";
    switch (r->type) {
    case REDIS_REPLY_ERROR:
        return r->str;
    case REDIS_REPLY_NIL:
        return "Redis replied nil";
    default:
        return "Redis replied something unexpected";
    }
}
