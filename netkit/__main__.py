"""``python -m netkit`` (also the ``netkit`` command): servers and clients to try things with.

    netkit chat                         the chat server (browser + terminal clients)
    netkit chat-client --nick ann       join it from a terminal
    netkit echo --tcp                   an echo server: --tcp, --udp, --framed or --ws
    netkit ws ws://127.0.0.1:9002/      an interactive WebSocket client
    netkit send --framed [HOST PORT]    send stdin's lines as length-prefixed frames

A client's default port is its server's: ``netkit send --framed`` talks to
``netkit echo --framed``, ``netkit ws`` to ``netkit echo --ws`` (see
netkit/_ports.py).

Exit status: 0 on success, 1 when the network said no (connection refused,
handshake rejected, connection lost), 2 for a usage error, 130 after Ctrl-C.
Failures are reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable, Sequence

from . import _ports, errors
from ._argtypes import connect_port, http_header, listen_port, non_negative_float, os_error_reason, positive_int, timeout_seconds
from ._idle import DEFAULT_IDLE_TIMEOUT, IdleTimeout
from ._stdin import StdinLines
from .framing import DEFAULT_MAX_FRAME_SIZE, FramedProtocol, LengthPrefixFramer, read_frame
from .loop import EventLoop
from .protocols import DatagramProtocol, Protocol
from .sync import Event
from .tasks import create_task, get_running_loop, run, wait_for

logger = logging.getLogger("netkit")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure to report as one line on stderr, with exit status 1."""


# --------------------------------------------------------------------- echo

# Where each echo server listens unless told otherwise.
ECHO_PORTS = {
    "tcp": _ports.ECHO_PORT,
    "udp": _ports.ECHO_PORT,
    "framed": _ports.FRAMED_ECHO_PORT,
    "ws": _ports.WEBSOCKET_ECHO_PORT,
}


class _ReadOnlyWhatCanBeAnswered:
    """Flow control for an echo: reading pauses while writing is paused.

    Every byte read becomes a byte to write, so a peer that sends without
    reading its echoes would otherwise make the write buffer grow without
    bound.  The transport calls ``pause_writing`` above its high-water mark;
    reading stops there, the kernel's buffers fill, and TCP holds the peer
    back (for UDP, the kernel drops what overflows).
    """

    __slots__ = ()
    transport: Any

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


def _log_idle(transport: Any) -> None:
    """One line in the log (at INFO) for a connection closed for idling."""
    logger.info("closing the connection from %s: idle for --idle-timeout", transport.get_extra_info("peername"))


class _TCPEcho(_ReadOnlyWhatCanBeAnswered, Protocol):
    """``netkit echo --tcp``: every byte back, flow-controlled, idle connections closed."""

    def __init__(self, idle_timeout: float | None = None) -> None:
        self.idle = IdleTimeout(idle_timeout, _log_idle)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.idle.start(transport)

    def data_received(self, data: bytes) -> None:
        self.idle.heard()
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.idle.stop()


class _UDPEcho(_ReadOnlyWhatCanBeAnswered, DatagramProtocol):
    """``netkit echo --udp``: every datagram back to its sender."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class _FramedEcho(_ReadOnlyWhatCanBeAnswered, FramedProtocol):
    """``netkit echo --framed``: every frame back whole, one write per read's frames."""

    def __init__(self, framer: LengthPrefixFramer, idle_timeout: float | None = None) -> None:
        super().__init__(framer)
        self.idle = IdleTimeout(idle_timeout, _log_idle)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.idle.start(transport)

    def data_received(self, data: bytes) -> None:
        self.idle.heard()  # any bytes count, a frame's first piece included
        super().data_received(data)

    def frames_received(self, frames: list[bytes]) -> None:
        self.send_frames(frames)  # one write for every frame of one read

    def connection_lost(self, exc: BaseException | None) -> None:
        self.idle.stop()


