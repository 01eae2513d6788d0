"""A WebSocket echo server on netkit's async API.

    python examples/ws_echo_server.py --port 9002

Every text or binary message comes back as it was sent.  The message limit
is 16 MiB by default, large enough for the Autobahn|Testsuite's biggest
messages (``--max-message-size`` to change it).
"""

from __future__ import annotations

import argparse
import sys

from _common import WEBSOCKET_ECHO_PORT, announce_and_wait, listening_on, netkit, run_server
from netkit import websocket


async def echo(ws: websocket.WebSocket) -> None:
    """Send every message back until the client closes."""
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int, max_message_size: int) -> None:
    server = await websocket.serve(echo, host, port, max_message_size=max_message_size)
    await announce_and_wait(f"websocket echo server listening on ws://{listening_on(server)}/")
    server.close()
    await server.wait_closed()
    print("server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=WEBSOCKET_ECHO_PORT, help=f"default {WEBSOCKET_ECHO_PORT}; 0 picks a free port")
    parser.add_argument("--max-message-size", type=int, default=16 * 1024 * 1024)
    args = parser.parse_args()
    sys.exit(run_server(main(args.host, args.port, args.max_message_size), args.host, args.port))
