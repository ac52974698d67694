/*
 * The proc plugin: child processes as tasks, like asyncio's
 * create_subprocess_exec / create_subprocess_shell followed by
 * communicate(). Both functions stream the child's stdout and stderr into
 * the task's output as lines while it runs, and return
 * {"exit": int, "stdout": string|bytes, "stderr": string|bytes}; "exit" is
 * the exit status, or -N when signal N killed the child. A non-zero exit is
 * a result, not a failure (as subprocess.run without check). Cancelling the
 * task sends SIGTERM to the child's process group, then SIGKILL after
 * `grace` seconds.
 *
 *   aioctl run proc.exec -- make -j2               # program and arguments
 *   aioctl run proc.shell 'make -j2 2>&1 | tail'  # one line for /bin/sh -c
 *   aioctl run proc.run '["make", "-j2"]' "" /src  # argv list, input, cwd, env
 *
 * `env` is null (a minimal environment: PATH, HOME, LANG) or a list of
 * "KEY=VALUE" strings; the daemon's systemd variables (NOTIFY_SOCKET,
 * LISTEN_*, WATCHDOG_*) never reach the child either way.
 *
 * The result goes to a client, so it must fit the daemon's max_result
 * (1 MiB by default), which the plugin API does not tell: stdout and
 * stderr together keep at most RESULT_TEXT_MAX bytes. A stream cut for
 * that (or beyond the daemon's 16 MiB capture) has "stdout_truncated":
 * true (or "stderr_truncated") and "stdout_bytes" (or "stderr_bytes"): all
 * it wrote. "exit" is always there. The lines streamed while the child ran
 * are not cut that way.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <aiod/plugin.h>

#define HAS_API(api, field)                                                                        \
    ((api)->struct_size >= offsetof(struct aiod_api, field) + sizeof((api)->field))

/* What stdout and stderr may hold together in a result: the default
 * max_result (1 MiB) less 4 KiB for the rest of the map (its keys, "exit",
 * the counts and the encoding's lengths: under 200 bytes). */
#define RESULT_TEXT_MAX (1024u * 1024 - 4096)

/* One output of proc_run's result: its data, and how many bytes the child
 * wrote (more than len when the capture limit cut it). */
typedef struct text {
    const char *key;
    const char *truncated_key;
    const char *bytes_key;
    const char *data; /* borrowed from the result */
    size_t len;
    int is_string;
    int64_t written;
} text;

static void text_of(const struct aiod_api *api, const aiod_value *res, text *x) {
    const aiod_value *v = api->map_get(res, x->key);
    x->data = api->get_string(v);
    x->is_string = x->data != NULL;
    if (x->data)
        x->len = strlen(x->data);
    else {
        x->data = api->get_bytes(v, &x->len);
        if (!x->data)
            x->len = 0;
    }
    const aiod_value *w = api->map_get(res, x->bytes_key);
    x->written = w ? api->get_int(w) : (int64_t)x->len;
}

/* Keeps the first `keep` bytes of the output (fewer for a string, so that
 * it does not end inside a character) and marks it truncated. */
static int text_cut(const struct aiod_api *api, aiod_value *res, const text *x, size_t keep) {
    aiod_value *v;
    if (x->is_string) {
        /* Back to the first byte of the character at `keep`. */
        while (keep > 0 && ((unsigned char)x->data[keep] & 0xC0) == 0x80)
            keep--;
        char *s = malloc(keep + 1);
        if (!s)
            return -ENOMEM;
        memcpy(s, x->data, keep);
        s[keep] = '\0';
        v = api->value_string(s);
        free(s);
    } else
        v = api->value_bytes(x->data, keep);
    if (!v)
        return -ENOMEM;
    /* v is a copy: x->data lives in the value it replaces, freed last. */
    int r = api->map_set(res, x->truncated_key, api->value_bool(1));
    if (r >= 0)
        r = api->map_set(res, x->bytes_key, api->value_int(x->written));
    if (r >= 0)
        r = api->map_set(res, x->key, v);
    else
        api->value_free(v);
    return r < 0 ? -ENOMEM : 0;
}

/*
 * Cuts stdout and stderr so that together they hold at most
 * RESULT_TEXT_MAX bytes: each gets half, and what one does not need goes
 * to the other.
 */
