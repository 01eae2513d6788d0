"""Command-line front end of the chat server: options, logging, exit status.

Shared by ``examples/chat_server.py`` and ``python -m netkit chat`` so both
take the same options and print the same lines.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any, Callable, Sequence

from .._argtypes import listen_port, positive_int
from ..tasks import run
from ..websocket import Options
from .origins import ANY_ORIGIN, parse_origin
from .room import ChatLimits
from .server import DEFAULT_HOST, DEFAULT_HTTP_PORT, DEFAULT_TCP_PORT, WEBSOCKET_PATH, ChatServer, run_chat_server

__all__ = [
    "add_arguments",
    "limits_from_arguments",
    "websocket_options_from_arguments",
    "configure_logging",
    "announce",
    "run_from_arguments",
    "main",
]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def positive_number(text: str) -> float:
    """A rate or a duration: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def origin(text: str) -> str:
    """A web origin (``scheme://host[:port]``) or ``*``."""
    if text != ANY_ORIGIN and parse_origin(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an origin: write it as scheme://host[:port], e.g. https://chat.example.com")
    return text


# The hub's limits that the command line sets: ChatLimits field, value type,
# metavar, help.  Each becomes --field-name; see ChatLimits for why each
# default is what it is.  send_buffer_limit is left out: it is computed.
_LIMIT_OPTIONS: list[tuple[str, Callable[[str], Any], str, str]] = [
    ("max_clients", positive_int, "N", "connections in all"),
    ("max_clients_per_address", positive_int, "N", "connections from one IP address or IPv6 /64; raise it behind a proxy"),
    ("rate", positive_number, "PER_SECOND", "messages a second from one connection, on average"),
    ("burst", positive_int, "N", "messages one connection may send at once"),
    ("address_rate", positive_number, "PER_SECOND", "messages a second from one address, all its connections together"),
    ("address_burst", positive_int, "N", "messages one address may send at once"),
    ("room_byte_rate", positive_int, "BYTES", "bytes a second entering one room: the slowest reader it keeps up with"),
    ("room_byte_burst", positive_int, "BYTES", "bytes that may enter one room at once"),
    ("max_text_bytes", positive_int, "BYTES", "longest message text in bytes"),
    ("max_rooms", positive_int, "N", "rooms at once"),
    ("history_size", positive_int, "N", "messages a newcomer to a room is shown"),
    ("join_timeout", positive_number, "SECONDS", "seconds a connection may take to join"),
    ("ping_interval", positive_number, "SECONDS", "seconds of silence before a client is pinged"),
    ("ping_timeout", positive_number, "SECONDS", "seconds a ping may go unanswered before the client is dropped"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The chat server's options, on ``parser``."""
    limits = ChatLimits()
    websocket_defaults = Options()
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--http-port",
        type=listen_port,
        default=DEFAULT_HTTP_PORT,
        metavar="PORT",
        help=f"page and WebSocket port (default {DEFAULT_HTTP_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--tcp-port",
        type=listen_port,
        default=DEFAULT_TCP_PORT,
        metavar="PORT",
        help=f"framed TCP port for terminal clients (default {DEFAULT_TCP_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--origin",
        dest="origins",
        action="append",
        type=origin,
        default=[],
        metavar="ORIGIN",
        help="also let pages from ORIGIN (https://chat.example.com) open the WebSocket; repeatable; '*' for any "
        "(default: only the chat's own page, and clients that send no Origin)",
    )
    for field, kind, metavar, what in _LIMIT_OPTIONS:
        default = getattr(limits, field)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        parser.add_argument(
            "--" + field.replace("_", "-"), type=kind, default=default, metavar=metavar, help=f"{what} (default {shown})"
        )
    parser.add_argument(
        "--open-timeout",
        metavar="SECONDS",
        type=positive_number,
        default=websocket_defaults.open_timeout,
        help=f"seconds for a WebSocket opening handshake (default {websocket_defaults.open_timeout:g})",
    )
    parser.add_argument(
        "--close-timeout",
        metavar="SECONDS",
        type=positive_number,
        default=websocket_defaults.close_timeout,
        help=f"seconds for a WebSocket closing handshake (default {websocket_defaults.close_timeout:g})",
    )
    parser.add_argument(
        "--max-message-size",
        metavar="BYTES",
        type=positive_int,
        default=None,
        help="largest WebSocket message in bytes; a larger one closes the connection with 1009 "
        f"(default 6 x --max-text-bytes + 1024: {limits.max_message_bytes})",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="INFO logs one line per join, leave and error (default INFO)",
    )


def limits_from_arguments(args: argparse.Namespace) -> ChatLimits:
    """The hub's limits the parsed options ask for (``send_buffer_limit`` computed)."""
    return ChatLimits(**{field: getattr(args, field) for field, *_ in _LIMIT_OPTIONS})


def websocket_options_from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The options for ``netkit.websocket.serve`` that the parsed options set;
    ``max_message_size`` only when given (otherwise the server derives it
    from the text limit)."""
    options: dict[str, Any] = {"open_timeout": args.open_timeout, "close_timeout": args.close_timeout}
    if args.max_message_size is not None:
        options["max_message_size"] = args.max_message_size
    return options


def configure_logging(level: str) -> None:
    """One line per event on stderr."""
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level), format=LOG_FORMAT)


def announce(server: ChatServer) -> None:
    """Print where the server listens: the URL to open first."""
    if server.http_address is not None:
        host, port = server.http_address
        print(f"chat page: {server.url}", flush=True)
        print(f"websocket: ws://{host}:{port}{WEBSOCKET_PATH}", flush=True)
    if server.tcp_address is not None:
        host, port = server.tcp_address
        print(f"terminal clients: {host}:{port} (python -m netkit chat-client --port {port})", flush=True)
    print("press Ctrl-C to stop", flush=True)


async def run_from_arguments(args: argparse.Namespace) -> None:
    """Run the server the parsed options describe until SIGINT/SIGTERM."""
    await run_chat_server(
        args.host,
        args.http_port,
        args.tcp_port,
        limits=limits_from_arguments(args),
        origins=args.origins,
        websocket_options=websocket_options_from_arguments(args),
        on_ready=announce,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the server, and return the exit status."""
    parser = argparse.ArgumentParser(description="netkit's chat server: a browser page, WebSockets and terminal clients in one room.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        run(run_from_arguments(args))
    except ValueError as exc:  # a limit out of range
        print(f"chat: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a port already taken, an address not ours
        print(f"chat: cannot listen: {exc}", file=sys.stderr)
        return 1
    print("chat server stopped", flush=True)
    return 0
