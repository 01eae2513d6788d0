"""Half-close: a client sends its whole request, shuts down its write side,
and still reads the whole answer.

    python examples/04-tcp-udp/half_close.py                      # server and client, one run
    python examples/04-tcp-udp/half_close.py --serve              # only the server (port 9003), until Ctrl-C
    python examples/04-tcp-udp/half_close.py --connect

TCP closes each direction on its own (the "four-way close"): ``write_eof()``
sends a FIN, which tells the server "the request is complete" without a
length prefix or delimiter, while the other direction stays open for the
answer.  The server sees the FIN as ``eof_received()``; returning ``True``
keeps the connection open so it can still reply, then it closes its side.
This is how ``sort`` or ``wc`` over a socket would work, and what
``shutdown(SHUT_WR)`` does.

A request that ends only at EOF has to be held whole until then, so the
server bounds it: past ``--max-request-size`` bytes the connection is cut.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from netkit.framing import DEFAULT_MAX_FRAME_SIZE  # noqa: E402
from examples._common import (  # noqa: E402
    HALF_CLOSE_PORT,
    listening_on,
    plural,
    run_client,
    run_server,
    stop_on_signals,
)

# The largest request held in memory: the same 16 MiB as the framed echo's
# largest frame, a hundred times the 1.3 MB request of the demo.
DEFAULT_MAX_REQUEST_SIZE = DEFAULT_MAX_FRAME_SIZE


class WordCounter(netkit.Protocol):
    """Collects the request until the client's FIN, then answers with a report
    and the request sorted line by line."""

    def __init__(self, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE) -> None:
        self.max_request_size = max_request_size

    def connection_made(self, transport: netkit.StreamTransport) -> None:
        self.transport = transport
        self.request = bytearray()

    def data_received(self, data: bytes) -> None:
        if len(self.request) + len(data) > self.max_request_size:
            peer = self.transport.get_extra_info("peername")
            print(f"server: request over {self.max_request_size} bytes from {peer}: connection cut", file=sys.stderr, flush=True)
            self.transport.abort()  # nothing useful to answer; drop what is buffered
            return
        self.request += data  # the request ends at EOF, not at any byte pattern

    def eof_received(self) -> bool:
        lines = bytes(self.request).splitlines()
        report = f"{plural(len(self.request), 'byte')}, {plural(len(lines), 'line')}, {plural(len(self.request.split()), 'word')}\n"
        self.transport.write(report.encode())
        self.transport.writelines(line + b"\n" for line in sorted(lines))
        self.transport.close()  # flushes the answer, then sends our FIN
        return True  # keep the connection open: we still had to answer


async def ask(host: str, port: int, request: bytes) -> int:
    reader, writer = await netkit.open_connection(host, port)
    writer.write(request)
    writer.write_eof()  # FIN: "that was all" -- our write side is now shut
    print(f"client: sent {plural(len(request), 'byte')}, then shut down the write side", flush=True)
    answer = await reader.read()  # reads until the server's FIN
    writer.close()
    await writer.wait_closed()
    report, _, body = answer.partition(b"\n")
    print(f"client: the server counted {report.decode()}", flush=True)
    print(f"client: received {plural(len(answer), 'byte')} of answer after our EOF", flush=True)
    expected = b"".join(line + b"\n" for line in sorted(request.splitlines()))
    return 0 if body == expected else 1


async def main(host: str, port: int, serve: bool, connect: bool, lines: int, max_request_size: int) -> int:
    request = b"".join(b"line %06d of the request\n" % ((i * 7919) % lines) for i in range(lines))
    if connect:
        return await ask(host, port, request)
    loop = netkit.get_running_loop()
    server = await loop.create_server(lambda: WordCounter(max_request_size), host, port)
    print(f"half-close server listening on {listening_on(server)}", flush=True)
    if serve:
        stop = netkit.Event()
        stop_on_signals(stop)
        await stop.wait()
        status = 0
    else:
        status = await ask(host, server.sockets[0].getsockname()[1], request)
    server.close()
    server.abort_clients()
    await server.wait_closed()
    print("server stopped", flush=True)
    return status


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, help=f"default {HALF_CLOSE_PORT} with --serve or --connect, else any free port (0)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="only run the server, until SIGINT/SIGTERM")
    mode.add_argument("--connect", action="store_true", help="only run the client, against --host/--port")
    parser.add_argument("--lines", type=int, default=50_000, help="lines in the request")
    parser.add_argument(
        "--max-request-size",
        type=int,
        default=DEFAULT_MAX_REQUEST_SIZE,
        help=f"largest request the server holds, in bytes (default {DEFAULT_MAX_REQUEST_SIZE:,})",
    )
    args = parser.parse_args()
    if args.port is None:
        args.port = HALF_CLOSE_PORT if args.serve or args.connect else 0
    program = main(args.host, args.port, args.serve, args.connect, args.lines, args.max_request_size)
    sys.exit(run_server(program, args.host, args.port) if args.serve else run_client(program))
