"""Child processes (api->proc_run) against a real daemon and real programs:
the bundled proc plugin (proc.exec, proc.run, proc.shell) and the test plugin
tests/plugins/proctest.c. argv, stdin, env, cwd, exit codes, signals, a
missing program, live streaming of output lines, binary and oversized
output (a result cut to fit max_result, never a failed task; output lines as
valid UTF-8), cancellation (TERM; KILL after the grace for a child that
ignores TERM), no process of a task's group outliving it, children dying
with a SIGKILLed daemon, no systemd variables in the child, no descriptors
leaked into it, and after 10,000 processes the same descriptors in aiod and
no zombies.

Processes are told apart by a marker argument unique to this run
(`sleep 1000.<pid><n>`), never by a name other processes on the machine
may share."""

import base64
import itertools
import json
import os
import subprocess
import time

import harness

t = harness.Suite(__file__)
PROCTEST = None


def daemon(**kw):
    return t.daemon(extra_args=("--plugin-dir", PROCTEST), **kw)


def result(r, rc=0):
    t.eq(r.rc, rc, "aioctl exit code", r)
    return json.loads(r.lines[-1])


_serial = itertools.count(1)


def marker():
    """A `sleep` duration no other process on the machine has in its
    command line: 1000 s and a fraction made of this script's pid and a
    counter."""
    return "1000.%d%04d" % (os.getpid(), next(_serial))


def wait_gone(m, what, timeout=5):
    """Asserts that no live process runs `sleep M` within `timeout` s (a
    signal is delivered asynchronously; kill() returning is not enough)."""
    deadline = time.monotonic() + timeout
    while harness.processes_running(["sleep", m]) and time.monotonic() < deadline:
        time.sleep(0.02)  # state query under a deadline
    t.eq(harness.processes_running(["sleep", m]), [], what)