static int bound_result(const struct aiod_api *api, aiod_value *res) {
    text out = {"stdout", "stdout_truncated", "stdout_bytes", NULL, 0, 0, 0};
    text err = {"stderr", "stderr_truncated", "stderr_bytes", NULL, 0, 0, 0};
    text_of(api, res, &out);
    text_of(api, res, &err);
    if (out.len + err.len <= RESULT_TEXT_MAX)
        return 0;
    size_t half = RESULT_TEXT_MAX / 2;
    /* stdout may have max(half, what stderr leaves); err.len can be far
     * over RESULT_TEXT_MAX (up to the 16 MiB capture): compare first. */
    size_t room_out = err.len < RESULT_TEXT_MAX - half ? RESULT_TEXT_MAX - err.len : half;
    size_t keep_out = out.len < room_out ? out.len : room_out;
    size_t keep_err = err.len < RESULT_TEXT_MAX - keep_out ? err.len : RESULT_TEXT_MAX - keep_out;
    int r = 0;
    if (keep_out < out.len)
        r = text_cut(api, res, &out, keep_out);
    if (r >= 0 && keep_err < err.len)
        r = text_cut(api, res, &err, keep_err);
    return r;
}

/* A NULL-terminated vector of the strings in `list` (borrowed; free only
 * the vector). `what` names the parameter in errors; with `env` each item
 * must also be KEY=VALUE. */
static int strings_of(aiod_task *t, const struct aiod_api *api, const aiod_value *list,
                      const char *what, int env, const char ***ret) {
    size_t n = api->length(list);
    const char **v = calloc(n + 1, sizeof(*v));
    int r;
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = api->get_string(api->list_get(list, i));
        if (!v[i]) {
            free(v);
            return api->fail(t, "TypeError", "%s[%zu] must be a string", what, i);
        }
        if (env && (!strchr(v[i], '=') || v[i][0] == '=')) {
            r = api->fail(t, "ValueError", "%s[%zu] must be KEY=VALUE, got \"%.60s\"", what, i,
                          v[i]);
            free(v);
            return r;
        }
    }
    *ret = v;
    return 0;
}

/* Runs argv with the common parameters args[1..4]: input, cwd, env, grace. */
static int run(aiod_task *t, const struct aiod_api *api, const char *const *argv,
               const aiod_value *const *args, aiod_value **ret) {
    const char *input = api->get_string(args[1]);
    const char *cwd = api->get_string(args[2]);
    const aiod_value *env = args[3];
    double grace = api->get_double(args[4]);
    const char **envp = NULL;
    int r;

    if (!HAS_API(api, proc_run))
        return api->fail(t, "NotImplementedError", "this daemon has no proc_run (ABI < 1.1)");
    if (!(grace >= 0) || grace > 86400)
        return api->fail(t, "ValueError", "grace must be between 0 and 86400 seconds");
    if (api->value_type(env) == AIOD_TYPE_LIST) {
        r = strings_of(t, api, env, "env", 1, &envp);
        if (r < 0)
            return r;
    } else if (api->value_type(env) != AIOD_TYPE_NULL)
        return api->fail(t, "TypeError", "env must be null or a list of \"KEY=VALUE\" strings");

    struct aiod_proc_spec spec = {
        .struct_size = sizeof(spec),
        .flags = AIOD_PROC_STREAM_OUTPUT,
        .argv = argv,
        .envp = envp,
        .cwd = cwd && *cwd ? cwd : NULL,
        .stdin_data = input,
        .stdin_len = input ? strlen(input) : 0,
        .kill_grace = grace,
        /* A result holds no more: keeping 16 MiB per stream would only cost
         * memory (ABI 1.2; an older daemon ignores it). */
        .capture_max = RESULT_TEXT_MAX,
    };
    /* The spec may live on this stack: proc_run copies it before waiting. */
    aiod_value *res = NULL;
    r = api->proc_run(t, &spec, &res);
    free(envp);
    if (r < 0)
        return r;
    r = bound_result(api, res);
    if (r < 0) {
        api->value_free(res);
        return r;
    }
    *ret = res;
    return 0;
}

