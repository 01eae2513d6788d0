"""A WebSocket client on netkit's async API: lines from stdin go out, messages
that arrive are printed.

    python examples/ws_client.py ws://127.0.0.1:9002/
    python examples/ws_client.py --host 127.0.0.1 --port 9002

Each line typed (or piped in) is sent as a text message; each message that
arrives is printed on its own line (a binary one as its size and first
bytes in hex).  End of input (Ctrl-D) closes the connection with 1000; the
server closing it ends the program too.  Status goes to stderr, so that
stdout holds only what arrived.
"""

from __future__ import annotations

import argparse
import sys
import threading

from _common import WEBSOCKET_ECHO_PORT, netkit
from netkit import ConnectionClosed, HandshakeError
from netkit import websocket


def read_stdin_in_thread(lines: netkit.Queue[str | None]) -> None:
    """Feed stdin's lines into ``lines`` from a thread (then ``None`` at the end).

    A blocking ``readline`` in a thread works on every platform, where
    ``add_reader`` on stdin does not (Windows consoles).  The thread is a
    daemon: a line being typed never keeps the program from exiting.
    """
    loop = netkit.get_running_loop()

    def pump() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
            loop.call_soon_threadsafe(lines.put_nowait, None)
        except RuntimeError:
            pass  # the loop is closed: the program is ending

    threading.Thread(target=pump, name="stdin", daemon=True).start()


def show(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    preview = message[:16].hex(" ")
    return f"<binary message, {len(message)} bytes: {preview}{' ...' if len(message) > 16 else ''}>"


async def print_messages(ws: websocket.WebSocket) -> None:
    """Print every message until the connection closes normally."""
    async for message in ws:
        print(show(message), flush=True)


async def send_lines(ws: websocket.WebSocket, lines: netkit.Queue[str | None]) -> None:
    """Send each line; close the connection at the end of input."""
    while (line := await lines.get()) is not None:
        try:
            await ws.send(line)
        except ConnectionClosed:
            return  # the server closed first; print_messages reports it
    await ws.close()


async def main(uri: str) -> int:
    try:
        ws = await websocket.connect(uri)
    except (OSError, HandshakeError, TimeoutError) as exc:
        print(f"could not connect to {uri}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {uri}; type lines to send them, Ctrl-D to close", file=sys.stderr)
    lines: netkit.Queue[str | None] = netkit.Queue()
    read_stdin_in_thread(lines)
    sender = netkit.create_task(send_lines(ws, lines))
    try:
        await print_messages(ws)
    except ConnectionClosed:
        pass  # reported below
    finally:
        sender.cancel()
    await ws.wait_closed()
    print(f"connection closed: code {ws.close_code} {ws.close_reason!r}", file=sys.stderr)
    return 0 if ws.close_code in (1000, 1001) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", nargs="?", help="ws://host:port/path (overrides --host/--port/--path)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=WEBSOCKET_ECHO_PORT, help=f"default {WEBSOCKET_ECHO_PORT}, the echo servers'")
    parser.add_argument("--path", default="/")
    args = parser.parse_args()
    target = args.uri or f"ws://{args.host}:{args.port}{args.path}"
    sys.exit(netkit.run(main(target)))
