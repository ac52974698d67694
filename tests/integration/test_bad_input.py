"""Bad input gets a clear error and costs nothing else: while one client's
task runs normally, another sends garbage, oversized frames, unknown
functions, wrong types, requests before hello, a wrong protocol version.
Also the framing edge cases: empty frames, a frame in one-byte writes,
several frames in one write."""

import os
import struct

import harness
from harness import (ERROR_PROTOCOL, ERROR_UNSUPPORTED_VERSION, SM_ERROR, SM_HELLO,
                     SM_PLUGIN_LIST, frame, msg_hello, msg_list_plugins)

t = harness.Suite(__file__)


def while_another_runs(d, bad):
    """Starts `aioctl run demo.sleep 2 ok`, waits until its task runs, does
    the bad thing, then checks that run still printed "ok" and exited 0 and
    that the daemon is alive."""
    p = d.aioctl_bg("run", "demo.sleep", "2", "ok")
    d.wait_task(lambda x: x["pid"] == p.pid and x["state"] == "running",
                "running for aioctl pid %d" % p.pid, all_tasks=False)
    bad()
    d.assert_alive()
    r = p.wait(timeout=20)
    t.eq(r.rc, 0, "the other client's run: exit code", r)
    t.eq(r.lines, ['"ok"'], "the other client's run: result", r)
    t.check(r.elapsed < 3.5, "the other client's run was not held up", r)
    d.assert_alive()
    # And the daemon still serves new clients.
    r = d.aioctl("run", "demo.echo", "fine")
    t.eq((r.rc, r.lines), (0, ['"fine"']), "a new client after the bad input", r)


def hello(c):
    t.check(c.send_frame(msg_hello(1, 1)), "could not send hello")
    rep = c.recv()
    t.check(rep is not None and rep.kind == SM_HELLO, "expected a HelloReply, got %r" % rep)
    return rep


@t.test
def random_bytes():
    with t.daemon() as d:
        def bad():
            with d.raw() as c:
                c.send(os.urandom(64 * 1024))
                replies = c.expect_closed()  # fails on a hang
                t.check(all(r.kind == SM_ERROR for r in replies),
                        "only Error replies to garbage, got %r" % replies)
        while_another_runs(d, bad)


@t.test
def huge_frame_header():
    with t.daemon() as d:
        def bad():
            rss = d.rss_kib()
            with d.raw() as c:
                hello(c)
                c.send(struct.pack(">I", 0xFFFFFFFF) + b"\0" * 64)
                replies = c.expect_closed()
                t.eq(len(replies), 1, "replies before the close: %r" % replies)
                t.eq(replies[0].kind, SM_ERROR, "reply to a 4 GiB frame header")
                t.contains(replies[0].error_message, "max_frame", "the error names the limit")
            grew = d.rss_kib() - rss
            t.check(grew < 64 * 1024, "daemon RSS grew by %d KiB after a 4 GiB header" % grew)
        while_another_runs(d, bad)


@t.test
def huge_frame_header_before_hello():
    with t.daemon() as d:
        def bad():
            with d.raw() as c:
                c.send(struct.pack(">I", 0xFFFFFFFF))
                replies = c.expect_closed()
                t.check(len(replies) <= 1 and all(r.kind == SM_ERROR for r in replies),
                        "at most one Error before the close, got %r" % replies)
        while_another_runs(d, bad)


@t.test
def unknown_function():
    with t.daemon() as d:
        def bad():
            r = d.aioctl("run", "nosuch.fn")
            t.eq(r.rc, 2, "exit code for an unknown function", r)
            t.contains(r.err, "nosuch.fn", "the error names the function", r)
        while_another_runs(d, bad)


