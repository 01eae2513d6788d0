"""RFC 6455 WebSockets.

The modules here are sans-I/O: they turn bytes into events and calls into
bytes, and never touch a socket or a loop.
"""

from __future__ import annotations

from .uri import WebSocketURI, parse_uri

__all__ = ["WebSocketURI", "parse_uri"]
