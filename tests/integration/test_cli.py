"""aioctl's basics: plugins, help, usage errors, an unreachable daemon,
--json output; and what a newcomer meets: global options after the command,
errors worded for what was typed, ps's columns, bash completion."""

import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import time

import harness

t = harness.Suite(__file__)


@t.test
def output_that_cannot_be_written_is_an_error():
    """aioctl(1), exit 6: a submit whose id cannot be written (stdout on a
    full disk) must not exit 0; a run streaming into a reader that went away
    (EPIPE, SIGPIPE ignored as under a systemd service) stops at once."""
    with t.daemon() as d:
        with open("/dev/full", "w") as full:
            p = subprocess.run(d.ctl_argv("submit", "demo.echo", "lost-id"), stdout=full,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60,
                               env=harness.clean_env())
        err = p.stderr.decode("utf-8", "replace")
        t.eq(p.returncode, 6, "exit status of a submit writing to /dev/full", " stderr %r" % err)
        t.contains(err, "No space left on device", "aioctl says why", " stderr %r" % err)
        # The task exists: its id is on stderr, so that it can be found.
        tid = [x["task"] for x in d.ps(all_tasks=True) if "lost-id" in x["call"]]
        t.eq(len(tid), 1, "the task was submitted")
        t.contains(err, "task %d was submitted, but its id could not be written" % tid[0],
                   "aioctl gives the id on stderr", " stderr %r" % err)
        with open("/dev/full", "w") as full:
            p = subprocess.run(d.ctl_argv("--help"), stdout=full, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, timeout=60, env=harness.clean_env())
        t.eq(p.returncode, 6, "exit status of --help writing to /dev/full", " %r" % p.stderr)

        # A task printing forever, its reader gone: without the check aioctl
        # would read and discard output until the task ended (never).
        script = 'trap "" PIPE; "$@" | head -n 1; echo "aioctl ${PIPESTATUS[0]}" >&2'
        try:
            p = subprocess.run(["bash", "-c", script, "bash"] +
                               d.ctl_argv("run", "proc.exec", "--", "yes"),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                               env=harness.clean_env())
        except subprocess.TimeoutExpired:
            harness.fail("aioctl run kept reading a task's output for 60 s after its reader left")
        t.eq(p.stdout.decode(), "y\n", "head got its line", p)
        t.contains(p.stderr.decode(), "aioctl 6", "aioctl exited 6 once its reader left", p)
        deadline = time.monotonic() + 30
        while True:
            r = d.aioctl("--json", "ps", "--function", "proc.exec")
            if r.rc == 0 and r.out.strip() == "":
                break
            t.check(time.monotonic() < deadline, "the run's task is cancelled once aioctl exits",
                    " (ps: %r)" % r.out)
            time.sleep(0.05)


@t.test
def a_closed_stdout_or_stderr_is_not_the_daemon_connection():
    """Started with descriptor 1 or 2 closed, aioctl got its connection to
    the daemon on that number, and wrote its own output (a task's id, a
    task's lines) into it: the daemon dropped it for a broken frame, and
    the task of a run was cancelled. Now the output fails (exit 6) and the
    connection is untouched."""
    with t.daemon() as d:
        argv = " ".join("'%s'" % a for a in d.ctl_argv("submit", "demo.echo", "kept"))
        p = subprocess.run(["sh", "-c", "exec %s >&-" % argv], stdin=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=60, env=harness.clean_env())
        t.eq(p.returncode, 6, "a submit with stdout closed", p.stderr)
        argv = " ".join("'%s'" % a for a in d.ctl_argv(
            "run", "proc.shell", "echo err >&2; sleep 0.2; echo out"))
        p = subprocess.run(["sh", "-c", "exec %s 2>&-" % argv], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, timeout=60, env=harness.clean_env())
        lines = p.stdout.decode().splitlines()
        t.eq(lines[:1], ["out"], "the run's stdout line, with stderr closed", p)
        t.contains(lines[-1] if lines else "", '"exit":0', "and its result", p)
        t.check("dropping the client" not in d.log() and "max_frame" not in d.log(),
                "the daemon never saw aioctl's own output", d.log()[-2000:])
        done = [x for x in d.ps(all_tasks=True) if x["function"] in ("demo.echo", "proc.shell")]
        t.eq(sorted(x["state"] for x in done), ["done", "done"], "both tasks ended well", done)


