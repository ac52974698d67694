#!/usr/bin/env python3
"""Sends submits of demo.echo with one map of N distinct keys to a running
aiod and prints each reply's round trip. Run the daemon with a low
--stall-warning-ms (e.g. 20) to have it log how long each request, and
each echo task, held its loop ("held for ... in all").

    tests/bench/giant_map.py BUILD_DIR SOCKET [N] [COUNT] [--dup]

--dup makes the last key repeat the first: the request is refused after
its map has been read and checked. Needs python3-protobuf (the battery's
hostile_wire.py encodes and decodes the frames, with the aiod_pb2 module
the build made under BUILD_DIR)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import hostile_wire as w  # noqa: E402


def main():
    args = [a for a in sys.argv[1:] if a != "--dup"]
    dup = "--dup" in sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    w.ensure_protobuf_python()
    w.load_pb(w.find_pb_dir(os.path.join(args[0], "daemon", "plugins")))
    sock = args[1]
    n = int(args[2]) if len(args) > 2 else 200000
    count = int(args[3]) if len(args) > 3 else 5
    entries = [w.fb(1, w.fb(1, b"%x" % i) + w.fb(2, w.v_int(i & 63))) for i in range(n)]
    if dup:
        entries[-1] = w.fb(1, w.fb(1, b"0") + w.fb(2, w.v_int(1)))
    value = w.fb(8, b"".join(entries))
    for _ in range(count):
        c = w.Conn(sock)
        rid = c.new_id()
        payload = w.submit_payload(rid, w.call_bytes(b"demo.echo", [value]))
        t0 = time.monotonic()
        c.send_raw(w.frame(payload))
        m = c.reply(rid)
        print("%d keys%s: reply in %.3f s: %s" % (n, " (last repeats first)" if dup else "",
                                                 time.monotonic() - t0, w.show(m)[:120]))
        c.close()


if __name__ == "__main__":
    main()
