"""A UDP echo client: send datagrams, check each comes back.

    python examples/04-tcp-udp/udp_echo_client.py --port 9000 --message hello --count 3

The endpoint is *connected* (``remote_addr``): ``sendto`` needs no address,
only the server's datagrams are accepted, and if nothing listens on the port
the kernel's ICMP "port unreachable" reaches ``error_received`` as
``ConnectionRefusedError``.  UDP may lose datagrams, so each one is sent again
after a timeout, a few times, before giving up.  Exits 0 when every echo
came back intact.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import ECHO_PORT, plural, run_client  # noqa: E402


class UDPEchoClient(netkit.DatagramProtocol):
    """Hands every datagram (or error) to the coroutine waiting for it."""

    def __init__(self) -> None:
        self.inbox: netkit.Queue[bytes | OSError] = netkit.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)

    def error_received(self, exc: OSError) -> None:
        self.inbox.put_nowait(exc)


async def main(host: str, port: int, message: bytes, count: int, timeout: float, attempts: int) -> int:
    loop = netkit.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UDPEchoClient, remote_addr=(host, port))
    try:
        for index in range(count):
            datagram = b"%d " % index + message  # numbered, so a late echo is recognised
            for _ in range(attempts):
                transport.sendto(datagram)
                try:
                    reply = await netkit.wait_for(protocol.inbox.get(), timeout)
                except TimeoutError:
                    continue  # lost on the way there or back: send again
                if isinstance(reply, OSError):
                    print(f"error: {reply}", file=sys.stderr, flush=True)
                    return 1
                if reply == datagram:
                    break
            else:
                print(f"no echo for datagram {index} after {attempts} attempts", file=sys.stderr, flush=True)
                return 1
    finally:
        transport.close()
    print(f"{plural(count, 'datagram')} echoed intact", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=ECHO_PORT, help=f"default {ECHO_PORT}, the echo servers'")
    parser.add_argument("--message", default="hello, netkit")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each echo")
    parser.add_argument("--attempts", type=int, default=3, help="sends per datagram before giving up")
    args = parser.parse_args()
    sys.exit(run_client(main(args.host, args.port, args.message.encode(), args.count, args.timeout, args.attempts)))