@t.test
def too_many_ids_and_too_long_schedules_are_usage_errors():
    """More than 100,000 ids (or CALLs) gave a bare "Invalid argument"; a
    --delay of 1e300 passed aioctl and the library and was refused by the
    daemon without naming the option."""
    with t.daemon() as d:
        ids = [str(i) for i in range(1, 100002)]
        for cmd in ("cancel", "await"):
            r = d.aioctl(cmd, *ids)
            t.eq(r.rc, 2, "%s of 100,001 ids" % cmd, r.err)
            t.contains(r.err, "100001 task ids: at most 100000", "%s names the limit" % cmd,
                       r.err)
        for opt in ("--delay", "--backoff", "--backoff-max"):
            r = d.aioctl("submit", "--retries", "1", opt, "1e300", "demo.sleep", "0")
            t.eq(r.rc, 2, "submit %s 1e300" % opt, r)
            t.contains(r.err, opt, "the error names the option", r)
            t.contains(r.err, "at most 1e+09 seconds", "and the bound", r)


@t.test
def a_zero_timeout_is_refused_not_taken_for_no_limit():
    """--timeout 0 reached the library as "no limit": an await that was
    asked not to wait waited forever."""
    with t.daemon() as d:
        for cmd in (("await", "--timeout", "0", "1"), ("run", "--timeout", "0", "demo.echo", "x"),
                    ("gather", "--timeout", "0", "demo.echo x")):
            r = d.aioctl(*cmd, timeout=30)
            t.eq(r.rc, 2, "aioctl %s: exit status" % " ".join(cmd), r)
            t.contains(r.err, "above 0", "aioctl %s says what a timeout must be" % cmd[0], r)
        # The units the schedule options take: 500ms was refused there.
        r = d.aioctl("run", "--timeout", "300ms", "demo.sleep", "30", "x", timeout=30)
        t.eq(r.rc, 4, "run --timeout 300ms times out (exit 4)", r)
        r = d.aioctl("submit", "--at", "@0", "demo.echo", "at-the-epoch")
        t.eq(r.rc, 0, "submit --at @0: a time in the past, at once", r)
        t.eq(d.aioctl("await", r.out.strip()).rc, 0, "and it ran")


def fake_daemon(path, talk):
    """A listener at `path` that hands its first client's socket to
    talk(c) in a thread (returned, started), then closes."""
    import socket
    import threading
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)

    def serve():
        c, _ = lsock.accept()
        with c:
            c.settimeout(30)
            talk(c)
        lsock.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return th


def refusing_daemon(path, code, message):
    """A listener at `path` that answers one client's hello with Error{code,
    message}, as aiod does for another protocol version (3), when it stops or
    cannot start (13), or at its connection limit (8)."""
    def talk(c):
        c.recv(65536)  # the hello
        err = harness.field_varint(1, code) + harness.field_bytes(2, message.encode())
        reply = harness.field_varint(1, 1) + harness.field_bytes(harness.SM_ERROR, err)
        c.sendall(harness.frame(reply))

    return fake_daemon(path, talk)


@t.test
def a_refused_hello_exits_as_the_man_page_says():
    """aioctl(1): 3 when the daemon cannot be reached (protocol mismatch,
    shutting down, or it could not start), 2 when it refuses (a limit)."""
    for code, msg, want in ((3, "protocol version 99 is not supported (this aiod speaks 1)", 3),
                            (13, "aiod cannot start: /etc/aiod/aiod.conf:2: max_frame", 3),
                            (8, "too many connections (max_connections = 1)", 2)):
        path = os.path.join(t.tmpdir("refuse"), "aiod.sock")
        th = refusing_daemon(path, code, msg)
        r = harness.run([t.aioctl, "-s", path, "ps"], env=harness.clean_env())
        th.join(30)
        t.eq(r.rc, want, "aioctl's exit status when the hello gets error code %d" % code, r)
        t.contains(r.err, msg, "aioctl prints the daemon's reason", r)


def fake_daemon_ending_a_followed_stream(path):
    """A listener at `path` serving one aioctl run with a schedule: the
    hello; the followed Submit answered Submitted, one line of output, then
    an Error that ends the stream (as aiod does past max_in_flight streams,
    or at a stop); the Await answered with a null result."""
    fv, fb = harness.field_varint, harness.field_bytes

    def reply(c, rid, body_num, body):
        c.sendall(harness.frame(fv(1, rid) + fb(body_num, body)))

    def talk(c):
        buf = b""
        while True:
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            n = int.from_bytes(buf[:4], "big")
            msg, buf = harness.parse_fields(buf[4:4 + n]), buf[4 + n:]
            rid = msg[1][0]
            if 2 in msg:  # Hello
                reply(c, rid, 3, fv(1, 1) + fb(2, b"0.2.0") + fv(3, 4 << 20) + fv(4, 64))
            elif 3 in msg:  # Submit, followed
                reply(c, rid, 4, fv(1, 7))
                reply(c, rid, 10, fv(1, 7) + fv(2, 1) + fb(3, b"first"))
                reply(c, rid, 2, fv(1, 8) + fb(2, b"task 7 runs unfollowed: too many output "
                                                b"streams on this connection"))
            elif 4 in msg:  # Await
                reply(c, rid, 5, fb(1, fv(1, 7) + fv(2, 3)))

    return fake_daemon(path, talk)


