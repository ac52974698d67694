"""What must hold across restarts and for a safe system service, against the
real daemon: task ids are never reused (state directory, SIGKILL and
SIGTERM), a damaged or unusable state directory stops the start with a clear
message, every task outcome is logged (log_outcomes), invalid settings exit
with 78 and answer waiting activation clients, the daemon is non-dumpable,
and programs run as proc_user can neither read nor signal the daemon.

Some of this needs root (another uid for proc_user and for the daemon), as
CI runs."""

import os
import select
import signal
import socket
import subprocess
import time

import harness

t = harness.Suite(__file__)

NOBODY = 65534


def submit_id(d, *call):
    r = d.aioctl("submit", *call)
    t.eq(r.rc, 0, "submit %s" % " ".join(call), r)
    t.check(r.out.strip().isdigit(), "submit prints an id", " (%r)" % r.out)
    return int(r.out.strip())


@t.test
def ids_are_never_reused_across_restarts_and_crashes():
    state = t.tmpdir("state")
    args = ["--state-dir", state]
    seen = set()
    last = 0
    for how in ("sigkill", "sigterm", "sigkill"):
        d = t.daemon(extra_args=args)
        ids = [submit_id(d, "demo.sleep", "0", "x") for _ in range(3)]
        t.check(all(i > last for i in ids), "ids after a restart are above every earlier one",
                " (earlier up to %d, now %r)" % (last, ids))
        t.check(not seen.intersection(ids), "no id is handed out twice", " (%r)" % ids)
        seen.update(ids)
        last = max(ids)
        if how == "sigkill":
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
        else:
            d.stop()
    with open(os.path.join(state, "next-id")) as f:
        stored = int(f.read())
    t.check(stored > last, "next-id on disk is above every id handed out",
            " (next-id %d, last id %d)" % (stored, last))


@t.test
def an_old_id_after_a_restart_is_its_own_task_never_another():
    """With the store (the default) the old id keeps its own outcome; with
    durability = none it is unknown. Either way it never names a newer task."""
    for durability, kept in (("fsync", True), ("none", False)):
        state = t.tmpdir("state-" + durability)
        args = ["--state-dir", state, "--durability", durability]
        d = t.daemon(extra_args=args)
        old = submit_id(d, "demo.sleep", "0", "before")
        r = d.aioctl("await", old)
        t.eq(r.rc, 0, "await before the restart", r)
        d.stop()
        d = t.daemon(extra_args=args)
        # Enough new tasks to have reached the old id if the counter restarted.
        for _ in range(old + 2):
            submit_id(d, "demo.sleep", "0", "after")
        r = d.aioctl("await", old)
        if kept:
            t.eq((r.rc, r.out.strip()), (0, '"before"'),
                 "durability fsync: the old id keeps its own outcome", r)
        else:
            t.check(r.rc != 0, "durability none: the old id is not found after the restart", r)
        t.check("after" not in r.out, "the old id does not return a newer task's result", r)
        d.stop()


@t.test
def a_counter_set_back_while_running_refuses_tasks_not_reuses_ids():
    state = t.tmpdir("setback")
    with t.daemon(extra_args=["--state-dir", state]) as d:
        first = submit_id(d, "demo.sleep", "0", "x")
        with open(os.path.join(state, "next-id"), "w") as f:
            f.write("1\n")
        # More tasks than the first block holds: the next reservation reads
        # the counter that went back.
        r = d.aioctl("gather", *["demo.echo %d" % i for i in range(1100)], timeout=120)
        t.check(r.rc != 0, "tasks past the block are refused", r)
        t.contains(r.err, "cannot reserve task ids", "the refusal says why", r)
        d.wait_log("the id counter went back", 10)
        d.assert_alive()
        r = d.aioctl("await", first)
        t.eq(r.rc, 0, "the daemon still serves its tasks", r)