@t.test
def wrong_argument_type():
    with t.daemon() as d:
        def bad():
            r = d.aioctl("run", "demo.sleep", "abc")
            t.eq(r.rc, 2, "exit code for a bad argument", r)
            for part in ("demo.sleep", "seconds", "abc"):
                t.contains(r.err, part, "the error names the function, parameter and value", r)
            r = d.aioctl("run", "demo.sleep", "1", "2", "3")
            t.eq(r.rc, 2, "exit code for too many arguments", r)
            t.contains(r.err, "demo.sleep", "the error names the function", r)
            r = d.aioctl("run", "demo.sleep")
            t.eq(r.rc, 2, "exit code for a missing argument", r)
            t.contains(r.err, "seconds", "the error names the missing parameter", r)
        while_another_runs(d, bad)


@t.test
def request_before_hello():
    with t.daemon() as d:
        def bad():
            with d.raw() as c:
                c.send_frame(msg_list_plugins(1))
                replies = c.expect_closed()
                t.eq(len(replies), 1, "replies before the close: %r" % replies)
                t.eq(replies[0].kind, SM_ERROR, "reply to a request before hello")
                t.eq(replies[0].error_code, ERROR_PROTOCOL, "error code (ERROR_PROTOCOL)",
                     " %r" % replies[0])
        while_another_runs(d, bad)


@t.test
def unsupported_protocol_version():
    with t.daemon() as d:
        def bad():
            with d.raw() as c:
                c.send_frame(msg_hello(7, 99))
                rep = c.recv()
                t.check(rep is not None, "connection closed without an Error for version 99")
                t.eq(rep.kind, SM_ERROR, "reply to hello with version 99", " %r" % rep)
                t.eq(rep.error_code, ERROR_UNSUPPORTED_VERSION,
                     "error code (ERROR_UNSUPPORTED_VERSION)", " %r" % rep)
                t.eq(rep.request_id, 7, "the Error echoes the request id")
        while_another_runs(d, bad)


@t.test
def second_hello():
    with t.daemon() as d:
        with d.raw() as c:
            hello(c)
            c.send_frame(msg_hello(2, 1))
            rep = c.recv()
            t.check(rep is not None and rep.kind == SM_ERROR,
                    "expected an Error for a second hello, got %r" % rep)
            t.eq(rep.error_code, ERROR_PROTOCOL, "error code", " %r" % rep)


@t.test
def zero_length_frame():
    with t.daemon() as d:
        def bad():
            # Before hello and after it: an Error or a close, never a hang.
            with d.raw() as c:
                c.send(frame(b""))
                replies = c.expect_closed()
                t.check(all(r.kind == SM_ERROR for r in replies),
                        "only Error replies to an empty frame, got %r" % replies)
            with d.raw() as c:
                hello(c)
                c.send(frame(b""))
                rep = c.recv()
                t.check(rep is None or rep.kind == SM_ERROR,
                        "an Error or a close for an empty frame after hello, got %r" % rep)
        while_another_runs(d, bad)


@t.test
def frame_in_one_byte_writes():
    with t.daemon() as d:
        with d.raw() as c:
            for b in frame(msg_hello(3, 1)):
                t.check(c.send(bytes([b])), "the daemon closed during a split hello")
            rep = c.recv()
            t.check(rep is not None and rep.kind == SM_HELLO,
                    "expected a HelloReply to a hello sent a byte at a time, got %r" % rep)
            t.eq(rep.request_id, 3, "HelloReply echoes the request id")
            t.eq(rep.body.get(1, [0])[0], 1, "HelloReply protocol_version")
            t.check(rep.body.get(3, [0])[0] >= 1024, "HelloReply carries max_frame",
                    " %r" % rep.body)
            # The connection still works for a whole-frame request.
            c.send_frame(msg_list_plugins(4))
            rep = c.recv()
            t.check(rep is not None and rep.kind == SM_PLUGIN_LIST,
                    "expected a PluginList, got %r" % rep)


@t.test
def several_frames_in_one_write():
    with t.daemon() as d:
        with d.raw() as c:
            c.send(frame(msg_hello(1, 1)) + frame(msg_list_plugins(2))
                   + frame(msg_list_plugins(3)))
            got = [c.recv() for _ in range(3)]
            t.check(all(r is not None for r in got), "connection closed: %r" % got)
            t.eq([(r.request_id, r.kind) for r in got],
                 [(1, SM_HELLO), (2, SM_PLUGIN_LIST), (3, SM_PLUGIN_LIST)],
                 "replies to hello + two requests in one write")
            t.contains(got[1].payload.decode("utf-8", "replace"), "demo.sleep",
                       "PluginList lists demo.sleep")


