"""RFC 6455 WebSockets.

The modules here are sans-I/O: they turn bytes into events and calls into
bytes, and never touch a socket or a loop.
"""

from __future__ import annotations

from .handshake import ClientHandshake, HandshakeOutcome, ServerHandshake, accept_key, generate_key
from .uri import WebSocketURI, parse_uri

__all__ = [
    "ClientHandshake",
    "HandshakeOutcome",
    "ServerHandshake",
    "WebSocketURI",
    "accept_key",
    "generate_key",
    "parse_uri",
]
