"""Shared helpers for the examples: stop servers cleanly on SIGINT/SIGTERM
and report a port they cannot listen on in one line, close idle connections
(``IdleTimeout``, from netkit/_idle.py, shared with ``python -m netkit
echo``), end clients quietly on Ctrl-C, count in good English, and the
default ports (one per protocol, the same as ``python -m netkit``'s:
netkit/_ports.py).

An example imports them as ``examples._common``, once the line at its top
has put the checkout's root on ``sys.path`` (examples/README.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Coroutine

import netkit
from netkit import websocket
from netkit._argtypes import os_error_reason
from netkit._idle import DEFAULT_IDLE_TIMEOUT, IdleTimeout
from netkit._ports import ECHO_PORT, FRAMED_ECHO_PORT, HALF_CLOSE_PORT, WEBSOCKET_ECHO_PORT

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "ECHO_MAX_MESSAGE_SIZE",
    "ECHO_PORT",
    "EXIT_INTERRUPTED",
    "FRAMED_ECHO_PORT",
    "HALF_CLOSE_PORT",
    "IdleTimeout",
    "WEBSOCKET_ECHO_PORT",
    "add_idle_timeout_option",
    "add_websocket_options",
    "announce_and_wait",
    "listening_on",
    "plural",
    "run_client",
    "run_server",
    "stop_on_signals",
    "websocket_options",
]


# 128 + SIGINT: the status a shell gives a program that Ctrl-C ended.
EXIT_INTERRUPTED = 130


def run_client(main: Coroutine[Any, Any, int]) -> int:
    """``netkit.run(main)``, with Ctrl-C as exit status 130 instead of a traceback.

    ``netkit.run`` answers Ctrl-C by cancelling ``main``, so its ``finally``
    blocks and ``async with`` exits (closing connections) still run; only
    the ``KeyboardInterrupt`` it raises afterwards is left to turn into a
    status.
    """
    try:
        return netkit.run(main)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run_server(main: Coroutine[Any, Any, Any], host: str, port: int) -> int:
    """``netkit.run(main)`` for a server: 0 once it has stopped, 1 with one line
    on stderr when it cannot listen on ``host:port`` (the port is taken, the
    address is not this machine's, the name is unknown).

    An ``OSError`` can only come from listening: once a server runs, a
    failing connection is that connection's business, never ``main``'s.
    """
    try:
        netkit.run(main)
    except OSError as exc:
        shown = f"[{host}]" if ":" in host else host
        print(f"cannot listen on {shown}:{port}: {os_error_reason(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


# The WebSocket echo servers' message limit: the Autobahn|Testsuite, which
# is run against them (docs/conformance.md), sends messages of up to 16 MiB.
ECHO_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


def add_websocket_options(parser: argparse.ArgumentParser, max_message_size: int | None = None) -> None:
    """``--max-message-size``, ``--open-timeout`` and ``--close-timeout``, with
    the defaults of ``netkit.websocket.Options`` (or ``max_message_size``)."""
    defaults = websocket.Options()
    size = defaults.max_message_size if max_message_size is None else max_message_size
    parser.add_argument("--max-message-size", type=int, default=size, help=f"largest message accepted, in bytes (default {size:,})")
    for name, handshake, seconds in (("open", "opening", defaults.open_timeout), ("close", "closing", defaults.close_timeout)):
        parser.add_argument(
            f"--{name}-timeout",
            type=float,
            default=seconds,
            metavar="SECONDS",
            help=f"the {handshake} handshake must be done within this time (default {seconds:g}; 0: no limit)",
        )


def websocket_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``add_websocket_options`` read, for ``serve`` or ``connect``."""
    return {
        "max_message_size": args.max_message_size,
        "open_timeout": args.open_timeout or None,  # netkit's options say None for "no limit"
        "close_timeout": args.close_timeout or None,
    }


def add_idle_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--idle-timeout SECONDS`` for a TCP server (``None`` when 0: never)."""
    parser.add_argument(
        "--idle-timeout",
        type=lambda text: float(text) or None,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=(
            f"close a connection that sends nothing for this long (default {DEFAULT_IDLE_TIMEOUT:g}: minutes of "
            "thinking at a keyboard, while a peer that vanished without closing is let go; 0: never)"
        ),
    )


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """A count and its noun: ``"1 byte"``, ``"1,000 bytes"``, ``"2 echoes"``
    (``nouns`` when adding an s is not the plural)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def stop_on_signals(stop: netkit.Event) -> None:
    """Set ``stop`` when SIGINT or SIGTERM arrives (Ctrl-C, ``kill``)."""
    loop = netkit.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def announce_and_wait(banner: str) -> None:
    """Print ``banner``, then wait for SIGINT or SIGTERM.

    The handlers go in first: a script that reads the banner and signals at
    once then gets a clean stop, not an interrupted one.
    """
    stop = netkit.Event()
    stop_on_signals(stop)
    print(banner, flush=True)
    await stop.wait()


def listening_on(server: netkit.Server) -> str:
    """``host:port`` of the server's first socket, for the "listening on" line."""
    host, port = server.sockets[0].getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