def start_fails(args, want_rc, want_text, env_add=None):
    """Runs aiod with `args` (and a socket in a temp dir); it must exit with
    want_rc and say want_text on stderr."""
    dirpath = t.tmpdir()
    env = harness.clean_env()
    env.update(env_add or {})
    argv = [t.aiod, "--socket", os.path.join(dirpath, "aiod.sock"), "--plugin-dir",
            t.plugin_dir, "--no-default-plugins"] + args
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=env)
    err = p.stderr.decode("utf-8", "replace")
    t.eq(p.returncode, want_rc, "exit status of aiod %s" % " ".join(args), " stderr: %r" % err)
    t.contains(err, want_text, "aiod says why it does not start")


@t.test
def an_unusable_state_directory_stops_the_start():
    base = t.tmpdir("blocked")
    blocker = os.path.join(base, "file")
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    start_fails(["--state-dir", os.path.join(blocker, "state")], 1, blocker)


@t.test
def a_damaged_id_counter_stops_the_start():
    state = t.tmpdir("damaged")
    with open(os.path.join(state, "next-id"), "w") as f:
        f.write("garbage\n")
    # 65, as for a damaged store: restarting cannot mend it, a person must.
    start_fails(["--state-dir", state], 65, "next-id is damaged")


@t.test
def a_relative_state_dir_is_refused():
    start_fails(["--state-dir", "relative/dir"], 78, "not an absolute path")


@t.test
def every_outcome_is_logged_with_its_kind():
    with t.daemon(extra_args=["--log-outcomes", "all"]) as d:
        r = d.aioctl("run", "demo.echo", "attached-ok")
        t.eq(r.rc, 0, "run", r)
        sid = submit_id(d, "demo.fail", "KeyError", "submitted-bad")
        r = d.aioctl("detach", "demo.echo", "detached-ok")
        t.eq(r.rc, 0, "detach", r)
        did = int(r.out.strip())
        t.contains(d.wait_log("attached task done", 10), "attached-ok",
                   "an attached task's success is logged with its result")
        line = d.wait_log("task %d " % sid, 10)
        t.contains(line, "submitted task failed: KeyError: submitted-bad",
                   "a submitted task's failure is logged with kind and message")
        t.contains(d.wait_log("task %d " % did, 10), "detached task done",
                   "a detached task's outcome is logged")


@t.test
def log_outcomes_failures_leaves_out_successes():
    with t.daemon(extra_args=["--log-outcomes", "failures"]) as d:
        r = d.aioctl("run", "demo.echo", "quiet-success")
        t.eq(r.rc, 0, "run", r)
        r = d.aioctl("run", "demo.fail", "OSError", "loud-failure")
        t.eq(r.rc, 1, "a failing run exits 1", r)
        d.wait_log("loud-failure", 10)
        # The failure came after the success: had the success been logged,
        # its line would be there already.
        t.check("quiet-success" not in d.log(), "a success is not logged with failures",
                " log: %r" % d.log()[-2000:])
    with t.daemon(extra_args=["--log-outcomes", "none"]) as d:
        r = d.aioctl("run", "demo.fail", "OSError", "silent-failure")
        t.eq(r.rc, 1, "a failing run exits 1", r)
        d.stop()
        t.check("silent-failure" not in d.log(), "nothing is logged with none")


@t.test
def invalid_settings_exit_78():
    conf_dir = t.tmpdir("badconf")
    conf = os.path.join(conf_dir, "aiod.conf")
    with open(conf, "w") as f:
        f.write("# fine\nmax_frame = banana\n")
    start_fails(["--config", conf], 78, "%s:2: max_frame" % conf)


@t.test
def the_daemons_threads_are_named():
    """top -H, perf and gdb tell the store's writer and the stall detector
    from the loop by their names (comm), not only by their ids."""
    with t.daemon() as d:
        d.aioctl("submit", "demo.echo", "x")  # the store is open and written
        tasks = os.path.join("/proc", str(d.proc.pid), "task")
        names = set()
        for tid in os.listdir(tasks):
            with open(os.path.join(tasks, tid, "comm")) as f:
                names.add(f.read().strip())
        for want in ("aiod", "aiod-store", "aiod-stall"):
            t.check(want in names, "a thread named %s" % want, " (threads: %r)" % sorted(names))


