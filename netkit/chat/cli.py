"""Command-line front end of the chat server: options, logging, exit status.

Shared by ``examples/chat_server.py`` and ``python -m netkit chat`` so both
take the same options and print the same lines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from .._argtypes import listen_port, positive_int
from ..tasks import run
from .room import ChatLimits
from .server import DEFAULT_HOST, DEFAULT_HTTP_PORT, DEFAULT_TCP_PORT, WEBSOCKET_PATH, ChatServer, run_chat_server

__all__ = ["add_arguments", "configure_logging", "announce", "run_from_arguments", "main"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The chat server's options, on ``parser``."""
    defaults = ChatLimits()
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--http-port", type=listen_port, default=DEFAULT_HTTP_PORT, help=f"page and WebSocket port (default {DEFAULT_HTTP_PORT}; 0: any free port)"
    )
    parser.add_argument(
        "--tcp-port", type=listen_port, default=DEFAULT_TCP_PORT, help=f"framed TCP port for terminal clients (default {DEFAULT_TCP_PORT}; 0: any free port)"
    )
    parser.add_argument("--max-clients", type=positive_int, default=defaults.max_clients, help=f"default {defaults.max_clients}")
    parser.add_argument(
        "--max-text-bytes", type=positive_int, default=defaults.max_text_bytes, help=f"longest message in bytes (default {defaults.max_text_bytes})"
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="INFO logs one line per join, leave and error (default INFO)",
    )


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
        print(f"terminal clients: {host}:{port} (python examples/chat_client.py --port {port})", flush=True)
    print("press Ctrl-C to stop", flush=True)


async def run_from_arguments(args: argparse.Namespace) -> None:
    """Run the server the parsed options describe until SIGINT/SIGTERM."""
    limits = ChatLimits(max_clients=args.max_clients, max_text_bytes=args.max_text_bytes)
    await run_chat_server(args.host, args.http_port, args.tcp_port, limits=limits, on_ready=announce)


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
