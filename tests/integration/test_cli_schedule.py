"""aioctl's schedule options on the client side: values refused before
anything is sent (each error naming the option and the value as typed),
--help, bash completion of the options and of --after's task ids, and
run/submit/detach with a schedule that any daemon answers the same way
(a call that succeeds the first time). What the daemon does with a
schedule is in test_cli_schedule_daemon.py."""

import json
import os

import harness

t = harness.Suite(__file__)

def complete(*words, env=None):
    """COMPREPLY of the completion for `aioctl WORDS...`, the last word
    being the one completed."""
    return harness.bash_complete(t, words, env)


@t.test
def bad_values_are_usage_errors():
    # No daemon: each is refused before connecting (exit 2, not 3).
    gone = os.path.join(t.tmpdir(), "gone.sock")
    cases = [
        (("submit", "--retries", "1001"), "option '--retries' wants a number of retries from 0 "
                                          "to 1000, not '1001'"),
        (("submit", "--retries=-1"), "option '--retries' wants a number of retries"),
        (("detach", "--retries", "x"), "not 'x'"),
        (("run", "--delay", "-1"), "option '--delay' wants seconds"),
        (("run", "--delay", "nan"), "not 'nan'"),
        (("submit", "--backoff-max", "5x"), "option '--backoff-max' wants seconds"),
        (("submit", "--at", "25:00"), "option '--at' wants a time"),
        (("submit", "--at", "2026-02-30"), "not '2026-02-30'"),
        (("submit", "--at", "@-5"), "not '@-5'"),
        (("submit", "--after", "3,x"), "option '--after' wants task ids"),
        (("submit", "--after", "0"), "not '0'"),
        (("submit", "--after", ",".join(["7"] * 257)), "option '--after' names too many tasks "
                                                       "(at most 256 in all)"),
        (("submit", "--backoff", "2"), "option '--backoff' needs --retries"),
        (("detach", "--backoff-max", "2"), "option '--backoff-max' needs --retries"),
    ]
    for args, want in cases:
        r = t.ctl("-s", gone, *(list(args) + ["demo.echo", "1"]))
        t.eq(r.rc, 2, "exit code of aioctl %s" % " ".join(args)[:60], r)
        t.contains(r.err, want, "message of aioctl %s" % " ".join(args)[:60], r)
        t.contains(r.err, "Try 'aioctl %s --help'." % args[0], "hint", r)
    # A local time the clock skips (the spring gap of Central European time,
    # given as a POSIX TZ): said as such, not as a format error.
    env = harness.clean_env()
    env["TZ"] = "CET-1CEST,M3.5.0,M10.5.0/3"
    r = harness.run([t.aioctl, "-s", gone, "submit", "--at", "2027-03-28T02:30", "demo.echo",
                     "1"], env=env)
    t.eq(r.rc, 2, "exit code of a --at in the DST gap", r)
    t.contains(r.err, "names a local time the clock skips", "its message", r)
    # 256 ids in all, over two options, are fine as far as aioctl goes: the
    # error is then that the daemon cannot be reached.
    r = t.ctl("-s", gone, "submit", "--after", ",".join(["7"] * 200), "--after",
              ",".join(["8"] * 56), "demo.echo", "1")
    t.eq(r.rc, 3, "256 --after ids reach the connect", r)


@t.test
def help_lists_the_options():
    for cmd in ("run", "submit", "detach"):
        r = t.ctl(cmd, "--help")
        t.eq(r.rc, 0, "%s --help" % cmd, r)
        for opt in ("--retries N", "--backoff S", "--backoff-max S", "--delay S", "--at TIME",
                    "--after ID"):
            t.contains(r.out, opt, "%s --help names %s" % (cmd, opt), r)
    r = t.ctl("ps", "--help")
    t.contains(r.out, "waiting (retry 2/4 in 3.2s)", "ps --help explains the STATE texts", r)
    r = t.ctl("show", "--help")
    t.contains(r.out, "attempts", "show --help mentions attempts", r)


