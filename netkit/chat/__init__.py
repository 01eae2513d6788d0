"""netkit's chat server: one room reachable from a browser, WebSocket clients
and terminal clients over framed TCP.

The core is sans-I/O (:mod:`.protocol` for the JSON messages, :mod:`.room` for
rooms, nicknames and limits, :mod:`.origins` for which pages may use the
WebSocket); :mod:`.server` puts it on netkit's loop and :mod:`.page` is the
browser page it serves.  Run it with ``python -m netkit chat`` or
``python examples/chat_server.py``; from code, ``ChatServer`` (``async with
ChatServer(...)``) or ``run_chat_server(...)``.
"""

from __future__ import annotations

from .protocol import ChatError, ErrorCode
from .room import ChatHub, ChatLimits, CloseReason, HubStats, Member
from .server import ChatServer, run_chat_server

__all__ = [
    "ChatError",
    "ErrorCode",
    "ChatHub",
    "ChatLimits",
    "CloseReason",
    "HubStats",
    "Member",
    "ChatServer",
    "run_chat_server",
]
