/*
 * Test plugin "proctest": api->proc_run under test (test_proc.py), for what
 * the bundled proc plugin does not expose.
 *
 *   proctest.summary(argv, input_len)  runs argv with input_len bytes of a
 *                                      known pattern on stdin, not streamed;
 *                                      returns sizes and types instead of the
 *                                      (possibly huge) output
 *   proctest.stack_stdin(n)            runs `cat` (after 0.2 s) with argv and
 *                                      1 MiB of stdin in this task's stack
 *                                      (more than the stdio socketpair holds,
 *                                      so the write outlives the suspension;
 *                                      needs aiod --stack-size 4M); true if
 *                                      cat echoed it
 *   proctest.spec_errors()             the codes for invalid specs (all -EINVAL)
 *   proctest.many(n, width)            n processes, `width` tasks at a time,
 *                                      mixing success, stdin, exit codes and
 *                                      programs not found; counts surprises
 *
 * Built against the installed header only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <aiod/plugin.h>

static int init(const struct aiod_api *api) {
    return api->struct_size < offsetof(struct aiod_api, proc_run) + sizeof(api->proc_run) ? -ENOSYS
                                                                                          : 0;
}

static void fill_pattern(char *buf, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 61 == 60) ? '\n' : (char)('a' + (i * 7 + seed) % 26);
}

static const char *const *argv_of(const struct aiod_api *api, const aiod_value *list) {
    size_t n = api->length(list);
    const char **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = api->get_string(api->list_get(list, i)))) {
            free(v);
            return NULL;
        }
    return v;
}

static int map_int(const struct aiod_api *api, aiod_value *m, const char *key, int64_t i) {
    return api->map_set(m, key, api->value_int(i));
}

static int fn_summary(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                      aiod_value **ret) {
    const char *const *argv = argv_of(api, args[0]);
    size_t in_len = (size_t)api->get_int(args[1]);
    if (!argv || !argv[0])
        return api->fail(t, "ValueError", "argv: a non-empty list of strings");
    char *input = in_len ? malloc(in_len) : NULL;
    if (in_len && !input) {
        free((void *)argv);
        return -ENOMEM;
    }
    fill_pattern(input, in_len, 0);
    struct aiod_proc_spec spec = {
        .struct_size = sizeof(spec),
        .argv = argv,
        .stdin_data = input,
        .stdin_len = in_len,
    };
    aiod_value *res = NULL;
    int r = api->proc_run(t, &spec, &res);
    free((void *)argv);
    if (r < 0) {
        free(input);
        return r;
    }
    aiod_value *m = api->value_map();
    const aiod_value *out = api->map_get(res, "stdout");
    size_t out_len = 0;
    const void *data = api->get_bytes(out, &out_len);
    const char *s = api->get_string(out);
    if (s) {
        data = s;
        out_len = strlen(s);
    }
    const aiod_value *trunc = api->map_get(res, "stdout_truncated");
    const aiod_value *written = api->map_get(res, "stdout_bytes");
    int matches = in_len == out_len && (in_len == 0 || memcmp(data, input, in_len) == 0);
    if (!m || map_int(api, m, "exit", api->get_int(api->map_get(res, "exit"))) < 0 ||
        map_int(api, m, "stdout_len", (int64_t)out_len) < 0 ||
        api->map_set(m, "stdout_type", api->value_string(s ? "string" : "bytes")) < 0 ||
        api->map_set(m, "stdout_truncated", api->value_bool(trunc && api->get_bool(trunc))) < 0 ||
        map_int(api, m, "stdout_bytes", written ? api->get_int(written) : -1) < 0 ||
        api->map_set(m, "matches_input", api->value_bool(matches)) < 0) {
        api->value_free(m);
        m = NULL;
    }
    api->value_free(res);
    free(input);
    *ret = m;
    return m ? 0 : -ENOMEM;
}

#define STACK_STDIN (1024 * 1024)

static int fn_stack_stdin(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                          aiod_value **ret) {
    char input[STACK_STDIN];
    /* cat starts reading only after the task has suspended and others have
     * run over the stack, so most of the input is written late. */
    char prog[] = "/bin/sh", script[] = "sleep 0.2; exec cat";
    const char *argv[] = {prog, "-c", script, NULL};
    fill_pattern(input, sizeof(input), (unsigned)api->get_int(args[0]));
    struct aiod_proc_spec spec = {
        .struct_size = sizeof(spec),
        .argv = argv,
        .stdin_data = input,
        .stdin_len = sizeof(input),
    };
    aiod_value *res = NULL;
    int r = api->proc_run(t, &spec, &res);
    if (r < 0)
        return r;
    const char *out = api->get_string(api->map_get(res, "stdout"));
    int ok = out && strlen(out) == sizeof(input) && memcmp(out, input, sizeof(input)) == 0;
    api->value_free(res);
    *ret = api->value_bool(ok);
    return *ret ? 0 : -ENOMEM;
}