@t.test
def an_invalid_settings_flag_exits_78_and_a_usage_error_2():
    """A flag that sets a settings key is a setting like the file's (aiod(8),
    INVALID SETTINGS): the unit's RestartPreventExitStatus=78 must cover a bad
    value in ExecStart too. An unknown flag stays a usage error."""
    start_fails(["--max-frame", "10"], 78, "--max-frame")
    start_fails(["--durability", "sometimes"], 78, "--durability")
    start_fails(["--no-such-flag"], 2, "aiod --help")


@t.test
def invalid_settings_answer_the_waiting_activation_clients():
    """As under socket activation: the listening socket is passed as fd 3
    with a client already queued on it; aiod must answer that client with
    the reason, and exit 78."""
    dirpath = t.tmpdir("activation")
    path = os.path.join(dirpath, "aiod.sock")
    conf = os.path.join(dirpath, "aiod.conf")
    with open(conf, "w") as f:
        f.write("max_tasks = many\n")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    clients = []
    for _ in range(3):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        c.sendall(harness.frame(harness.msg_hello()))
        clients.append(c)

    # The listening socket becomes fd 3 and LISTEN_PID the daemon's own pid,
    # as systemd passes them.
    fd = lsock.fileno()
    script = 'exec 3<&%d %d<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"' % (fd, fd)
    p = subprocess.run(["sh", "-c", script, "sh", t.aiod, "--config", conf, "--plugin-dir",
                        t.plugin_dir, "--no-default-plugins"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60, env=harness.clean_env(), pass_fds=(fd,))
    t.eq(p.returncode, 78, "exit status with invalid settings", " stderr %r" % p.stderr)
    for i, c in enumerate(clients):
        c.settimeout(10)
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        t.check(len(data) > 4, "waiting client %d got a reply before the close" % i)
        reply = harness.Reply(data[4:4 + int.from_bytes(data[:4], "big")])
        t.eq(reply.error_code, 13, "the reply is ERROR_SHUTTING_DOWN")
        t.contains(reply.error_message, "%s:1: max_tasks" % conf,
                   "the reply names the file, the line and the key")
        c.close()
    lsock.close()


@t.test
def invalid_settings_wait_for_a_late_hello():
    """Under socket activation with invalid settings, a client that
    connected but sends its hello only after aiod has answered (a slow
    client) can still send it and read why: aiod does not close on it at
    once, which made its hello fail with a broken pipe."""
    dirpath = t.tmpdir("activation-late")
    path = os.path.join(dirpath, "aiod.sock")
    conf = os.path.join(dirpath, "aiod.conf")
    with open(conf, "w") as f:
        f.write("max_tasks = many\n")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    fd = lsock.fileno()
    script = 'exec 3<&%d %d<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"' % (fd, fd)
    p = subprocess.Popen(["sh", "-c", script, "sh", t.aiod, "--config", conf, "--plugin-dir",
                          t.plugin_dir, "--no-default-plugins"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=harness.clean_env(), pass_fds=(fd,))
    try:
        # The reason arrives before the client has said anything.
        ready, _, _ = select.select([c], [], [], 60)
        t.check(ready, "aiod answered the waiting client within 60 s")
        try:
            c.sendall(harness.frame(harness.msg_hello()))
        except (BrokenPipeError, ConnectionResetError) as e:
            harness.fail("the hello sent after aiod answered failed: %r" % e)
        c.settimeout(60)
        data = b""
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                harness.fail("reading the reply after the hello: connection reset (aiod closed "
                             "before reading the hello)")
            if not chunk:
                break
            data += chunk
        t.check(len(data) > 4, "the client got a reply before the close")
        reply = harness.Reply(data[4:4 + int.from_bytes(data[:4], "big")])
        t.eq(reply.error_code, 13, "the reply is ERROR_SHUTTING_DOWN")
        t.contains(reply.error_message, "%s:1: max_tasks" % conf,
                   "the reply names the file, the line and the key")
        c.close()
        t.eq(p.wait(timeout=60), 78, "exit status with invalid settings")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
    lsock.close()


def daemon_as(uid, gid, extra=()):
    """A daemon running as uid/gid, in a directory that user owns."""
    dirpath = t.tmpdir()
    os.chmod(t._tmp, 0o755)
    os.chown(dirpath, uid, gid)

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    sock = os.path.join(dirpath, "aiod.sock")
    argv = [t.aiod, "--socket", sock, "--plugin-dir", t.plugin_dir, "--no-default-plugins",
            "--state-dir", os.path.join(dirpath, "state")] + list(extra)
    env = harness.clean_env()
    env["HOME"] = dirpath
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env, preexec_fn=drop)
    return p, sock


def wait_socket(p, sock):
    """Waits for the daemon's socket to accept (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            harness.fail("aiod exited with %s: %s" % (p.returncode, p.stderr.read()))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sock)
                return
        except OSError:
            time.sleep(0.05)
    harness.fail("aiod's socket never accepted")


@t.test
def the_daemon_is_not_dumpable():
    """A program the daemon starts as its own user cannot read the daemon's
    memory or environment through /proc."""
    p, sock = daemon_as(NOBODY, NOBODY)
    try:
        wait_socket(p, sock)
        r = harness.run([t.aioctl, "-s", sock, "run", "proc.shell",
                         "cat /proc/%d/environ >/dev/null && echo READABLE || echo DENIED"
                         % p.pid], env=harness.clean_env())
        t.eq(r.rc, 0, "proc.shell as the daemon's user", r)
        t.contains(r.out, "DENIED", "the daemon's /proc/PID/environ is not readable")
    finally:
        p.kill()
        p.wait()


@t.test
def proc_user_runs_programs_as_another_user():
    conf_dir = t.tmpdir("procuser")
    conf = os.path.join(conf_dir, "aiod.conf")
    with open(conf, "w") as f:
        f.write("proc_user = nobody\n")
    with t.daemon(extra_args=["--config", conf]) as d:
        r = d.aioctl("run", "proc.shell", "id -u; id -G")
        t.eq(r.rc, 0, "proc.shell with proc_user", r)
        lines = r.out.split("\n")
        t.eq(lines[0].strip(), str(NOBODY), "the program runs as proc_user", r)
        t.eq(lines[1].strip(), str(NOBODY), "with its primary group only", r)
        r = d.aioctl("run", "proc.shell",
                     "kill -0 %d 2>/dev/null && echo SIGNALLED || echo REFUSED" % d.proc.pid)
        t.contains(r.out, "REFUSED", "the program cannot signal the daemon", r)
        # Its own home and name, not the daemon's (HOME=/root reached
        # programs running as nobody).
        import pwd
        pw = pwd.getpwuid(NOBODY)
        r = d.aioctl("run", "proc.shell", "echo $HOME $USER $LOGNAME")
        t.eq(r.rc, 0, "proc.shell of the environment with proc_user", r)
        t.contains(r.out, "%s %s %s" % (pw.pw_dir, pw.pw_name, pw.pw_name),
                   "HOME, USER and LOGNAME are proc_user's", r)
        # A directory proc_user may not enter is named in the error.
        closed = t.tmpdir("closed")
        os.chmod(closed, 0o700)
        r = d.aioctl("run", "proc.run", '["true"]', "", closed)
        t.eq(r.rc, 1, "proc.run in a directory proc_user may not enter fails", r)
        t.contains(r.err, "in '%s'" % closed, "naming the directory", r)
        t.contains(r.err, "as proc_user 'nobody'", "and the user", r)
    with open(conf, "w") as f:
        f.write("proc_user = no-such-user-here\n")
    start_fails(["--config", conf], 78, "proc_user: no user named 'no-such-user-here'")


if __name__ == "__main__":
    t.main()
