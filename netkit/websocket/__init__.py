"""RFC 6455 WebSockets.

The sans-I/O core turns bytes into events and calls into bytes, and never
touches a socket or a loop:

* :mod:`.uri`: ``ws://`` and ``wss://`` URIs;
* :mod:`.handshake`: the opening handshake, for servers and clients;
* :mod:`.frames`: the frame codec;
* :mod:`.connection` and :mod:`.events`: the connection state machine and
  what it reports.

On netkit's loop, built on that core:

* :func:`serve` / :func:`connect` (and their Unix variants): servers and
  clients with the async API (:class:`WebSocket`) or the callback API
  (:class:`WebSocketHandler`, :class:`WebSocketProtocol`);
* :func:`broadcast`: fan-out that skips slow connections.
"""

from __future__ import annotations

from .connection import Close, Connection, Role, State, is_valid_close_code
from .events import (
    BinaryChunk,
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextChunk,
    TextMessage,
)
from .frames import Frame, FrameParser, Opcode, apply_mask, encode_header, serialize_frame
from .handshake import ClientHandshake, HandshakeOutcome, ServerHandshake, accept_key, generate_key
from .uri import WebSocketURI, parse_uri

from .async_api import WebSocket  # noqa: E402  (the loop layer comes after the core)
from .client import ClientProtocol, connect, unix_connect  # noqa: E402
from .protocol import Options, WebSocketHandler, WebSocketProtocol  # noqa: E402
from .server import ServerProtocol, WebSocketServer, broadcast, serve, unix_serve  # noqa: E402

__all__ = [
    # connection
    "Close",
    "Connection",
    "Role",
    "State",
    "is_valid_close_code",
    # events
    "BinaryChunk",
    "BinaryMessage",
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "Ping",
    "Pong",
    "TextChunk",
    "TextMessage",
    # frames
    "Frame",
    "FrameParser",
    "Opcode",
    "apply_mask",
    "encode_header",
    "serialize_frame",
    # handshake
    "ClientHandshake",
    "HandshakeOutcome",
    "ServerHandshake",
    "accept_key",
    "generate_key",
    # uri
    "WebSocketURI",
    "parse_uri",
    # on the loop
    "serve",
    "unix_serve",
    "connect",
    "unix_connect",
    "broadcast",
    "WebSocket",
    "WebSocketHandler",
    "WebSocketProtocol",
    "WebSocketServer",
    "ServerProtocol",
    "ClientProtocol",
    "Options",
]
