"""RFC 6455 WebSockets.

The modules here are sans-I/O: they turn bytes into events and calls into
bytes, and never touch a socket or a loop.
"""

from __future__ import annotations

from .frames import Frame, FrameParser, Opcode, apply_mask, encode_header, serialize_frame
from .handshake import ClientHandshake, HandshakeOutcome, ServerHandshake, accept_key, generate_key
from .uri import WebSocketURI, parse_uri

__all__ = [
    "Frame",
    "FrameParser",
    "Opcode",
    "apply_mask",
    "encode_header",
    "serialize_frame",
    "ClientHandshake",
    "HandshakeOutcome",
    "ServerHandshake",
    "WebSocketURI",
    "accept_key",
    "generate_key",
    "parse_uri",
]