static int fn_spec_errors(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                          aiod_value **ret) {
    (void)args;
    const char *argv[] = {"true", NULL};
    const char *empty[] = {NULL};
    const char *bad_env[] = {"NOEQUALS", NULL};
    struct aiod_proc_spec base = {.struct_size = sizeof(base), .argv = argv};
    struct aiod_proc_spec s[7];
    for (int i = 0; i < 7; i++)
        s[i] = base;
    s[0].flags = 0x80000000u; /* unknown flag */
    s[1].stdin_len = 10;      /* length without data */
    s[2].kill_grace = -1;     /* negative grace */
    s[3].struct_size = 8;     /* too small */
    s[4].argv = NULL;         /* no argv */
    s[5].argv = empty;        /* no program */
    s[6].envp = bad_env;      /* env entry without '=' */
    aiod_value *list = api->value_list();
    for (int i = 0; list && i < 7; i++) {
        aiod_value *res = NULL;
        int r = api->proc_run(t, &s[i], &res);
        api->value_free(res);
        if (api->list_append(list, api->value_int(r)) < 0) {
            api->value_free(list);
            list = NULL;
        }
    }
    *ret = list;
    return list ? 0 : -ENOMEM;
}

/* One process of proctest.many's mix; 0 when it went as expected. */
static int one_process(aiod_task *t, const struct aiod_api *api, int64_t i) {
    const char *true_argv[] = {"true", NULL};
    const char *cat_argv[] = {"cat", NULL};
    const char *missing_argv[] = {"/nonexistent/aiod-test-program", NULL};
    const char *exit_argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    struct aiod_proc_spec spec = {.struct_size = sizeof(spec)};
    aiod_value *res = NULL;
    int want_exit = 0, r;
    switch (i % 4) {
    case 0:
        spec.argv = true_argv;
        break;
    case 1:
        spec.argv = cat_argv;
        spec.stdin_data = "x\n";
        spec.stdin_len = 2;
        break;
    case 2:
        spec.argv = missing_argv;
        return api->proc_run(t, &spec, &res) == -ENOENT ? 0 : -EPROTO;
    default:
        spec.argv = exit_argv;
        spec.flags = AIOD_PROC_STREAM_OUTPUT;
        want_exit = 3;
        break;
    }
    r = api->proc_run(t, &spec, &res);
    if (r < 0)
        return r;
    const char *out = api->get_string(api->map_get(res, "stdout"));
    int ok = api->get_int(api->map_get(res, "exit")) == want_exit && out &&
             strcmp(out, i % 4 == 0   ? ""
                         : i % 4 == 1 ? "x\n"
                                      : "out\n") == 0;
    api->value_free(res);
    return ok ? 0 : -EPROTO;
}

