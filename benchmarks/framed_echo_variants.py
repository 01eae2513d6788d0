"""Framed echo servers to compare with examples/05-framing/framed_echo_server.py.

    python benchmarks/framed_echo_variants.py --loop asyncio --style protocol --port 9002
    python benchmarks/framed_echo_variants.py --loop netkit --style per-frame --port 9003
    python benchmarks/framed_echo_variants.py --loop asyncio --style streams --port 9004

All of them speak what the example speaks (a 4-byte big-endian length, then
the payload; every frame echoed back whole) and print the same "listening
on" line, so bench_framing.py can drive them alike.  ``--loop`` picks the
event loop (netkit's or asyncio's) and ``--style`` the server code:

* ``protocol``: the example's own ``FramedEcho`` class, which answers all the
  frames of one read with one write.  On ``--loop asyncio`` this compares the
  two loops and transports with the framing code held constant (netkit's
  protocols have asyncio's shape, so the class runs there unchanged).
* ``per-frame``: the same ``FramedProtocol`` answering each frame with its own
  write (``frame_received`` -> ``send_frame``): what batching saves.
* ``streams``: the framed echo server people usually write with streams, one
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
from typing import Any

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "05-framing")
sys.path.insert(0, EXAMPLES)

from framed_echo_server import FramedEcho  # noqa: E402  (also makes netkit importable)

import netkit  # noqa: E402
from netkit.framing import FramedProtocol  # noqa: E402

HEADER = struct.Struct("!I")


class FrameAtATimeEcho(FramedEcho):
    """The example's echo, but one write per frame instead of one per read."""

    frames_received = FramedProtocol.frames_received  # the default: frame_received for each

    def frame_received(self, frame: bytes) -> None:
        self.send_frame(frame)


def make_stream_handler(max_frame_size: int) -> Any:
    """The usual framed echo on streams: ``readexactly`` the header, then the body."""
    unpack = HEADER.unpack
    pack = HEADER.pack
    end_of_stream = (asyncio.IncompleteReadError, netkit.IncompleteReadError, ConnectionError)

    async def handle(reader: Any, writer: Any) -> None:
        try:
            while True:
                (length,) = unpack(await reader.readexactly(4))
                if length > max_frame_size:
                    break
                payload = await reader.readexactly(length)
                writer.write(pack(length) + payload)
                await writer.drain()
        except end_of_stream:
            pass  # the client is done, or gone
        finally:
            writer.close()

    return handle


async def serve(loop_name: str, style: str, host: str, port: int, max_frame_size: int) -> None:
    if loop_name == "netkit":
        loop: Any = netkit.get_running_loop()
        start_server: Any = netkit.start_server
        stop: Any = netkit.Event()
    else:
        loop = asyncio.get_running_loop()
        start_server = asyncio.start_server
        stop = asyncio.Event()
    if style == "protocol":
        server = await loop.create_server(lambda: FramedEcho(max_frame_size), host, port)
    elif style == "per-frame":
        server = await loop.create_server(lambda: FrameAtATimeEcho(max_frame_size), host, port)
    else:
        server = await start_server(make_stream_handler(max_frame_size), host, port)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"{loop_name} framed echo server ({style}) listening on {bound_host}:{bound_port}", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    print("server stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["netkit", "asyncio"], required=True)
    parser.add_argument("--style", choices=["protocol", "per-frame", "streams"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002, help="0 picks a free port")
    parser.add_argument("--max-frame-size", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args()
    run = netkit.run if args.loop == "netkit" else asyncio.run
    run(serve(args.loop, args.style, args.host, args.port, args.max_frame_size))


if __name__ == "__main__":
    main()