@t.test
def a_scheduled_run_says_why_its_output_stopped():
    """aioctl run with a schedule follows a submitted task: when the daemon
    ends that stream with an Error (too many streams: the task runs
    unfollowed), the output stops there, and aioctl says why after the
    outcome (it once waited for ever, then said nothing)."""
    path = os.path.join(t.tmpdir("fakerun"), "s")
    th = fake_daemon_ending_a_followed_stream(path)
    r = harness.run([t.aioctl, "-s", path, "run", "--delay", "0", "demo.echo", "x"],
                    env=harness.clean_env(), timeout=30)
    th.join(5)
    t.eq(r.rc, 0, "exit status: the task is done", r)
    t.eq(r.out.split("\n")[:2], ["first", "null"], "the line that came, then the outcome", r)
    t.contains(r.err, "output stopped coming: task 7 runs unfollowed", "and why the rest did not", r)


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


# ---------------------------------------------------------------- as a newcomer meets it


@t.test
def run_errors_are_the_runs_own():
    # aioctl run sends a one-item gather; its refusal must not read as a gather's.
    with t.daemon() as d:
        cases = [(("demo.sleep", "abc"), "demo.sleep: parameter 'seconds'"),
                 (("demo.nope",), "unknown function 'demo.nope'"),
                 (("demo.sleep", "1", "2", "3"), "demo.sleep: takes at most 2 arguments")]
        for args, part in cases:
            r = d.aioctl("run", *args)
            t.eq(r.rc, 2, "run %s: exit code" % " ".join(args), r)
            t.contains(r.err, "aioctl: " + part, "run %s: the run's own error" % " ".join(args), r)
            t.check("gather" not in r.err, "run %s: the error speaks of a gather" % " ".join(args),
                    r)
        # A real gather keeps naming its item.
        r = d.aioctl("gather", "demo.echo 1", "demo.sleep abc")
        t.eq(r.rc, 2, "gather with a bad item: exit code", r)
        t.contains(r.err, "gather item 2: demo.sleep: parameter 'seconds'",
                   "gather names the refused item", r)


@t.test
def global_options_after_the_command():
    with t.daemon() as d:
        s = d.socket
        # --json and --socket after the command, in every spelling.
        for argv in (("run", "--json", "-s", s, "demo.echo", "x"),
                     ("run", "--socket", s, "--json", "demo.echo", "x"),
                     ("run", "--socket=" + s, "--json", "--timeout", "5", "demo.echo", "x"),
                     ("--json", "run", "-s" + s, "demo.echo", "x")):
            r = t.ctl(*argv)
            t.eq(r.rc, 0, "aioctl %s: exit code" % " ".join(argv), r)
            t.eq(json.loads(r.lines[-1]).get("result"), "x", "aioctl %s" % " ".join(argv), r)
        r = t.ctl("ps", "--json", "-s", s)
        t.eq((r.rc, r.out), (0, ""), "ps --json -s SOCKET with no tasks", r)
        r = t.ctl("submit", "-s", s, "demo.sleep", "30", "a")
        t.eq(r.rc, 0, "submit -s SOCKET", r)
        tid = r.out.strip()
        # Commands without a FUNC take global options after their operands too.
        r = t.ctl("show", tid, "--json", "--socket", s)
        t.eq(r.rc, 0, "show ID --json --socket SOCKET: exit code", r)
        t.eq(json.loads(r.lines[-1]).get("task"), int(tid), "show ID --json --socket SOCKET", r)
        r = t.ctl("ps", "-s", s, "--json")
        t.eq([json.loads(l)["task"] for l in r.lines], [int(tid)], "ps -s SOCKET --json", r)
        r = t.ctl("cancel", tid, "-s", s)
        t.eq(r.rc, 0, "cancel ID -s SOCKET", r)
        r = t.ctl("await", tid, "--json", "-s", s)
        t.eq(r.rc, 5, "await ID --json -s SOCKET of the cancelled task: exit code", r)
        t.eq(json.loads(r.lines[-1])["error"]["kind"], "CancelledError",
             "await ID --json -s SOCKET of the cancelled task", r)
        r = t.ctl("ps", "--version")
        t.eq(r.rc, 0, "ps --version", r)
        t.contains(r.out, "aioctl ", "ps --version prints the version", r)
        # After FUNC, and after "--", words are the call's arguments.
        r = d.aioctl("run", "demo.echo", "--json")
        t.eq((r.rc, r.lines), (0, ['"--json"']), "run demo.echo --json passes --json on", r)
        r = d.aioctl("run", "proc.exec", "--", "echo", "--json", "-s", "x")
        t.eq((r.rc, r.lines[:1]), (0, ["--json -s x"]),
             "run proc.exec -- echo --json -s x: echo's own arguments", r)
        t.contains(r.lines[-1], '"stdout":"--json -s x\\n"', "the result is plain JSON", r)
        r = d.aioctl("run", "--", "proc.exec", "echo", "--json")
        t.eq((r.rc, r.lines[:1]), (0, ["--json"]), "run -- proc.exec echo --json", r)