def wait_running(m, timeout=10):
    """The pids running `sleep M` once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        pids = harness.processes_running(["sleep", m])
        if pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.02)  # state query under a deadline


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def raw_aioctl(d, *args):
    """aioctl's stdout as bytes, undecoded (the harness replaces what is not
    UTF-8, which would hide the daemon sending it)."""
    p = subprocess.run(d.ctl_argv(*args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60, env=harness.clean_env())
    t.eq(p.returncode, 0, "aioctl %s exit code" % " ".join(args), p.stderr)
    return p.stdout


def no_children(d, what):
    """aiod has no child processes left, zombie or not (the exit callback
    reaped each one before its task ended)."""
    kids = harness.children_of(d.proc.pid)
    t.eq(kids, [], "children of aiod %s" % what)


@t.test
def exec_echo():
    with daemon() as d:
        r = d.aioctl("run", "proc.run", '["/bin/echo", "hello", "world"]')
        m = result(r)
        t.eq(m, {"exit": 0, "stdout": "hello world\n", "stderr": ""}, "result of /bin/echo", r)
        t.eq(r.lines[0], "hello world", "the output line was streamed before the result", r)
        # argv[0] without a slash is looked up in the (minimal) PATH.
        t.eq(result(d.aioctl("run", "proc.run", '["echo", "-n", "x"]'))["stdout"], "x",
             "echo found through PATH")


@t.test
def exec_words_after_double_dash():
    # The issue's own example shape: program and arguments as words, "--"
    # keeping "-n" an argument rather than an aioctl option.
    with daemon() as d:
        r = d.aioctl("run", "proc.exec", "--", "/bin/echo", "-n", "hello", "world")
        m = result(r)
        t.eq(m, {"exit": 0, "stdout": "hello world", "stderr": ""}, "proc.exec -- echo", r)
        r = d.aioctl("plugins")
        t.contains(r.out, "proc.exec(program: string, *args: string)",
                   "the rest parameter shows as *args", r)
        r = d.aioctl("run", "proc.exec", "--", "sh", "-c", "exit 7")
        t.eq(result(r)["exit"], 7, "a non-zero exit is a result", r)


@t.test
def stdin_through_cat():
    with daemon() as d:
        m = result(d.aioctl("run", "proc.run", '["cat"]', "line one\nline two\n"))
        t.eq(m["stdout"], "line one\nline two\n", "cat echoes its stdin")
        # 1 MiB: more than a pipe holds, so writing and reading interleave.
        m = result(d.aioctl("run", "proctest.summary", '["cat"]', str(1 << 20)))
        t.eq((m["stdout_len"], m["matches_input"]), (1 << 20, True), "1 MiB through cat", m)


@t.test
def stdin_and_argv_from_the_task_stack():
    # Ten tasks at once, each with 1 MiB of stdin in its own stack (hence the
    # 4 MiB stacks). The child reads only after 0.2 s, when the other tasks
    # have run over the shared run stack: the write must come from a copy.
    with t.daemon(extra_args=("--plugin-dir", PROCTEST, "--stack-size", str(4 << 20))) as d:
        r = d.aioctl("gather", *["proctest.stack_stdin %d" % i for i in range(10)])
        t.eq(result(r), [True] * 10, "every cat echoed its own stack-held input", r)


@t.test
def env_and_cwd():
    with daemon() as d:
        env = '["FOO=bar", "NOTIFY_SOCKET=/run/x", "LISTEN_FDS=3", "LISTEN_PID=1", ' \
              '"WATCHDOG_USEC=1000", "WATCHDOG_PID=1"]'
        m = result(d.aioctl("run", "proc.run", '["/usr/bin/env"]', "", "", env))
        t.eq(m["stdout"], "FOO=bar\n", "the given env minus systemd's variables")
        where = os.path.realpath(t.tmpdir("cwd"))
        m = result(d.aioctl("run", "proc.run", '["/bin/pwd"]', "", where))
        t.eq(m["stdout"], where + "\n", "cwd honoured")
        r = d.aioctl("run", "proc.run", '["/bin/pwd"]', "", os.path.join(where, "missing"))
        t.eq(r.rc, 1, "a missing cwd fails the task", r)
        t.contains(r.err, "FileNotFoundError", "named as FileNotFoundError", r)


@t.test
def systemd_variables_of_the_daemon_do_not_reach_children():
    extra = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "x",
             "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}
    with harness.daemon_with_env(t, extra, extra_args=("--plugin-dir", PROCTEST)) as d:
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            denv = f.read().split(b"\0")
        for k in (b"NOTIFY_SOCKET=", b"LISTEN_FDS=", b"WATCHDOG_USEC="):
            t.check(any(e.startswith(k) for e in denv), "setup: aiod's env holds %r" % k)
        m = result(d.aioctl("run", "proc.run", '["/usr/bin/env"]'))
        keys = sorted(l.split("=", 1)[0] for l in m["stdout"].splitlines())
        t.eq(keys, ["HOME", "LANG", "PATH"], "the minimal environment, nothing else", m)
        m = result(d.aioctl("run", "proc.shell", "env"))
        t.check("NOTIFY_SOCKET" not in m["stdout"] and "LISTEN_" not in m["stdout"] and
                "WATCHDOG_" not in m["stdout"], "no systemd variable in a shell's env", m)


@t.test
def exit_codes_and_signals():
    with daemon() as d:
        r = d.aioctl("run", "proc.shell", "echo out; echo err >&2; exit 7")
        m = result(r)
        t.eq(m, {"exit": 7, "stdout": "out\n", "stderr": "err\n"}, "non-zero exit is a result")
        t.contains(r.err, "err", "the stderr line was streamed too", r)
        m = result(d.aioctl("run", "proc.shell", "kill -KILL $$"))
        t.eq(m["exit"], -9, "killed by SIGKILL: exit -9")
        m = result(d.aioctl("run", "proc.shell", "kill -TERM $$"))
        t.eq(m["exit"], -15, "killed by SIGTERM: exit -15")


@t.test
def a_child_starts_clean():
    """What the child of proc gets before its program runs (api/spawn.c):
    every signal at its default and none blocked, whatever the daemon
    catches, blocks or ignores; a session and process group of its own;
    LIMIT_PROC_NICE (5) nice levels below the daemon."""
    with daemon() as d:
        daemon_nice = int(open("/proc/%d/stat" % d.proc.pid).read().rsplit(")", 1)[1].split()[16])
        # The masks are read by the program the shell becomes (exec), from
        # its own status: the shell itself (dash) blocks every signal while
        # it starts a command, so reading the shell's status from a command
        # it started saw every signal blocked in about 1 run in 100 under load.
        m = result(d.aioctl("run", "proc.run", json.dumps(
            ["/bin/sh", "-c",
             "cat /proc/$$/stat; exec grep -E '^Sig(Blk|Ign):' /proc/self/status"])))
        lines = m["stdout"].splitlines()
        stat = lines[0].rsplit(")", 1)[1].split()
        pid = int(lines[0].split()[0])
        t.eq(int(stat[2]), pid, "the child leads its own process group")
        t.eq(int(stat[3]), pid, "and its own session")
        t.eq(int(stat[16]), min(daemon_nice + 5, 19), "5 nice levels below the daemon (%d)"
             % daemon_nice)
        sig = dict(ln.split(":\t") for ln in lines[1:])
        t.eq(sig.get("SigBlk"), "0000000000000000", "no signal blocked")
        t.eq(sig.get("SigIgn"), "0000000000000000", "no signal ignored (aiod ignores SIGPIPE)")


@t.test
def program_not_found():
    with daemon() as d:
        for argv in ('["/nonexistent/aiod-prog"]', '["aiod-no-such-program"]'):
            r = d.aioctl("run", "proc.run", argv)
            t.eq(r.rc, 1, "a missing program fails the task", r)
            t.contains(r.err, "FileNotFoundError", "named as FileNotFoundError", r)
            t.contains(r.err, "aiod-", "the error names the program", r)
        r = d.aioctl("run", "proc.run", "[]")
        t.eq(r.rc, 1, "empty argv fails", r)
        t.contains(r.err, "ValueError", "as a ValueError", r)
        codes = result(d.aioctl("run", "proctest.spec_errors"))
        t.eq(codes, [-22] * 7, "invalid specs give -EINVAL")


@t.test
def output_is_streamed_as_it_comes():
    with daemon() as d:
        run = d.aioctl_bg("run", "proc.shell", "echo first; sleep 0.5; echo second")
        a = run.next_line(timeout=10)
        b = run.next_line(timeout=10)
        t.eq((a[1], b[1]), ("first", "second"), "the two lines")
        t.check(b[0] - a[0] >= 0.4, "'first' came 0.5 s before 'second' (live), got %.2f s"
                % (b[0] - a[0]))
        t.eq(run.wait(timeout=10).rc, 0, "run exit code")


@t.test
def binary_and_oversized_output():
    with daemon() as d:
        m = result(d.aioctl("run", "proc.shell", r"printf '\377\376'"))
        t.eq(m["stdout"], {"$bytes": "//4="}, "output that is not UTF-8 comes back as bytes")
        m = result(d.aioctl("run", "proctest.summary", '["head", "-c", "20000000", "/dev/zero"]'))
        cap = 16 * 1024 * 1024
        t.eq((m["exit"], m["stdout_len"], m["stdout_truncated"], m["stdout_bytes"],
              m["stdout_type"]), (0, cap, True, 20000000, "bytes"),
             "20 MB of output: 16 MiB kept, all of it counted")
        d.wait_log("bytes of stdout", timeout=5)


# What proc.* keep of stdout and stderr together in a result (proc.c's
# RESULT_TEXT_MAX): the default max_result, 1 MiB, less 4 KiB.
TEXT_MAX = 1024 * 1024 - 4096


@t.test
def output_over_max_result_is_cut_not_failed():
    with daemon() as d:
        # The command: 1.1 MB on stdout used to end LimitError.
        r = d.aioctl("run", "proc.shell", "head -c 1100000 /dev/zero | tr '\\0' y")
        m = result(r)
        t.eq((m["exit"], len(m["stdout"]), m["stdout"].strip("y"), m["stdout_truncated"],
              m["stdout_bytes"], m["stderr"]), (0, TEXT_MAX, "", True, 1100000, ""),
             "stdout cut to what a result holds, with the full count", r.err)
        t.check("stderr_truncated" not in m, "stderr was not cut", m.keys())
        # The exit status survives the cut, and so does what it had to say.
        m = result(d.aioctl("run", "proc.shell",
                            "head -c 2000000 /dev/zero; echo bad >&2; exit 3"))
        t.eq((m["exit"], m["stdout_truncated"], m["stdout_bytes"], m["stderr"]),
             (3, True, 2000000, "bad\n"), "exit 3 and a short stderr kept whole")
        t.eq(len(base64.b64decode(m["stdout"]["$bytes"])), TEXT_MAX - 4,
             "stdout (NULs: bytes) takes what stderr left")
        # Both over half: each keeps half.
        m = result(d.aioctl("run", "proc.shell",
                            "head -c 900000 /dev/zero | tr '\\0' o; "
                            "head -c 900000 /dev/zero | tr '\\0' e >&2"))
        t.eq((len(m["stdout"]), len(m["stderr"]), m["stdout_bytes"], m["stderr_bytes"],
              m["stdout_truncated"], m["stderr_truncated"]),
             (TEXT_MAX // 2, TEXT_MAX // 2, 900000, 900000, True, True), "half each")
        # A string is cut on a character boundary: x then 2-byte characters
        # put the limit inside one.
        m = result(d.aioctl("run", "proc.shell",
                            r"printf x; head -c 700000 /dev/zero | sed 's/./\xc3\xa9/g'"))
        out = m["stdout"].encode()
        t.eq((m["stdout_truncated"], m["stdout_bytes"], len(out), out[:1], set(out[1:].decode())),
             (True, 1400001, TEXT_MAX - 1, b"x", {"\u00e9"}),
             "cut before the character the limit falls in")


@t.test
def output_lines_are_valid_utf8():
    with daemon() as d:
        out = raw_aioctl(d, "run", "proc.shell", r"printf 'a\377\376b\n'")
        lines = out.split(b"\n")
        t.eq(lines[0], b"a\xef\xbf\xbd\xef\xbf\xbdb",
             "each byte that is not UTF-8 streamed as U+FFFD", out)
        m = json.loads(lines[1])
        t.eq(base64.b64decode(m["stdout"]["$bytes"]), b"a\xff\xfeb\n",
             "the result keeps the raw bytes", m)
        # A NUL becomes U+FFFD too (a string cannot hold it).
        out = raw_aioctl(d, "run", "proc.shell", r"printf 'n\000n\n'")
        t.eq(out.split(b"\n")[0], b"n\xef\xbf\xbdn", "NUL streamed as U+FFFD", out)
        # A line over LIMIT_MAX_LINE (4096) is cut on a character boundary:
        # x and 1100 four-byte characters put byte 4096 inside one (its
        # first 3 bytes would become one U+FFFD of 3 bytes: still 4096).
        out = raw_aioctl(d, "run", "proc.shell", "printf x; printf '%01100d\\n' 0 | "
                         r"sed 's/0/\xf0\x9f\x98\x80/g'")
        t.eq(out.split(b"\n")[0], b"x" + "\U0001F600".encode() * 1023,
             "the long line cut before the character at byte 4096", out[4000:4100])


@t.test
def no_descriptors_leak_into_the_child():
    with daemon() as d:
        m = result(d.aioctl("run", "proc.run", '["/bin/ls", "/proc/self/fd"]'))
        # ls itself holds 3 (the directory it lists).
        t.eq(m["stdout"].split(), ["0", "1", "2", "3"], "the child has only stdio", m)


def quiet_fds(d):
    """aiod's open descriptors once no client connection is open any more:
    the daemon closes a connection when it reads its client's hang-up, a
    moment after aioctl exits. Accepted connections are the sockets bound to
    aiod's path in state connected (03) in /proc/net/unix."""
    deadline = time.monotonic() + 10
    while True:
        conns = set()
        with open("/proc/net/unix") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if len(parts) >= 8 and parts[7] == d.socket and parts[5] == "03":
                    conns.add("socket:[%s]" % parts[6])
        fds = {}
        for fd in harness.open_fds(d.proc.pid):
            try:
                fds[fd] = os.readlink("/proc/%d/fd/%d" % (d.proc.pid, fd))
            except OSError:
                pass
        if not conns.intersection(fds.values()):
            return sorted(fds.items())
        if time.monotonic() > deadline:
            harness.fail("aiod still holds a client connection 10 s after the client "
                         "exited: %r" % fds)
        time.sleep(0.02)  # state query under a deadline