@t.test
def truncated_protobuf():
    # A well-framed message whose protobuf is cut short: an Error naming a
    # decoding problem, or a close.
    with t.daemon() as d:
        def bad():
            with d.raw() as c:
                hello(c)
                c.send_frame(msg_list_plugins(5)[:-1] + b"\x7f")  # body of 127 bytes, none sent
                rep = c.recv()
                t.check(rep is None or rep.kind == SM_ERROR,
                        "an Error or a close for a truncated message, got %r" % rep)
        while_another_runs(d, bad)


# ---------------------------------------------------------------- start-up

@t.test
def missing_plugin_dir_is_named():
    # A --plugin-dir that does not exist, next to one that does: the daemon
    # starts with the plugins it found and says which directory it could not
    # read, and why.
    missing = os.path.join(t.tmpdir("noplug"), "no-such-dir")
    with t.daemon(extra_args=("--plugin-dir", missing)) as d:
        line = d.wait_log("'%s'" % missing, timeout=10)
        t.contains(line, "plugin directory '%s': No such file or directory" % missing,
                   "the log line names the missing directory and the reason")
        t.contains(line, "warning", "a directory asked for and missing is a warning")
        r = d.aioctl("run", "demo.echo", "fine")
        t.eq((r.rc, r.lines), (0, ['"fine"']), "plugins of the other directory load", r)


@t.test
def plugin_dir_that_is_a_file_is_named():
    path = os.path.join(t.tmpdir("plugfile"), "not-a-dir")
    with open(path, "w") as f:
        f.write("a file\n")
    with t.daemon(extra_args=("--plugin-dir", path)) as d:
        line = d.wait_log("'%s'" % path, timeout=10)
        t.contains(line, "plugin directory '%s': Not a directory" % path,
                   "the log line names the directory and the reason")


def check_config(conf, *flags):
    env = harness.clean_env()
    env["AIOD_CONFIG"] = conf
    return harness.run([t.aiod, "--check-config"] + list(flags), env=env)


@t.test
def check_config_without_a_settings_file():
    # $AIOD_CONFIG (like the built-in default) may be absent: that is valid,
    # but nothing was checked, and the output must say so.
    missing = os.path.join(t.tmpdir("noconf"), "aiod.conf")
    r = check_config(missing)
    t.eq(r.rc, 0, "running without a settings file is allowed", r)
    first = r.out.splitlines()[0] if r.out else ""
    t.contains(first, "# %s does not exist" % missing, "the first line names the missing file", r)
    t.check("OK" not in first, "a missing file is not reported as OK", r)
    t.contains(first, "the settings below are the built-in defaults", "which settings apply", r)
    t.check("flags" not in first, "no flags were given, so none are mentioned", r)
    for line in ("max_frame = 4194304", "max_tasks = 1048576", "stack_size = 262144"):
        t.contains(r.out, line, "the built-in defaults are printed", r)
    t.check(not os.path.exists(missing), "the check created no file")

    r = check_config(missing, "--max-tasks", "7")
    t.eq(r.rc, 0, "a valid flag without a settings file", r)
    first = r.out.splitlines()[0] if r.out else ""
    t.contains(first, "the built-in defaults and the flags given", "the flags are mentioned", r)
    t.contains(r.out, "max_tasks = 7", "the flag's value is printed", r)


@t.test
def check_config_of_an_empty_settings_file():
    conf = os.path.join(t.tmpdir("emptyconf"), "aiod.conf")
    open(conf, "w").close()
    r = check_config(conf)
    t.eq(r.rc, 0, "an empty settings file is valid", r)
    t.eq(r.out.splitlines()[0] if r.out else "", "# %s: OK" % conf,
         "a file that exists and was read is OK", r)


t.main()
