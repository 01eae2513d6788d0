"""RFC 6455 WebSockets.

The modules here are sans-I/O: they turn bytes into events and calls into
bytes, and never touch a socket or a loop.

* :mod:`.uri`: ``ws://`` and ``wss://`` URIs;
* :mod:`.handshake`: the opening handshake, for servers and clients;
* :mod:`.frames`: the frame codec;
* :mod:`.connection` and :mod:`.events`: the connection state machine and
  what it reports.
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
]