def submit_started(d, *call):
    """Submits CALL, whose program prints 'started' first; returns the task id
    once that line has arrived (the child is running its command)."""
    r = d.aioctl("submit", *call)
    t.eq(r.rc, 0, "submit", r)
    tid = r.out.strip()
    logs = d.aioctl_bg("logs", "-f", tid)
    item = logs.next_line(timeout=10)
    t.eq(item and item[1], "started", "the child's first line")
    return tid, logs


@t.test
def cancel_sends_term():
    m = marker()
    with daemon() as d:
        tid, logs = submit_started(
            d, "proc.shell", "trap 'echo got TERM; exit 0' TERM; echo started; sleep %s & wait" % m)
        t0 = time.monotonic()
        t.eq(d.aioctl("cancel", tid).rc, 0, "cancel exit code")
        r = d.aioctl("await", tid)
        took = time.monotonic() - t0
        t.eq(r.rc, 5, "the awaited task was cancelled", r)
        t.check(took < 2.5, "it ended soon after the cancel (%.2f s)" % took)
        rest = logs.wait(timeout=10)
        t.contains(rest.out, "got TERM", "the child got SIGTERM and printed it", rest)
        wait_gone(m, "the child's own child (sleep, same process group) is gone too")
        no_children(d, "after the cancel")


