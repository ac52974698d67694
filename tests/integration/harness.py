"""Shared helpers for aiod's integration tests (Python 3 standard library only).

A test script does:

    import harness
    t = harness.Suite(__file__)          # parses --aiod/--aioctl/--plugin-dir
    @t.test
    def gather_runs_concurrently():
        with t.daemon() as d:             # fresh temp dir, socket, READY=1
            r = d.aioctl("gather", "demo.sleep 1 a")
            t.eq(r.rc, 0, "exit code", r)
    t.main()                              # runs the tests, "N passed, 0 failed"

Synchronisation is by events only: the daemon's READY=1 datagram on a
NOTIFY_SOCKET we bind, lines read from a child's pipe as they come, a
process's exit, a line appearing in the daemon's log pipe. Polling is used
only to query state (aioctl ps/show) and always under a deadline.
"""

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

READY_TIMEOUT = 30.0  # generous: sanitizer builds start slowly


class TestFailure(AssertionError):
    pass


# A failure message longer than this is cut in the middle: the head says
# what was checked, the tail holds the latest log lines. The whole daemon
# log stays in the temp dir, which a failing run keeps.
MAX_FAILURE_MESSAGE = 4000

# The sanitizers this build uses (ctest passes AIOD_SANITIZE): stress cases
# are sized for each build, not bounded by wall-clock limits.
SANITIZE = os.environ.get("AIOD_SANITIZE", "")


def scaled(normal, asan, tsan):
    """A stress case's size for this build: TSan runs forks and syscalls
    five to ten times slower than ASan, and ASan a few times slower than a
    plain build."""
    if "thread" in SANITIZE:
        return tsan
    if "address" in SANITIZE:
        return asan
    return normal


def fail(msg):
    if len(msg) > MAX_FAILURE_MESSAGE:
        head, tail = MAX_FAILURE_MESSAGE // 4, MAX_FAILURE_MESSAGE * 3 // 4
        msg = "%s\n[... %d characters cut; the whole log is in the kept temp dir ...]\n%s" % (
            msg[:head], len(msg) - head - tail, msg[-tail:])
    raise TestFailure(msg)


# ---------------------------------------------------------------- processes


class Result:
    """A finished aioctl run."""

    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    @property
    def lines(self):
        return self.out.splitlines()

    def __str__(self):
        return ("\n  command: %s\n  exit: %s  elapsed: %.3f s\n  stdout: %r\n  stderr: %r"
                % (" ".join(self.argv), self.rc, self.elapsed, self.out[-2000:],
                   self.err[-2000:]))


class Streaming:
    """A child process whose stdout lines are read as they come, each with the
    time.monotonic() at which it arrived. stderr is collected whole."""

    def __init__(self, argv, env=None):
        self.argv = [str(a) for a in argv]
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.pid = self.proc.pid
        self._lines = queue.Queue()
        self.lines = []  # (seconds since start, line) of the lines taken so far
        self._err = []
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_out.start()
        self._t_err.start()
        self.rc = None
        self.elapsed = None

    def _read_out(self):
        for raw in self.proc.stdout:
            self._lines.put((time.monotonic() - self.start, raw.decode("utf-8", "replace")
                             .rstrip("\n")))
        self._lines.put(None)

    def _read_err(self):
        for raw in self.proc.stderr:
            self._err.append(raw.decode("utf-8", "replace"))

    def next_line(self, timeout):
        """The next stdout line as (t, line), or None at end of output."""
        try:
            item = self._lines.get(timeout=timeout)
        except queue.Empty:
            fail("no output line from %s within %.1f s (lines so far: %r)"
                 % (" ".join(self.argv), timeout, self.lines))
        if item is not None:
            self.lines.append(item)
        return item

    def wait(self, timeout):
        """Waits for exit; returns a Result holding every stdout line."""
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("%s did not exit within %.1f s" % (" ".join(self.argv), timeout))
        self.elapsed = time.monotonic() - self.start
        self._t_out.join(5)
        self._t_err.join(5)
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.lines.append(item)
        return Result(self.argv, self.rc, "".join(l + "\n" for _, l in self.lines),
                      "".join(self._err), self.elapsed)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)


def run(argv, timeout=60, env=None):
    """Runs a command to completion; returns a Result."""
    argv = [str(a) for a in argv]
    start = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired as e:
        fail("%s did not exit within %.1f s; stdout %r stderr %r"
             % (" ".join(argv), timeout, e.stdout, e.stderr))
    return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), time.monotonic() - start)