@t.test
def options_are_named_as_typed():
    cases = [(("--socket",), "'--socket' needs a value"),
             (("--sock",), "'--sock' needs a value"),
             (("-s",), "'-s' needs a value"),
             (("--socket=", "ps"), "'--socket' needs a path"),
             (("-s", "", "ps"), "'-s' needs a path"),
             (("ps", "--socket"), "'--socket' needs a value"),
             (("run", "--timeout"), "'--timeout' needs a value"),
             (("run", "--timeout", "soon", "demo.sleep"), "'--timeout' wants a time above 0"),
             (("run", "-t", "soon", "demo.sleep"), "'-t' wants a time above 0"),
             (("--json=yes", "ps"), "'--json' takes no value"),
             (("ps", "--bogus"), "'--bogus' is unknown"),
             (("ps", "-x"), "'-x' is unknown"),
             (("ps", "-ax"), "'-x' is unknown")]
    for argv, part in cases:
        what = "aioctl %s" % " ".join(map(shlex.quote, argv))
        r = t.ctl(*argv)
        t.eq(r.rc, 2, what + ": exit code", r)
        t.contains(r.err, part, what + ": the error", r)


@t.test
def unknown_task_worded_once():
    want = "aioctl: no task 9999 (it never existed, or its result is no longer retained)\n"
    with t.daemon() as d:
        for args in (("show", "9999"), ("cancel", "9999"), ("await", "9999"), ("logs", "9999"),
                     ("logs", "-f", "9999")):
            r = d.aioctl(*args)
            t.eq((r.rc, r.err), (2, want), "aioctl %s" % " ".join(args), r)
        r = d.aioctl("submit", "demo.sleep", "30")
        t.eq(r.rc, 0, "submit", r)
        r = d.aioctl("cancel", r.out.strip(), "9999")
        t.eq((r.rc, r.err), (2, want), "cancel of a known and an unknown task", r)
        r = d.aioctl("gather", "demo.echo 1", "9999")
        t.eq((r.rc, r.err), (2, want.replace("aioctl: ", "aioctl: gather item 2: ")),
             "gather of an unknown task", r)


def ps_rows(r):
    """`aioctl ps` as (header, {id: cells}); cells are split at blanks, the
    last one (CALL) keeps its blanks."""
    t.check(r.lines, "ps printed no header", r)
    head = r.lines[0].split()
    rows = {}
    for line in r.lines[1:]:
        cells = line.split(None, len(head) - 1)
        rows[cells[0]] = cells
    return head, rows


@t.test
def ps_shows_user_and_call():
    me = pwd.getpwuid(os.getuid()).pw_name
    with t.daemon() as d:
        ids = []
        for arg in ("first", "second"):
            r = d.aioctl("submit", "demo.sleep", "30", arg)
            t.eq(r.rc, 0, "submit", r)
            ids.append(r.out.strip())
        r = d.aioctl("ps")
        t.eq(r.rc, 0, "ps exit code", r)
        head, rows = ps_rows(r)
        t.eq(head, ["ID", "STATE", "OWNER", "AGE", "CALL"], "ps columns", r)
        js = {str(o["task"]): o for o in d.ps()}
        for tid, arg in zip(ids, ("first", "second")):
            t.check(tid in rows, "ps lists task %s" % tid, r)
            t.eq(rows[tid][2], me, "OWNER of task %s is the user's name" % tid, r)
            t.eq(rows[tid][4], "demo.sleep 30.0 " + arg, "CALL of task %s: the call and its typed "
                 "arguments" % tid, r)
            o = js[tid]
            # --json keeps its fields and adds the user's name and the call.
            t.eq((o["function"], o["uid"], o["user"], o["call"]),
                 ("demo.sleep", os.getuid(), me, rows[tid][4]), "ps --json of task %s" % tid,
                 " %r" % o)
            t.check(o["pid"] > 0 and o["created_usec"] > 0 and o["ownership"] == "submitted",
                    "ps --json keeps pid, created_usec and ownership", " %r" % o)
        r = d.aioctl("show", ids[0])
        t.contains(r.out, "owner: %s (uid %d), pid " % (me, os.getuid()), "show names the owner",
                   r)
        if os.geteuid() != 0:
            print("(not root: an owner without a passwd entry is not tried)", flush=True)
            return
        # An owner with no passwd entry shows as the uid number.
        nameless = 4242
        t.check(not any(p.pw_uid == nameless for p in pwd.getpwall()),
                "uid %d has a passwd entry on this machine" % nameless)
        os.chmod(t._tmp, 0o755)
        os.chmod(d.dir, 0o755)
        os.chmod(d.socket, 0o666)

        def drop():
            os.setgroups([])
            os.setgid(nameless)
            os.setuid(nameless)

        p = subprocess.run(d.ctl_argv("submit", "demo.sleep", "30", "x"), capture_output=True,
                           env=harness.clean_env(), preexec_fn=drop, timeout=30)
        t.eq(p.returncode, 0, "submit as uid %d (stderr %r)" % (nameless, p.stderr))
        tid = p.stdout.decode().strip()
        r = d.aioctl("ps")
        head, rows = ps_rows(r)
        t.eq(rows.get(tid, [None] * 3)[2], str(nameless), "OWNER without a passwd entry", r)
        o = [o for o in d.ps() if str(o["task"]) == tid]
        t.eq((o[0]["uid"], o[0]["user"]) if o else None, (nameless, None),
             "ps --json: user is null without a passwd entry", " %r" % o)