def _address(sockname: Any) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    host, port = sockname[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _wait_for_signal() -> None:
    """Until SIGINT (Ctrl-C) or SIGTERM: how a server is stopped cleanly."""
    stop = Event()
    loop = get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _echo(args: argparse.Namespace) -> int:
    """``netkit echo``: listen, say where, serve until a signal."""
    mode = args.mode
    port = ECHO_PORTS[mode] if args.port is None else args.port
    try:
        if mode == "udp":
            transport = await _listen_udp(args.host, port)
        else:
            server = await _listen(mode, args, args.host, port)
    except OSError as exc:  # the port is taken, the address is not this machine's, the name is unknown
        raise CommandError(f"cannot listen on {_address((args.host, port))}: {os_error_reason(exc)}") from None
    if mode == "udp":
        print(f"udp echo server listening on {_address(transport.get_extra_info('sockname'))}", flush=True)
        await _wait_for_signal()
        transport.close()
        return EXIT_OK
    print(f"{mode} echo server listening on {_address(server.sockets[0].getsockname())}", flush=True)
    await _wait_for_signal()
    server.close()
    server.abort_clients()
    await server.wait_closed()
    return EXIT_OK


async def _listen_udp(host: str, port: int) -> Any:
    """The UDP echo's endpoint, bound."""
    transport, _ = await get_running_loop().create_datagram_endpoint(_UDPEcho, local_addr=(host, port))
    return transport


async def _listen(mode: str, args: argparse.Namespace, host: str, port: int) -> Any:
    """The TCP, framed or WebSocket echo server, listening."""
    if mode == "ws":
        from .websocket import serve

        async def echo(ws: Any) -> None:
            async for message in ws:
                await ws.send(message)

        return await serve(echo, host, port, max_message_size=_max_size(args), **_websocket_timeouts(args))
    loop = get_running_loop()
    idle_timeout = args.idle_timeout
    if mode == "framed":
        max_size = _max_size(args)
        return await loop.create_server(lambda: _FramedEcho(LengthPrefixFramer(max_frame_size=max_size), idle_timeout), host, port)
    return await loop.create_server(lambda: _TCPEcho(idle_timeout), host, port)


def _max_size(args: argparse.Namespace) -> int:
    """``--max-size``, or the library's default for the mode: the framer's
    largest frame, or a WebSocket connection's largest message."""
    if args.max_size is not None:
        return int(args.max_size)
    if args.mode == "ws":
        return _websocket_defaults().max_message_size
    return DEFAULT_MAX_FRAME_SIZE


# --------------------------------------------------------------------- send


async def _send_framed(args: argparse.Namespace) -> int:
    from .streams import open_connection

    framer = LengthPrefixFramer(max_frame_size=args.max_size)
    try:
        reader, writer = await open_connection(args.host, args.port)
    except OSError as exc:
        raise CommandError(f"cannot connect to {args.host}:{args.port}: {os_error_reason(exc)}") from None
    lines = StdinLines(get_running_loop())
    stdin_failure: list[CommandError] = []

    async def pump_stdin() -> None:
        # Each line becomes one frame; at the end of input, half-close and keep reading.
        try:
            try:
                while (line := await lines.readline()) is not None:
                    writer.write(framer.encode(line.rstrip(b"\r\n")))
                    await writer.drain()
            except errors.LimitOverrunError as exc:
                # A line too long: stop there, as at the end of input, so the
                # answers to the lines before it still arrive; report it after.
                stdin_failure.append(CommandError(str(exc)))
            writer.write_eof()
        except OSError:
            pass  # the connection is gone: the reading side reports it

    sender = create_task(pump_stdin())
    try:
        while True:
            frame = await read_frame(reader, framer)
            if frame is None:
                break
            sys.stdout.write(frame.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
    except (errors.ProtocolError, errors.IncompleteReadError) as exc:
        failure = CommandError(f"bad frame from {args.host}:{args.port}: {exc}")
    except OSError as exc:
        failure = CommandError(f"connection to {args.host}:{args.port} lost: {os_error_reason(exc)}")
    else:
        failure = None
    finally:
        sender.cancel()
        writer.close()
    if stdin_failure:
        raise stdin_failure[0]  # why the connection ended
    if failure is not None:
        raise failure
    return EXIT_OK


# ----------------------------------------------------------------------- ws


async def _ws_client(args: argparse.Namespace) -> int:
    from .websocket import connect

    try:
        ws = await connect(
            args.uri,
            subprotocols=args.subprotocol or (),
            extra_headers=args.header,
            max_message_size=args.max_size,
            **_websocket_timeouts(args),
        )
    except errors.InvalidURI as exc:
        raise CommandError(str(exc)) from None  # it quotes the URI and says what is wrong
    except errors.HandshakeError as exc:
        raise CommandError(f"handshake with {args.uri} failed: {exc}") from None
    except TimeoutError as exc:
        if exc.errno is None and args.open_timeout is not None:  # netkit's deadline, not the system's ETIMEDOUT
            within = f"{args.open_timeout:g} s (--open-timeout)"
            raise CommandError(f"no answer to the opening handshake from {args.uri} within {within}") from None
        raise CommandError(f"cannot connect to {args.uri}: {os_error_reason(exc)}") from None
    except OSError as exc:
        raise CommandError(f"cannot connect to {args.uri}: {os_error_reason(exc)}") from None
    print(f"connected to {args.uri}" + (f" (subprotocol {ws.subprotocol})" if ws.subprotocol else ""), file=sys.stderr)

    lines = StdinLines(get_running_loop())
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"  # sys.stdin is None when fd 0 is closed
    stdin_failure: list[CommandError] = []

    message_arrived = Event()

    async def pump_stdin() -> None:
        try:
            try:
                while (line := await lines.readline()) is not None:
                    # Text messages: bytes the terminal's encoding cannot read become U+FFFD.
                    await ws.send(line.decode(encoding, "replace").rstrip("\r\n"))
            except errors.LimitOverrunError as exc:
                # A line too long: stop there, as at the end of input, so the
                # answers to the lines before it still arrive; report it after.
                stdin_failure.append(CommandError(str(exc)))
            # End of input.  A WebSocket has no half-close: closing now would
            # also cut off the answers still on their way (the server answers
            # a close at once), so first wait until the server has been quiet
            # for --linger seconds, as `nc -q` does.
            while True:
                message_arrived.clear()
                try:
                    await wait_for(message_arrived.wait(), args.linger)
                except TimeoutError:
                    break
            await ws.close()
        except errors.ConnectionClosed:
            pass  # the receiving side reports how it ended

    sender = create_task(pump_stdin())
    try:
        async for message in ws:
            message_arrived.set()
            text = message if isinstance(message, str) else f"<{len(message)} bytes: {message[:32].hex()}>"
            print(text, flush=True)
    except errors.ConnectionClosedError:
        pass  # reported below from the close code
    finally:
        sender.cancel()
        await ws.close()
    if stdin_failure:
        raise stdin_failure[0]
    # RFC 6455 §7.4.1: 1000 is a normal closure and 1001 a peer going away
    # (a server shutting down); anything else means something went wrong.
    if ws.close_code == 1006:
        raise CommandError(f"connection to {args.uri} lost without a closing handshake (code 1006)")
    if ws.close_code not in (1000, 1001):
        reason = f" ({ws.close_reason})" if ws.close_reason else ""
        raise CommandError(f"connection to {args.uri} closed with code {ws.close_code}{reason}")
    return EXIT_OK


# --------------------------------------------------------------------- chat


async def _chat(args: argparse.Namespace) -> int:
    from .chat.cli import run_from_arguments

    await run_from_arguments(args)
    print("chat server stopped", flush=True)
    return EXIT_OK


async def _chat_client(args: argparse.Namespace) -> int:
    from .chat.client import ChatClientError, run_from_arguments

    try:
        return await run_from_arguments(args)
    except ChatClientError as exc:
        raise CommandError(str(exc)) from None


# ---------------------------------------------------------------- plumbing


def _parser() -> argparse.ArgumentParser:
    from .chat.cli import add_arguments as add_chat_arguments
    from .chat.client import add_arguments as add_chat_client_arguments

    parser = argparse.ArgumentParser(prog="netkit", description="netkit's servers and clients, for trying things out.")
    parser.add_argument("--version", action="version", version=f"netkit {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument(
        "--log-level", default="WARNING", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default WARNING"
    )

    chat = commands.add_parser("chat", help="run the chat server (browser + terminal clients)")
    add_chat_arguments(chat)
    chat.set_defaults(run=_chat)

    chat_client = commands.add_parser(
        "chat-client", parents=[logging_options], help="join the chat server from a terminal: stdin lines out, messages in"
    )
    add_chat_client_arguments(chat_client)
    chat_client.set_defaults(run=_chat_client)

    echo = commands.add_parser("echo", parents=[logging_options], help="run an echo server")
    kind = echo.add_mutually_exclusive_group()
    for name in ("tcp", "udp", "framed", "ws"):
        kind.add_argument(f"--{name}", dest="mode", action="store_const", const=name, help=f"{name} echo")
    echo.set_defaults(mode="tcp", run=_echo)
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument(
        "--port",
        type=listen_port,
        help=(
            f"default {_ports.ECHO_PORT} (--tcp, --udp), {_ports.FRAMED_ECHO_PORT} (--framed), "
            f"{_ports.WEBSOCKET_ECHO_PORT} (--ws); 0: any free port"
        ),
    )
    echo.add_argument(
        "--max-size",
        type=positive_int,
        help=f"largest frame (--framed, default {DEFAULT_MAX_FRAME_SIZE}) or message (--ws, default {_websocket_defaults().max_message_size})",
    )
    echo.add_argument(
        "--idle-timeout",
        type=timeout_seconds,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=(
            f"close a connection that sends nothing for this long (--tcp, --framed; default {DEFAULT_IDLE_TIMEOUT:g}: "
            "minutes of thinking at a keyboard, while a peer that vanished without closing is let go; 0: never)"
        ),
    )
    _add_websocket_timeouts(echo, " (--ws)")

    ws = commands.add_parser("ws", parents=[logging_options], help="interactive WebSocket client: stdin lines out, messages in")
    default_uri = f"ws://127.0.0.1:{_ports.WEBSOCKET_ECHO_PORT}/"
    ws.add_argument("uri", nargs="?", default=default_uri, help=f"ws://host:port/path (default {default_uri}: netkit echo --ws)")
    ws.add_argument("--subprotocol", action="append", help="offer this subprotocol (repeatable)")
    ws.add_argument("--header", type=http_header, action="append", default=[], help="extra request header 'Name: value' (repeatable)")
    ws.add_argument(
        "--max-size",
        type=positive_int,
        default=_websocket_defaults().max_message_size,
        help=f"largest message accepted (default {_websocket_defaults().max_message_size})",
    )
    _add_websocket_timeouts(ws)
    ws.add_argument(
        "--linger",
        type=non_negative_float,
        default=1.0,
        help="after the end of input, close once the server has been quiet this many seconds (default 1)",
    )
    ws.set_defaults(run=_ws_client)

    send = commands.add_parser("send", parents=[logging_options], help="send stdin's lines as frames, print what comes back")
    send.add_argument("--framed", action="store_true", required=True, help="4-byte big-endian length prefix")
    send.add_argument("host", nargs="?", default="127.0.0.1", help="default 127.0.0.1")
    send.add_argument(
        "port", nargs="?", type=connect_port, default=_ports.FRAMED_ECHO_PORT, help=f"default {_ports.FRAMED_ECHO_PORT}: netkit echo --framed"
    )
    send.add_argument(
        "--max-size", type=positive_int, default=DEFAULT_MAX_FRAME_SIZE, help=f"largest frame accepted (default {DEFAULT_MAX_FRAME_SIZE})"
    )
    send.set_defaults(run=_send_framed)
    return parser


def _websocket_defaults() -> Any:
    """A WebSocket connection's default options (``netkit.websocket.Options``),
    for the options' defaults: the library's, never numbers restated here."""
    from .websocket import Options

    return Options()


def _shown_seconds(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:g} s"


def _add_websocket_timeouts(parser: argparse.ArgumentParser, applies: str = "") -> None:
    """``--open-timeout`` and ``--close-timeout``, with the library's defaults."""
    defaults = _websocket_defaults()
    parser.add_argument(
        "--open-timeout",
        type=timeout_seconds,
        default=defaults.open_timeout,
        metavar="SECONDS",
        help=f"the opening handshake must be done within this time{applies} (default {_shown_seconds(defaults.open_timeout)}; 0: no limit)",
    )
    parser.add_argument(
        "--close-timeout",
        type=timeout_seconds,
        default=defaults.close_timeout,
        metavar="SECONDS",
        help=f"the closing handshake must be done within this time{applies} (default {_shown_seconds(defaults.close_timeout)}; 0: no limit)",
    )


def _websocket_timeouts(args: argparse.Namespace) -> dict[str, float | None]:
    return {"open_timeout": args.open_timeout, "close_timeout": args.close_timeout}


def package_version() -> str:
    """netkit's version, from pyproject.toml, its one source.

    Running from a checkout, that is the pyproject.toml beside the package
    (an installed distribution of another version may be on the path too);
    installed, it is the version pip recorded from it.
    """
    checkout = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if checkout.is_file():
        with checkout.open("rb") as file:
            project = tomllib.load(file).get("project", {})
        if project.get("name") == "netkit" and isinstance(project.get("version"), str):
            return project["version"]
    try:
        return importlib.metadata.version("netkit")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (neither installed nor run from a checkout)"


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
