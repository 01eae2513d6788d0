"""A WebSocket client on netkit's async API: lines from stdin go out, messages
that arrive are printed.

    python examples/06-websocket/ws_client.py ws://127.0.0.1:9002/
    python examples/06-websocket/ws_client.py --host 127.0.0.1 --port 9002
    printf 'one\\ntwo\\nthree\\n' | python examples/06-websocket/ws_client.py

Each line typed (or piped in) is sent as a text message; each message that
arrives is printed on its own line (a binary one as its size and first
bytes in hex).  At the end of input (Ctrl-D) the client waits until the
server has been quiet for ``--linger`` seconds, then closes the connection
with 1000; the server closing it ends the program too.  Status goes to
stderr, so that stdout holds only what arrived.  Ctrl-C ends it with
status 130.

Reading stdin blocks, so it happens on a thread, which hands the lines to
the loop: netkit's own reader (netkit/_stdin.py, the one ``python -m netkit
ws`` uses) reads bytes with ``os.read`` on a daemon thread, so that no input
can make it fail and nothing waits for it at exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402
from netkit import ConnectionClosed, HandshakeError, LimitOverrunError  # noqa: E402
from netkit import websocket  # noqa: E402
from netkit._stdin import StdinLines  # noqa: E402
from examples._common import WEBSOCKET_ECHO_PORT, add_websocket_options, run_client, websocket_options  # noqa: E402

# Seconds of quiet from the server after the end of input before closing,
# as `netkit ws --linger`: echoes on a local network come back in
# milliseconds, and a second still feels immediate to a person.
DEFAULT_LINGER = 1.0


def show(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    preview = message[:16].hex(" ")
    return f"<binary message, {len(message)} bytes: {preview}{' ...' if len(message) > 16 else ''}>"


async def print_messages(ws: websocket.WebSocket, heard: netkit.Event) -> None:
    """Print every message until the connection closes normally."""
    async for message in ws:
        heard.set()
        print(show(message), flush=True)


async def send_lines(ws: websocket.WebSocket, lines: StdinLines, linger: float, heard: netkit.Event) -> None:
    """Send each line; at the end of input, close once the server is quiet."""
    encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
    try:
        while (line := await lines.readline()) is not None:
            # Text messages: bytes the terminal's encoding cannot read become U+FFFD.
            await ws.send(line.decode(encoding, "replace").rstrip("\r\n"))
    except LimitOverrunError as exc:
        print(f"{exc}: input ends there", file=sys.stderr, flush=True)
    except ConnectionClosed:
        return  # the server closed first; main() reports it
    # A WebSocket has no half-close: closing now would also cut off the
    # answers still on their way (a server answers a close at once, and
    # sends nothing after it).  So wait until the server has said nothing
    # for `linger` seconds, as `nc -q` does.
    while True:
        heard.clear()
        try:
            await netkit.wait_for(heard.wait(), linger)
        except TimeoutError:
            break
    await ws.close()


async def main(uri: str, linger: float, options: dict[str, Any]) -> int:
    try:
        ws = await websocket.connect(uri, **options)
    except TimeoutError as exc:
        if exc.errno is not None:  # the system's ETIMEDOUT, while connecting
            print(f"could not connect to {uri}: {exc}", file=sys.stderr)
        else:
            print(f"could not connect to {uri}: no answer to the opening handshake within {options['open_timeout']:g} s", file=sys.stderr)
        return 1
    except (OSError, HandshakeError) as exc:
        print(f"could not connect to {uri}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {uri}; type lines to send them, Ctrl-D to close", file=sys.stderr)
    heard = netkit.Event()
    sender = netkit.create_task(send_lines(ws, StdinLines(netkit.get_running_loop()), linger, heard))
    try:
        await print_messages(ws, heard)
    except ConnectionClosed:
        pass  # reported below
    finally:
        sender.cancel()
        await ws.close()  # on every way out, Ctrl-C included; nothing to do if already closed
    print(f"connection closed: code {ws.close_code} {ws.close_reason!r}", file=sys.stderr)
    return 0 if ws.close_code in (1000, 1001) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", nargs="?", help="ws://host:port/path (overrides --host/--port/--path)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=WEBSOCKET_ECHO_PORT, help=f"default {WEBSOCKET_ECHO_PORT}, the echo servers'")
    parser.add_argument("--path", default="/")
    parser.add_argument(
        "--linger",
        type=float,
        default=DEFAULT_LINGER,
        help=f"after the end of input, close once the server has been quiet this many seconds (default {DEFAULT_LINGER:g})",
    )
    add_websocket_options(parser)
    args = parser.parse_args()
    target = args.uri or f"ws://{args.host}:{args.port}{args.path}"
    sys.exit(run_client(main(target, args.linger, websocket_options(args))))