# ---------------------------------------------------------------- ps: filters and pages

# Next to aioctl in the build tree (client/CMakeLists.txt builds both).
LIST_EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(t.aioctl)), "aioc-list-example")


def ps_ids(d, *args):
    """The task ids `aioctl ps ARGS` lists, in its order, checked to be the
    same in the table and in --json (valid JSON, one object a line)."""
    r = d.aioctl("ps", *args)
    t.eq(r.rc, 0, "ps %s exit code" % " ".join(args), r)
    t.check(r.lines and r.lines[0].split()[:2] == ["ID", "STATE"],
            "ps %s starts with its header" % " ".join(args), r)
    t.check(not any(l.startswith("ID ") for l in r.lines[1:]),
            "ps %s prints its header once" % " ".join(args), r)
    table = [l.split()[0] for l in r.lines[1:]]
    r = d.aioctl("--json", "ps", *args)
    t.eq(r.rc, 0, "ps --json %s exit code" % " ".join(args), r)
    js = []
    for line in r.lines:
        try:
            js.append(str(json.loads(line)["task"]))
        except (ValueError, KeyError):
            harness.fail("ps --json %s printed %r" % (" ".join(args), line))
    t.eq(js, table, "ps %s: the same tasks in the table and in --json" % " ".join(args), r)
    return table


@t.test
def ps_filters_by_state_function_owner_and_limit():
    me = pwd.getpwuid(os.getuid()).pw_name
    with t.daemon() as d:
        ids = {}
        for name, call in (("s1", ("demo.sleep", "30", "a")), ("s2", ("demo.sleep", "30", "b")),
                           ("s3", ("demo.sleep", "30", "c")), ("echo", ("demo.echo", "hi")),
                           ("fail", ("demo.fail", "ValueError", "boom"))):
            r = d.aioctl("submit", *call)
            t.eq(r.rc, 0, "submit %s" % " ".join(call), r)
            ids[name] = r.out.strip()
        t.eq(d.aioctl("await", ids["echo"]).rc, 0, "await demo.echo")
        t.eq(d.aioctl("await", ids["fail"]).rc, 1, "await demo.fail")
        t.eq(d.aioctl("cancel", ids["s3"]).rc, 0, "cancel the third sleep")
        t.eq(d.aioctl("await", ids["s3"]).rc, 5, "await the cancelled sleep")
        s1, s2, s3, echo, fail = (ids[k] for k in ("s1", "s2", "s3", "echo", "fail"))

        t.eq(ps_ids(d), [s1, s2], "ps: the unfinished tasks")
        t.eq(ps_ids(d, "--all"), [s1, s2, s3, echo, fail], "ps --all: in id order")
        t.eq(ps_ids(d, "--state", "running"), [s1, s2], "ps --state running")
        t.eq(ps_ids(d, "--state", "done,failed"), [echo, fail],
             "ps --state done,failed: finished states list ended tasks without --all")
        t.eq(ps_ids(d, "--state", "cancelled", "--state", "done"), [s3, echo],
             "ps --state repeated")
        t.eq(ps_ids(d, "--state", "pending"), [], "ps --state pending: none")
        t.eq(ps_ids(d, "--function", "demo.sleep"), [s1, s2], "ps --function demo.sleep")
        t.eq(ps_ids(d, "--all", "--function", "demo.sleep"), [s1, s2, s3],
             "ps --all --function demo.sleep")
        t.eq(ps_ids(d, "--all", "--function", "demo."), [s1, s2, s3, echo, fail],
             "ps --all --function demo.: every function of the plugin")
        t.eq(ps_ids(d, "--all", "--function", "demo.fail", "--function", "demo.echo"),
             [echo, fail], "ps --function repeated")
        t.eq(ps_ids(d, "--all", "--function", "proc."), [], "ps --all --function proc.: none")
        t.eq(ps_ids(d, "--all", "--function", "demo.sl"), [],
             "ps --function is exact unless it ends with a dot")
        t.eq(ps_ids(d, "--owner", me), [s1, s2], "ps --owner NAME")
        t.eq(ps_ids(d, "--owner", str(os.getuid()), "--all", "--state", "done"), [echo],
             "ps --owner UID with --state")
        t.eq(ps_ids(d, "--owner", "4242"), [], "ps --owner of someone without tasks")
        if os.getuid() == 0:
            # 00 is 0 written with a leading zero, not "too large".
            t.eq(ps_ids(d, "--owner", "00"), [s1, s2], "ps --owner 00 (root)")
        t.eq(ps_ids(d, "--owner", "4242", "--owner", me), [s1, s2], "ps --owner repeated")
        t.eq(ps_ids(d, "--all", "--limit", "2"), [s1, s2], "ps --all --limit 2: the first two")
        t.eq(ps_ids(d, "--all", "--limit", "9"), [s1, s2, s3, echo, fail],
             "ps --limit above the number of tasks")
        t.eq(ps_ids(d, "--state", "running,done", "--function", "demo.", "--owner", me,
                    "--limit", "3"), [s1, s2, echo], "every filter at once")


