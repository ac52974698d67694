"""aiod's protocol for test_durable.py, through the message classes protoc
generates from proto/aiod.proto: pipelined submits from several
connections at once (the crash test), and aiod.StoredTask records written
straight into a state store (the restart test).

aiod_pb2 comes from the build tree (BUILD/tests/protocol/aiod_pb2.py, the
protocol-pb2 target) or, failing that, is generated with protoc into a temp
dir. The protobuf module is required, not optional: without it the script
re-executes itself with Debian's /usr/bin/python3 (python3-protobuf), or
exits with an error saying what is missing.
"""

import socket
import struct
import sys
import threading

import harness


pb = None


def require_protobuf():
    harness.require_protobuf("test_durable")


def load(plugin_dir):
    """Imports aiod_pb2 for the build that holds plugin_dir; returns it."""
    global pb
    if pb is not None:
        return pb
    pb_dir = harness.protobuf_dir(plugin_dir)
    sys.path.insert(0, pb_dir)
    import aiod_pb2
    pb = aiod_pb2
    return pb


def value(v):
    """A Python str, float or int as an aiod.Value."""
    out = pb.Value()
    if isinstance(v, str):
        out.string_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, int):
        out.int_value = v
    else:
        raise TypeError(v)
    return out


class Closed(Exception):
    """The daemon closed the connection (or died)."""


class Conn:
    """One connection speaking frames of ClientMessage / ServerMessage."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.send_lock = threading.Lock()
        m = pb.ClientMessage(request_id=1)
        m.hello.protocol_version = 1
        m.hello.client_name = "test_durable"
        self.send(m)
        r = self.recv()
        if r.WhichOneof("body") != "hello":
            raise AssertionError("hello answered with %r" % r)

    def send(self, msg):
        data = msg.SerializeToString()
        try:
            with self.send_lock:
                self.sock.sendall(struct.pack(">I", len(data)) + data)
        except OSError as e:
            raise Closed(str(e))

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk

    def recv(self):
        """The next ServerMessage; Closed at EOF; socket.timeout after the
        connection's timeout."""
        self._fill(4)
        (n,) = struct.unpack(">I", self.buf[:4])
        self._fill(4 + n)
        payload, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return pb.ServerMessage.FromString(payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def submit_message(request_id, function, args, delay=0.0, after=()):
    m = pb.ClientMessage(request_id=request_id)
    m.submit.call.function = function
    for a in args:
        m.submit.call.args.append(value(a))
    m.submit.ownership = pb.SUBMITTED
    if delay:
        m.submit.schedule.delay = delay
    for tid in after:
        m.submit.schedule.after.append(tid)
    return m


class Submitter:
    """One connection that submits as fast as the daemon acknowledges, with
    up to `window` submits in flight (pipelined), until stop() or until the
    daemon goes away. make_call(n) gives the n-th call as (function, args,
    token). acked maps each task id whose Submitted reply arrived to its
    token; refused counts Error replies (with their messages)."""

    def __init__(self, path, make_call, window):
        self.conn = Conn(path)
        self.make_call = make_call
        self.window = threading.Semaphore(window)
        self.tokens = {}  # request id -> token, while in flight
        self.lock = threading.Lock()
        self.acked = {}
        self.errors = []
        self.first_ack = threading.Event()
        self.stopping = threading.Event()
        self.closed = threading.Event()
        self.sender = threading.Thread(target=self._send, daemon=True)
        self.receiver = threading.Thread(target=self._recv, daemon=True)

    def start(self):
        self.sender.start()
        self.receiver.start()
        return self

    def _send(self):
        n = 0
        while not self.stopping.is_set() and not self.closed.is_set():
            if not self.window.acquire(timeout=0.2):
                continue
            n += 1
            function, args, token = self.make_call(n)
            rid = n + 1  # 1 was the hello
            with self.lock:
                self.tokens[rid] = token
            try:
                self.conn.send(submit_message(rid, function, args))
            except Closed:
                break

    def _recv(self):
        while True:
            try:
                r = self.conn.recv()
            except (Closed, OSError):
                break
            kind = r.WhichOneof("body")
            with self.lock:
                token = self.tokens.pop(r.request_id, None)
            if kind == "submitted":
                with self.lock:
                    self.acked[r.submitted.task_id] = token
                self.first_ack.set()
            elif kind == "error":
                with self.lock:
                    self.errors.append((r.error.code, r.error.message))
            self.window.release()
        self.closed.set()

    def stop(self):
        """Stops sending; returns once the connection is closed (the daemon
        is gone) or the in-flight replies have come."""
        self.stopping.set()
        self.sender.join(10)

    def finish(self, timeout):
        self.receiver.join(timeout)
        self.conn.close()
        self.receiver.join(5)


def show_many(path, ids, window=256):
    """ShowTask for each id, pipelined on one connection: {id: TaskInfo or
    the Error reply}."""
    conn = Conn(path)
    out = {}
    ids = list(ids)
    try:
        sent = 0
        got = 0
        while got < len(ids):
            while sent < len(ids) and sent - got < window:
                m = pb.ClientMessage(request_id=sent + 2)
                m.show_task.task_id = ids[sent]
                conn.send(m)
                sent += 1
            r = conn.recv()
            tid = ids[r.request_id - 2]
            out[tid] = r.task_info if r.WhichOneof("body") == "task_info" else r.error
            got += 1
    finally:
        conn.close()
    return out
