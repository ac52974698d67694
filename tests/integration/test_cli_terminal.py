"""What aioctl prints for a human must be safe on a terminal: a task's
error kind and message, function names, a plugin's doc, the daemon's
messages are chosen by other users (or by their programs), and an ESC
sequence in them would reach an admin's terminal. aioctl(1), section
"Terminal safety"."""

import json
import os
import pty
import select
import shlex
import subprocess

import harness

t = harness.Suite(__file__)

# A kind and a message chosen by the task's owner to act on the terminal of
# whoever reads them: an OSC title, a clear screen, colours, BEL, a C1 CSI
# (U+009B), DEL and a line that pretends to be aioctl's.
EVIL_KIND = "Evil\x1b]0;pwned\x07"
EVIL_MSG = "\x1b[2J\x1b[31mALERT\x1b[0m \u009b31m\x7f\nresult: 42"

# Bytes that must not reach a terminal raw: C0 controls but TAB, DEL, and
# the UTF-8 form of C1 (U+0080-U+009F).
def raw_controls(text):
    return [c for c in text
            if (ord(c) < 0x20 and c not in "\t\n") or 0x7f <= ord(c) <= 0x9f]


def assert_safe(text, what, detail=""):
    bad = raw_controls(text)
    t.check(not bad, "%s: control characters printed raw: %r" % (what, bad),
            " in %r%s" % (text, detail))


def submit_evil(d, *opts):
    r = d.aioctl("submit", *opts, "demo.fail", EVIL_KIND, EVIL_MSG)
    t.eq(r.rc, 0, "submit demo.fail", r)
    return r.out.strip()


@t.test
def error_kind_and_message_are_escaped():
    """await, run, logs and show printed a failed task's kind and message
    raw; ps already did not."""
    with t.daemon() as d:
        tid = submit_evil(d)
        r = d.aioctl("await", tid)
        t.eq(r.rc, 1, "await of the failed task", r)
        assert_safe(r.err, "await's stderr")
        t.contains(r.err, "Evil\\x1b]0;pwned\\x07: \\x1b[2J\\x1b[31mALERT\\x1b[0m \\xc2\\x9b31m"
                   "\\x7f\\nresult: 42", "await shows the escapes", r)
        t.eq(len(r.err.splitlines()), 1, "the message stays on one line", r)

        r = d.aioctl("show", tid)
        t.eq(r.rc, 0, "show", r)
        assert_safe(r.out, "show's stdout")
        err_lines = [l for l in r.out.splitlines() if l.startswith("error: ")]
        t.eq(len(err_lines), 1, "one error line", r)
        t.contains(err_lines[0], "\\x1b[2J", "show's error line escapes ESC", r)
        t.eq([l for l in r.out.splitlines() if l.startswith("result:")], [],
             "no forged result line", r)

        r = d.aioctl("logs", tid)
        t.eq(r.rc, 1, "logs of the failed task", r)
        assert_safe(r.err, "logs' stderr")
        t.contains(r.err, "\\x1b[2J", "logs escapes the message", r)

        r = d.aioctl("run", "demo.fail", EVIL_KIND, EVIL_MSG)
        t.eq(r.rc, 1, "run", r)
        assert_safe(r.err, "run's stderr")

        r = d.aioctl("gather", "-r", "demo.fail %s %s" % (
            shlex.quote(EVIL_KIND), shlex.quote(EVIL_MSG)))
        t.eq(r.rc, 0, "gather -r", r)
        assert_safe(r.out + r.err, "gather -r's output")

        # --json keeps the exact strings.
        r = d.aioctl("--json", "await", tid)
        t.eq(json.loads(r.lines[-1])["error"], {"kind": EVIL_KIND, "message": EVIL_MSG},
             "--json is exact", r)


@t.test
def attempts_and_dependents_are_escaped():
    """show's attempt lines, and a dependent's message made from the error
    of the task it ran after."""
    with t.daemon() as d:
        tid = submit_evil(d, "--retries", "1", "--backoff", "0.05", "--backoff-max", "0.05")
        dep = d.aioctl("submit", "--after", tid, "demo.echo", "x").out.strip()
        d.aioctl("await", tid, dep)
        r = d.aioctl("show", tid)
        t.eq(r.rc, 0, "show", r)
        assert_safe(r.out, "show with attempts")
        t.eq(len([l for l in r.out.splitlines() if l.startswith("attempt ")]), 2,
             "two attempt lines", r)
        r = d.aioctl("show", dep)
        assert_safe(r.out, "show of the dependent")
        r = d.aioctl("await", dep)
        t.eq(r.rc, 1, "await of the dependent", r)
        assert_safe(r.err, "await of the dependent")


@t.test
def results_and_arguments_are_escaped():
    """A result or an argument holding C1 or DEL was printed raw inside its
    JSON (jansson escapes only C0); escaped as \\u0080..\\u009f, \\u007f it is
    the same JSON."""
    with t.daemon() as d:
        text = "a\u009b2Jb\x7fc\u00e9"
        r = d.aioctl("submit", "demo.echo", text)
        tid = r.out.strip()
        r = d.aioctl("await", tid)
        t.eq(r.rc, 0, "await", r)
        assert_safe(r.out, "await's result")
        t.eq(json.loads(r.out), text, "still the same JSON value", r)
        r = d.aioctl("show", tid)
        assert_safe(r.out, "show's args and result")
        r = d.aioctl("run", "demo.echo", text)
        assert_safe(r.out, "run's result")
        t.eq(json.loads(r.out), text, "run's result is the same JSON", r)


@t.test
def daemon_messages_are_escaped():
    """A refusal carries what was sent (here our own argument, but in general
    other users' words): aioctl prints it escaped."""
    with t.daemon() as d:
        r = d.aioctl("run", "demo.sleep", "abc\x1b[2J\u009b")
        t.eq(r.rc, 2, "a bad argument is refused", r)
        assert_safe(r.err, "the refusal")


def pty_run(argv, timeout=30):
    """Runs argv with stdout and stderr on a pty; returns (rc, text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                         env=harness.clean_env())
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            p.kill()
            harness.fail("%s: no output within %d s" % (argv, timeout))
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout), out.decode("utf-8", "replace").replace("\r\n", "\n")


@t.test
def logs_escapes_on_a_terminal_only():
    """`aioctl logs` prints a task's own output: raw into a pipe or a file
    (it is the program's data), escaped on a terminal (TAB kept)."""
    with t.daemon() as d:
        tid = d.aioctl("submit", "proc.shell",
                       r"printf 'a\033[2Jb\tc\302\233d\n'; printf 'e\033]0;x\007\n' >&2").out.strip()
        t.eq(d.aioctl("await", tid).rc, 0, "the shell task ends well")
        r = d.aioctl("logs", tid)
        t.contains(r.out, "a\x1b[2Jb\tc\u009bd\n", "raw into a pipe", r)
        rc, text = pty_run(d.ctl_argv("logs", tid))
        t.eq(rc, 0, "logs on a pty", text)
        assert_safe(text, "logs on a terminal")
        t.contains(text, "a\\x1b[2Jb\tc\\xc2\\x9bd\n", "stdout lines escaped, TAB kept", text)
        t.contains(text, "e\\x1b]0;x\\x07\n", "stderr lines escaped", text)
        # show's human output on a terminal too.
        tid = submit_evil(d)
        d.aioctl("await", tid)
        rc, text = pty_run(d.ctl_argv("show", tid))
        assert_safe(text.replace("\n", ""), "show on a terminal")


if __name__ == "__main__":
    t.main()
