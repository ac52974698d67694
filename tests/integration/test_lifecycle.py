"""The daemon's life: a stale socket file, a second daemon on a live socket,
SIGTERM while clients wait on running tasks, a plugin dir with a bad file."""

import os
import shutil
import signal
import socket
import stat
import subprocess

import harness

t = harness.Suite(__file__)

ERROR_SHUTTING_DOWN = 13  # proto/aiod.proto

TASK_CANCELLED = 5


@t.test
def stale_socket_is_replaced():
    dirpath = t.tmpdir("stale")
    path = os.path.join(dirpath, "aiod.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # a socket file with nobody listening, as a crashed daemon leaves
    s.close()
    t.check(os.path.exists(path), "setup: the stale socket file exists")
    with t.daemon(dirpath=dirpath) as d:
        r = d.aioctl("run", "demo.echo", "alive")
        t.eq((r.rc, r.lines), (0, ['"alive"']), "a client of the daemon on the replaced socket",
             r)


@t.test
def second_daemon_on_live_socket_fails():
    with t.daemon() as d:
        r = harness.run(d.argv(), timeout=20, env=harness.clean_env())
        t.check(r.rc != 0, "a second aiod on a live socket must fail", r)
        t.contains(r.err, "already", "the second aiod says the socket is already in use", r)
        t.check(os.path.exists(d.socket), "the second aiod removed the first one's socket")
        d.assert_alive()
        r = d.aioctl("run", "demo.echo", "still here")
        t.eq((r.rc, r.lines), (0, ['"still here"']), "the first daemon still serves", r)


@t.test
def the_socket_mode_does_not_come_from_the_umask():
    """Started with umask 000, aiod made its socket srwxrwxrwx: any local
    user could connect (and, with proc loaded and aiod running as root, run
    programs as root). It is 0660 whatever the umask."""
    for umask in (0o000, 0o022):
        old = os.umask(umask)
        try:
            d = t.daemon()
        finally:
            os.umask(old)
        with d:
            mode = stat.S_IMODE(os.stat(d.socket).st_mode)
            t.eq(oct(mode), oct(0o660), "the socket's mode under umask %03o" % umask)
            r = d.aioctl("run", "demo.echo", "ok")
            t.eq((r.rc, r.lines), (0, ['"ok"']), "the owner still connects", r)


@t.test
def a_relative_socket_path_is_refused():
    """`aiod --socket @name` quietly created a file '@name' in its working
    directory (not an abstract socket); a socket path must be absolute."""
    cwd = t.tmpdir("relative")
    for path in ("@name", "rel.sock"):
        argv = [t.aiod, "--socket", path, "--plugin-dir", t.plugin_dir, "--no-default-plugins",
                "--state-dir", os.path.join(cwd, "state")]
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                               env=harness.clean_env(), cwd=cwd)
        except subprocess.TimeoutExpired:
            harness.fail("aiod --socket %s started and served (killed after 30 s)" % path)
        err = p.stderr.decode("utf-8", "replace")
        t.check(p.returncode != 0, "aiod --socket %s must not start" % path, err)
        t.contains(err, "absolute", "aiod says the socket path must be absolute")
        t.check(not os.path.exists(os.path.join(cwd, path)),
                "no file %r was made in the working directory" % path)


@t.test
def sigterm_cancels_waited_tasks():
    with t.daemon() as d:
        # A run (attached) and an await of a submitted task, both waiting.
        run = d.aioctl_bg("run", "demo.main_sequential")
        item = run.next_line(timeout=10)
        t.eq(item and item[1], "Starting main function", "the run started")
        r = d.aioctl("submit", "demo.sleep", "30", "never")
        t.eq(r.rc, 0, "submit exit code", r)
        sid = int(r.out.strip())
        d.wait_task(lambda x: x["task"] == sid and x["state"] == "running", "%d running" % sid)
        # The await is sent on a bare connection and followed by a
        # ListPlugins: one connection's requests are taken in order, so its
        # answer says the Await is registered. (An `aioctl await` started
        # here could still be starting when SIGTERM closes the socket: a
        # process under TSan takes about 15 ms to start.)
        waiter = d.raw()
        waiter.send_frame(harness.msg_hello(1))
        t.eq(waiter.recv().kind, harness.SM_HELLO, "the waiter's hello is answered")
        waiter.send_frame(harness.msg_await(2, sid))
        waiter.send_frame(harness.msg_list_plugins(3))
        rep = waiter.recv()
        t.eq((rep.request_id, rep.kind), (3, harness.SM_PLUGIN_LIST),
             "the ListPlugins after the Await is answered first")

        d.proc.send_signal(signal.SIGTERM)
        rr = run.wait(timeout=20)
        t.eq(rr.rc, 5, "run of a task cancelled by the daemon's shutdown: exit code", rr)
        t.contains(rr.err, "Cancelled", "run reports the cancellation", rr)
        # ... and says who cancelled it: the stop, not a client.
        t.contains(rr.err, "aiod is stopping (SIGTERM)", "run says the daemon is stopping", rr)
        # The submitted task is kept in the state store (it goes on after a
        # restart): its Await ends with ERROR_SHUTTING_DOWN, not a
        # cancellation (test_durable checks the restart).
        rep = waiter.recv()
        t.eq((rep.request_id, rep.error_code), (2, ERROR_SHUTTING_DOWN), "the Await is answered",
             rep)
        t.contains(rep.error_message, "task %d" % sid, "naming the task")
        t.contains(rep.error_message, "kept in the state store", "saying it is kept")
        waiter.close()
        rc = d.wait_exit(timeout=20)
        t.eq(rc, 0, "daemon exit code after SIGTERM", "; log:\n" + d.log())
        t.check(not os.path.exists(d.socket), "the daemon removed its socket on SIGTERM")
        t.check(rr.elapsed < 4.5, "the run ended by cancellation, not by finishing", rr)


