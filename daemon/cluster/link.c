/*
 * The cluster's shared connection and events (link.h).
 */
#include "cluster/link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "base/aiod_limits.h"
#include "cluster/lua.h"
#include "macro.h"
#include "system/cluster_cfg.h"
#include "system/config.h"
#include "system/log.h"

static struct {
    uv_loop_t *loop;
    const link_hooks *hooks;
    cluster_url url;
    char *password;
    char host[CLUSTER_HOST_NAME_MAX + 1];
    rconn *cmd;
    rconn *sub;
    /* With cluster_replicas: submits and their WAIT (link_submits). */
    rconn *repl;
    /* Where the scripts publish the cluster's events (link_events_channel). */
    char channel[24];
} L;

/* The scripts' digests, once Redis has them (SCRIPT LOAD on every
 * connect: a restarted Redis has forgotten them); "" until then, when
 * link_eval sends the whole script. */
static char digests[16][41];

/* A refusal of SCRIPT LOAD was said since the last load_scripts. */
static bool load_refusal_said;

static void on_loaded(rconn *rc, redisReply *r, void *priv) {
    (void)rc;
    size_t i = (size_t)(uintptr_t)priv;
    if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(digests[i], r->str, 41);
    else if (r && r->type == REDIS_REPLY_ERROR && !load_refusal_said) {
        load_refusal_said = true;
        log_warning("cluster: Redis refused to load the scripts: %s; each call sends a script's "
                    "whole text instead (the ACL user needs +script|load and +evalsha: "
                    "docs/cluster.md)",
                    r->str);
    }
}

static void load_scripts(void) {
    load_refusal_said = false;
    for (size_t i = 0; lua_scripts[i] && i < ELEMENTSOF(digests); i++) {
        digests[i][0] = '\0';
        const char *argv[] = {"SCRIPT", "LOAD", lua_scripts[i]};
        rconn_send(L.cmd, on_loaded, (void *)(uintptr_t)i, 3, argv,
                   (size_t[]){6, 4, strlen(lua_scripts[i])});
    }
}

static void cmd_up(rconn *rc, void *data) {
    (void)rc, (void)data;
    load_scripts();
    L.hooks->up();
}

/* Every message of the subscription, and first its confirmation. */
static void on_message(rconn *rc, redisReply *r, void *priv) {
    (void)rc, (void)priv;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->element[0]->str, "subscribe") == 0) {
        L.hooks->subscribed();
        return;
    }
    if (strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    char kind[16];
    uint64_t id;
    if (sscanf(r->element[2]->str, "%15s %" SCNu64, kind, &id) == 2)
        L.hooks->event(kind, id);
}

static void sub_up(rconn *rc, void *data) {
    (void)data;
    if (rconn_subscribe(rc, L.channel, on_message, NULL) < 0)
        log_warning("cluster: cannot subscribe to the cluster's events");
}

static const rconn_ops cmd_ops = {.up = cmd_up};
static const rconn_ops sub_ops = {.up = sub_up};
static const rconn_ops repl_ops = {.blocks_ms = LIMIT_CLUSTER_REPLICAS_WAIT_MS};

/* The first line of the password file, without its newline. */
static int read_password(const char *path) {
    char line[1024], why[600];
    int r = cluster_password_read(path, line, sizeof(line), why, sizeof(why));
    if (r < 0) {
        log_error("cluster: %s", why);
        return r;
    }
    L.password = alloc_strdup(line);
    explicit_bzero(line, sizeof(line));
    return L.password ? 0 : -ENOMEM;
}

int link_start(uv_loop_t *loop, const link_hooks *hooks) {
    char why[256];
    L.loop = loop;
    L.hooks = hooks;
    if (cluster_url_parse(cfg.cluster, &L.url, why, sizeof(why)) < 0) {
        log_error("cluster: %s", why);
        return -EINVAL;
    }
    /* Redis's pub/sub is one for the whole server, whatever database a
     * connection selected: clusters on two databases of one Redis shared
     * aiod:ev and cancelled each other's tasks of the same id (both count
     * from 2^48 + 1). Database 0 keeps the name it always had, so that
     * ACL users made for it (&aiod:ev) still work. */
    if (L.url.db == 0)
        snprintf(L.channel, sizeof(L.channel), "aiod:ev");
    else
        snprintf(L.channel, sizeof(L.channel), "aiod:ev:%d", L.url.db);
    if (cfg.cluster_host)
        snprintf(L.host, sizeof(L.host), "%s", cfg.cluster_host);
    else if (gethostname(L.host, sizeof(L.host)) < 0 || !cluster_name_valid(L.host)) {
        log_error("cluster: the hostname is not a valid cluster host name; set cluster_host");
        return -EINVAL;
    }
    int r = cfg.cluster_password_file ? read_password(cfg.cluster_password_file) : 0;
    if (r < 0)
        return r;
    r = rconn_new(loop, &L.url, L.password, "commands", &cmd_ops, NULL, &L.cmd);
    if (r >= 0)
        r = rconn_new(loop, &L.url, L.password, "events", &sub_ops, NULL, &L.sub);
    /* WAIT blocks the connection it is sent on (up to 5 s): not the one
     * that renews the claims of the tasks this host runs. */
    if (r >= 0 && cfg.cluster_replicas)
        r = rconn_new(loop, &L.url, L.password, "replicated submits", &repl_ops, NULL, &L.repl);
    return r;
}