/* proc.run(argv: list, input, cwd, env, grace) */
static int proc_run(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                    aiod_value **ret) {
    const char **argv = NULL;
    if (api->length(args[0]) == 0)
        return api->fail(t, "ValueError", "argv must hold at least the program");
    int r = strings_of(t, api, args[0], "argv", 0, &argv);
    if (r < 0)
        return r;
    if (!argv[0][0]) {
        free(argv);
        return api->fail(t, "ValueError", "argv[0] (the program) is empty");
    }
    r = run(t, api, argv, args, ret);
    free(argv);
    return r;
}

/* proc.exec(program: string, *args: string): the program and its arguments
 * as words, with run's defaults for the rest. */
static int proc_exec(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                     aiod_value **ret) {
    const char *program = api->get_string(args[0]);
    size_t n = api->length(args[1]);
    if (!*program)
        return api->fail(t, "ValueError", "the program is empty");
    const char **argv = calloc(n + 2, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    argv[0] = program;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = api->get_string(api->list_get(args[1], i));
    aiod_value *input = api->value_string(""), *cwd = api->value_string("");
    aiod_value *env = api->value_null(), *grace = api->value_double(5);
    int r = -ENOMEM;
    if (input && cwd && env && grace) {
        const aiod_value *opts[] = {args[0], input, cwd, env, grace};
        r = run(t, api, argv, opts, ret);
    }
    api->value_free(input);
    api->value_free(cwd);
    api->value_free(env);
    api->value_free(grace);
    free(argv);
    return r;
}

/* proc.shell(command: string, input, cwd, env, grace) */
static int proc_shell(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    const char *argv[] = {"/bin/sh", "-c", api->get_string(args[0]), NULL};
    return run(t, api, argv, args, ret);
}

static const struct aiod_param exec_params[] = {
    {"program", AIOD_TYPE_STRING, NULL},               /* looked up in PATH */
    {"args", AIOD_TYPE_STRING | AIOD_TYPE_REST, NULL}, /* the rest of the words */
};

static const struct aiod_param run_params[] = {
    {"argv", AIOD_TYPE_LIST, NULL},   /* the program, then its arguments */
    {"input", AIOD_TYPE_STRING, ""},  /* written to stdin */
    {"cwd", AIOD_TYPE_STRING, ""},    /* "": the daemon's */
    {"env", AIOD_TYPE_ANY, "null"},   /* null or ["KEY=VALUE", ...] */
    {"grace", AIOD_TYPE_DOUBLE, "5"}, /* SIGTERM to SIGKILL on cancellation */
};

static const struct aiod_param shell_params[] = {
    {"command", AIOD_TYPE_STRING, NULL}, /* for /bin/sh -c */
    {"input", AIOD_TYPE_STRING, ""},     /* stdin, as for exec */
    {"cwd", AIOD_TYPE_STRING, ""},       /* working directory */
    {"env", AIOD_TYPE_ANY, "null"},      /* environment */
    {"grace", AIOD_TYPE_DOUBLE, "5"},    /* kill grace, seconds */
};

static const struct aiod_function proc_functions[] = {
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "exec",
        .doc = "Run a program with arguments, stream its output, return {exit, stdout, stderr}.",
        .params = exec_params,
        .n_params = sizeof(exec_params) / sizeof(exec_params[0]),
        .result_type = AIOD_TYPE_MAP,
        .fn = proc_exec,
    },
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "run",
        .doc = "Run argv (a JSON list: program, then arguments) with input, cwd, env and "
               "kill grace; stream its output, return {exit, stdout, stderr}.",
        .params = run_params,
        .n_params = sizeof(run_params) / sizeof(run_params[0]),
        .result_type = AIOD_TYPE_MAP,
        .fn = proc_run,
    },
    {
        .struct_size = sizeof(struct aiod_function),
        .name = "shell",
        .doc = "Run a command line with /bin/sh -c, stream its output, "
               "return {exit, stdout, stderr}.",
        .params = shell_params,
        .n_params = sizeof(shell_params) / sizeof(shell_params[0]),
        .result_type = AIOD_TYPE_MAP,
        .fn = proc_shell,
    },
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "proc",
    .version = "1.1.0",
    .functions = proc_functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(proc_functions) / sizeof(proc_functions[0]),
};