@t.test
def ps_usage_errors():
    for args, want in ((("--state", "sleeping"), "'sleeping' is not a task state"),
                       (("--state", "running,"), "'' is not a task state"),
                       (("--owner", "no-such-user-here"), "no user 'no-such-user-here'"),
                       (("--owner", "99999999999"), "uid 99999999999 is too large"),
                       (("--function", "sleep"), "'sleep' is not a function name"),
                       (("--function", ".sleep"), "'.sleep' is not a function name"),
                       (("--limit", "0"), "'0' is not a number of tasks"),
                       (("--limit", "ten"), "'ten' is not a number of tasks"),
                       (("--state",), "--state")):
        r = t.ctl("ps", *args)
        t.eq(r.rc, 2, "exit code of ps %s" % " ".join(args), r)
        t.contains(r.err, want, "ps %s: the error" % " ".join(args), r)
    r = t.ctl("ps", "--help")
    for opt in ("--state", "--function", "--owner", "--limit"):
        t.contains(r.out, opt, "ps --help names %s" % opt, r)


def list_pages(d, *args):
    """aioc-list-example's pages: a list of lists of ids (strings)."""
    r = harness.run([LIST_EXAMPLE, "-s", d.socket] + list(args), timeout=60,
                    env=harness.clean_env())
    t.eq(r.rc, 0, "aioc-list-example %s exit code" % " ".join(args), r)
    pages = []
    for line in r.lines[:-1]:
        head, _, ids = line.partition(" tasks:")
        pages.append(ids.split())
        t.eq(len(pages[-1]), int(head.split()[-1]), "page size as printed", r)
    t.eq(r.lines[-1], "total: %d tasks in %d pages" % (sum(map(len, pages)), len(pages)),
         "aioc-list-example's total", r)
    return pages


@t.test
def ps_pages_through_many_tasks():
    t.check(os.path.exists(LIST_EXAMPLE), "aioc-list-example is built at %s" % LIST_EXAMPLE)
    n = 10005  # more than one of the daemon's pages (10,000)
    with t.daemon() as d:
        g = d.aioctl_bg("gather", *(["demo.sleep 60"] * n))
        deadline = time.monotonic() + 60
        listed = []
        while len(listed) < n and time.monotonic() < deadline and g.proc.poll() is None:
            # Querying the state until the gather's tasks exist.
            listed = d.ps()
        listed = ps_ids(d)
        t.eq(len(listed), n, "ps lists every task of the gather (gather still running: %s)"
             % (g.proc.poll() is None))
        ids = [int(i) for i in listed]
        t.check(all(a < b for a, b in zip(ids, ids[1:])),
                "ps over two pages: ids strictly ascending, none twice")
        t.eq(ps_ids(d, "--limit", "10002"), listed[:10002], "ps --limit across a page boundary")
        t.eq(ps_ids(d, "--state", "running", "--limit", "3"), listed[:3], "ps --limit 3")

        pages = list_pages(d)
        t.eq([len(p) for p in pages], [10000, 5], "aioc_list_page with no limit: the daemon's "
             "pages of 10,000")
        t.eq(sum(pages, []), listed, "aioc_list_page: the same tasks as ps")
        pages = list_pages(d, "-n", "4000", "-S", "2", "-f", "demo.sleep", "-u", str(os.getuid()))
        t.check(len(pages) >= 3 and all(len(p) <= 4000 for p in pages),
                "aioc_list_page with limit 4000: pages of at most 4000, got %r"
                % [len(p) for p in pages])
        t.eq(sum(pages, []), listed, "aioc_list_page with limit 4000: every task once, in order")
        pages = list_pages(d, "-S", "5")
        t.eq(sum(pages, []), [], "aioc_list_page -S cancelled: none yet")
        r = harness.run([LIST_EXAMPLE, "-s", d.socket, "-S", "9"], env=harness.clean_env())
        t.eq(r.rc, 2, "aioc_list_query_add_state(9) is refused", r)
        r = harness.run([LIST_EXAMPLE, "-s", d.socket, "-f", "nodot"], env=harness.clean_env())
        t.eq(r.rc, 2, "aioc_list_query_add_function(\"nodot\") is refused", r)
        g.kill(signal.SIGTERM)
        g.wait(30)