@t.test
def completion_of_schedule_options():
    t.eq(complete("submit", "--ret"), ["--retries"], "aioctl submit --ret<TAB>")
    t.eq(complete("run", "--backoff"), ["--backoff", "--backoff-max"], "aioctl run --backoff<TAB>")
    t.eq(complete("detach", "--a"), ["--after", "--at"], "aioctl detach --a<TAB>")
    t.eq(complete("run", "--de"), ["--delay"], "aioctl run --de<TAB>")
    t.check("--retries" not in complete("await", "--"), "await offers no schedule options")
    with t.daemon() as d:
        # A value is skipped: FUNC is still completed after it.
        t.eq(complete("-s", d.socket, "submit", "--delay", "5", "--at", "10:00", "demo.ec"),
             ["demo.echo"], "aioctl submit --delay 5 --at 10:00 demo.ec<TAB>")
        t.eq(complete("-s", d.socket, "submit", "--retries", "=", "3", "demo.ec"), ["demo.echo"],
             "aioctl submit --retries=3 demo.ec<TAB>")
        t.eq(complete("-s", d.socket, "submit", "--retries", ""), [],
             "aioctl submit --retries <TAB>: a number, no names")
        r = d.aioctl("submit", "demo.sleep", "30")
        t.eq(r.rc, 0, "submit", r)
        tid = r.out.strip()
        t.eq(complete("-s", d.socket, "submit", "--after", ""), [tid],
             "aioctl submit --after <TAB>: task ids")
        t.eq(complete("-s", d.socket, "run", "--after", "5,"), ["5," + tid],
             "aioctl run --after 5,<TAB>: the id after the comma")


@t.test
def a_schedule_that_needs_no_waiting():
    """A call that succeeds at once gives the same answer with a schedule,
    whether the daemon honours it or not."""
    with t.daemon() as d:
        r = d.aioctl("run", "--retries", "3", "--backoff", "0.1", "demo.hello", "you")
        t.eq(r.rc, 0, "run --retries exit code", r)
        t.eq(r.lines, ["Hello, you!", '"hello done"'],
             "run --retries prints the task's output, then its result", r)
        plain = d.aioctl("run", "demo.hello", "you")
        t.eq(r.out, plain.out, "run with and without a schedule print the same", r)

        r = d.aioctl("--json", "run", "--delay", "0", "--retries", "1", "demo.echo", "[1,2]")
        t.eq((r.rc, json.loads(r.lines[-1])["result"]), (0, [1, 2]), "run --json", r)

        r = d.aioctl("run", "--retries", "2", "demo.fail", "ValueError", "boom")
        t.eq(r.rc, 1, "run --retries of a failing call: exit 1 (the task failed)", r)
        t.contains(r.err, "ValueError: boom", "the error of the last attempt", r)

        r = d.aioctl("run", "--retries", "1", "--timeout", "0.3", "demo.sleep", "30")
        t.eq(r.rc, 4, "run --retries --timeout: exit 4", r)
        t.contains(r.err, "timed out after 0.3 s; the task was cancelled", "timeout message", r)

        r = d.aioctl("run", "--retries", "1", "demo.nosuch")
        t.eq(r.rc, 2, "run --retries of an unknown function: refused", r)
        t.contains(r.err, "demo.nosuch", "the refusal names the function", r)

        r = d.aioctl("submit", "--retries", "2", "demo.echo", "x")
        t.eq(r.rc, 0, "submit --retries", r)
        first = r.out.strip()
        r = d.aioctl("submit", "--after", first, "--at", "@1000000000", "demo.echo", "y")
        t.eq(r.rc, 0, "submit --after an existing task, --at in the past", r)
        second = r.out.strip()
        r = d.aioctl("await", first, second)
        t.eq((r.rc, r.lines), (0, ['"x"', '"y"']), "await both", r)

        r = d.aioctl("detach", "--retries", "1", "demo.echo", "z")
        t.eq(r.rc, 0, "detach --retries", r)
        t.check(r.out.strip().isdigit(), "detach prints an id", r)


if __name__ == "__main__":
    t.main()
