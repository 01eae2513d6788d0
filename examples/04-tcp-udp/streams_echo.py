"""A TCP echo server and client on netkit's streams (async/await) API.

    python examples/04-tcp-udp/streams_echo.py --port 9000                   # serve
    python examples/04-tcp-udp/streams_echo.py --port 9000 --client --count 3

The server runs one coroutine per connection: read what arrived, write it
back, ``await writer.drain()`` so a client that does not read cannot make the
server buffer without limit.  The client writes a line and reads the echo
with ``readexactly``, which waits until every byte is back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from examples._common import (  # noqa: E402
    ECHO_PORT,
    add_idle_timeout_option,
    announce_and_wait,
    listening_on,
    plural,
    run_client,
    run_server,
)


async def handle(reader: netkit.StreamReader, writer: netkit.StreamWriter, idle_timeout: float | None) -> None:
    """Echo one connection until the client closes it, or sends nothing (or
    reads nothing) for ``idle_timeout`` seconds."""
    try:
        while data := await netkit.wait_for(reader.read(64 * 1024), idle_timeout):
            writer.write(data)
            await netkit.wait_for(writer.drain(), idle_timeout)  # waits only while the client is slow to read
    except TimeoutError:
        writer.transport.abort()  # idle: a graceful close would wait to flush echoes nobody reads
    except ConnectionError:
        pass  # the client vanished (reset): nothing to answer
    finally:
        writer.close()


async def serve(host: str, port: int, idle_timeout: float | None) -> int:
    server = await netkit.start_server(lambda reader, writer: handle(reader, writer, idle_timeout), host, port)
    await announce_and_wait(f"tcp echo (streams) server listening on {listening_on(server)}")
    server.close()
    server.abort_clients()
    await server.wait_closed()
    print("server stopped", flush=True)
    return 0


async def client(host: str, port: int, message: bytes, count: int) -> int:
    try:
        reader, writer = await netkit.open_connection(host, port)
    except OSError as exc:
        print(f"cannot connect: {exc}", file=sys.stderr, flush=True)
        return 1
    async with writer:  # closes the connection on the way out
        for _ in range(count):
            writer.write(message)
            await writer.drain()
            echoed = await reader.readexactly(len(message))
            if echoed != message:
                print(f"sent {message!r}, got back {echoed!r}", file=sys.stderr, flush=True)
                return 1
    print(f"{plural(count, 'echo', 'echoes')} of {plural(len(message), 'byte')}, {'all ' if count > 1 else ''}intact", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=ECHO_PORT, help=f"default {ECHO_PORT}; 0 picks a free port (server)")
    parser.add_argument("--client", action="store_true", help="connect to a server instead of serving")
    parser.add_argument("--message", default="hello, netkit\n")
    parser.add_argument("--count", type=int, default=1, help="round trips to make (client)")
    add_idle_timeout_option(parser)
    args = parser.parse_args()
    if args.client:
        sys.exit(run_client(client(args.host, args.port, args.message.encode(), args.count)))
    sys.exit(run_server(serve(args.host, args.port, args.idle_timeout), args.host, args.port))
