"""Signals for plugins (ABI 1.4 wait_signal and signal_watch), with real
signals sent to a real daemon: SIGUSR1 wakes a waiting task, SIGUSR2 goes
to a plugin's watch and is otherwise harmless, SIGHUP reaches a waiting task
and still reloads, and SIGTERM reaches a waiting task before the shutdown's
cancellation does."""

import os
import signal
import threading
import time

import harness

t = harness.Suite(__file__)
PLUGINS = harness.test_plugin_dir(t, "sigwait")


def running(d, tid):
    d.wait_task(lambda x: x["task"] == int(tid) and x["state"] == "running", "%s running" % tid)


def wait_for_signal(d, sig):
    """A task waiting for `sig`, running; the signal sent to the daemon; the
    task must return its number."""
    r = d.aioctl("submit", "sigwait.wait", int(sig))
    t.eq(r.rc, 0, "submit", r)
    tid = r.out.strip()
    running(d, tid)
    d.proc.send_signal(sig)
    r = d.aioctl("await", tid, timeout=20)
    t.eq(r.rc, 0, "await exit code", r)
    t.eq(r.lines[-1], str(int(sig)), "the task returned the signal number", r)


@t.test
def sigusr1_wakes_a_waiting_task():
    with t.daemon(plugin_dir=PLUGINS) as d:
        wait_for_signal(d, signal.SIGUSR1)


@t.test
def wait_signal_times_out():
    with t.daemon(plugin_dir=PLUGINS) as d:
        r = d.aioctl("run", "sigwait.wait", int(signal.SIGUSR1), "0.2", timeout=20)
        t.eq(r.rc, 1, "exit code of a wait that timed out", r)
        t.contains(r.err, "TimeoutError", "the error names the timeout", r)


@t.test
def sigusr2_goes_to_the_watch_and_harms_nothing():
    with t.daemon(plugin_dir=PLUGINS) as d:
        # One at a time: two standard signals sent at once may merge into one.
        for want in ("1", "2"):
            d.proc.send_signal(signal.SIGUSR2)
            # The count is read through the loop; poll the state a bounded
            # number of times.
            for _ in range(200):
                r = d.aioctl("run", "sigwait.usr2_count")
                if r.lines and r.lines[-1] == want:
                    break
            t.eq(r.lines[-1:], [want], "the plugin's watch saw SIGUSR2 %s time(s)" % want, r)
        d.assert_alive()


@t.test
def sighup_reaches_the_task_and_still_reloads():
    with t.daemon(plugin_dir=PLUGINS) as d:
        wait_for_signal(d, signal.SIGHUP)
        d.wait_log("reload", 10)


@t.test
def sigterm_reaches_the_task_before_the_cancellation():
    with t.daemon(plugin_dir=PLUGINS) as d:
        run = d.aioctl_bg("run", "sigwait.wait", int(signal.SIGTERM), "1e300", "30")
        d.wait_task(lambda x: x["function"] == "sigwait.wait" and x["state"] == "running",
                    "the wait running")
        d.proc.send_signal(signal.SIGTERM)
        rr = run.wait(timeout=20)
        t.contains(rr.out, "got signal %d" % int(signal.SIGTERM), "the task saw SIGTERM", rr)
        t.contains(rr.out, "then cancelled", "and then the shutdown's cancellation", rr)
        t.eq(rr.rc, 5, "the run ends cancelled", rr)
        t.eq(d.wait_exit(timeout=20), 0, "daemon exit code", d.log())


def wait_for_file(path, what, limit=60):
    """Polls for a file the slowstart plugin creates (it has no other way
    to say it got there)."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            harness.fail("%s: %s never appeared" % (what, path))
        time.sleep(0.01)


@t.test
def signals_while_starting_or_ending_do_not_kill_the_daemon():
    """aiod.8: SIGHUP reloads, SIGUSR1 and SIGUSR2 are otherwise ignored,
    and a second SIGTERM changes nothing. While the daemon started (plugin
    init, the state store, the cluster) and while it ended (plugin fini)
    its handlers were not in place: each of these signals killed it. A
    plugin whose init and fini wait for the test holds those moments."""
    d = t.tmpdir("slowstart")
    init_m, fini_m = os.path.join(d, "init"), os.path.join(d, "fini")
    env = {"SLOWSTART_INIT_MARKER": init_m, "SLOWSTART_FINI_MARKER": fini_m}
    daemon = harness.Daemon(t, t.tmpdir("d"),
                            plugin_dir=harness.test_plugin_dir(t, "slowstart"))
    errors = []

    def start():
        orig = harness.clean_env
        try:
            harness.clean_env = lambda: dict(orig(), **env)
            daemon.start()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
    th = threading.Thread(target=start)
    th.start()
    try:
        wait_for_file(init_m, "the plugin's init")
        # A signal's action is taken before the process runs on: one that
        # kills it has done so before it can see the marker gone.
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            daemon.proc.send_signal(sig)
    finally:
        if os.path.exists(init_m):
            os.remove(init_m)
        th.join(120)
    t.check(not errors, "aiod survived SIGHUP, SIGUSR1 and SIGUSR2 while its plugins started "
            "and became ready: %r" % errors[:1])
    with daemon as d:
        r = d.aioctl("run", "slowstart.ping")
        t.eq((r.rc, r.lines), (0, ['"pong"']), "it serves once started", r)
        d.proc.send_signal(signal.SIGTERM)
        wait_for_file(fini_m, "the plugin's fini")
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM,
                    signal.SIGINT):
            d.proc.send_signal(sig)
        os.remove(fini_m)
        t.eq(d.wait_exit(60), 0, "aiod's exit status after signals during its plugins' fini")


t.main()
