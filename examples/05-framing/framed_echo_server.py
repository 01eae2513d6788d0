"""A framed echo server: every message comes back whole, on netkit's loop.

    python examples/05-framing/framed_echo_server.py --port 9001 --max-frame-size 1048576

Each message on the wire is a 4-byte big-endian length followed by that many
bytes of payload.  The server hands whatever TCP delivers to a
``LengthPrefixFramer``, which cuts it back into the messages the client
sent, however they were split or glued together on the way, and echoes each
one back as one frame.

Two things make it cheap and safe:

* batching: all the frames decoded from one read reach ``frames_received``
  together and go back with one ``send_frames`` (one ``write()``), instead of
  one write per frame;
* bounds: a header announcing more than ``--max-frame-size`` bytes closes
  that connection before any of the body is buffered, and a client that sends
  without reading its echoes is made to wait (reading pauses while the
  replies waiting to be sent are above the transport's high-water mark).

Try it with examples/05-framing/framed_echo_client.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from netkit.framing import DEFAULT_MAX_FRAME_SIZE, FramedProtocol, LengthPrefixFramer  # noqa: E402
from examples._common import (  # noqa: E402
    DEFAULT_IDLE_TIMEOUT,
    FRAMED_ECHO_PORT,
    IdleTimeout,
    add_idle_timeout_option,
    announce_and_wait,
    listening_on,
    run_server,
)


class FramedEcho(FramedProtocol):
    """Echoes every frame back whole, one write per read's worth of frames."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT) -> None:
        super().__init__(LengthPrefixFramer("!I", max_frame_size=max_frame_size))
        self.idle = IdleTimeout(idle_timeout)  # closes a connection silent for idle_timeout seconds

    def connection_made(self, transport: netkit.StreamTransport) -> None:
        super().connection_made(transport)
        self.idle.start(transport)

    def data_received(self, data: bytes) -> None:
        self.idle.heard()  # any bytes count, a frame's first piece included
        super().data_received(data)

    def frames_received(self, frames: list[bytes]) -> None:
        self.send_frames(frames)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.idle.stop()

    # Flow control needs no code here: when the echoes of a read leave the
    # write buffer above its high-water mark, FramedProtocol's
    # replies_pile_up() pauses reading until the buffer drains, so TCP holds
    # a client that does not read back instead of this process buffering
    # its echoes without limit.


async def main(host: str, port: int, max_frame_size: int, idle_timeout: float | None) -> None:
    loop = netkit.get_running_loop()
    server = await loop.create_server(lambda: FramedEcho(max_frame_size, idle_timeout), host, port)
    await announce_and_wait(f"framed echo server listening on {listening_on(server)} (max frame size {max_frame_size:,} bytes)")
    server.close()
    server.abort_clients()
    await server.wait_closed()
    print("server stopped", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=FRAMED_ECHO_PORT, help=f"default {FRAMED_ECHO_PORT}; 0 picks a free port")
    parser.add_argument(
        "--max-frame-size",
        type=int,
        default=DEFAULT_MAX_FRAME_SIZE,
        help=f"largest payload accepted, in bytes (default {DEFAULT_MAX_FRAME_SIZE:,})",
    )
    add_idle_timeout_option(parser)
    args = parser.parse_args(argv)
    if args.max_frame_size < 0:
        parser.error("--max-frame-size must be >= 0")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    program = main(arguments.host, arguments.port, arguments.max_frame_size, arguments.idle_timeout)
    sys.exit(run_server(program, arguments.host, arguments.port))