def clean_env():
    env = dict(os.environ)
    for k in ("AIOD_SOCKET", "NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
              "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    return env

# ---------------------------------------------------------------- protobuf

SYSTEM_PYTHON = "/usr/bin/python3"


def require_protobuf(what):
    """Re-executes the running script with Debian's python3 when the
    interpreter ctest found (a pyenv shim, say) has no protobuf module;
    exits naming `what` when none has it."""
    try:
        import google.protobuf  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and \
            os.path.exists(SYSTEM_PYTHON):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    sys.exit("%s needs Python 3 with the protobuf module "
             "(Debian: python3-protobuf; scripts/deps.sh installs it)" % what)


def protobuf_dir(plugin_dir):
    """The directory holding aiod_pb2.py for the build that holds
    plugin_dir (made with protoc in a temporary directory if the build has
    none)."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(plugin_dir)))
    pb_dir = os.path.join(build, "tests", "protocol")
    if os.path.exists(os.path.join(pb_dir, "aiod_pb2.py")):
        return pb_dir
    proto = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
    out = tempfile.mkdtemp(prefix="aiod-pb-")
    subprocess.run(["protoc", "-I" + proto, "--python_out=" + out,
                    os.path.join(proto, "aiod.proto")], check=True)
    return out


# ---------------------------------------------------------------- bash completion

COMPLETION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "completion",
                          "aioctl")

# Sources the script, finds the function it registered for aioctl and calls
# it as bash does on <TAB>: words in COMP_WORDS, the last one being completed.
COMPLETE_SH = r'''
source "$1"; shift
spec=$(complete -p aioctl) || exit 90
fn=${spec##*-F }; fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
prev=
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
COMPREPLY=()
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
'''


def bash_complete(suite, words, env=None):
    """COMPREPLY, sorted, of the completion for `aioctl WORDS...` (the
    suite's aioctl), the last word being the one completed; checks that it
    ran cleanly."""
    import shlex
    words = [suite.aioctl] + list(words)
    e = clean_env()
    e.update(env or {})
    e["LINE"] = " ".join(shlex.quote(w) for w in words)
    r = run(["bash", "--norc", "--noprofile", "-c", COMPLETE_SH, "complete", COMPLETION] + words,
            timeout=20, env=e)
    suite.eq((r.rc, r.err), (0, ""), "completion of %r ran cleanly" % e["LINE"], r)
    return sorted(l for l in r.lines if l)



# ---------------------------------------------------------------- the daemon


class Daemon:
    """One aiod in its own directory: DIR/aiod.sock, log lines from its
    stderr (kept in memory and in DIR/aiod.log)."""

    def __init__(self, suite, dirpath, plugin_dir=None, extra_args=(), socket_path=None):
        self.suite = suite
        self.dir = dirpath
        self.socket = socket_path or os.path.join(dirpath, "aiod.sock")
        self.plugin_dir = plugin_dir or suite.plugin_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.rc = None
        self._log = []
        self._log_cond = threading.Condition()
        self._log_done = False

    # -- start / stop

    def argv(self):
        # Each daemon has its own state directory (the id counter). Outcomes
        # of successful tasks are not logged: tests run up to a million
        # tasks; test_outcomes checks the log of every outcome.
        return [self.suite.aiod, "--socket", self.socket, "--plugin-dir", self.plugin_dir,
                "--no-default-plugins", "--state-dir", os.path.join(self.dir, "state"),
                "--log-outcomes", "failures"] + self.extra_args

    def start(self):
        notify_path = os.path.join(self.dir, "notify.sock")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            ns.bind(notify_path)
            env = clean_env()
            env["NOTIFY_SOCKET"] = notify_path
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         env=env)
            self.suite._daemons.append(self)
            threading.Thread(target=self._read_log, daemon=True).start()
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    fail("aiod sent no READY=1 within %.0f s; log:\n%s"
                         % (READY_TIMEOUT, self.log()))
                # Short slices only so that a daemon that dies before READY is
                # noticed at once instead of after the whole timeout.
                ns.settimeout(min(left, 0.2))
                try:
                    msg = ns.recv(4096).decode("utf-8", "replace")
                except socket.timeout:
                    if self.proc.poll() is not None:
                        fail("aiod exited with %s before READY=1; log:\n%s"
                             % (self.proc.returncode, self.log()))
                    continue
                if "READY=1" in msg.split("\n"):
                    break
        finally:
            ns.close()
            if os.path.exists(notify_path):
                os.unlink(notify_path)
        if not os.path.exists(self.socket):
            fail("aiod said READY=1 but %s does not exist" % self.socket)
        return self

    def _read_log(self):
        with open(os.path.join(self.dir, "aiod.log"), "a", encoding="utf-8") as f:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                f.write(line)
                f.flush()
                with self._log_cond:
                    self._log.append(line)
                    self._log_cond.notify_all()
        with self._log_cond:
            self._log_done = True
            self._log_cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; asserts exit status 0 and that the socket file is gone."""
        if self.proc is None or self.rc is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.wait_exit(timeout)
        if self.rc != 0:
            fail("aiod exited with %s after SIGTERM (expected 0); log:\n%s"
                 % (self.rc, self.log()))
        if os.path.exists(self.socket):
            fail("aiod exited but left its socket %s behind" % self.socket)

    def wait_exit(self, timeout):
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
            fail("aiod did not exit within %.0f s of SIGTERM; log:\n%s" % (timeout, self.log()))
        with self._log_cond:
            self._log_cond.wait_for(lambda: self._log_done, timeout=5)
        return self.rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.kill()
        return False

    # -- the log

    def log(self):
        with self._log_cond:
            return "".join(self._log)

    def wait_log_count(self, text, count, timeout):
        """Waits until `count` log lines contain `text` (or the daemon
        exited, or the timeout passed); returns how many do."""
        def n():
            return sum(1 for line in self._log if text in line)
        with self._log_cond:
            self._log_cond.wait_for(lambda: n() >= count or self._log_done, timeout=timeout)
            return n()

    def wait_log(self, text, timeout):
        """Waits until a log line contains `text`; returns that line."""
        def find():
            for line in self._log:
                if text in line:
                    return line
            return None
        with self._log_cond:
            found = self._log_cond.wait_for(lambda: find() or self._log_done, timeout=timeout)
            line = find()
        if not line:
            fail("the daemon's log has no line containing %r after %.1f s; log:\n%s"
                 % (text, timeout, self.log()) if not found else
                 "the daemon exited without logging %r; log:\n%s" % (text, self.log()))
        return line

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def assert_alive(self):
        if not self.alive():
            fail("aiod died (exit %s); log:\n%s" % (self.proc.poll(), self.log()))

    # -- clients

    def ctl_argv(self, *args):
        return [self.suite.aioctl, "-s", self.socket] + [str(a) for a in args]

    def aioctl(self, *args, timeout=60):
        """Runs aioctl -s SOCKET ARGS... to completion; returns a Result."""
        return run(self.ctl_argv(*args), timeout=timeout, env=clean_env())

    def aioctl_bg(self, *args):
        """Starts aioctl -s SOCKET ARGS... whose stdout is read as it comes."""
        return Streaming(self.ctl_argv(*args), env=clean_env())

    def raw(self, timeout=10):
        return RawClient(self.socket, timeout)

    def task(self, task_id):
        """`aioctl --json show ID` as a dict."""
        r = self.aioctl("--json", "show", task_id)
        if r.rc != 0:
            fail("aioctl show %s failed:%s" % (task_id, r))
        return json.loads(r.lines[-1])

    def ps(self, all_tasks=False):
        """`aioctl --json ps [--all]` as a list of dicts."""
        r = self.aioctl("--json", "ps", *(["--all"] if all_tasks else []))
        if r.rc != 0:
            fail("aioctl ps failed:%s" % r)
        return [json.loads(l) for l in r.lines if l.strip()]

    def wait_task(self, pred, what, timeout=10, all_tasks=True):
        """Queries `ps` until a task satisfies pred (bounded by a deadline;
        this queries state, it does not stand in for an event)."""
        deadline = time.monotonic() + timeout
        tasks = []
        while time.monotonic() < deadline:
            tasks = self.ps(all_tasks)
            for tk in tasks:
                if pred(tk):
                    return tk
            time.sleep(0.05)
        fail("no task %s within %.0f s; ps: %r" % (what, timeout, tasks))


# ---------------------------------------------------------------- raw protocol


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3 | 0) + varint(value)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def msg_hello(request_id=1, version=1):
    """ClientMessage{request_id, hello{protocol_version}}."""
    return field_varint(1, request_id) + field_bytes(2, field_varint(1, version))


def msg_list_plugins(request_id):
    """ClientMessage{request_id, list_plugins{}}."""
    return field_varint(1, request_id) + field_bytes(10, b"")


def msg_await(request_id, *task_ids):
    """ClientMessage{request_id, await{task_ids (packed)}}."""
    return field_varint(1, request_id) + field_bytes(
        4, field_bytes(1, b"".join(varint(i) for i in task_ids)))


def parse_fields(data):
    """Decodes one protobuf message's top-level fields: {num: [value, ...]}
    where a varint is an int and a length-delimited field is bytes."""
    fields, i = {}, 0

    def read_varint():
        nonlocal i
        shift = result = 0
        while True:
            if i >= len(data):
                fail("truncated varint in reply %r" % data)
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(data):
        key = read_varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = read_varint()
        elif wt == 2:
            n = read_varint()
            val = data[i:i + n]
            i += n
        elif wt == 1:
            val = data[i:i + 8]
            i += 8
        elif wt == 5:
            val = data[i:i + 4]
            i += 4
        else:
            fail("unexpected wire type %d in reply %r" % (wt, data))
        fields.setdefault(num, []).append(val)
    return fields


# ServerMessage body field numbers.
SM_ERROR, SM_HELLO, SM_OUTCOMES, SM_PLUGIN_LIST = 2, 3, 5, 9
ERROR_BAD_MESSAGE, ERROR_PROTOCOL, ERROR_UNSUPPORTED_VERSION = 1, 2, 3


class Reply:
    """One ServerMessage: request_id, body field number, body fields."""

    def __init__(self, payload):
        f = parse_fields(payload)
        self.request_id = f.get(1, [0])[0]
        self.kind = None
        self.body = {}
        for num in f:
            if num != 1:
                self.kind = num
                self.body = parse_fields(f[num][0])
        self.payload = payload

    @property
    def error_code(self):
        return self.body.get(1, [0])[0] if self.kind == SM_ERROR else None

    @property
    def error_message(self):
        return self.body.get(2, [b""])[0].decode("utf-8", "replace") if self.kind == SM_ERROR \
            else None

    def __repr__(self):
        if self.kind == SM_ERROR:
            return "Error(request %d, code %d, %r)" % (self.request_id, self.error_code,
                                                       self.error_message)
        return "ServerMessage(request %d, body field %s, %r)" % (self.request_id, self.kind,
                                                                 self.payload[:200])


class SocketClient:
    """A connection in `self.sock`, closed by close() or at the end of a
    `with` block."""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


class RawClient(SocketClient):
    """A bare connection speaking frames, for feeding the daemon bad input."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        """Sends bytes; returns False if the daemon already closed on us."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_frame(self, payload):
        return self.send(frame(payload))

    def hang_up(self):
        """Closes our side and waits for the daemon to close its own (what
        it still sends is passed over): from then on the daemon no longer
        counts this connection. Fails if it keeps the connection open
        beyond the socket's timeout."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the daemon closed it already
        while self._recv_any() is not None:
            pass
        self.close()

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                fail("the daemon sent nothing for %.0f s (expected a reply or a close)"
                     % self.sock.gettimeout())
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv(self, started=False):
        """The next ServerMessage as a Reply, or None when the daemon closed
        the connection. Fails on a timeout. Started events (what a Gather
        sends before its reply) are passed over unless `started`."""
        while True:
            r = self._recv_any()
            if started or r is None or r.kind != 13:
                return r

    def _recv_any(self):
        if not self._fill(4):
            if self.buf:
                fail("connection closed in the middle of a frame header: %r" % self.buf)
            return None
        (n,) = struct.unpack(">I", self.buf[:4])
        if n > 64 * 1024 * 1024:
            fail("daemon sent a frame header of %d bytes" % n)
        if not self._fill(4 + n):
            fail("connection closed in the middle of a %d-byte frame" % n)
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return Reply(payload)

    def expect_closed(self):
        """Reads until EOF; returns the replies that came before it."""
        replies = []
        while True:
            r = self.recv()
            if r is None:
                return replies
            replies.append(r)
            if len(replies) > 100:
                fail("the daemon keeps sending instead of closing: %r" % replies[:5])


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, script):
        ap = argparse.ArgumentParser()
        ap.add_argument("--aiod", required=True)
        ap.add_argument("--aioctl", required=True)
        ap.add_argument("--plugin-dir", required=True)
        ap.add_argument("--many-inflight")
        ap.add_argument("--keep", action="store_true", help="keep the temp dir")
        self.args = ap.parse_args()
        self.aiod = self.args.aiod
        self.aioctl = self.args.aioctl
        self.plugin_dir = self.args.plugin_dir
        self.name = os.path.splitext(os.path.basename(script))[0]
        self.tests = []
        self._daemons = []
        self._tmp = None

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def tmpdir(self, name=None):
        """A fresh directory under this script's temp dir (short paths: a
        socket path must fit in sun_path)."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="aiod-%s-" % self.name[5:15])
        return tempfile.mkdtemp(dir=self._tmp, prefix=(name or "d")[:8] + "-")

    def daemon(self, plugin_dir=None, extra_args=(), dirpath=None, socket_path=None):
        """Starts a daemon in a fresh dir and waits for its READY=1."""
        return Daemon(self, dirpath or self.tmpdir(), plugin_dir, extra_args,
                      socket_path).start()

    def ctl(self, *args, timeout=60):
        """aioctl without -s (for tests of the CLI itself)."""
        return run([self.aioctl] + list(args), timeout=timeout, env=clean_env())

    # -- assertions: each fails the test with a message naming what was checked

    def check(self, cond, what, detail=""):
        if not cond:
            fail("%s%s" % (what, detail if isinstance(detail, str) else str(detail)))

    def eq(self, got, want, what, detail=""):
        if got != want:
            fail("%s: expected %r, got %r%s" % (what, want, got, detail))

    def between(self, got, lo, hi, what, detail=""):
        if not (lo <= got < hi):
            fail("%s: expected %s <= x < %s, got %.3f%s" % (what, lo, hi, got, detail))

    def contains(self, text, part, what, detail=""):
        if part not in text:
            fail("%s: %r not found in %r%s" % (what, part, text[-3000:], detail))

    # -- running

    def main(self):
        passed = 0
        only = os.environ.get("AIOD_TEST_ONLY")
        # AIOD_TEST_SHARD=K/N: every N-th case from the K-th (ctest runs the
        # other shards as tests of their own, side by side); said, not silent.
        shard = os.environ.get("AIOD_TEST_SHARD")
        k, n = (int(x) for x in shard.split("/")) if shard and not only else (0, 1)
        if n > 1:
            print("shard %d/%d: cases %d, %d, ... of %d (the others are another ctest test)"
                  % (k, n, k + 1, k + 1 + n, len(self.tests)), flush=True)
        try:
            for i, fn in enumerate(self.tests):
                if only and fn.__name__ != only:
                    continue
                if i % n != k:
                    continue
                start = time.monotonic()
                print("--- %s" % fn.__name__, flush=True)
                try:
                    fn()
                except TestFailure as e:
                    print("FAIL %s: %s" % (fn.__name__, e), flush=True)
                    print("%d passed, 1 failed" % passed, flush=True)
                    self._cleanup(keep=True)
                    sys.exit(1)
                except Exception:
                    print("ERROR %s:\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
                    print("%d passed, 1 failed" % passed, flush=True)
                    self._cleanup(keep=True)
                    sys.exit(1)
                passed += 1
                print("ok   %s (%.2f s)" % (fn.__name__, time.monotonic() - start), flush=True)
        finally:
            for d in self._daemons:
                d.kill()
        if only and not passed:
            # A name mistyped (or a list, which is not taken) ran nothing:
            # that is no pass.
            print("FAIL AIOD_TEST_ONLY=%s names no test of %s" % (only, self.name), flush=True)
            print("0 passed, 1 failed", flush=True)
            self._cleanup(keep=False)
            sys.exit(1)
        self._cleanup(keep=self.args.keep)
        print("%d passed, 0 failed" % passed, flush=True)

    def _cleanup(self, keep):
        for d in self._daemons:
            d.kill()
        if self._tmp:
            if keep:
                print("(temp dir kept: %s)" % self._tmp, flush=True)
            else:
                shutil.rmtree(self._tmp, ignore_errors=True)


# ---------------------------------------------------------------- helpers for
# test_threads.py and test_proc.py


def test_plugin_dir(suite, name):
    """build/tests/plugins/NAME: $AIOD_TEST_PLUGIN_DIR (set by ctest), else
    found next to --plugin-dir (build/daemon/plugins)."""
    base = os.environ.get("AIOD_TEST_PLUGIN_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(suite.plugin_dir))), "tests", "plugins")
    path = os.path.join(base, name)
    if not os.path.exists(os.path.join(path, name + ".so")):
        fail("test plugin %s.so not found in %s (build the tests first)" % (name, path))
    return path


def daemon_with_env(suite, env, **kw):
    """suite.daemon(**kw), with `env` added to the daemon's environment only
    (e.g. systemd variables that must not reach its children)."""
    global clean_env
    orig = clean_env

    def with_env():
        e = orig()
        e.update(env)
        return e

    clean_env = with_env
    try:
        return suite.daemon(**kw)
    finally:
        clean_env = orig


def children_of(pid):
    """[(pid, state, comm)] of the processes whose parent is `pid`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(name), fields[0], comm))
    return out


def open_fds(pid):
    """The descriptor numbers open in process `pid`."""
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


def processes_running(argv):
    """Pids of live (not zombie) processes whose command line is exactly argv."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if f.read() == want:
                    pids.append(int(name))
        except OSError:
            continue
    return pids
