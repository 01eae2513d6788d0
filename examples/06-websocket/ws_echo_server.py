"""A WebSocket echo server on netkit's async API.

    python examples/06-websocket/ws_echo_server.py --port 9002

Every text or binary message comes back as it was sent.  The message limit
is 16 MiB by default, large enough for the Autobahn|Testsuite's biggest
messages (``--max-message-size`` to change it); ``--open-timeout`` and
``--close-timeout`` bound the opening and closing handshakes (the library's
defaults unless given).  There is no idle timeout: the connection's
keepalive pings already close a peer that has gone, and a live WebSocket
that is quiet for a long time is normal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
from netkit import websocket  # noqa: E402
from examples._common import (  # noqa: E402
    ECHO_MAX_MESSAGE_SIZE,
    WEBSOCKET_ECHO_PORT,
    add_websocket_options,
    announce_and_wait,
    listening_on,
    run_server,
    websocket_options,
)


async def echo(ws: websocket.WebSocket) -> None:
    """Send every message back until the client closes."""
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int, options: dict[str, Any]) -> None:
    server = await websocket.serve(echo, host, port, **options)
    await announce_and_wait(f"websocket echo server listening on ws://{listening_on(server)}/")
    server.close()
    await server.wait_closed()
    print("server stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=WEBSOCKET_ECHO_PORT, help=f"default {WEBSOCKET_ECHO_PORT}; 0 picks a free port")
    add_websocket_options(parser, max_message_size=ECHO_MAX_MESSAGE_SIZE)
    args = parser.parse_args()
    sys.exit(run_server(main(args.host, args.port, websocket_options(args)), args.host, args.port))
