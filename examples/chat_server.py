"""netkit's chat server: a browser page, WebSockets and terminal clients in one room.

    python examples/chat_server.py              # then open http://127.0.0.1:8765/
    python -m netkit chat-client --nick ann     # a terminal client, in another shell

One process, one loop, three doors: ``GET /`` serves the page, ``/ws`` on the
same port upgrades to a WebSocket, and port 8766 speaks length-prefixed JSON
frames for terminal clients.  The server itself is ``netkit/chat/``;
docs/chat.md walks through it.  ``--http-port 0 --tcp-port 0`` picks free
ports; ``--origin https://chat.example.com`` lets pages from another origin
use the WebSocket; ``--help`` lists the limits and timeouts.  Ctrl-C (or
SIGTERM) closes every client (WebSocket code 1001) and exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's root: its netkit, and examples/_common.py
from netkit.chat.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
