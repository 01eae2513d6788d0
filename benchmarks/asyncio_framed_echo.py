"""Framed echo servers on asyncio's loop, for comparison with netkit's.

    python benchmarks/asyncio_framed_echo.py --style protocol --port 9002
    python benchmarks/asyncio_framed_echo.py --style streams --port 9003

Both speak what examples/framed_echo_server.py speaks (a 4-byte big-endian
length, then the payload; every frame echoed back whole) and print the same
"listening on" line, so bench_framing.py can drive all of them alike:

* ``protocol``: the very ``FramedEcho`` class of the netkit example, running
  on an asyncio loop.  netkit's protocols have asyncio's shape, so this
  compares the two loops and transports with the framing held constant.
* ``streams``: the framed echo server people usually write with asyncio, one
  coroutine per connection reading each frame with ``readexactly`` (header,
  then body) and writing each echo as it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import struct
import sys

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

from framed_echo_server import FramedEcho  # noqa: E402  (also makes netkit importable)

HEADER = struct.Struct("!I")


def make_stream_handler(max_frame_size: int):
    """The usual asyncio framed echo: ``readexactly`` the header, then the body."""
    unpack = HEADER.unpack
    pack = HEADER.pack

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    header = await reader.readexactly(4)
                except asyncio.IncompleteReadError:
                    break  # the client is done
                (length,) = unpack(header)
                if length > max_frame_size:
                    break
                payload = await reader.readexactly(length)
                writer.write(pack(length) + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


async def main(style: str, host: str, port: int, max_frame_size: int) -> None:
    loop = asyncio.get_running_loop()
    if style == "protocol":
        server = await loop.create_server(lambda: FramedEcho(max_frame_size), host, port)
    else:
        server = await asyncio.start_server(make_stream_handler(max_frame_size), host, port)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"asyncio framed echo server ({style}) listening on {bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    if sys.version_info >= (3, 13):
        server.abort_clients()
    print("server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=["protocol", "streams"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002, help="0 picks a free port")
    parser.add_argument("--max-frame-size", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args()
    asyncio.run(main(args.style, args.host, args.port, args.max_frame_size))
