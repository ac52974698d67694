"""aioctl's basics: plugins, help, usage errors, an unreachable daemon,
--json output."""

import json
import os

import harness

t = harness.Suite(__file__)


@t.test
def plugins_lists_public_functions():
    with t.daemon() as d:
        r = d.aioctl("plugins")
        t.eq(r.rc, 0, "exit code", r)
        sleep = [l for l in r.lines if l.startswith("demo.sleep")]
        t.eq(len(sleep), 1, "lines describing demo.sleep", r)
        for part in ("seconds", "double", "result"):
            t.contains(sleep[0], part, "demo.sleep's signature", r)
        t.check("my_async_function1" not in r.out, "internal function listed by plugins", r)
        for name in ("demo.main_sequential", "demo.main_gather", "demo.main_tasks",
                     "demo.main_nowait", "demo.fail", "demo.echo"):
            t.contains(r.out, name, "plugins lists %s" % name, r)


@t.test
def internal_function_cannot_be_called():
    with t.daemon() as d:
        r = d.aioctl("run", "demo.my_async_function1", "0", "true")
        t.eq(r.rc, 2, "exit code for calling an internal function from a client", r)


@t.test
def help_and_usage():
    r = t.ctl("--help")
    t.eq(r.rc, 0, "aioctl --help exit code", r)
    t.contains(r.out, "Usage", "aioctl --help", r)
    for cmd in ("run", "submit", "await", "gather", "detach", "cancel", "ps", "show", "logs",
                "plugins"):
        r = t.ctl(cmd, "--help")
        t.eq(r.rc, 0, "aioctl %s --help exit code" % cmd, r)
        t.contains(r.out, "Usage", "aioctl %s --help" % cmd, r)
    r = t.ctl("frobnicate")
    t.eq(r.rc, 2, "exit code for an unknown command", r)
    t.contains(r.err, "frobnicate", "the error names the unknown command", r)
    r = t.ctl()
    t.eq(r.rc, 2, "exit code without a command", r)
    r = t.ctl("run", "--timeout", "soon", "demo.sleep", "1")
    t.eq(r.rc, 2, "exit code for a bad --timeout", r)
    r = t.ctl("await", "notanid")
    t.eq(r.rc, 2, "exit code for a bad task id", r)


@t.test
def daemon_not_running():
    path = os.path.join(t.tmpdir(), "nobody-here.sock")
    r = t.ctl("-s", path, "run", "demo.sleep", "1")
    t.eq(r.rc, 3, "exit code when the daemon cannot be reached", r)
    t.contains(r.err, path, "the error names the socket path", r)
    r = t.ctl("-s", path, "ps")
    t.eq(r.rc, 3, "ps: exit code when the daemon cannot be reached", r)


@t.test
def json_lines():
    with t.daemon() as d:
        r = d.aioctl("--json", "run", "demo.main_gather", timeout=20)
        t.eq(r.rc, 0, "exit code", r)
        objs = []
        for line in r.lines:
            try:
                o = json.loads(line)
            except ValueError:
                harness.fail("--json printed a line that is not JSON: %r%s" % (line, r))
            t.check(isinstance(o, dict), "--json line is not an object: %r" % line, r)
            objs.append(o)
        outputs = [o["output"] for o in objs if "output" in o]
        t.eq(outputs, ["Starting main function", "Hello from my async function 1",
                       "Hello from my async function 2", "Done with async function 2",
                       "Done with async function 1", "Done with main function"],
             "--json output lines", r)
        t.eq(objs[-1].get("result"),
             ["my_async_function1 result", "my_async_function2 result"],
             "--json result object (last line)", r)


@t.test
def json_errors():
    with t.daemon() as d:
        r = d.aioctl("--json", "run", "demo.fail", "ValueError", "boom")
        t.eq(r.rc, 1, "exit code", r)
        o = json.loads(r.lines[-1])
        t.eq(o.get("error"), {"kind": "ValueError", "message": "boom"}, "--json error object", r)


@t.test
def logs_of_a_finished_task():
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.hello", "you")
        t.eq(r.rc, 0, "submit exit code", r)
        tid = r.out.strip()
        r = d.aioctl("await", tid)
        t.eq(r.lines, ['"hello done"'], "await result", r)
        r = d.aioctl("logs", tid)
        t.eq(r.rc, 0, "logs exit code", r)
        t.eq(r.lines, ["Hello, you!"], "logs of the task", r)


@t.test
def logs_and_show_of_a_silent_finished_task():
    # A retained task that printed nothing keeps no output buffer; logs,
    # logs -f and show still answer for it.
    with t.daemon() as d:
        r = d.aioctl("submit", "demo.echo", "quiet")
        t.eq(r.rc, 0, "submit exit code", r)
        tid = r.out.strip()
        r = d.aioctl("await", tid)
        t.eq(r.lines, ['"quiet"'], "await result", r)
        for args in (("logs", tid), ("logs", "-f", tid)):
            r = d.aioctl(*args, timeout=10)
            t.eq((r.rc, r.lines), (0, []), "aioctl %s of a task that printed nothing" %
                 " ".join(args), r)
        info = d.task(tid)
        t.eq((info["state"], info.get("output_lines", 0)), ("done", 0),
             "show: state and lines printed", " %r" % info)
        r = d.aioctl("run", "demo.echo", "x")
        t.eq((r.rc, r.lines), (0, ['"x"']), "the daemon still serves", r)


t.main()