@t.test
def cancel_ends_every_process_of_the_group():
    m1, m2 = marker(), marker()
    with daemon() as d:
        tid, logs = submit_started(d, "proc.shell", "echo started; sleep %s & sleep %s" % (m1, m2))
        t.check(wait_running(m1) and wait_running(m2), "setup: both sleeps run")
        t.eq(d.aioctl("cancel", tid).rc, 0, "cancel exit code")
        t.eq(d.aioctl("await", tid).rc, 5, "the awaited task was cancelled")
        logs.wait(timeout=10)
        wait_gone(m1, "the background sleep is gone")
        wait_gone(m2, "the foreground sleep is gone")
        no_children(d, "after the cancel")


@t.test
def a_background_job_does_not_outlive_its_task():
    # The shell exits at once and the job holds neither pipe, so the task
    # ends with the shell: the job must end with it.
    m = marker()
    with daemon() as d:
        r = d.aioctl("run", "proc.shell", "sleep %s >/dev/null 2>&1 & echo started" % m)
        t.eq(result(r), {"exit": 0, "stdout": "started\n", "stderr": ""}, "the shell's result", r)
        wait_gone(m, "the background job was killed with the task's process group")
        d.wait_log("still had processes when the task stopped waiting; killed them", timeout=5)
        no_children(d, "after the task")


