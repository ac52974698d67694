#!/usr/bin/env python3
"""Protocol conformance: a client written from docs/protocol.md and
proto/aiod.proto alone, against the real daemon.

Every frame the daemon sends is parsed strictly with the code protoc
generates (Python's protobuf refuses invalid UTF-8 in a string field, so that
is checked on every frame) and run through a state machine per request id
that holds the end-of-stream rules of docs/protocol.md section 4: each
request id ends with exactly one final frame, after which nothing carries
it; frames come only in the order the table allows; request id 0 carries
only connection errors; no error code the document says is never sent.
Any violation fails the test that received the frame.

Each check is one function; all run, and every failure is listed at the
end (exit 1). Checks that act as another user need root (they drop to
`nobody` to connect); without root they are listed as not run and the
script exits 77, which ctest shows as skipped.

    test_conformance.py --aiod BUILD/daemon/aiod --plugin-dir BUILD/daemon/plugins \
                        --pb-dir DIR_WITH_aiod_pb2.py [--keep] [--only NAME]
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402  (the integration tests' daemon starter)

ap = argparse.ArgumentParser()
ap.add_argument("--aiod", required=True)
ap.add_argument("--plugin-dir", required=True)
ap.add_argument("--pb-dir", required=True, help="directory holding aiod_pb2.py (protoc output)")
ap.add_argument("--keep", action="store_true", help="keep the temp dir")
ap.add_argument("--only", help="run only this check")
ARGS = ap.parse_args()
sys.path.insert(0, ARGS.pb_dir)
import aiod_pb2 as pb  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402

# One read may wait this long: generous, so that sanitizer builds pass, and
# finite, so that nothing hangs (ctest's TIMEOUT is the outer bound).
TIMEOUT = harness.scaled(20.0, 60.0, 120.0)
DEFAULT_MAX_FRAME = 4 * 1024 * 1024

E = pb.ErrorCode
S = pb.TaskState
# Codes docs/protocol.md section 9 says are never sent.
NEVER_SENT = {E.Value("ERROR_UNSPECIFIED"), E.Value("ERROR_CANCELLED")}
FINAL_STATES = {S.Value("TASK_DONE"), S.Value("TASK_FAILED"), S.Value("TASK_CANCELLED")}


class Failure(AssertionError):
    pass


def fail(msg):
    raise Failure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def eq(got, want, what):
    if got != want:
        fail("%s: expected %r, got %r" % (what, want, got))


def show(m):
    """A ServerMessage on one line, for failure messages."""
    if m is None:
        return "<end of connection>"
    text = str(m).replace("\n", " ").strip()
    return text if len(text) < 400 else text[:400] + "…"


def name(code):
    try:
        return E.Name(code)
    except ValueError:
        return str(code)


# ---------------------------------------------------------------- values and calls


def v(x):
    """A Python value as an aiod.Value."""
    if x is None:
        return pb.Value(null_value=pb.Null())
    if isinstance(x, bool):
        return pb.Value(bool_value=x)
    if isinstance(x, int):
        return pb.Value(int_value=x)
    if isinstance(x, float):
        return pb.Value(double_value=x)
    if isinstance(x, str):
        return pb.Value(string_value=x)
    if isinstance(x, bytes):
        return pb.Value(bytes_value=x)
    if isinstance(x, list):
        return pb.Value(list_value=pb.List(items=[v(i) for i in x]))
    if isinstance(x, dict):
        return pb.Value(map_value=pb.Map(entries=[pb.MapEntry(key=k, value=v(i))
                                                   for k, i in x.items()]))
    raise TypeError(x)


def py(val):
    """An aiod.Value as a Python value (an unset Value and null_value are
    both None, as section 7 says)."""
    kind = val.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    if kind == "list_value":
        return [py(i) for i in val.list_value.items]
    if kind == "map_value":
        return [(e.key, py(e.value)) for e in val.map_value.entries]
    return getattr(val, kind)


def call(function, *args, text=False):
    if text:
        return pb.Call(function=function, args_are_text=True,
                       args=[pb.Value(string_value=a) for a in args])
    return pb.Call(function=function, args=[v(a) for a in args])


def shell(command):
    """proc.shell: runs /bin/sh -c COMMAND, streaming stdout (1) and stderr (2)."""
    return call("proc.shell", command)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


# ---------------------------------------------------------------- the client


class Stream:
    """What one request id has received, and the rules for what may come."""

    def __init__(self, kind, follow, new_tasks):
        self.kind = kind  # the ClientMessage body name, or "raw"
        self.follow = follow
        self.new_tasks = new_tasks  # Gather: how many items are calls
        self.frames = []
        self.done = False
        self.opened = False  # Submit: Submitted seen; Gather: Started seen
        self.want_started = False  # Gather: asked for Started


class Client:
    """A connection speaking frames, with the end-of-stream ledger."""

    def __init__(self, t, path=None, hello=True, sock=None, label="client"):
        self.t = t
        self.label = label
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(TIMEOUT)
            sock.connect(path)
        sock.settimeout(TIMEOUT)
        self.sock = sock
        self.buf = b""
        self.max_frame = DEFAULT_MAX_FRAME
        self.next_id = 1
        self.streams = {}
        self.conn_errors = []  # frames with request id 0
        self.eof = False
        self.hello_reply = None
        t.clients.append(self)
        if hello:
            self.hello()

    # -- sending

    def send_bytes(self, data):
        """False when the daemon already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def new_id(self):
        rid = self.next_id
        self.next_id += 1
        return rid

    def send(self, kind, body, rid=None, follow=False, new_tasks=0):
        """Sends ClientMessage{rid, kind: body}; returns the request id."""
        rid = self.new_id() if rid is None else rid
        msg = pb.ClientMessage(request_id=rid, **{kind: body})
        if rid != 0:
            self.streams[rid] = Stream(kind, follow, new_tasks)
            self.streams[rid].want_started = kind == "gather" and body.started
        self.send_bytes(frame(msg.SerializeToString()))
        return rid

    def send_raw(self, payload, rid, kind="raw"):
        """Sends a hand-made payload whose answer is tracked under `rid`."""
        if rid != 0:
            self.streams[rid] = Stream(kind, False, 0)
        return self.send_bytes(frame(payload))

    def hello(self):
        rid = self.send("hello", pb.Hello(protocol_version=1, client_name="conformance"))
        m = self.final(rid)
        eq(m.WhichOneof("body"), "hello", "reply to Hello (%s)" % show(m))
        self.hello_reply = m.hello
        self.max_frame = m.hello.max_frame
        return m.hello

    # -- receiving

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                fail("%s: nothing from the daemon for %.0f s (waiting for %s)"
                     % (self.label, TIMEOUT, self.waiting_for()))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def waiting_for(self):
        open_ids = [rid for rid, s in self.streams.items() if not s.done]
        return "the end of request(s) %s" % open_ids if open_ids else "a frame"

    def recv(self):
        """The next ServerMessage (accounted), or None at the end of the
        connection."""
        if not self._fill(4):
            check(not self.buf, "%s: the connection ended inside a frame header (%r)"
                  % (self.label, self.buf))
            self.eof = True
            return None
        (n,) = struct.unpack(">I", self.buf[:4])
        check(n <= self.max_frame, "%s: the daemon sent a frame of %d bytes, over max_frame %d"
              % (self.label, n, self.max_frame))
        check(self._fill(4 + n), "%s: the connection ended inside a %d-byte frame"
              % (self.label, n))
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        m = pb.ServerMessage()
        try:
            m.ParseFromString(payload)
        except DecodeError as e:
            fail("%s: a frame the daemon sent is not a valid ServerMessage (%s): %r"
                 % (self.label, e, payload[:200]))
        self.account(m)
        return m

    def violation(self, what, m, new=False):
        self.t.violations.append("%s%s: %s%s" % ("[NEW rule] " if new else "", self.label, what,
                                                 "; frame: " + show(m) if m is not None else ""))

    def account(self, m):
        """Checks one frame against the end-of-stream rules."""
        rid, body = m.request_id, m.WhichOneof("body")
        if body is None:
            self.violation("a ServerMessage with no body", m)
            return
        if body == "error" and m.error.code in NEVER_SENT:
            self.violation("error code %s, which the document says is never sent"
                           % name(m.error.code), m)
        if rid == 0:
            if body != "error":
                self.violation("request id 0 carries only connection errors", m)
            self.conn_errors.append(m)
            return
        s = self.streams.get(rid)
        if s is None:
            self.violation("a frame for request id %d, which was never sent" % rid, m)
            return
        if s.done:
            self.violation("a frame for request %d (%s) after its final frame %s"
                           % (rid, s.kind, show(s.frames[-1])), m)
            s.frames.append(m)
            return
        s.frames.append(m)
        first = len(s.frames) == 1
        final = {"hello": ("hello",), "await": ("outcomes",), "cancel": ("cancelled",),
                 "list_tasks": ("task_list",), "show_task": ("task_info",),
                 "list_plugins": ("plugin_list",), "reload": ("reloaded",), "raw": ()}
        if s.kind in final:
            if body != "error" and body not in final[s.kind]:
                self.violation("%s may be answered only by %s or an Error"
                               % (s.kind, "/".join(final[s.kind]) or "nothing"), m)
            s.done = True
        elif s.kind == "submit":
            if not s.opened:
                if body == "submitted":
                    s.opened = True
                    s.done = not s.follow
                elif body == "error":
                    s.done = True
                else:
                    self.violation("a Submit starts with Submitted or an Error", m)
                    s.done = True
            elif body == "output":
                pass
            elif body in ("output_end", "error"):
                s.done = True  # an Error: the stream ended before the task (section 4)
            else:
                self.violation("after Submitted, a followed Submit sends only Output, then "
                               "OutputEnd or an Error", m)
                s.done = True
        elif s.kind == "logs":
            if body == "error":
                if not first:
                    self.violation("an Error after Logs began to stream", m)
                s.done = True
            elif body == "output_end":
                s.done = True
            elif body != "output":
                self.violation("Logs sends only Output, OutputEnd or an Error", m)
                s.done = True
        elif s.kind == "gather":
            if first and body == "error":
                s.done = True  # refused: an Error alone
                return
            if first and body != "started" and not s.opened and s.want_started:
                self.violation("a Gather that was accepted must first send Started", m, new=True)
                s.opened = True
            if body == "started":
                if not first:
                    self.violation("Started only as the first frame of a Gather", m)
                if not s.want_started:
                    self.violation("Started for a Gather that did not ask for it", m)
                s.opened = True
            elif body == "output":
                if not s.follow:
                    self.violation("Output for a Gather without follow", m)
            elif body == "output_end":
                if not s.follow:
                    self.violation("OutputEnd for a Gather without follow", m)
                ends = sum(1 for f in s.frames if f.WhichOneof("body") == "output_end")
                if ends > s.new_tasks:
                    self.violation("more OutputEnd events (%d) than new tasks (%d)"
                                   % (ends, s.new_tasks), m)
            elif body in ("outcomes", "error"):
                s.done = True
                ends = sum(1 for f in s.frames if f.WhichOneof("body") == "output_end")
                if body == "outcomes" and s.follow and ends != s.new_tasks:
                    self.violation("a followed Gather answered with Outcomes must first send "
                                   "one OutputEnd per new task (%d), got %d"
                                   % (s.new_tasks, ends), m)
            else:
                self.violation("a Gather sends Started, Output, OutputEnd, then Outcomes or "
                               "an Error", m)
                s.done = True
        else:
            self.violation("a frame for a request of unknown kind %s" % s.kind, m)

    def final(self, rid):
        """Reads until request `rid` has its final frame; returns that frame."""
        return self.frames(rid)[-1]

    def frames(self, rid):
        """Reads until request `rid` has its final frame; returns all of its
        frames so far."""
        s = self.streams[rid]
        while not s.done:
            m = self.recv()
            if m is None:
                fail("%s: the daemon closed the connection before request %d (%s) ended; "
                     "frames of it: %s" % (self.label, rid, s.kind,
                                           [show(f) for f in s.frames]))
        return s.frames

    def ask(self, kind, body, **kw):
        """Sends a request and returns its final frame."""
        return self.final(self.send(kind, body, **kw))

    def expect_closed(self):
        """Reads until the daemon closes; returns what came before."""
        got = []
        while True:
            m = self.recv()
            if m is None:
                return got
            got.append(m)
            check(len(got) < 1000, "%s: the daemon keeps sending instead of closing" % self.label)

    def still_open(self):
        """A ListPlugins on this connection is answered: it stayed open."""
        m = self.ask("list_plugins", pb.ListPlugins())
        eq(m.WhichOneof("body"), "plugin_list",
           "%s: the connection stays open (reply to ListPlugins: %s)" % (self.label, show(m)))

    def close(self):
        self.sock.close()


