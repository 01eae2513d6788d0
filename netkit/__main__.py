"""``python -m netkit`` (also the ``netkit`` command): servers and clients to try things with.

    netkit chat                         the chat server (browser + terminal clients)
    netkit echo --tcp --port 9000       an echo server: --tcp, --udp, --framed or --ws
    netkit ws ws://127.0.0.1:8765/      an interactive WebSocket client
    netkit send --framed HOST PORT      send stdin's lines as length-prefixed frames

Exit status: 0 on success, 1 when the network said no (connection refused,
handshake rejected), 2 for a usage error, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Callable, Sequence

from . import errors
from .framing import FramedProtocol, LengthPrefixFramer
from .protocols import DatagramProtocol, Protocol
from .sync import Event
from .tasks import get_running_loop, run

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


# --------------------------------------------------------------------- echo


class _TCPEcho(Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _UDPEcho(DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class _FramedEcho(FramedProtocol):
    def frames_received(self, frames: list[bytes]) -> None:
        self.send_frames(frames)  # one write for every frame of one read


def _address(sockname: Any) -> str:
    host, port = sockname[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _wait_for_signal() -> None:
    stop = Event()
    loop = get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _echo(args: argparse.Namespace) -> int:
    loop = get_running_loop()
    mode = args.mode
    if mode == "udp":
        transport, _ = await loop.create_datagram_endpoint(_UDPEcho, local_addr=(args.host, args.port))
        print(f"udp echo server listening on {_address(transport.get_extra_info('sockname'))}", flush=True)
        await _wait_for_signal()
        transport.close()
        return EXIT_OK
    if mode == "ws":
        from .websocket import serve

        async def echo(ws: Any) -> None:
            async for message in ws:
                await ws.send(message)

        server = await serve(echo, args.host, args.port, max_message_size=args.max_size)
    elif mode == "framed":
        max_size = args.max_size

        server = await loop.create_server(lambda: _FramedEcho(LengthPrefixFramer(max_frame_size=max_size)), args.host, args.port)
    else:
        server = await loop.create_server(_TCPEcho, args.host, args.port)
    print(f"{mode} echo server listening on {_address(server.sockets[0].getsockname())}", flush=True)
    await _wait_for_signal()
    server.close()
    server.abort_clients()
    await server.wait_closed()
    return EXIT_OK


# --------------------------------------------------------------------- send


async def _send_framed(args: argparse.Namespace) -> int:
    from .streams import open_connection

    framer = LengthPrefixFramer(max_frame_size=args.max_size)
    try:
        reader, writer = await open_connection(args.host, args.port)
    except OSError as exc:
        raise CommandError(f"cannot connect to {args.host}:{args.port}: {exc.strerror or exc}") from None
    loop = get_running_loop()

    async def pump_stdin() -> None:
        # Reading stdin blocks, so it runs on a thread; each line becomes one frame.
        while True:
            line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
            if not line:
                break
            writer.write(framer.encode(line.rstrip(b"\r\n")))
            await writer.drain()
        writer.write_eof()

    from .framing import read_frame
    from .tasks import create_task

    sender = create_task(pump_stdin())
    try:
        while True:
            frame = await read_frame(reader, framer)
            if frame is None:
                break
            sys.stdout.write(frame.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
    except (errors.ProtocolError, errors.IncompleteReadError) as exc:
        raise CommandError(f"bad frame from {args.host}:{args.port}: {exc}") from None
    finally:
        sender.cancel()
        writer.close()
    return EXIT_OK


# ----------------------------------------------------------------------- ws


async def _ws_client(args: argparse.Namespace) -> int:
    from .websocket import connect

    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise CommandError(f"invalid --header {header!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    try:
        ws = await connect(
            args.uri,
            subprotocols=args.subprotocol or (),
            extra_headers=headers,
            max_message_size=args.max_size,
        )
    except errors.InvalidURI as exc:
        raise CommandError(f"invalid URI {args.uri!r}: {exc}") from None
    except errors.HandshakeError as exc:
        raise CommandError(f"handshake rejected by {args.uri} (HTTP {exc.status}): {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot connect to {args.uri}: {exc.strerror or exc}") from None
    loop = get_running_loop()
    print(f"connected to {args.uri}" + (f" (subprotocol {ws.subprotocol})" if ws.subprotocol else ""), file=sys.stderr)

    async def pump_stdin() -> None:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            await ws.send(line.rstrip("\r\n"))
        await ws.close()

    from .tasks import create_task

    sender = create_task(pump_stdin())
    try:
        async for message in ws:
            text = message if isinstance(message, str) else f"<{len(message)} bytes: {message[:32].hex()}>"
            print(text, flush=True)
    finally:
        sender.cancel()
        await ws.close()
    if ws.close_code not in (1000, 1001):
        print(f"connection closed: code {ws.close_code} {ws.close_reason}".rstrip(), file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------- chat


async def _chat(args: argparse.Namespace) -> int:
    from .chat.cli import run_from_arguments

    await run_from_arguments(args)
    return EXIT_OK


# ---------------------------------------------------------------- plumbing


def _parser() -> argparse.ArgumentParser:
    from .chat.cli import add_arguments as add_chat_arguments

    parser = argparse.ArgumentParser(prog="netkit", description="netkit's servers and clients, for trying things out.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument(
        "--log-level", default="WARNING", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default WARNING"
    )

    chat = commands.add_parser("chat", help="run the chat server (browser + terminal clients)")
    add_chat_arguments(chat)
    chat.set_defaults(run=_chat)

    echo = commands.add_parser("echo", parents=[logging_options], help="run an echo server")
    kind = echo.add_mutually_exclusive_group()
    for name in ("tcp", "udp", "framed", "ws"):
        kind.add_argument(f"--{name}", dest="mode", action="store_const", const=name, help=f"{name} echo")
    echo.set_defaults(mode="tcp", run=_echo)
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, default=9000, help="0: any free port")
    echo.add_argument("--max-size", type=int, default=16 * 1024 * 1024, help="largest frame/message (framed, ws)")

    ws = commands.add_parser("ws", parents=[logging_options], help="interactive WebSocket client: stdin lines out, messages in")
    ws.add_argument("uri", help="ws://host:port/path")
    ws.add_argument("--subprotocol", action="append", help="offer this subprotocol (repeatable)")
    ws.add_argument("--header", action="append", default=[], help="extra request header 'Name: value' (repeatable)")
    ws.add_argument("--max-size", type=int, default=1024 * 1024, help="largest message accepted")
    ws.set_defaults(run=_ws_client)

    send = commands.add_parser("send", parents=[logging_options], help="send stdin's lines as frames, print what comes back")
    send.add_argument("--framed", action="store_true", required=True, help="4-byte big-endian length prefix")
    send.add_argument("host")
    send.add_argument("port", type=int)
    send.add_argument("--max-size", type=int, default=16 * 1024 * 1024, help="largest frame accepted")
    send.set_defaults(run=_send_framed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    command: Callable[[argparse.Namespace], Any] = args.run
    try:
        return int(run(command(args)))
    except CommandError as exc:
        print(f"netkit {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"netkit {args.command}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
