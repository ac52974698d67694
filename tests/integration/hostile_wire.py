"""The wire side of the hostile-client battery (test_hostile.py): aiod's
protocol spoken by hand-made frames and read back with the strict decoder
that protoc generates for Python.

Frames are encoded by hand (bytes, not message objects) because the battery
sends what no library would build: invalid UTF-8, duplicate map keys, map
entries without a value, nesting past every limit, frames of max_frame bytes
holding a million items. Every frame the daemon sends is decoded with
ServerMessage.FromString; a DecodeError (which is also what invalid UTF-8 in
a string field gives) is counted and reported, never skipped.

aiod_pb2 comes from the build tree (BUILD/tests/protocol/aiod_pb2.py, made
by the protocol-pb2 target of tests/protocol/protocol.cmake) or, failing
that, is generated with protoc into a temp dir.
"""

import socket
import struct
import sys
import time

import harness



def ensure_protobuf_python():
    """The strict decoder is required, not optional."""
    harness.require_protobuf("the hostile battery")


def find_pb_dir(plugin_dir):
    return harness.protobuf_dir(plugin_dir)


pb = None
DecodeError = None


def load_pb(pb_dir):
    global pb, DecodeError
    sys.path.insert(0, pb_dir)
    import aiod_pb2
    from google.protobuf.message import DecodeError as DE
    pb, DecodeError = aiod_pb2, DE
    return pb


def decoder_is_strict():
    """True when FromString refuses a string field that is not UTF-8 (the
    battery's UTF-8 check rests on it)."""
    payload = fv(1, 1) + fb(2, fv(1, 12) + fb(2, b"ok\xff"))
    try:
        pb.ServerMessage.FromString(payload)
    except DecodeError:
        return True
    return False


# ---------------------------------------------------------------- encoding


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


def fv(num, value):
    return varint(num << 3) + varint(value)


def fb(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def zigzag(n):
    return (n << 1) ^ (n >> 63)


# Value fields (proto/aiod.proto).
def v_int(n):
    return fv(3, zigzag(n))


def v_double(x):
    return varint(4 << 3 | 1) + struct.pack("<d", x)


def v_str(raw):
    """A string_value of raw bytes (valid UTF-8 or not)."""
    return fb(5, raw)


def v_list(item_values):
    return fb(7, b"".join(fb(1, it) for it in item_values))


def v_map(pairs):
    """pairs: (key bytes, value bytes or None for an entry without value)."""
    out = []
    for k, val in pairs:
        e = fb(1, k)
        if val is not None:
            e += fb(2, val)
        out.append(fb(1, e))
    return fb(8, b"".join(out))


def call_bytes(function, arg_values, text=False):
    c = fb(1, function) + b"".join(fb(2, a) for a in arg_values)
    if text:
        c += fv(3, 1)
    return c


def submit_payload(rid, call, ownership=0, follow=False):
    body = fb(1, call)
    if ownership:
        body += fv(2, ownership)
    if follow:
        body += fv(3, 1)
    return fv(1, rid) + fb(3, body)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def nested_list_value(levels, inner=b""):
    """A Value that is `levels` lists deep around `inner` (a Value's bytes),
    built without quadratic copying: headers computed from the inside out."""
    heads = []
    size = len(inner)
    for _ in range(levels):
        item = varint(1 << 3 | 2) + varint(size)  # List.items
        list_len = len(item) + size
        val = varint(7 << 3 | 2) + varint(list_len)  # Value.list_value
        heads.append(val + item)
        size = len(val) + list_len
    heads.reverse()
    return b"".join(heads) + inner


def nested_map_value(levels, inner=b""):
    """A Value that is `levels` maps deep ({"k": {"k": ... inner}})."""
    heads = []
    size = len(inner)
    key = fb(1, b"k")
    for _ in range(levels):
        ev = varint(2 << 3 | 2) + varint(size)  # MapEntry.value
        entry_len = len(key) + len(ev) + size
        ent = varint(1 << 3 | 2) + varint(entry_len)  # Map.entries
        map_len = len(ent) + entry_len
        val = varint(8 << 3 | 2) + varint(map_len)  # Value.map_value
        heads.append(val + ent + key + ev)
        size = len(val) + map_len
    heads.reverse()
    return b"".join(heads) + inner


# ---------------------------------------------------------------- decoding


def py(val):
    """An aiod.Value as a Python value (maps as lists of pairs)."""
    kind = val.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    if kind == "list_value":
        return [py(i) for i in val.list_value.items]
    if kind == "map_value":
        return [(e.key, py(e.value)) for e in val.map_value.entries]
    return getattr(val, kind)


def show(m):
    if m is None:
        return "<end of connection>"
    text = str(m).replace("\n", " ").strip()
    return text if len(text) < 300 else text[:300] + "..."


class Closed(Exception):
    pass


class Conn:
    """One connection. recv() decodes every frame strictly; what does not
    decode is recorded in `decode_errors` and raised."""

    def __init__(self, path, timeout=60.0, hello=True, name="hostile"):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = bytearray()
        self.next_id = 1
        self.frames = 0
        self.decode_errors = []
        self.max_frame = 4 * 1024 * 1024
        self.hello_reply = None
        if hello:
            rid = self.send_msg(pb.ClientMessage(hello=pb.Hello(protocol_version=1,
                                                               client_name=name)))
            m = self.recv()
            if m is None or m.WhichOneof("body") != "hello" or m.request_id != rid:
                raise Closed("no HelloReply: %s" % show(m))
            self.hello_reply = m.hello
            self.max_frame = m.hello.max_frame

    def new_id(self):
        rid = self.next_id
        self.next_id += 1
        return rid

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_msg(self, msg):
        """Sends a ClientMessage (its request_id set here); returns the id."""
        msg.request_id = self.new_id()
        self.sock.sendall(frame(msg.SerializeToString()))
        return msg.request_id

    def send(self, kind, body):
        return self.send_msg(pb.ClientMessage(**{kind: body}))

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv(self):
        """The next ServerMessage, or None when the daemon closed."""
        if not self._fill(4):
            return None
        (n,) = struct.unpack(">I", self.buf[:4])
        if n > self.max_frame:
            self.decode_errors.append("a frame of %d bytes, over max_frame %d"
                                      % (n, self.max_frame))
            raise Closed(self.decode_errors[-1])
        if not self._fill(4 + n):
            raise Closed("the connection ended inside a %d-byte frame" % n)
        payload = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        self.frames += 1
        try:
            return pb.ServerMessage.FromString(payload)
        except DecodeError as e:
            self.decode_errors.append("%s: %r" % (e, payload[:200]))
            raise

    def reply(self, rid):
        """Reads until a frame for `rid` comes; returns it (others are
        dropped: the cases that use this send one request at a time)."""
        while True:
            m = self.recv()
            if m is None:
                raise Closed("the daemon closed the connection waiting for request %d" % rid)
            if m.request_id == rid:
                return m

    def ask(self, kind, body):
        return self.reply(self.send(kind, body))

    def close(self):
        self.sock.close()


def timed_ask(conn, kind, body):
    """(reply, seconds)."""
    t0 = time.monotonic()
    m = conn.ask(kind, body)
    return m, time.monotonic() - t0


def error_of(m):
    """(code name, message) of an Error frame, else None."""
    if m is None or m.WhichOneof("body") != "error":
        return None
    return pb.ErrorCode.Name(m.error.code), m.error.message