@t.test
def children_die_with_a_killed_daemon():
    m = marker()
    with daemon() as d:
        tid, logs = submit_started(d, "proc.shell", "echo started; exec sleep %s" % m)
        pids = wait_running(m)
        t.eq(len(pids), 1, "setup: the sleep runs")
        t.eq(ppid_of(pids[0]), d.proc.pid, "setup: the sleep is aiod's own child")
        d.kill()  # SIGKILL: no shutdown code runs
        d.rc = d.proc.returncode  # killed on purpose: stop() has nothing to check
        logs.wait(timeout=10)
        wait_gone(m, "the child got PR_SET_PDEATHSIG's SIGKILL when aiod died")


@t.test
def child_ignoring_term_is_killed_after_the_grace():
    m = marker()
    with daemon() as d:
        tid, logs = submit_started(
            d, "proc.shell", "trap '' TERM; echo started; sleep %s" % m, "", "", "null", "1")
        t0 = time.monotonic()
        d.aioctl("cancel", tid)
        r = d.aioctl("await", tid)
        took = time.monotonic() - t0
        t.eq(r.rc, 5, "the awaited task was cancelled", r)
        t.check(0.9 <= took < 3.0, "the task ended once the child was KILLed after the 1 s "
                "grace, not before (%.2f s)" % took)
        d.wait_log("still running 1.0 s after SIGTERM; killing it", timeout=5)
        logs.wait(timeout=10)
        wait_gone(m, "the grandchild (sleep, ignoring TERM too) was KILLed with its group")
        no_children(d, "after the kill")


@t.test
def run_timeout_cancels_a_sleep():
    with daemon() as d:
        r = d.aioctl("run", "--timeout", "0.5", "proc.run", '["sleep", "100"]')
        t.eq(r.rc, 4, "run --timeout exit code", r)
        t.check(r.elapsed < 3, "returned at the timeout", r)
        tk = d.wait_task(lambda x: x["function"] == "proc.run" and x["state"] == "cancelled",
                         "proc.run cancelled", timeout=5)
        t.check(tk, "the task ended cancelled")
        no_children(d, "after the timeout")


@t.test
def ten_thousand_processes_leak_nothing():
    # Under ASan, fork copies the page tables of the allocator's quarantine
    # (256 MiB by default) and 10,000 forks take minutes; a small quarantine
    # keeps them to seconds. Other builds ignore ASAN_OPTIONS.
    asan = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in asan:
        asan = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    with harness.daemon_with_env(t, {"ASAN_OPTIONS": asan},
                                 extra_args=("--plugin-dir", PROCTEST)) as d:
        # Warm up: libuv creates its SIGCHLD machinery on the first spawn.
        m = result(d.aioctl("run", "proctest.many", "40", "4"))
        t.eq(m, {"runs": 40, "bad": 0}, "warm-up")
        before = quiet_fds(d)
        n = harness.scaled(10000, 3000, 1000)
        start = time.monotonic()
        m = result(d.aioctl("run", "proctest.many", str(n), "8", timeout=280))
        took = time.monotonic() - start
        after = quiet_fds(d)
        print("    %d processes in %.1f s; aiod's open fds before %d, after %d"
              % (n, took, len(before), len(after)))
        t.eq(m, {"runs": n, "bad": 0}, "every process went as expected")
        t.eq(after, before, "aiod's open descriptors after %d processes" % n)
        no_children(d, "after %d processes" % n)


PROCTEST = harness.test_plugin_dir(t, "proctest")
t.main()
