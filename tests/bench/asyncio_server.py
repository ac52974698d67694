#!/usr/bin/env python3
"""aiod-bench peer: a Python asyncio server on a Unix socket speaking aiod's
framing (4-byte big-endian length + payload). Like aiod, it creates one task
per request; the task replies with a frame holding the given reply payload
(a real aiod reply, so aiod-bench --connect decodes the same bytes).

  asyncio_server.py --socket PATH --reply HEX
"""
import argparse
import asyncio
import os
import struct


async def handle(reader, writer, reply):
    frame = struct.pack(">I", len(reply)) + reply

    async def task(payload):
        writer.write(frame)

    try:
        while True:
            head = await reader.readexactly(4)
            (n,) = struct.unpack(">I", head)
            payload = await reader.readexactly(n) if n else b""
            asyncio.get_running_loop().create_task(task(payload))
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(path, reply):
    if os.path.exists(path):
        os.unlink(path)
    server = await asyncio.start_unix_server(lambda r, w: handle(r, w, reply), path=path)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    # Default: request 128, Outcomes with one done outcome (task 128, null
    # result), 16 bytes, the size of aiod's reply to bench.noop.
    ap.add_argument("--reply", default="0880012a0b0a09088001100" "31a020a00")
    a = ap.parse_args()
    asyncio.run(main(a.socket, bytes.fromhex(a.reply)))
