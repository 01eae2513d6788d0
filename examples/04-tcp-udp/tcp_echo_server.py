"""A TCP echo server on netkit's callback (protocol) API.

    python examples/04-tcp-udp/tcp_echo_server.py --port 9000

Every byte a client sends comes straight back.  The protocol's methods are
called by the transport: ``data_received`` for each chunk that arrives (chunks
keep no message boundaries: see examples/05-framing/sticky_packets.py), and
``pause_writing``/``resume_writing`` when the echoes pile up because the
client is not reading them.  Reading pauses meanwhile, so such a client is
held back by TCP instead of filling this server's memory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import (  # noqa: E402
    DEFAULT_IDLE_TIMEOUT,
    ECHO_PORT,
    IdleTimeout,
    add_idle_timeout_option,
    announce_and_wait,
    listening_on,
    run_server,
)


class EchoProtocol(netkit.Protocol):
    """Writes back whatever arrives."""

    def __init__(self, idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT) -> None:
        # A peer that vanished without closing looks like a quiet one: close
        # the connection after idle_timeout seconds without data.
        self.idle = IdleTimeout(idle_timeout)

    def connection_made(self, transport: netkit.StreamTransport) -> None:
        self.transport = transport
        self.idle.start(transport)

    def data_received(self, data: bytes) -> None:
        self.idle.heard()
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.idle.stop()

    # Flow control: above the transport's high-water mark (64 KiB of unsent
    # echoes) stop reading, so the client waits instead of this process
    # buffering everything it sends; go on once the echoes have drained.

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


async def main(host: str, port: int, idle_timeout: float | None) -> None:
    loop = netkit.get_running_loop()
    server = await loop.create_server(lambda: EchoProtocol(idle_timeout), host, port)
    await announce_and_wait(f"tcp echo server listening on {listening_on(server)}")
    server.close()
    server.abort_clients()
    await server.wait_closed()
    print("server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=ECHO_PORT, help=f"default {ECHO_PORT}; 0 picks a free port")
    add_idle_timeout_option(parser)
    args = parser.parse_args()
    sys.exit(run_server(main(args.host, args.port, args.idle_timeout), args.host, args.port))