def expect_error(m, code, what, contains=None):
    check(m is not None and m.WhichOneof("body") == "error",
          "%s: expected Error %s, got %s" % (what, code, show(m)))
    eq(name(m.error.code), code, "%s: error code (message %r)" % (what, m.error.message))
    if contains:
        check(contains in m.error.message, "%s: the message %r should contain %r"
              % (what, m.error.message, contains))


def expect(m, body, what):
    check(m is not None and m.WhichOneof("body") == body,
          "%s: expected %s, got %s" % (what, body, show(m)))
    return getattr(m, body)


# ---------------------------------------------------------------- the runner


class Conformance(harness.Suite):
    """harness.Suite's daemons and temp dirs, with a runner that runs every
    check and lists every failure."""

    def __init__(self):
        self.aiod = ARGS.aiod
        self.aioctl = None
        self.plugin_dir = ARGS.plugin_dir
        self.name = "test_conformance"
        self.args = ARGS
        self.tests = []
        self._daemons = []
        self._tmp = None
        self.clients = []
        self.violations = []
        self.fifos = []
        self.not_run = []
        self._shared = None

    def shared(self):
        """One daemon for the checks that need no settings of their own:
        proc.exec runs one task at a time (so a task can be seen waiting)."""
        if self._shared is None or not self._shared.alive():
            conf = self.settings("limit = proc.exec 1")
            self._shared = self.daemon(extra_args=["--config", conf])
        return self._shared

    def settings(self, *lines):
        path = os.path.join(self.tmpdir("conf"), "aiod.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def connect(self, d, **kw):
        return Client(self, d.socket, **kw)

    def needs_root(self, what):
        if os.geteuid() != 0:
            self.not_run.append(what)
            return False
        return True

    def stop(self, d, err):
        """Stops a daemon, adding to `err` unless it exits 0."""
        try:
            d.stop(timeout=TIMEOUT)
        except Exception as e:
            return (err + "\n" if err else "") + "stopping the daemon: %s" % e
        return err

    def run(self):
        failed = []
        for fn in self.tests:
            if ARGS.only and fn.__name__ != ARGS.only:
                continue
            self.clients, self.violations, self.fifos = [], [], []
            n_daemons = len(self._daemons)
            start = time.monotonic()
            print("--- %s" % fn.__name__, flush=True)
            err = None
            try:
                fn()
            except Failure as e:
                err = str(e)
            except Exception:
                err = traceback.format_exc()
            for c in self.clients:
                c.close()
            for f in self.fifos:
                f.let_go()
            # Daemons of this check stop on SIGTERM and must exit 0: a
            # sanitizer's finding, a crash or a hang shows here.
            for d in self._daemons[n_daemons:]:
                if d is not self._shared:
                    err = self.stop(d, err)
            if self.violations:
                err = (err + "\n" if err else "") + "end-of-stream rules broken:\n  " + \
                    "\n  ".join(self.violations)
            if err:
                failed.append((fn.__name__, err))
                print("FAIL %s: %s" % (fn.__name__, err), flush=True)
            else:
                print("ok   %s (%.2f s)" % (fn.__name__, time.monotonic() - start), flush=True)
        if self._shared is not None:
            err = self.stop(self._shared, None)
            if err:
                failed.append(("the shared daemon's exit", err))
                print("FAIL the shared daemon's exit: %s" % err, flush=True)
        for d in self._daemons:
            d.kill()
        total = len([f for f in self.tests if not ARGS.only or f.__name__ == ARGS.only])
        print("\n%d checks, %d passed, %d failed" % (total, total - len(failed), len(failed)))
        for n, err in failed:
            print("FAILED %s: %s" % (n, err.splitlines()[0] if err else ""))
        for what in self.not_run:
            print("NOT RUN (needs root to connect as another user): %s" % what)
        self._cleanup(keep=bool(failed) or ARGS.keep)
        if failed:
            sys.exit(1)
        if self.not_run:
            sys.exit(77)


t = Conformance()
check_fn = t.test


def connect_as(t, d, uid, gid, label, hello=True):
    """A connection made by a child process running as uid/gid, handed back
    over a socketpair: the daemon reads the peer's credentials at connect
    time (SO_PEERCRED), so it sees that user."""
    os.chmod(t._tmp, 0o755)
    os.chmod(d.dir, 0o755)
    os.chmod(d.socket, 0o666)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent.close()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket)
            socket.send_fds(child, [b"x"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    child.close()
    parent.settimeout(TIMEOUT)
    try:
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    finally:
        parent.close()
        os.waitpid(pid, 0)
    check(fds, "the child running as uid %d could not connect to %s" % (uid, d.socket))
    return Client(t, sock=socket.socket(fileno=fds[0]), label=label, hello=hello)


class Fifo:
    """A named pipe that holds a task (`cat FIFO` in proc.shell) until the
    test releases it: an event, not a sleep."""

    def __init__(self, t, tag):
        self.path = os.path.join(t.tmpdir("fifo"), tag)
        os.mkfifo(self.path)
        t.fifos.append(self)

    def let_go(self):
        """After a check, whatever happened: lets a task still reading go,
        so that it cannot hold a concurrency slot for later checks."""
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader (ENXIO): nothing is held

    def cmd(self, before="", after=""):
        return "%scat %s >/dev/null; %s" % (before, self.path, after or "true")

    def release(self):
        """Opens the pipe for writing (which waits for the task's reader)
        and closes it: the reader sees end of file."""
        done = []

        def opener():
            fd = os.open(self.path, os.O_WRONLY)
            os.close(fd)
            done.append(True)

        th = threading.Thread(target=opener, daemon=True)
        th.start()
        th.join(TIMEOUT)
        check(done, "no task opened the pipe %s within %.0f s" % (self.path, TIMEOUT))


def gather(c, items, follow=False, return_exceptions=False, timeout=0.0, cancel=False,
           started=True):
    """Sends a Gather (asking for Started unless told not to); returns its
    request id."""
    gi = [pb.GatherItem(task_id=i) if isinstance(i, int) else pb.GatherItem(call=i)
          for i in items]
    return c.send("gather", pb.Gather(items=gi, follow=follow,
                                      return_exceptions=return_exceptions, timeout=timeout,
                                      cancel_on_timeout=cancel, started=started),
                  follow=follow, new_tasks=sum(1 for i in items if not isinstance(i, int)))


def started_ids(c, rid, n, function):
    """The task ids of a Gather: from its Started event; if the daemon sent
    none (a violation already recorded), the newest `n` tasks of `function`
    from ListTasks, so that the rest of the check can still run."""
    s = c.streams[rid]
    # Started is sent at once when the gather is accepted, so it comes
    # before the reply to any request sent after the Gather.
    tl = expect(c.ask("list_tasks", pb.ListTasks(all=True)), "task_list", "ListTasks")
    if s.frames and s.frames[0].WhichOneof("body") == "started":
        return list(s.frames[0].started.task_ids)
    if not s.frames:
        s.opened = True  # reported here, not again at its first frame
        c.violation("a Gather that was accepted must first send Started, at once: none came "
                    "before the reply to a later ListTasks", None, new=True)
    ids = sorted(ti.id for ti in tl.tasks if ti.function == function)
    return ids[-n:]


def await_ids(c, ids, **kw):
    return c.ask("await", pb.Await(task_ids=ids, **kw))


def outcome_of(c, tid):
    o = expect(await_ids(c, [tid]), "outcomes", "Await %d" % tid)
    return o.outcomes[0]


# ================================================================ framing


@check_fn
def hello_reply_fields():
    d = t.shared()
    c = t.connect(d)
    h = c.hello_reply
    eq(h.protocol_version, 1, "HelloReply.protocol_version")
    eq(h.max_frame, DEFAULT_MAX_FRAME, "HelloReply.max_frame (default 4 MiB)")
    eq(h.max_in_flight, 4096, "HelloReply.max_in_flight (default)")
    check(h.server_version != "", "HelloReply.server_version is set")


@check_fn
def frames_split_across_writes():
    d = t.shared()
    c = t.connect(d, hello=False)
    msgs = [pb.ClientMessage(request_id=1, hello=pb.Hello(protocol_version=1)),
            pb.ClientMessage(request_id=2, list_plugins=pb.ListPlugins())]
    data = b"".join(frame(m.SerializeToString()) for m in msgs)
    c.streams[1] = Stream("hello", False, 0)
    c.streams[2] = Stream("list_plugins", False, 0)
    for i in range(len(data)):
        c.send_bytes(data[i:i + 1])
    expect(c.final(1), "hello", "Hello sent one byte at a time")
    expect(c.final(2), "plugin_list", "ListPlugins sent one byte at a time")


@check_fn
def many_frames_in_one_write():
    d = t.shared()
    c = t.connect(d, hello=False)
    kinds = [("hello", pb.Hello(protocol_version=1))] + \
        [("list_tasks", pb.ListTasks()), ("list_plugins", pb.ListPlugins())] * 20
    data = b""
    for i, (k, b) in enumerate(kinds, 1):
        c.streams[i] = Stream(k, False, 0)
        data += frame(pb.ClientMessage(request_id=i, **{k: b}).SerializeToString())
    c.next_id = len(kinds) + 1
    c.send_bytes(data)
    for i, (k, _) in enumerate(kinds, 1):
        want = {"hello": "hello", "list_tasks": "task_list", "list_plugins": "plugin_list"}[k]
        expect(c.final(i), want, "request %d of %d sent in one write" % (i, len(kinds)))


@check_fn
def zero_length_frame_before_hello_closes():
    d = t.shared()
    c = t.connect(d, hello=False)
    c.send_bytes(struct.pack(">I", 0))
    got = c.expect_closed()
    eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
    expect_error(got[0], "ERROR_PROTOCOL", "an empty frame before the hello",
                 "the first message must be Hello")
    eq(got[0].request_id, 0, "request id of the error (an empty frame has id 0)")


@check_fn
def zero_length_frame_after_hello_keeps_connection():
    d = t.shared()
    c = t.connect(d)
    c.send_bytes(struct.pack(">I", 0))
    c.still_open()
    eq(len(c.conn_errors), 1, "connection errors after an empty frame")
    expect_error(c.conn_errors[0], "ERROR_PROTOCOL", "an empty frame after the hello",
                 "request_id must not be 0")


def oversized(before_hello):
    """A header announcing max_frame + 1 bytes, and no payload: the daemon
    must answer from the header alone, then close."""
    d = t.shared()
    c = t.connect(d, hello=not before_hello)
    n = DEFAULT_MAX_FRAME + 1
    c.send_bytes(struct.pack(">I", n))
    got = c.expect_closed()  # reads with a timeout: it must not wait for a payload
    eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
    expect_error(got[0], "ERROR_BAD_MESSAGE", "an oversized frame header",
                 "frame of %d bytes exceeds the limit max_frame (%d bytes)"
                 % (n, DEFAULT_MAX_FRAME))
    eq(got[0].request_id, 0, "request id of the oversized-frame error")


@check_fn
def oversized_frame_refused_after_header():
    oversized(False)


@check_fn
def oversized_frame_refused_before_hello():
    oversized(True)


@check_fn
def frame_of_exactly_max_frame_is_read():
    d = limits_daemon()
    c = t.connect(d)
    m = pb.ClientMessage(request_id=c.new_id(), submit=pb.Submit(
        call=call("demo.echo", b""), ownership=pb.SUBMITTED))
    base = len(m.SerializeToString())
    # Grow the bytes value until the payload is exactly max_frame bytes (its
    # length prefixes grow with it).
    pad = c.max_frame - base
    while True:
        m.submit.call.args[0].bytes_value = b"x" * pad
        size = len(m.SerializeToString())
        if size == c.max_frame:
            break
        pad -= size - c.max_frame
    c.streams[m.request_id] = Stream("submit", False, 0)
    c.send_bytes(frame(m.SerializeToString()))
    expect(c.final(m.request_id), "submitted", "a frame of exactly max_frame bytes")


@check_fn
def undecodable_payload_closes():
    d = t.shared()
    c = t.connect(d)
    c.send_bytes(frame(b"\xff\xff\xff\xff"))
    got = c.expect_closed()
    eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
    expect_error(got[0], "ERROR_BAD_MESSAGE", "a payload that is not a ClientMessage",
                 "cannot decode the frame: ")
    eq(got[0].request_id, 0, "request id of the decode error")


@check_fn
def messages_nested_over_100_levels_close():
    d = t.shared()
    c = t.connect(d)
    val = v(1)
    for _ in range(60):  # ClientMessage, Submit, Call, then Value/List pairs
        val = pb.Value(list_value=pb.List(items=[val]))
    c.send_raw(pb.ClientMessage(request_id=c.new_id(), submit=pb.Submit(
        call=pb.Call(function="demo.echo", args=[val]))).SerializeToString(), 0)
    got = c.expect_closed()
    eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
    expect_error(got[0], "ERROR_BAD_MESSAGE", "a frame nesting 120 messages",
                 "message nests deeper than 100 levels")
    eq(got[0].request_id, 0, "request id of the nesting error")


# ================================================================ hello


@check_fn
def request_before_hello_gets_its_own_id_then_close():
    d = t.shared()
    c = t.connect(d, hello=False)
    rid = c.send("list_plugins", pb.ListPlugins(), rid=7)
    got = c.expect_closed()
    eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
    expect_error(got[0], "ERROR_PROTOCOL", "a request before the hello",
                 "the first message must be Hello")
    eq(got[0].request_id, rid, "request id of the pre-hello error (the request's own)")


@check_fn
def unsupported_versions_close():
    d = t.shared()
    for version in (0, 2):
        c = t.connect(d, hello=False)
        rid = c.send("hello", pb.Hello(protocol_version=version))
        got = c.expect_closed()
        eq(len(got), 1, "frames before the close (%s)" % [show(m) for m in got])
        expect_error(got[0], "ERROR_UNSUPPORTED_VERSION", "Hello version %d" % version,
                     "protocol version %d is not supported; this daemon speaks version 1"
                     % version)
        eq(got[0].request_id, rid, "request id of the version error")


@check_fn
def second_hello_keeps_connection():
    d = t.shared()
    c = t.connect(d)
    m = c.ask("hello", pb.Hello(protocol_version=1))
    expect_error(m, "ERROR_PROTOCOL", "a second hello",
                 "hello was already exchanged on this connection")
    c.still_open()


@check_fn
def hello_with_request_id_0():
    d = t.shared()
    c = t.connect(d, hello=False)
    c.send("hello", pb.Hello(protocol_version=1), rid=0)
    # Answered with a connection error; the hello did not count, so a proper
    # one is still the first message and works.
    c.hello()
    eq(len(c.conn_errors), 1, "connection errors after a hello with id 0")
    expect_error(c.conn_errors[0], "ERROR_PROTOCOL", "a hello with request id 0",
                 "request_id must not be 0")


@check_fn
def request_id_0_keeps_connection():
    d = t.shared()
    c = t.connect(d)
    c.send("list_tasks", pb.ListTasks(), rid=0)
    c.still_open()
    eq(len(c.conn_errors), 1, "connection errors after a request with id 0")
    expect_error(c.conn_errors[0], "ERROR_PROTOCOL", "request id 0", "request_id must not be 0")


@check_fn
def empty_and_unknown_bodies_keep_connection():
    d = t.shared()
    c = t.connect(d)
    rid = c.new_id()
    c.send_raw(pb.ClientMessage(request_id=rid).SerializeToString(), rid)
    expect_error(c.final(rid), "ERROR_BAD_MESSAGE", "a request with no body",
                 "unknown or empty request")
    rid = c.new_id()
    # Field 99, length-delimited, empty: a body from a newer protocol.
    payload = pb.ClientMessage(request_id=rid).SerializeToString() + b"\x9a\x06\x00"
    c.send_raw(payload, rid)
    expect_error(c.final(rid), "ERROR_BAD_MESSAGE", "a request with an unknown body",
                 "is the client newer than the daemon?")
    c.still_open()


# ================================================================ Submit


@check_fn
def submit_then_await():
    d = t.shared()
    c = t.connect(d)
    sub = expect(c.ask("submit", pb.Submit(call=call("demo.echo", {"a": [1, 2.5, "x", None]}))),
                 "submitted", "Submit demo.echo")
    check(sub.task_id > 0, "task ids are positive")
    o = outcome_of(c, sub.task_id)
    eq(S.Name(o.state), "TASK_DONE", "outcome state")
    eq(o.task_id, sub.task_id, "outcome task id")
    eq(py(o.result), [("a", [1, 2.5, "x", None])], "the echoed value (map order kept)")
    sub = expect(c.ask("submit", pb.Submit(call=call("demo.sleep", "0", "[1, 2]", text=True))),
                 "submitted", "Submit with text arguments")
    o = outcome_of(c, sub.task_id)
    eq(py(o.result), [1, 2], "a text argument for `any` read as JSON")


@check_fn
def submit_follow_streams_then_output_end():
    d = t.shared()
    c = t.connect(d)
    rid = c.send("submit", pb.Submit(call=shell("echo out; echo err >&2"), follow=True),
                 follow=True)
    frames = c.frames(rid)
    kinds = [f.WhichOneof("body") for f in frames]
    eq(kinds[0], "submitted", "first frame of a followed Submit")
    eq(kinds[-1], "output_end", "final frame of a followed Submit")
    tid = frames[0].submitted.task_id
    lines = sorted((f.output.stream, f.output.line) for f in frames if f.HasField("output"))
    eq(lines, [(1, "out"), (2, "err")], "(stream, line) of the Output events")
    eq(sorted(f.output.seq for f in frames if f.HasField("output")), [0, 1], "seq numbers")
    for f in frames[1:]:
        eq(getattr(f, f.WhichOneof("body")).task_id, tid, "task id of each event")
    eq(S.Name(frames[-1].output_end.state), "TASK_DONE", "OutputEnd.state")


def lines_of(frames):
    return [f.output for f in frames if f.HasField("output")]


def behind_follower_daemon():
    """A daemon where a follower falls behind soon (its connection holds
    32 KiB of unread replies: half of max_write_queue) and its task stops
    waiting for it after 300 ms."""
    return t.daemon(extra_args=["--output-hold-ms", "300", "--max-write-queue", "64K"])


# proc.shell printing N lines of 100 bytes at once, each line its number.
def many_lines(n):
    return shell("seq -f '%%099g' 1 %d" % n)


@check_fn
def behind_followers_end_before_the_outcome():
    # Section 5.1: on one connection, a task's Output events and OutputEnd
    # come before any Outcomes that reports its end, also when the follower
    # (a followed Submit, a Logs) is behind because the client reads slowly.
    d = behind_follower_daemon()
    other = t.connect(d, label="other")
    n = 6000
    for how in ("submit", "logs"):
        c = t.connect(d, label=how)
        if how == "submit":
            rid = c.send("submit", pb.Submit(call=many_lines(n), follow=True), follow=True)
            tid = expect(c.recv(), "submitted", "the followed Submit").task_id
        else:
            tid = expect(c.ask("submit", pb.Submit(call=many_lines(n))), "submitted",
                         "Submit").task_id
            rid = c.send("logs", pb.Logs(task_id=tid, follow=True))
        aid = c.send("await", pb.Await(task_ids=[tid]))
        # c reads nothing until the task has ended: its follower is behind.
        eq(S.Name(outcome_of(other, tid).state), "TASK_DONE", "the task, awaited elsewhere")
        expect(c.final(aid), "outcomes", "the Await on the %s's connection" % how)
        frames = c.streams[rid].frames
        check(c.streams[rid].done, "%s: the task's OutputEnd came before the Outcomes that "
              "reports its end (%d frames of the %s so far, the last %s)"
              % (how, len(frames), how, show(frames[-1]) if frames else None))
        end = expect(frames[-1], "output_end", "the %s's final frame" % how)
        got = lines_of(frames)
        if how == "submit":
            eq(len(got) + end.dropped, n, "Output events received (%d) + dropped (%d)"
               % (len(got), end.dropped))
        eq([x.seq for x in got], sorted(x.seq for x in got), "lines in order")


@check_fn
def followed_output_comes_before_the_outcome():
    d = t.shared()
    c = t.connect(d)
    rid = c.send("submit", pb.Submit(call=call("demo.hello", "you"), follow=True), follow=True)
    tid = expect(c.frames(rid)[0], "submitted", "Submit demo.hello").task_id
    aid = c.send("await", pb.Await(task_ids=[tid]))
    # Read until the Await ends: the Submit's OutputEnd must be there before.
    c.final(aid)
    check(c.streams[rid].done, "the followed task's OutputEnd came before the Outcomes that "
          "reports its end (Submit frames: %s)" % [show(f) for f in c.streams[rid].frames])
    eq([f.output.line for f in c.streams[rid].frames if f.HasField("output")],
       ["Hello, you!"], "demo.hello's line")


@check_fn
def a_follower_that_does_not_read_loses_lines_not_its_connection():
    # The task's own follower holds its output back for 300 ms at most when
    # it reads nothing; then lines are dropped for it, counted.
    d = t.daemon(extra_args=["--output-hold-ms", "300"])
    c = t.connect(d)
    other = t.connect(d, label="other")
    n = 300000
    rid = c.send("submit", pb.Submit(call=shell("seq 1 %d" % n), follow=True,
                                     ownership=pb.SUBMITTED), follow=True)
    tid = expect(c.recv(), "submitted", "Submit").task_id
    # Reading nothing more on c: the task still ends (awaited from another
    # connection).
    o = outcome_of(other, tid)
    eq((S.Name(o.state), dict(py(o.result)).get("exit")), ("TASK_DONE", 0),
       "the task ends although its follower read nothing")
    # Now read it all: the connection is still open, and every line is
    # either received or counted as dropped.
    frames = c.frames(rid)
    kinds = [f.WhichOneof("body") for f in frames]
    eq((kinds[0], kinds[-1]), ("submitted", "output_end"), "first and final frames")
    lines = [f.output for f in frames if f.HasField("output")]
    dropped = frames[-1].output_end.dropped
    eq(len(lines) + dropped, n, "Output events received (%d) + dropped (%d)"
       % (len(lines), dropped))
    check(dropped > 0, "a follower that read nothing for a long while lost lines (none dropped)")
    seqs = [x.seq for x in lines]
    eq(seqs, sorted(seqs), "lines in order")
    eq([x.line for x in lines[-3:]], [str(x.seq + 1) for x in lines[-3:]], "each line its seq + 1")
    c.still_open()


@check_fn
def write_budget_drops_the_largest_queue_first():
    d = t.daemon(extra_args=["--max-write-queue-total", "1M", "--max-write-queue", "16M"])
    small, big, good = (t.connect(d, label=x) for x in ("small", "big", "good"))
    tid = expect(good.ask("submit", pb.Submit(call=call("demo.echo", "x" * 30000),
                                              ownership=pb.SUBMITTED)), "submitted",
                 "Submit").task_id
    outcome_of(good, tid)
    show_frame = frame(pb.ClientMessage(request_id=9, show_task=pb.ShowTask(task_id=tid))
                       .SerializeToString())
    # Neither reads: `small` queues about 300 KB of replies, then `big`
    # about 2.4 MB, far past the total of 1 MiB (but not its own 16 MiB).
    sids = [small.send("show_task", pb.ShowTask(task_id=tid)) for _ in range(10)]
    good.still_open()
    big.send_bytes(show_frame * 80)
    good.still_open()
    # big is dropped (the most queued), as the log says; small and good are
    # not: every reply of small's comes, and both still answer. (How many of
    # big's bytes reach it before its end depends on the kernel's buffer.)
    d.wait_log("the most of any client, and all clients together have", TIMEOUT)
    d.wait_log("over max_write_queue_total (1048576); dropping the client", TIMEOUT)
    for sid in sids:
        expect(small.final(sid), "task_info", "small's replies, all there")
    small.still_open()
    good.still_open()


@check_fn
def submit_errors():
    d = t.shared()
    c = t.connect(d)
    cases = [
        (call("demo.nope"), 0, "ERROR_UNKNOWN_FUNCTION", "unknown function 'demo.nope'"),
        (call("demo.my_async_function1", "a", 1.0), 0, "ERROR_UNKNOWN_FUNCTION",
         "unknown function 'demo.my_async_function1' (see `aioctl plugins` for the list)"),
        (pb.Call(), 0, "ERROR_BAD_ARGUMENT", "the call names no function"),
        (call("demo.echo", 1, 2), 0, "ERROR_BAD_ARGUMENT",
         "demo.echo: takes at most 1 argument (2 given)"),
        (call("demo.sleep"), 0, "ERROR_BAD_ARGUMENT",
         "demo.sleep: missing argument 'seconds' (double)"),
        (call("demo.sleep", "abc"), 0, "ERROR_BAD_ARGUMENT",
         "demo.sleep: parameter 'seconds': expected double, got string \"abc\""),
        (call("demo.sleep", "abc", text=True), 0, "ERROR_BAD_ARGUMENT",
         "demo.sleep: parameter 'seconds': expected double, got \"abc\""),
        (call("demo.hello", 5, text=False), 0, "ERROR_BAD_ARGUMENT", "demo.hello"),
        (call("demo.echo", "x"), 7, "ERROR_BAD_ARGUMENT", "unknown ownership 7"),
    ]
    for cl, own, code, text in cases:
        for follow in (False, True):
            m = c.ask("submit", pb.Submit(call=cl, ownership=own, follow=follow), follow=follow)
            expect_error(m, code, "Submit %s (follow %s)" % (cl.function or "<none>", follow),
                         text)
    c.still_open()


@check_fn
def values_nested_too_deeply_are_refused():
    d = t.shared()
    c = t.connect(d)
    # Section 7: values nest at most 32 levels.
    deep = v(1)
    for _ in range(32):
        deep = pb.Value(list_value=pb.List(items=[deep]))
    expect_error(c.ask("submit", pb.Submit(call=pb.Call(function="demo.echo", args=[deep]))),
                 "ERROR_BAD_ARGUMENT", "a value 33 levels deep",
                 "demo.echo: parameter 'value': values nested too deeply")
    c.still_open()


@check_fn
def duplicate_map_keys_are_refused():
    d = t.shared()
    c = t.connect(d)
    dup = pb.Value(map_value=pb.Map(entries=[pb.MapEntry(key="k", value=v(1)),
                                             pb.MapEntry(key="k", value=v(2))]))
    expect_error(c.ask("submit", pb.Submit(call=pb.Call(function="demo.echo", args=[dup]))),
                 "ERROR_BAD_ARGUMENT", "a duplicate map key",
                 "demo.echo: parameter 'value': duplicate map key \"k\"")
    c.still_open()


@check_fn
def strings_that_are_not_utf8_are_refused():
    d = t.shared()
    c = t.connect(d)
    # A string_value holding invalid UTF-8, written by hand (the library
    # refuses to): Value field 5, then ClientMessage{id, submit{call}}.
    rid = c.new_id()
    bad = harness.field_bytes(5, b"\xff\xfe")
    callb = harness.field_bytes(1, b"demo.echo") + harness.field_bytes(2, bad)
    payload = harness.field_varint(1, rid) + harness.field_bytes(3, harness.field_bytes(1, callb))
    c.send_raw(payload, rid, kind="submit")
    expect_error(c.final(rid), "ERROR_BAD_ARGUMENT", "a string that is not UTF-8")
    c.still_open()


@check_fn
def detached_outcome_is_not_kept():
    d = t.shared()
    c = t.connect(d)
    rid = c.send("submit", pb.Submit(call=call("demo.hello"), ownership=pb.DETACHED,
                                     follow=True), follow=True)
    frames = c.frames(rid)
    tid = expect(frames[0], "submitted", "Submit DETACHED").task_id
    eq(S.Name(frames[-1].output_end.state), "TASK_DONE", "the detached task ended")
    expect_error(await_ids(c, [tid]), "ERROR_NO_SUCH_TASK", "Await of an ended detached task",
                 "no task %d (it never existed, or its result is no longer retained)" % tid)


@check_fn
def attached_outcome_is_held_for_its_connection():
    """Section 6: an attached task's outcome waits for its connection, beyond
    the retention count; a submitted one does not."""
    d = t.daemon(extra_args=["--retain-count", "1"])
    c = t.connect(d)
    ids = {}
    for own in (pb.ATTACHED, pb.SUBMITTED):
        rid = c.send("submit", pb.Submit(call=call("demo.hello"), ownership=own, follow=True),
                     follow=True)
        frames = c.frames(rid)
        ids[own] = frames[0].submitted.task_id
        eq(S.Name(frames[-1].output_end.state), "TASK_DONE", "task %d ended" % ids[own])
    # Three more outcomes delivered and retained push the submitted one out.
    for _ in range(3):
        tid = expect(c.ask("submit", pb.Submit(call=call("demo.echo", 1))), "submitted",
                     "Submit").task_id
        eq(S.Name(outcome_of(c, tid).state), "TASK_DONE", "filler task")
    expect_error(await_ids(c, [ids[pb.SUBMITTED]]), "ERROR_NO_SUCH_TASK",
                 "Await of a submitted task beyond retain_count 1")
    o = outcome_of(c, ids[pb.ATTACHED])
    eq((S.Name(o.state), o.result), ("TASK_DONE", v("hello done")),
       "the attached task's outcome, held until its connection awaited it")


@check_fn
def closing_cancels_attached_tasks():
    d = t.shared()
    a = t.connect(d, label="creator")
    tid = expect(a.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    s = expect(a.ask("submit", pb.Submit(call=call("demo.sleep", 600.0),
                                         ownership=pb.SUBMITTED)), "submitted", "Submit").task_id
    a.close()
    b = t.connect(d, label="other")
    o = outcome_of(b, tid)
    eq((S.Name(o.state), o.error_kind), ("TASK_CANCELLED", "CancelledError"),
       "the attached task after its connection closed")
    info = expect(b.ask("show_task", pb.ShowTask(task_id=s)), "task_info", "ShowTask")
    check(info.state in (S.Value("TASK_PENDING"), S.Value("TASK_RUNNING")),
          "the submitted task keeps running (state %s)" % S.Name(info.state))
    expect(b.ask("cancel", pb.Cancel(task_ids=[s])), "cancelled", "Cancel")




@check_fn
def half_close_ends_followed_submits():
    # Section 10: after shutdown(SHUT_WR) every request that came before is
    # answered, a followed Submit too: its stream goes on to its OutputEnd
    # (the attached task is awaited by its own stream, so it is not
    # cancelled), and only then does the daemon close.
    d = t.shared()
    c = t.connect(d)
    fifos = {own: Fifo(t, "half-%d" % own) for own in (pb.ATTACHED, pb.SUBMITTED)}
    rids = {}
    for own, fifo in fifos.items():
        rids[own] = c.send("submit", pb.Submit(call=shell(fifo.cmd("echo a; ", "echo b")),
                                               follow=True, ownership=own), follow=True)
        # Both tasks have printed "a": they run, held by their pipes.
        while not any(f.HasField("output") for f in c.streams[rids[own]].frames):
            check(c.recv() is not None, "the connection ended before the task printed")
    c.sock.shutdown(socket.SHUT_WR)
    releasers = [threading.Thread(target=f.release, daemon=True) for f in fifos.values()]
    for th in releasers:
        th.start()
    for own, rid in rids.items():
        frames = c.frames(rid)
        eq([f.output.line for f in frames if f.HasField("output")], ["a", "b"],
           "lines of the %s task after the half-close" % pb.Ownership.Name(own))
        eq(S.Name(expect(frames[-1], "output_end", "final frame").state), "TASK_DONE",
           "OutputEnd.state of the %s task" % pb.Ownership.Name(own))
    eq(c.expect_closed(), [], "nothing after the last stream ended, then the close")
    for th in releasers:
        th.join(TIMEOUT)
# ================================================================ Await


@check_fn
def await_errors():
    d = t.shared()
    c = t.connect(d)
    expect_error(await_ids(c, []), "ERROR_BAD_ARGUMENT", "Await with no ids",
                 "await needs at least one task")
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.echo", 1))), "submitted",
                 "Submit").task_id
    for bad in (-1.0, 2e9, float("nan")):
        expect_error(await_ids(c, [tid], timeout=bad), "ERROR_BAD_ARGUMENT",
                     "Await timeout %r" % bad, "timeout must be between 0 and 1e9 seconds")
    expect_error(await_ids(c, [tid, 999999999]), "ERROR_NO_SUCH_TASK", "Await of an unknown id",
                 "no task 999999999 (it never existed, or its result is no longer retained)")
    expect_error(await_ids(c, [tid] * 100001), "ERROR_LIMIT", "Await of 100,001 ids",
                 "exceeds the limit of 100000 per request")
    eq(S.Name(outcome_of(c, tid).state), "TASK_DONE", "the task was awaitable all along")
    c.still_open()


@check_fn
def await_timeout_keeps_or_cancels():
    d = t.shared()
    c = t.connect(d)
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    expect_error(await_ids(c, [tid], timeout=0.05), "ERROR_TIMEOUT",
                 "Await with a timeout", "timed out after 0.05 s with 1 of 1 task unfinished; "
                 "they keep running")
    info = expect(c.ask("show_task", pb.ShowTask(task_id=tid)), "task_info", "ShowTask")
    eq(S.Name(info.state), "TASK_RUNNING", "the task after a timeout without cancel")
    expect_error(await_ids(c, [tid], timeout=0.05, cancel_on_timeout=True), "ERROR_TIMEOUT",
                 "Await with a timeout that cancels", "cancelled them")
    o = outcome_of(c, tid)
    eq((S.Name(o.state), o.error_kind), ("TASK_CANCELLED", "CancelledError"),
       "the task after a timeout with cancel")


@check_fn
def pipelined_replies_come_when_ready():
    d = t.shared()
    c = t.connect(d)
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    aid = c.send("await", pb.Await(task_ids=[tid]))
    lid = c.send("list_tasks", pb.ListTasks())
    expect(c.final(lid), "task_list", "ListTasks sent after a pending Await")
    check(not c.streams[aid].done, "the Await sent first is not answered before the task ends")
    expect(c.ask("cancel", pb.Cancel(task_ids=[tid])), "cancelled", "Cancel")
    o = expect(c.final(aid), "outcomes", "the pending Await").outcomes[0]
    eq(S.Name(o.state), "TASK_CANCELLED", "its outcome")


# ================================================================ Gather


@check_fn
def gather_sends_started_first():
    d = t.shared()
    c = t.connect(d)
    first = expect(c.ask("submit", pb.Submit(call=call("demo.echo", "old"))), "submitted",
                   "Submit").task_id
    rid = gather(c, [call("demo.echo", "a"), first, call("demo.echo", "b")])
    frames = c.frames(rid)
    s = frames[0]
    check(s.WhichOneof("body") == "started",
          "Gather of 3 items: first frame should be Started{task_ids}, got %s" % show(s))
    ids = list(s.started.task_ids)
    eq(len(ids), 3, "Started.task_ids count")
    eq(ids[1], first, "Started.task_ids[1] is the existing task")
    out = expect(frames[-1], "outcomes", "Gather reply").outcomes
    eq([o.task_id for o in out], ids, "Outcomes in argument order match Started")
    eq([o.result for o in out], [v("a"), v("old"), v("b")], "gather results in argument order")


@check_fn
def gather_without_started_flag_sends_no_started():
    d = t.shared()
    c = t.connect(d)
    rid = gather(c, [call("demo.echo", "a")], follow=True, started=False)
    frames = c.frames(rid)
    eq([f.WhichOneof("body") for f in frames], ["output_end", "outcomes"],
       "a followed Gather without `started`: OutputEnd then Outcomes, no Started")


@check_fn
def gather_tasks_can_be_cancelled_from_started():
    d = t.shared()
    c = t.connect(d)
    rid = gather(c, [call("demo.sleep", 600.0, "x"), call("demo.echo", 1)],
                 return_exceptions=True)
    ids = started_ids(c, rid, 1, "demo.sleep")
    check(len(ids) >= 1, "the gather's task ids")
    expect(c.ask("cancel", pb.Cancel(task_ids=[ids[0]])), "cancelled", "Cancel of item 1")
    out = expect(c.final(rid), "outcomes", "the gather with return_exceptions").outcomes
    eq([S.Name(o.state) for o in out], ["TASK_CANCELLED", "TASK_DONE"],
       "outcome states in place")
    eq(out[0].error_kind, "CancelledError", "error_kind of the cancelled item")


@check_fn
def gather_follow_streams_new_tasks_only():
    d = t.shared()
    c = t.connect(d)
    old = expect(c.ask("submit", pb.Submit(call=call("demo.hello", "old"))), "submitted",
                 "Submit").task_id
    outcome_of(c, old)
    rid = gather(c, [call("demo.hello", "a"), old, shell("echo b1; echo b2 >&2")], follow=True)
    frames = c.frames(rid)
    out = expect(frames[-1], "outcomes", "followed Gather reply").outcomes
    ids = [o.task_id for o in out]
    lines = sorted((f.output.task_id, f.output.stream, f.output.line) for f in frames
                   if f.HasField("output"))
    eq(lines, sorted([(ids[0], 1, "Hello, a!"), (ids[2], 1, "b1"), (ids[2], 2, "b2")]),
       "Output events: the new tasks' lines only")
    ends = sorted((f.output_end.task_id, S.Name(f.output_end.state)) for f in frames
                  if f.HasField("output_end"))
    eq(ends, sorted([(ids[0], "TASK_DONE"), (ids[2], "TASK_DONE")]),
       "one OutputEnd per new task")


@check_fn
def gather_fail_fast_then_nothing_more():
    d = t.shared()
    c = t.connect(d)
    fifo = Fifo(t, "failfast")
    rid = gather(c, [shell(fifo.cmd(after="echo late")), call("demo.fail", "KeyError", "boom")],
                 follow=True)
    ids = started_ids(c, rid, 1, "proc.shell")
    m = c.final(rid)
    expect_error(m, "ERROR_TASK_FAILED", "a fail-fast gather",
                 "failed: KeyError: boom")
    eq((S.Name(m.error.outcome.state), m.error.outcome.error_kind,
        m.error.outcome.error_message), ("TASK_FAILED", "KeyError", "boom"),
       "the failed task's outcome in the error")
    # The other task keeps running, prints and ends; nothing of it may come
    # under the gather's id any more. Awaiting it on this connection is the
    # barrier: its OutputEnd would come before this Outcomes.
    fifo.release()
    o = outcome_of(c, ids[0])
    eq(S.Name(o.state), "TASK_DONE", "the other task kept running after the failure")


@check_fn
def gather_timeout_then_nothing_more():
    d = t.shared()
    c = t.connect(d)
    rid = gather(c, [shell("echo begun; exec sleep 600")], follow=True, timeout=0.5,
                 cancel=True)
    ids = started_ids(c, rid, 1, "proc.shell")
    m = c.final(rid)
    expect_error(m, "ERROR_TIMEOUT", "a gather that times out",
                 "timed out after 0.5 s with 1 of 1 task unfinished; cancelled them")
    o = outcome_of(c, ids[0])  # the barrier: the task has ended
    eq(S.Name(o.state), "TASK_CANCELLED", "the task after the gather's timeout")



@check_fn
def gather_timeout_after_its_tasks_ended_still_ends_their_output():
    # The tasks all ended before the timeout, but the follower was behind:
    # the gather is answered with Outcomes once the follower sent what is
    # left, each line either sent or counted in OutputEnd.dropped (section
    # 5.3: one OutputEnd per new task, all before the Outcomes).
    d = behind_follower_daemon()
    c = t.connect(d)
    other = t.connect(d, label="other")
    # The task ends after the 300 ms hold: well before the timeout.
    n, timeout = 6000, harness.scaled(1.0, 3.0, 6.0)
    start = time.monotonic()
    rid = gather(c, [many_lines(n)], follow=True, timeout=timeout)
    tid = expect(c.recv(), "started", "the gather's first frame").task_ids[0]
    # c reads nothing more until the task has ended and the timeout passed
    # (no event says a timer fired: the clock does).
    eq(S.Name(outcome_of(other, tid).state), "TASK_DONE", "the task, awaited elsewhere")
    check(time.monotonic() - start < timeout, "the task ended within the gather's timeout "
          "(%.1f s), as this check needs" % timeout)
    time.sleep(max(0.0, start + timeout + 0.3 - time.monotonic()))
    frames = c.frames(rid)
    out = expect(frames[-1], "outcomes", "the gather's final frame").outcomes
    eq(S.Name(out[0].state), "TASK_DONE", "the outcome")
    ends = [f.output_end for f in frames if f.HasField("output_end")]
    eq(len(ends), 1, "OutputEnd events before the Outcomes")
    got = lines_of(frames)
    eq(len(got) + ends[0].dropped, n, "Output events received (%d) + dropped (%d)"
       % (len(got), ends[0].dropped))

@check_fn
def gather_timeout_without_cancel_keeps_running():
    d = t.shared()
    c = t.connect(d)
    rid = gather(c, [call("demo.sleep", 600.0)], timeout=0.05)
    ids = started_ids(c, rid, 1, "demo.sleep")
    expect_error(c.final(rid), "ERROR_TIMEOUT", "a gather timeout without cancel",
                 "they keep running")
    info = expect(c.ask("show_task", pb.ShowTask(task_id=ids[0])), "task_info", "ShowTask")
    eq(S.Name(info.state), "TASK_RUNNING", "the gather's task keeps running")
    expect(c.ask("cancel", pb.Cancel(task_ids=ids)), "cancelled", "Cancel")


@check_fn
def refused_gather_sends_an_error_alone():
    d = t.shared()
    c = t.connect(d)
    cases = [([call("demo.sleep", 600.0, "refused"), call("demo.nope")],
              "ERROR_UNKNOWN_FUNCTION", "gather item 2: unknown function 'demo.nope'"),
             ([call("demo.echo", 1), 999999999], "ERROR_NO_SUCH_TASK",
              "gather item 2: no task 999999999"),
             ([call("demo.echo", 1), call("demo.echo", 1, 2)], "ERROR_BAD_ARGUMENT",
              "gather item 2: demo.echo: takes at most 1 argument"),
             ([], "ERROR_BAD_ARGUMENT", "gather needs at least one task")]
    for items, code, text in cases:
        for follow in (False, True):
            rid = gather(c, items, follow=follow)
            frames = c.frames(rid)
            eq(len(frames), 1, "frames of a refused gather (%s)" % [show(f) for f in frames])
            expect_error(frames[0], code, "refused gather", text)
    # An item that is neither a call nor a task id.
    rid = c.send("gather", pb.Gather(items=[pb.GatherItem()]))
    expect_error(c.final(rid), "ERROR_BAD_ARGUMENT", "an empty gather item",
                 "gather item 1: item is neither a call nor a task id")
    rid = c.send("gather", pb.Gather(items=[pb.GatherItem(call=call("demo.echo", 1))],
                                     timeout=-1))
    expect_error(c.final(rid), "ERROR_BAD_ARGUMENT", "a gather timeout of -1")
    # The first item's task was cancelled before it ran: nothing is left.
    tl = expect(c.ask("list_tasks", pb.ListTasks()), "task_list", "ListTasks").tasks
    eq([ti.id for ti in tl if ti.function == "demo.sleep" and ti.owner_pid == os.getpid()], [],
       "no task left running by the refused gathers")


# ================================================================ Cancel


@check_fn
def cancel_counts_and_errors():
    d = t.shared()
    c = t.connect(d)
    run = expect(c.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    done = expect(c.ask("submit", pb.Submit(call=call("demo.echo", 1))), "submitted",
                  "Submit").task_id
    outcome_of(c, done)
    eq(expect(c.ask("cancel", pb.Cancel(task_ids=[run, done])), "cancelled", "Cancel").count, 1,
       "Cancelled.count: only the unfinished task")
    eq(S.Name(outcome_of(c, run).state), "TASK_CANCELLED", "the cancelled task")
    eq(expect(c.ask("cancel", pb.Cancel(task_ids=[run])), "cancelled", "Cancel again").count, 0,
       "cancelling an ended task counts 0")
    expect_error(c.ask("cancel", pb.Cancel(task_ids=[run, 999999999])), "ERROR_NO_SUCH_TASK",
                 "Cancel with an unknown id", "no task 999999999")
    expect_error(c.ask("cancel", pb.Cancel()), "ERROR_BAD_ARGUMENT", "Cancel of no ids",
                 "cancel needs at least one task")
    expect_error(c.ask("cancel", pb.Cancel(task_ids=[run] * 100001)), "ERROR_LIMIT",
                 "Cancel of 100,001 ids", "exceeds the limit of 100000 per request")


# ================================================================ ListTasks, ShowTask


@check_fn
def list_and_show_tasks():
    d = t.shared()
    c = t.connect(d)
    fifo = Fifo(t, "list")
    first = expect(c.ask("submit", pb.Submit(call=pb.Call(
        function="proc.exec", args=[v("/bin/sh"), v("-c"), v(fifo.cmd())]))), "submitted",
        "Submit proc.exec").task_id
    # proc.exec may run one task at a time here: the second one waits.
    second = expect(c.ask("submit", pb.Submit(call=call("proc.exec", "/bin/true"))),
                    "submitted", "Submit a second proc.exec").task_id
    ended = expect(c.ask("submit", pb.Submit(call=call("demo.echo", "x" * 300))), "submitted",
                   "Submit").task_id
    outcome_of(c, ended)
    tl = expect(c.ask("list_tasks", pb.ListTasks()), "task_list", "ListTasks").tasks
    ids = [ti.id for ti in tl]
    eq(ids, sorted(ids), "ListTasks in order of task id")
    check(first in ids and second in ids and ended not in ids,
          "ListTasks{all: false}: unfinished tasks only (ids %s)" % ids)
    by_id = {ti.id: ti for ti in tl}
    w = by_id[second]
    eq((S.Name(w.state), w.waiting_for), ("TASK_PENDING", "function proc.exec"),
       "a task waiting for a concurrency limit: state and waiting_for")
    eq(by_id[first].waiting_for, "", "waiting_for of a running task")
    check(not w.args and not w.HasField("outcome"), "ListTasks leaves out args and outcome")
    eq((by_id[first].owner_uid, by_id[first].owner_pid), (os.getuid(), os.getpid()),
       "owner uid and pid from the socket's credentials")
    all_ids = [ti.id for ti in expect(c.ask("list_tasks", pb.ListTasks(all=True)), "task_list",
                                      "ListTasks all").tasks]
    check(ended in all_ids, "ListTasks{all: true} includes retained ended tasks")
    # ShowTask: detail fields.
    info = expect(c.ask("show_task", pb.ShowTask(task_id=ended)), "task_info", "ShowTask")
    eq((info.function, list(info.args), S.Name(info.state)),
       ("demo.echo", [v("x" * 300)], "TASK_DONE"), "ShowTask function, args, state")
    eq(S.Name(info.outcome.state), "TASK_DONE", "ShowTask outcome of an ended task")
    check(0 < info.created_usec <= info.started_usec <= info.finished_usec,
          "times: created <= started <= finished (%d, %d, %d)"
          % (info.created_usec, info.started_usec, info.finished_usec))
    info = expect(c.ask("show_task", pb.ShowTask(task_id=second)), "task_info", "ShowTask")
    eq((info.started_usec, info.finished_usec, info.HasField("outcome")), (0, 0, False),
       "ShowTask of a pending task: no start, no end, no outcome")
    expect_error(c.ask("show_task", pb.ShowTask(task_id=999999999)), "ERROR_NO_SUCH_TASK",
                 "ShowTask of an unknown id", "no task 999999999")
    fifo.release()
    eq([S.Name(o.state) for o in expect(await_ids(c, [first, second]), "outcomes",
                                        "Await").outcomes], ["TASK_DONE", "TASK_DONE"],
       "both proc.exec tasks")


def list_pages(c, what, **kw):
    """Pages through ListTasks(**kw); returns (ids, pages)."""
    ids, pages, after = [], [], 0
    while True:
        tl = expect(c.ask("list_tasks", pb.ListTasks(after_id=after, **kw)), "task_list", what)
        pages.append(len(tl.tasks))
        ids += [ti.id for ti in tl.tasks]
        if not tl.more:
            eq(tl.next_after_id, 0, "%s: next_after_id of the last page" % what)
            return ids, pages
        check(tl.next_after_id > after, "%s: the cursor moves on (%d after %d)"
              % (what, tl.next_after_id, after))
        if tl.next_after_id <= after:
            return ids, pages
        after = tl.next_after_id


@check_fn
def list_tasks_in_pages_with_filters():
    d = t.daemon(extra_args=["--retain-count", "200000"])
    c = t.connect(d)
    # 70,000 finished tasks: more than one request may look at (65,536), so
    # a filter that matches few of them takes pages that end early.
    for _ in range(7):
        rid = gather(c, [call("demo.echo", 1)] * 10000, started=False)
        expect(c.final(rid), "outcomes", "a Gather of 10,000 demo.echo")
    # 100 detached tasks: gone once they end, a gap of ids before the
    # sleepers. They run before a later task does (the ready queue is in
    # order), so the sleepers' submits come after their end.
    gap = [expect(c.ask("submit", pb.Submit(call=call("demo.echo", 1), ownership=pb.DETACHED)),
                  "submitted", "Submit detached").task_id for _ in range(100)]
    expect(c.final(gather(c, [call("demo.echo", 1)], started=False)), "outcomes", "Gather")
    sleepers = [expect(c.ask("submit", pb.Submit(call=call("demo.sleep", 600.0),
                                                 ownership=pb.SUBMITTED)),
                       "submitted", "Submit demo.sleep").task_id for _ in range(3)]
    ids, pages = list_pages(c, "ListTasks all", all=True)
    eq(len(ids), 70004, "tasks listed over every page")
    eq(ids, sorted(set(ids)), "pages in id order, no task twice")
    check(max(pages) <= 10000 and len(pages) >= 8, "pages of at most 10,000 tasks (%s)" % pages)
    ids, pages = list_pages(c, "ListTasks running", states=[pb.TASK_RUNNING])
    eq(ids, sleepers, "states = [running]: the three sleepers")
    check(len(pages) >= 2 and pages[0] == 0,
          "a page ends early after 65,536 tasks looked at (pages %s)" % pages)
    eq(list_pages(c, "ListTasks unfinished")[0], sleepers, "all = false: unfinished only")
    eq(list_pages(c, "ListTasks demo.sleep", all=True, functions=["demo.sleep"])[0], sleepers,
       "functions = [demo.sleep]")
    eq(len(list_pages(c, "ListTasks demo.", all=True, functions=["demo."])[0]), 70004,
       "functions = [demo.]: a whole plugin")
    eq(list_pages(c, "ListTasks proc.", all=True, functions=["proc."])[0], [],
       "functions = [proc.]: none")
    eq(list_pages(c, "ListTasks owner", owner_uids=[os.getuid()])[0], sleepers,
       "owner_uids = [own uid]")
    eq(list_pages(c, "ListTasks other owner", owner_uids=[4242])[0], [],
       "owner_uids = [another uid]")
    tl = expect(c.ask("list_tasks", pb.ListTasks(all=True, limit=5)), "task_list", "limit 5")
    eq((len(tl.tasks), tl.more, tl.next_after_id), (5, True, tl.tasks[4].id),
       "limit = 5: five tasks, more, the cursor at the fifth")
    # A cursor naming no task (gone since): the page starts after it all
    # the same, walking within the bound.
    gone = sleepers[-1] + 5
    tl = expect(c.ask("list_tasks", pb.ListTasks(after_id=gone, all=True)), "task_list",
                "a cursor past every task")
    eq((len(tl.tasks), tl.more), (0, False), "a cursor past every task: nothing, no more")
    # A cursor naming a task that is gone: the page starts above it, found
    # by the ids just above it, or else by a walk.
    for cursor in (gap[-10], gap[5]):
        tl = expect(c.ask("list_tasks", pb.ListTasks(after_id=cursor, all=True, limit=2)),
                    "task_list", "a cursor of a task that is gone")
        eq([ti.id for ti in tl.tasks], [gap[-1] + 1, sleepers[0]],
           "the page after gone task %d: the Gather's task, a sleeper" % cursor)
    expect_error(c.ask("list_tasks", pb.ListTasks(states=[9])), "ERROR_BAD_ARGUMENT",
                 "an unknown state", "states[0] is 9")
    expect_error(c.ask("list_tasks", pb.ListTasks(functions=["x."] * 257)), "ERROR_LIMIT",
                 "257 function filters", "more than 256 entries")
    expect(c.ask("cancel", pb.Cancel(task_ids=sleepers)), "cancelled", "Cancel")


@check_fn
def call_text_in_task_info():
    d = t.shared()
    c = t.connect(d)
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.echo", "hi"))), "submitted",
                 "Submit").task_id
    info = expect(c.ask("show_task", pb.ShowTask(task_id=tid)), "task_info", "ShowTask")
    eq(info.call_text, "demo.echo hi", "TaskInfo.call_text of demo.echo(\"hi\")")
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.echo", "é" * 200))), "submitted",
                 "Submit").task_id
    tl = expect(c.ask("list_tasks", pb.ListTasks(all=True)), "task_list", "ListTasks").tasks
    text = [ti.call_text for ti in tl if ti.id == tid][0]
    check(len(text.encode()) <= 120 and text.endswith("…") and text.startswith("demo.echo é"),
          "a long call_text is cut to at most 120 bytes ending in …: %r" % text)


# ================================================================ Logs


@check_fn
def logs_of_ended_and_unfinished_tasks():
    d = t.shared()
    c = t.connect(d)
    tid = expect(c.ask("submit", pb.Submit(call=shell("echo one; echo two >&2"))), "submitted",
                 "Submit").task_id
    outcome_of(c, tid)
    for follow in (False, True):
        frames = c.frames(c.send("logs", pb.Logs(task_id=tid, follow=follow)))
        eq([(f.output.seq, f.output.stream, f.output.line) for f in frames[:-1]],
           [(0, 1, "one"), (1, 2, "two")], "Logs of an ended task (follow %s)" % follow)
        end = expect(frames[-1], "output_end", "Logs end")
        eq((end.task_id, end.dropped, S.Name(end.state)), (tid, 0, "TASK_DONE"), "OutputEnd")
    quiet = expect(c.ask("submit", pb.Submit(call=call("demo.echo", 1))), "submitted",
                   "Submit").task_id
    outcome_of(c, quiet)
    frames = c.frames(c.send("logs", pb.Logs(task_id=quiet)))
    eq([f.WhichOneof("body") for f in frames], ["output_end"],
       "Logs of an ended task that printed nothing")
    # Unfinished: the state at that moment.
    fifo = Fifo(t, "logs")
    s = c.streams[c.send("submit", pb.Submit(call=shell(fifo.cmd("echo first; ", "echo last")),
                                             follow=True), follow=True)]
    while not any(f.HasField("output") for f in s.frames):
        check(c.recv() is not None, "the connection stays open")
    run = expect(s.frames[0], "submitted", "Submit").task_id
    end = expect(c.frames(c.send("logs", pb.Logs(task_id=run)))[-1], "output_end",
                 "non-following Logs of a running task")
    eq(S.Name(end.state), "TASK_RUNNING", "OutputEnd.state of a non-following Logs of a "
       "running task")
    fid = c.send("logs", pb.Logs(task_id=run, follow=True))
    # The replayed line arrives before the task is let go.
    while not c.streams[fid].frames:
        c.recv()
    fifo.release()
    frames = c.frames(fid)
    eq([f.output.line for f in frames if f.HasField("output")], ["first", "last"],
       "a following Logs: retained then new lines")
    eq(S.Name(frames[-1].output_end.state), "TASK_DONE", "its OutputEnd")
    expect_error(c.ask("logs", pb.Logs(task_id=999999999)), "ERROR_NO_SUCH_TASK",
                 "Logs of an unknown id", "no task 999999999")


@check_fn
def logs_of_a_pending_task():
    d = t.shared()
    c = t.connect(d)
    fifo = Fifo(t, "pending")
    first = expect(c.ask("submit", pb.Submit(call=call("proc.exec", "/bin/sh", "-c", fifo.cmd()))),
                   "submitted", "Submit").task_id
    second = expect(c.ask("submit", pb.Submit(call=call("proc.exec", "/bin/true"))),
                    "submitted", "Submit").task_id
    end = expect(c.frames(c.send("logs", pb.Logs(task_id=second)))[-1], "output_end",
                 "non-following Logs of a pending task")
    eq(S.Name(end.state), "TASK_PENDING", "OutputEnd.state of a non-following Logs of a "
       "pending task")
    fifo.release()
    await_ids(c, [first, second])


# ================================================================ ListPlugins


@check_fn
def list_plugins_signatures():
    d = t.shared()
    c = t.connect(d)
    fns = {f.name: f for f in expect(c.ask("list_plugins", pb.ListPlugins()), "plugin_list",
                                     "ListPlugins").functions}
    check("demo.my_async_function1" not in fns, "internal functions are left out")
    hello = fns["demo.hello"]
    eq((hello.plugin, hello.result_type, [p.name for p in hello.params]),
       ("demo", pb.TYPE_STRING, ["name"]), "demo.hello's plugin, result type, params")
    p = hello.params[0]
    eq((p.type, p.has_default, p.default_value, p.rest), (pb.TYPE_STRING, True, v("world"),
                                                          False), "demo.hello's parameter")
    ex = fns["proc.exec"]
    eq([(p.name, pb.ValueType.Name(p.type), p.rest) for p in ex.params],
       [("program", "TYPE_STRING", False), ("args", "TYPE_STRING", True)],
       "proc.exec(program, *args): Param.rest on the last parameter")
    check(hello.doc and hello.plugin_version, "doc and plugin_version are set")
    # A rest parameter collects the further arguments.
    tid = expect(c.ask("submit", pb.Submit(call=call("proc.exec", "/bin/echo", "a", "b"))),
                 "submitted", "Submit proc.exec with rest arguments").task_id
    o = outcome_of(c, tid)
    stdout = [e.value for e in o.result.map_value.entries if e.key == "stdout"]
    eq(stdout, [v("a b\n")], "proc.exec's stdout with two rest arguments")


# ================================================================ Reload


@check_fn
def reload_and_a_bad_settings_file():
    conf = t.settings("log_level = info")
    d = t.daemon(extra_args=["--config", conf])
    c = t.connect(d)
    r = expect(c.ask("reload", pb.Reload()), "reloaded", "Reload as root")
    check(r.plugins >= 3 and r.unchanged == r.plugins and r.added == 0 and r.failed == 0,
          "Reloaded counts with nothing changed: %s" % show(c.streams[c.next_id - 1].frames[-1]))
    with open(conf, "a") as f:
        f.write("max_frame = banana\n")
    m = c.ask("reload", pb.Reload())
    expect_error(m, "ERROR_BAD_ARGUMENT", "Reload with a bad settings file",
                 "reload failed, nothing changed: ")
    check(conf in m.error.message and ":2" in m.error.message,
          "the error names the file and line: %r" % m.error.message)
    c.still_open()


# ================================================================ limits


def limits_daemon():
    conf = t.settings("max_result = 45K")
    return t.daemon(extra_args=["--config", conf, "--max-frame", "65536", "--max-tasks", "2",
                                "--max-in-flight", "3"])



@check_fn
def limits_answer_with_error_limit():
    d = limits_daemon()
    c = t.connect(d)
    eq((c.hello_reply.max_frame, c.hello_reply.max_in_flight), (65536, 3),
       "HelloReply announces the limits set")
    # A reply over max_frame: two 40 KB results in one Outcomes.
    ids = []
    for _ in range(2):
        ids.append(expect(c.ask("submit", pb.Submit(call=call("demo.echo", b"x" * 40000))),
                          "submitted", "Submit").task_id)
        await_ids(c, ids[-1:])
    m = await_ids(c, ids)
    expect_error(m, "ERROR_LIMIT", "an Outcomes reply over max_frame", "exceeds the limit "
                 "max_frame (65536 bytes)")
    check(m.error.message.startswith("reply of "), "the message: %r" % m.error.message)
    c.still_open()
    # max_result: the task fails.
    tid = expect(c.ask("submit", pb.Submit(call=call("demo.echo", "y" * 50000))), "submitted",
                 "Submit").task_id
    o = outcome_of(c, tid)
    eq((S.Name(o.state), o.error_kind), ("TASK_FAILED", "LimitError"), "a result over max_result")
    check("max_result" in o.error_message, "the error names max_result: %r" % o.error_message)
    # max_tasks: two unfinished at most; a gather is refused whole.
    run = [expect(c.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                  "Submit").task_id for _ in range(2)]
    expect_error(c.ask("submit", pb.Submit(call=call("demo.echo", 1))), "ERROR_LIMIT",
                 "a third unfinished task", "too many tasks: the limit max_tasks (2) is reached")
    expect(c.ask("cancel", pb.Cancel(task_ids=run[:1])), "cancelled", "Cancel")
    await_ids(c, run[:1])
    rid = gather(c, [call("demo.sleep", 600.0), call("demo.echo", 1)])
    frames = c.frames(rid)
    eq(len(frames), 1, "frames of a gather refused by max_tasks")
    expect_error(frames[0], "ERROR_LIMIT", "a gather over max_tasks",
                 "gather item 2: too many tasks: the limit max_tasks (2) is reached")
    tl = expect(c.ask("list_tasks", pb.ListTasks()), "task_list", "ListTasks").tasks
    eq([ti.id for ti in tl], run[1:], "the refused gather left no task")
    expect(c.ask("cancel", pb.Cancel(task_ids=run[1:])), "cancelled", "Cancel")


@check_fn
def in_flight_backpressure():
    d = limits_daemon()
    c = t.connect(d)
    other = t.connect(d, label="other")
    tid = expect(other.ask("submit", pb.Submit(call=call("demo.sleep", 600.0),
                                               ownership=pb.SUBMITTED)), "submitted",
                 "Submit").task_id
    done = expect(other.ask("submit", pb.Submit(call=call("demo.echo", 7),
                                                ownership=pb.SUBMITTED)), "submitted",
                  "Submit").task_id
    outcome_of(other, done)
    # max_in_flight is 3: three Awaits wait; a fourth (of a task already
    # done) is read and parked until one of them is answered.
    waits = [c.send("await", pb.Await(task_ids=[tid])) for _ in range(3)]
    parked = c.send("await", pb.Await(task_ids=[done]))
    # Control requests behind them are not queued: answered at once, while
    # the three still wait, the last one a Cancel of the awaited task.
    lid = c.send("list_plugins", pb.ListPlugins())
    expect(c.final(lid), "plugin_list", "ListPlugins behind three waiting Awaits")
    tl = expect(c.ask("list_tasks", pb.ListTasks()), "task_list", "ListTasks behind them")
    check(tid in [ti.id for ti in tl.tasks], "the awaited task is listed, unfinished")
    check(not c.streams[parked].done and not any(c.streams[w].done for w in waits),
          "the Awaits still wait (the fourth is parked)")
    cid = c.send("cancel", pb.Cancel(task_ids=[tid]))
    order = []
    while not (c.streams[parked].done and c.streams[cid].done):
        m = c.recv()
        check(m is not None, "the connection stays open")
        if m is None:
            return
        order.append(m.request_id)
    eq(expect(c.final(cid), "cancelled", "Cancel behind three waiting Awaits").count, 1,
       "the Cancel's count: the awaited task was still running")
    check(order.index(cid) < order.index(parked),
          "the Cancel answered before the parked Await ran (order %s)" % order)
    check(order.index(parked) > min(order.index(w) for w in waits if w in order),
          "the parked Await answered only after one of the three (order %s)" % order)
    eq([o.result == v(7) for o in expect(c.final(parked), "outcomes", "the parked Await").outcomes],
       [True], "the parked Await's outcome")
    for w in waits:
        expect(c.final(w), "outcomes", "Await")


@check_fn
def connection_limits():
    d = t.daemon(extra_args=["--max-connections", "1"])
    c = t.connect(d)
    c2 = t.connect(d, hello=False, label="second")
    m = c2.recv()  # before the client sends anything
    expect_error(m, "ERROR_LIMIT", "a connection over max_connections",
                 "too many connections: the limit max_connections (1) is reached")
    eq(m.request_id, 0, "request id of the connection-limit error")
    c.still_open()


# ================================================================ other users


def other_user_daemon(*lines):
    conf = t.settings("call = demo.fail root", *lines)
    return t.daemon(extra_args=["--config", conf])


@check_fn
def not_allowed_for_other_users():
    if not t.needs_root("ERROR_NOT_ALLOWED for another user's tasks, call rules and Reload"):
        return
    d = other_user_daemon()
    root = t.connect(d, label="root")
    tid = expect(root.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    u = connect_as(t, d, 65534, 65534, "nobody")
    for kind, body, verb in (("show_task", pb.ShowTask(task_id=tid), "show"),
                             ("logs", pb.Logs(task_id=tid), "follow"),
                             ("await", pb.Await(task_ids=[tid]), "await"),
                             ("cancel", pb.Cancel(task_ids=[tid]), "cancel")):
        expect_error(u.ask(kind, body), "ERROR_NOT_ALLOWED", "%s of root's task by nobody" % kind,
                     "task %d belongs to uid 0; only its owner, root may %s it" % (tid, verb))
    rid = gather(u, [call("demo.echo", 1), tid])
    frames = u.frames(rid)
    eq(len(frames), 1, "frames of a gather refused for a foreign item")
    expect_error(frames[0], "ERROR_NOT_ALLOWED", "gather of root's task by nobody",
                 "gather item 2: task %d belongs to uid 0" % tid)
    tl = expect(u.ask("list_tasks", pb.ListTasks(all=True)), "task_list", "ListTasks").tasks
    eq([ti.id for ti in tl if ti.owner_uid != 65534], [], "nobody's ListTasks: own tasks only")
    expect_error(u.ask("submit", pb.Submit(call=call("demo.fail", "E", "m"))),
                 "ERROR_NOT_ALLOWED", "a call a rule denies",
                 "demo.fail: not allowed for uid 65534 by the rule 'demo.fail = root'")
    expect_error(u.ask("reload", pb.Reload()), "ERROR_NOT_ALLOWED", "Reload by nobody",
                 "only root and the daemon's user")
    u.still_open()
    # The owner may act on its own task.
    own = expect(u.ask("submit", pb.Submit(call=call("demo.echo", 5))), "submitted",
                 "nobody's Submit").task_id
    eq(outcome_of(u, own).result, v(5), "nobody awaits its own task")
    expect(root.ask("cancel", pb.Cancel(task_ids=[tid])), "cancelled", "root's Cancel")


@check_fn
def per_user_limits():
    if not t.needs_root("max_connections_per_uid and max_tasks_per_uid"):
        return
    d = other_user_daemon("max_connections_per_uid = 1", "max_tasks_per_uid = 1")
    u = connect_as(t, d, 65534, 65534, "nobody")
    tid = expect(u.ask("submit", pb.Submit(call=call("demo.sleep", 600.0))), "submitted",
                 "Submit").task_id
    expect_error(u.ask("submit", pb.Submit(call=call("demo.echo", 1))), "ERROR_LIMIT",
                 "nobody's second unfinished task",
                 "too many tasks for uid 65534: the limit max_tasks_per_uid (1) is reached")
    u2 = connect_as(t, d, 65534, 65534, "nobody again", hello=False)
    m = u2.recv()  # before the client sends anything
    expect_error(m, "ERROR_LIMIT", "nobody's second connection",
                 "too many connections for uid 65534: the limit max_connections_per_uid (1) "
                 "is reached")
    eq(m.request_id, 0, "request id of the connection-limit error")
    expect(u.ask("cancel", pb.Cancel(task_ids=[tid])), "cancelled", "Cancel")


# ================================================================ shutdown, internal errors


@check_fn
def shutting_down_refuses_requests():
    d = t.daemon(extra_args=["--shutdown-grace", "600"])
    c = t.connect(d)
    fifo = Fifo(t, "shutdown")
    # A task that ignores SIGTERM and ends only when the pipe is released.
    rid = c.send("submit", pb.Submit(call=pb.Call(function="proc.shell", args=[
        v("trap '' TERM; echo ready; cat %s >/dev/null" % fifo.path), v(""), v(""), v(None),
        v(600.0)]), follow=True), follow=True)
    while not any(f.HasField("output") for f in c.streams[rid].frames):
        c.recv()
    tid = c.streams[rid].frames[0].submitted.task_id
    d.proc.send_signal(15)
    d.wait_log("shutting down", TIMEOUT)
    expect_error(c.ask("list_tasks", pb.ListTasks()), "ERROR_SHUTTING_DOWN",
                 "ListTasks while shutting down", "aiod is shutting down")
    expect_error(c.ask("hello", pb.Hello(protocol_version=1)), "ERROR_PROTOCOL",
                 "a second hello while shutting down (a hello is still answered)")
    aid = c.send("await", pb.Await(task_ids=[tid]))
    expect_error(c.final(aid), "ERROR_SHUTTING_DOWN", "Await while shutting down")
    fifo.release()
    rest = c.expect_closed()
    check(c.streams[rid].done, "the followed task's OutputEnd came before the close (%s)"
          % [show(m) for m in rest])
    eq(d.wait_exit(TIMEOUT), 0, "the daemon's exit status")


@check_fn
def internal_error_keeps_connection():
    d = t.daemon()
    c = t.connect(d)
    # Ids come in blocks of 1024 reserved in STATE_DIR/next-id. Damage the
    # file, then use up the block: the next task cannot get an id.
    with open(os.path.join(d.dir, "state", "next-id"), "w") as f:
        f.write("damaged\n")
    rids = [c.send("submit", pb.Submit(call=call("demo.echo", 1), ownership=pb.DETACHED))
            for _ in range(1100)]
    for r in rids:
        last = c.final(r)
        if last.WhichOneof("body") == "error":
            break
    expect_error(last, "ERROR_INTERNAL", "a Submit when no id can be reserved",
                 "cannot reserve task ids in the state directory")
    c.still_open()


if __name__ == "__main__":
    t.run()
