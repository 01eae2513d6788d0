"""A TCP echo client on netkit's callback (protocol) API.

    python examples/04-tcp-udp/tcp_echo_client.py --port 9000 --message hello --count 3

Sends the message, waits for it to come back, and repeats COUNT times.  The
echo may arrive in several pieces (TCP keeps no message boundaries), so the
protocol collects bytes until a whole message is back.  Exits with status 0
when every echo matched, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import ECHO_PORT, plural, run_client  # noqa: E402


class EchoClient(netkit.Protocol):
    """Sends ``message`` ``count`` times, one round trip at a time."""

    def __init__(self, message: bytes, count: int, done: netkit.Future[int]) -> None:
        self.message = message
        self.remaining = count
        self.done = done
        self.received = bytearray()
        self.round_trips = 0

    def connection_made(self, transport: netkit.StreamTransport) -> None:
        self.transport = transport
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if len(self.received) < len(self.message):
            return  # part of the echo: wait for the rest
        if bytes(self.received) != self.message:
            self.fail(ValueError(f"sent {self.message!r}, got back {bytes(self.received)!r}"))
            return
        self.received.clear()
        self.round_trips += 1
        self.remaining -= 1
        if self.remaining:
            self.transport.write(self.message)
        elif not self.done.done():
            self.done.set_result(self.round_trips)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.fail(exc or ConnectionError("the server closed the connection before answering"))

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        self.transport.abort()


async def main(host: str, port: int, message: bytes, count: int, timeout: float) -> int:
    loop = netkit.get_running_loop()
    done: netkit.Future[int] = loop.create_future()
    try:
        transport, _ = await loop.create_connection(lambda: EchoClient(message, count, done), host, port)
    except OSError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"connected to {host}:{port} from {transport.get_extra_info('sockname')[1]}", flush=True)
    try:
        round_trips = await netkit.wait_for(done, timeout)
    except (OSError, ValueError, TimeoutError) as exc:
        print(f"echo failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        transport.close()
    print(f"{plural(round_trips, 'echo', 'echoes')} of {plural(len(message), 'byte')}, {'all ' if round_trips > 1 else ''}intact", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=ECHO_PORT, help=f"default {ECHO_PORT}, the echo servers'")
    parser.add_argument("--message", default="hello, netkit")
    parser.add_argument("--count", type=int, default=1, help="round trips to make")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for all echoes")
    args = parser.parse_args()
    sys.exit(run_client(main(args.host, args.port, args.message.encode(), args.count, args.timeout)))