static int fn_many_part(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                        aiod_value **ret) {
    int64_t first = api->get_int(args[0]), n = api->get_int(args[1]), bad = 0;
    for (int64_t i = first; i < first + n; i++) {
        int r = one_process(t, api, i);
        if (r == -ECANCELED)
            return r;
        if (r < 0) {
            if (bad++ == 0)
                api->log(t, LOG_ERR, "proctest: process #%lld: %s", (long long)i, strerror(-r));
        }
    }
    *ret = api->value_int(bad);
    return *ret ? 0 : -ENOMEM;
}

static int fn_many(aiod_task *t, const struct aiod_api *api, const aiod_value *const *args,
                   aiod_value **ret) {
    int64_t n = api->get_int(args[0]), width = api->get_int(args[1]);
    if (n < 0 || width < 1 || width > 64)
        return api->fail(t, "ValueError", "n >= 0 and 1 <= width <= 64");
    aiod_child *c[64];
    int64_t per = (n + width - 1) / width, started = 0;
    size_t k = 0;
    int r = 0;
    for (; k < (size_t)width && started < n; k++) {
        int64_t cnt = n - started < per ? n - started : per;
        aiod_value *cargs[2] = {api->value_int(started), api->value_int(cnt)};
        r = api->spawn(t, "proctest.many_part", cargs, 2, &c[k]);
        if (r < 0)
            break;
        started += cnt;
    }
    aiod_value *results = NULL;
    if (r >= 0)
        r = api->gather(t, c, k, 0, &results);
    for (size_t i = 0; i < k; i++)
        api->child_release(t, c[i]);
    if (r < 0)
        return r;
    int64_t bad = 0;
    for (size_t i = 0; i < api->length(results); i++)
        bad += api->get_int(api->list_get(results, i));
    api->value_free(results);
    aiod_value *m = api->value_map();
    if (!m || map_int(api, m, "runs", started) < 0 || map_int(api, m, "bad", bad) < 0) {
        api->value_free(m);
        return -ENOMEM;
    }
    *ret = m;
    return 0;
}

static const struct aiod_param summary_params[] = {
    {"argv", AIOD_TYPE_LIST, NULL},
    {"input_len", AIOD_TYPE_INT, "0"},
};
static const struct aiod_param stack_params[] = {
    {"seed", AIOD_TYPE_INT, "0"},
};
static const struct aiod_param many_params[] = {
    {"n", AIOD_TYPE_INT, NULL},
    {"width", AIOD_TYPE_INT, "8"},
};
static const struct aiod_param part_params[] = {
    {"first", AIOD_TYPE_INT, NULL},
    {"n", AIOD_TYPE_INT, NULL},
};

#define FN(nm, fl, d, p, np, rt, f)                                                                \
    {                                                                                              \
        .struct_size = sizeof(struct aiod_function), .flags = fl, .name = nm, .doc = d,            \
        .params = p, .n_params = np, .result_type = rt, .fn = f,                                   \
    }

static const struct aiod_function functions[] = {
    FN("summary", 0, "Run argv with input_len bytes on stdin; sizes and types of the output.",
       summary_params, 2, AIOD_TYPE_MAP, fn_summary),
    FN("stack_stdin", 0, "cat 72 KiB of stdin held in the task's stack; true if echoed.",
       stack_params, 1, AIOD_TYPE_BOOL, fn_stack_stdin),
    FN("spec_errors", 0, "proc_run's codes for seven invalid specs.", NULL, 0, AIOD_TYPE_LIST,
       fn_spec_errors),
    FN("many", 0, "Run n processes, width at a time; {runs, bad}.", many_params, 2, AIOD_TYPE_MAP,
       fn_many),
    FN("many_part", AIOD_FN_INTERNAL, "Processes first..first+n-1 of many.", part_params, 2,
       AIOD_TYPE_INT, fn_many_part),
};

AIOD_PLUGIN_EXPORT const struct aiod_plugin aiod_plugin = {
    AIOD_PLUGIN_HEAD,
    .name = "proctest",
    .version = "1.0.0",
    .functions = functions,
    .function_size = sizeof(struct aiod_function),
    .n_functions = sizeof(functions) / sizeof(functions[0]),
    .init = init,
};