# ---------------------------------------------------------------- dropped output lines

DROPPED = re.compile(r"^aioctl: (?:(.*): )?(\d+) output lines? (?:were|was) dropped \(the daemon's "
                     r"buffer of the task's output overflowed before aioctl read them\)$")


def dropped_counts(err):
    """{what: count} of the dropped-lines messages on stderr ("" for run's)."""
    out = {}
    for line in err.splitlines():
        m = DROPPED.match(line)
        if m:
            out[m.group(1) or ""] = out.get(m.group(1) or "", 0) + int(m.group(2))
    return out


def read_later(d, argv_args, until):
    """Runs aioctl ARGS with its stdout in a pipe nobody reads until
    `until()` has returned (so aioctl blocks on it and the daemon's buffer
    of the task's output overflows), then reads everything; a Result."""
    p = subprocess.Popen(d.ctl_argv(*argv_args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=harness.clean_env())
    try:
        until()
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return harness.Result(d.ctl_argv(*argv_args), p.returncode, out.decode(), err.decode(), 0)


def seq_lines(lines, n, r):
    """Checks that lines are some of "1".."n", in order; returns how many."""
    nums = [int(l) for l in lines]
    t.check(all(0 < a < b <= n for a, b in zip(nums, nums[1:])) and all(0 < x <= n for x in nums),
            "the printed lines are some of 1..%d, in order" % n, r)
    return len(nums)


@t.test
def run_says_how_many_output_lines_were_dropped():
    # Far more than the daemon queues for a follower (256 KiB) and the
    # socket and pipe buffers hold.
    n = harness.scaled(300000, 150000, 100000)
    # aioctl run's task is held back while aioctl reads nothing, for
    # output_hold_ms (10 s by default), before its lines are dropped.
    with t.daemon(extra_args=["--output-hold-ms", "200"]) as d:
        r = d.aioctl("run", "proc.shell", "seq 1 1000")
        t.eq((r.rc, len(r.lines), dropped_counts(r.err)), (0, 1001, {}),
             "a run read in time: every line, the result, no dropped message", r)

        def finished():
            # The run's task (the second proc.shell) is kept once done.
            d.wait_task(lambda tk: tk["function"] == "proc.shell" and tk["state"] == "done" and
                        "seq 1 %d" % n in tk["call"], "proc.shell seq 1 %d done" % n, timeout=60)

        r = read_later(d, ("run", "proc.shell", "seq 1 %d" % n), finished)
        t.eq(r.rc, 0, "run exit code", r)
        printed = seq_lines(r.lines[:-1], n, r)
        counts = dropped_counts(r.err)
        t.check(counts.get("", 0) > 0, "aioctl run says that lines were dropped", r)
        t.eq(printed + counts[""], n, "lines printed + lines said dropped = lines printed by the "
             "task", r)
        t.check(r.err.rstrip().splitlines()[-1].startswith("aioctl: "),
                "the dropped message is the last thing on stderr", r)


@t.test
def logs_follow_says_how_many_output_lines_were_dropped():
    n = harness.scaled(300000, 150000, 100000)
    with t.daemon() as d:
        r = d.aioctl("submit", "proc.shell", "sleep 1; seq 1 %d" % n)
        t.eq(r.rc, 0, "submit", r)
        tid = r.out.strip()

        def finished():
            d.wait_task(lambda tk: str(tk["task"]) == tid and tk["state"] == "done",
                        "%s done" % tid, timeout=60)

        r = read_later(d, ("logs", "-f", tid), finished)
        t.eq(r.rc, 0, "logs -f exit code", r)
        printed = seq_lines(r.lines, n, r)
        gone = re.search(r"the first (\d+) lines of task %s are no longer kept" % tid, r.err)
        gone = int(gone.group(1)) if gone else 0
        counts = dropped_counts(r.err)
        more = counts.get("logs: task %s" % tid, 0)
        t.check(gone + more > 0, "logs -f says that lines were dropped", r)
        t.eq(printed + gone + more, n, "lines printed + lines said gone or dropped = lines "
             "printed by the task", r)


# ---------------------------------------------------------------- bash completion

COMPLETION = harness.COMPLETION


def complete(*words, env=None):
    """COMPREPLY of the aioctl completion for `aioctl WORDS...` (the built
    aioctl), the last word being the one completed."""
    return harness.bash_complete(t, words, env)


@t.test
def bash_completion():
    t.check(os.path.isfile(COMPLETION), "the completion script exists at %s" % COMPLETION)
    r = t.ctl("--help")
    listed = r.out.split("Commands:\n")[1].split("\n\n")[0].splitlines()
    t.eq(complete(""), sorted(l.split()[0] for l in listed), "aioctl <TAB>: the commands of --help")
    t.eq(complete("pl"), ["plugins"], "aioctl pl<TAB>")
    t.eq(complete("ps", "--a"), ["--all"], "aioctl ps --a<TAB>")
    t.eq(complete("run", "--js"), ["--json"], "aioctl run --js<TAB>: a global option after it")
    t.eq(complete("--so"), ["--socket"], "aioctl --so<TAB>")
    t.check("--timeout" in complete("run", "--"), "aioctl run --<TAB> offers --timeout")
    t.eq(complete("gather", "--return-ex"), ["--return-exceptions"],
         "aioctl gather --return-ex<TAB>")
    with t.daemon() as d:
        t.eq(complete("-s", d.socket, "run", "demo.sl"), ["demo.sleep"],
             "aioctl -s SOCKET run demo.sl<TAB>")
        # bash splits "--socket=PATH" at '=' (COMP_WORDBREAKS) into three words.
        t.eq(complete("run", "--socket", "=", d.socket, "--timeout", "3", "demo.e"), ["demo.echo"],
             "aioctl run --socket=SOCKET --timeout 3 demo.e<TAB>")
        t.eq(complete("--sock=" + d.socket, "detach", "demo.e"), ["demo.echo"],
             "aioctl --sock=SOCKET detach demo.e<TAB>, with '=' not a word break")
        t.eq(complete("submit", "demo.he", env={"AIOD_SOCKET": d.socket}), ["demo.hello"],
             "AIOD_SOCKET=SOCKET aioctl submit demo.he<TAB>")
        t.eq(complete("-s", d.socket, "gather", "demo.echo 1", "demo.fa"), ["demo.fail"],
             "aioctl gather CALL demo.fa<TAB>")
        funcs = complete("-s", d.socket, "run", "")
        t.check("demo.sleep" in funcs and "proc.exec" in funcs and
                "demo.my_async_function1" not in funcs,
                "aioctl run <TAB>: the callable functions, got %r" % funcs)
        # After FUNC the words are the function's: no function names there.
        t.eq(complete("-s", d.socket, "run", "demo.echo", "demo.sl"), [],
             "aioctl run demo.echo demo.sl<TAB>")
        r = d.aioctl("submit", "demo.sleep", "30")
        t.eq(r.rc, 0, "submit", r)
        tid = r.out.strip()
        t.eq(complete("-s", d.socket, "cancel", ""), [tid], "aioctl cancel <TAB>: task ids")
    # A daemon that cannot be reached gives no names and no noise.
    gone = os.path.join(t.tmpdir(), "gone.sock")
    t.eq(complete("-s", gone, "run", "demo.sl"), [], "completion with no daemon")


@t.test
def bash_completion_of_ps():
    t.eq(complete("ps", "--st"), ["--state"], "aioctl ps --st<TAB>")
    for opt in ("--all", "--state", "--function", "--owner", "--limit"):
        t.check(opt in complete("ps", "--"), "aioctl ps --<TAB> offers %s" % opt)
    t.eq(complete("ps", "--state", "r"), ["running"], "aioctl ps --state r<TAB>")
    t.eq(complete("ps", "--state", "done,f"), ["done,failed"], "aioctl ps --state done,f<TAB>")
    t.eq(complete("ps", "--state", "=", "c"), ["cancelled"], "aioctl ps --state=c<TAB>")
    t.eq(complete("ps", "--owner", "roo"), ["root"], "aioctl ps --owner roo<TAB>")
    t.eq(complete("ps", "--limit", ""), [], "aioctl ps --limit <TAB>: a number")
    # After an option's value, options again.
    t.eq(complete("ps", "--limit", "3", "--a"), ["--all"], "aioctl ps --limit 3 --a<TAB>")
    with t.daemon() as d:
        t.eq(complete("-s", d.socket, "ps", "--function", "demo.sl"), ["demo.sleep"],
             "aioctl ps --function demo.sl<TAB>")
        got = complete("-s", d.socket, "ps", "--function", "pro")
        t.check("proc." in got and "proc.shell" in got,
                "aioctl ps --function pro<TAB>: the plugin and its functions, got %r" % got)


t.main()
