"""Signals for plugins (ABI 1.4 wait_signal and signal_watch), with real
signals sent to a real daemon: SIGUSR1 wakes a waiting task, SIGUSR2 goes
to a plugin's watch and is otherwise harmless, SIGHUP reaches a waiting task
and still reloads, and SIGTERM reaches a waiting task before the shutdown's
cancellation does."""

import signal

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


t.main()