bool link_started(void) {
    return L.cmd != NULL;
}

void link_stop(void) {
    rconn_free(L.repl);
    rconn_free(L.sub);
    rconn_free(L.cmd);
    L.repl = L.sub = L.cmd = NULL;
    if (L.password)
        explicit_bzero(L.password, strlen(L.password));
    free(L.password);
    L.password = NULL;
}

uv_loop_t *link_loop(void) {
    return L.loop;
}

const cluster_url *link_url(void) {
    return &L.url;
}

const char *link_password(void) {
    return L.password;
}

const char *link_events_channel(void) {
    return L.channel;
}

const char *link_host(void) {
    return L.host;
}

rconn *link_cmd(void) {
    return L.cmd;
}

rconn *link_submits(void) {
    return L.repl ? L.repl : L.cmd;
}

bool link_up(void) {
    return L.cmd && rconn_up(L.cmd);
}

void link_unreachable(char *buf, size_t len) {
    snprintf(buf, len, "cluster: Redis at %s:%d is unreachable: %s", L.url.host, L.url.port,
             L.cmd ? rconn_why(L.cmd) : "not started");
}

void link_task_key(char *buf, size_t len, uint64_t id) {
    snprintf(buf, len, "aiod:t:%" PRIu64, id);
}

void link_output_key(char *buf, size_t len, uint64_t id) {
    snprintf(buf, len, "aiod:o:%" PRIu64, id);
}

/* A script call in flight: NOSCRIPT (the cache was flushed) loads the
 * scripts again; the caller gets the error, as for any failed call. */
typedef struct eval_call {
    rconn_cb cb;
    void *priv;
} eval_call;

static void on_eval(rconn *rc, redisReply *r, void *priv) {
    eval_call *c = priv;
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        log_warning("cluster: Redis forgot the scripts (SCRIPT FLUSH?); loading them again");
        load_scripts();
    }
    if (c->cb)
        c->cb(rc, r, c->priv);
    free(c);
}

int link_eval(const char *script, int n_keys, int n_args, const char **args, const size_t *lens,
              rconn_cb cb, void *priv) {
    return link_eval_on(L.cmd, script, n_keys, n_args, args, lens, cb, priv);
}

int link_eval_on(rconn *rc, const char *script, int n_keys, int n_args, const char **args,
                 const size_t *lens, rconn_cb cb, void *priv) {
    const char *digest = NULL;
    for (size_t i = 0; lua_scripts[i] && i < ELEMENTSOF(digests); i++)
        if (lua_scripts[i] == script && digests[i][0])
            digest = digests[i];
    /* The events channel goes last, for the scripts that publish (lua.h). */
    size_t argc = (size_t)n_args + 4;
    const char **argv = alloc_calloc(argc, sizeof(*argv));
    size_t *argl = alloc_calloc(argc, sizeof(*argl));
    char nk[12];
    eval_call *call = alloc_malloc(sizeof(*call));
    int r = -ENOMEM;
    if (argv && argl && call) {
        *call = (eval_call){cb, priv};
        argv[0] = digest ? "EVALSHA" : "EVAL";
        argl[0] = strlen(argv[0]);
        argv[1] = digest ? digest : script;
        argl[1] = strlen(argv[1]);
        argl[2] = (size_t)snprintf(nk, sizeof(nk), "%d", n_keys);
        argv[2] = nk;
        for (int i = 0; i < n_args; i++) {
            argv[3 + i] = args[i];
            argl[3 + i] = lens ? lens[i] : strlen(args[i]);
        }
        argv[argc - 1] = L.channel;
        argl[argc - 1] = strlen(L.channel);
        r = rconn_send(rc, on_eval, call, (int)argc, argv, argl);
    }
    if (r < 0)
        free(call);
    free(argv);
    free(argl);
    return r;
}

uint64_t link_now_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