@t.test
def sigterm_when_idle():
    d = t.daemon()
    r = d.aioctl("ps")
    t.eq(r.rc, 0, "ps exit code", r)
    d.stop()  # asserts exit 0 and the socket removed
    r = d.aioctl("ps")
    t.eq(r.rc, 3, "aioctl after the daemon stopped: exit code", r)


@t.test
def bad_plugin_file_is_skipped():
    plugdir = t.tmpdir("plugins")
    shutil.copy(os.path.join(t.plugin_dir, "demo.so"), plugdir)
    with open(os.path.join(plugdir, "bad.so"), "wb") as f:
        f.write(b"this is not an ELF file\n" * 10)
    os.chmod(os.path.join(plugdir, "bad.so"), 0o644)
    with t.daemon(plugin_dir=plugdir) as d:
        d.wait_log("bad.so", timeout=10)  # the daemon's log names the bad plugin
        r = d.aioctl("run", "demo.echo", "ok")
        t.eq((r.rc, r.lines), (0, ['"ok"']), "the good plugin still works", r)


@t.test
def a_plugin_directory_that_cannot_be_read_retires_nothing():
    """A reload that cannot list a plugin directory (mistyped in plugin_dir,
    moved away, unreadable) knows nothing of which plugins are gone: it
    retired every plugin of it, and a typo became an outage. Now it retires
    none, says which directory, and counts it as refused."""
    plugdir = os.path.join(t.tmpdir("plugins"), "extra")
    os.mkdir(plugdir)
    shutil.copy(os.path.join(harness.test_plugin_dir(t, "good"), "good.so"), plugdir)
    with t.daemon(extra_args=["--plugin-dir", plugdir]) as d:
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq((r.rc, r.lines), (0, ["5"]), "good.add before", r)
        os.rename(plugdir, plugdir + ".moved")
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "the reload itself", r)
        t.contains(r.out + r.err, "1 refused", "the reload counts the directory as refused", r)
        d.wait_log("plugin directory '%s' cannot be read: no plugin is retired" % plugdir, 10)
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq((r.rc, r.lines), (0, ["5"]), "good.add after the reload", r)
        r = d.aioctl("run", "demo.echo", "ok")
        t.eq((r.rc, r.lines), (0, ['"ok"']), "the other directory's plugins too", r)
        # Removing the files (not the directory) still retires them.
        os.rename(plugdir + ".moved", plugdir)
        os.remove(os.path.join(plugdir, "good.so"))
        t.eq(d.aioctl("reload").rc, 0, "a reload with the directory back, empty")
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq(r.rc, 2, "good.add once its file is gone", r)


@t.test
def a_plugin_file_rewritten_in_place_does_not_crash_the_daemon():
    """A plain `cp` over a loaded plugin rewrites its file in place (same
    inode, truncated, written again). The daemon mapped that file: the
    kernel dropped the mapped pages, and the next call into the plugin
    crashed the daemon (SIGSEGV or SIGBUS). It maps a private copy now:
    the running code is untouched, and the next reload loads the new
    contents as a new generation."""
    plugdir = t.tmpdir("inplace")
    target = os.path.join(plugdir, "good.so")
    shutil.copy(os.path.join(harness.test_plugin_dir(t, "good"), "good.so"), target)
    with t.daemon(extra_args=["--plugin-dir", plugdir]) as d:
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq((r.rc, r.lines), (0, ["5"]), "good.add before", r)
        ino = os.stat(target).st_ino
        # What cp does without --remove-destination: open with O_TRUNC and write.
        shutil.copyfile(os.path.join(harness.test_plugin_dir(t, "slowstart"), "slowstart.so"),
                        target)
        t.eq(os.stat(target).st_ino, ino, "the file was rewritten in place")
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq((r.rc, r.lines), (0, ["5"]), "good.add after its file was rewritten", r)
        d.assert_alive()
        r = d.aioctl("reload")
        t.eq(r.rc, 0, "the reload", r)
        r = d.aioctl("run", "slowstart.ping")
        t.eq((r.rc, r.lines), (0, ['"pong"']), "the new contents after the reload", r)
        r = d.aioctl("run", "good.add", "2", "3")
        t.eq(r.rc, 2, "good.add is gone with the old contents", r)


t.main()
