"""A WebSocket echo server on netkit's callback API: the fastest path.

    python examples/06-websocket/ws_callback_echo.py --port 9002

The handler's methods are called by the connection as events happen;
``ws.send()`` never blocks.  When the peer reads slower than it sends, the
echoes sent from ``on_message`` pile up in the send buffer; above
``write_limit`` the connection stops reading from that peer until the buffer
drains, so a slow client cannot make the server buffer without bound.  (Code
that sends on its own, not in answer to a message, waits for
``on_resume_writing`` instead.)
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


class Echo(websocket.WebSocketHandler):
    """Sends every message back; the connection stops reading while the echoes pile up."""

    def on_message(self, ws: websocket.WebSocketProtocol, message: str | bytes) -> None:
        ws.send(message)


async def main(host: str, port: int, options: dict[str, Any]) -> None:
    server = await websocket.serve(Echo, host, port, **options)
    await announce_and_wait(f"websocket callback echo server listening on ws://{listening_on(server)}/")
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
