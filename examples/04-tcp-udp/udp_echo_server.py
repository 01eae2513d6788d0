"""A UDP echo server: every datagram goes back to whoever sent it.

    python examples/04-tcp-udp/udp_echo_server.py --port 9000

UDP has no connections: one socket serves everyone, and each datagram
arrives whole (never split or merged) together with its sender's address,
which ``sendto`` uses to answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import ECHO_PORT, announce_and_wait, run_server  # noqa: E402


class UDPEcho(netkit.DatagramProtocol):
    """Sends each datagram back to its sender."""

    def connection_made(self, transport: netkit.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)

    # While answers wait for room in the kernel's send buffer, take no new
    # datagrams: the kernel drops what overflows, rather than this queue.

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def error_received(self, exc: OSError) -> None:
        print(f"error: {exc}", flush=True)


async def main(host: str, port: int) -> None:
    loop = netkit.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(UDPEcho, local_addr=(host, port))
    bound_host, bound_port = transport.get_extra_info("sockname")[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    await announce_and_wait(f"udp echo server listening on {shown}:{bound_port}")
    transport.close()
    print("server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=ECHO_PORT, help=f"default {ECHO_PORT}; 0 picks a free port")
    args = parser.parse_args()
    sys.exit(run_server(main(args.host, args.port), args.host, args.port))
