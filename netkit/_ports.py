"""The default ports of netkit's command line and examples: one per protocol.

Every server and every client that talks to it take their default from
here, so that ``netkit echo --framed`` and ``netkit send --framed`` (or
``examples/05-framing/framed_echo_server.py`` and
``examples/05-framing/framed_echo_client.py``) meet without a ``--port``.
Protocols that share a transport get different ports, so that any of the
servers can run side by side.

The chat server's ports are its own: 8765 for the page and its WebSocket,
8766 for terminal clients (``DEFAULT_HTTP_PORT`` and ``DEFAULT_TCP_PORT`` in
:mod:`netkit.chat.server`); none of these is either of them.

All are above the privileged range (below 1024, which needs root to bind)
and below Linux's ephemeral range (32768 to 60999), from which the kernel
picks the local port of outgoing connections, so the kernel never hands
them out on its own.
"""

from __future__ import annotations

__all__ = ["ECHO_PORT", "FRAMED_ECHO_PORT", "WEBSOCKET_ECHO_PORT", "HALF_CLOSE_PORT"]

# The plain echo, on TCP and on UDP alike: TCP and UDP ports are separate
# spaces, and the Internet's own echo service (RFC 862) is port 7 on both.
ECHO_PORT = 9000

# The length-prefixed (framed) echo: TCP, so a port of its own.
FRAMED_ECHO_PORT = 9001

# The WebSocket echo servers (async and callback API) and clients.
WEBSOCKET_ECHO_PORT = 9002

# examples/04-tcp-udp/half_close.py when its server and client run apart.
HALF_CLOSE_PORT = 9003
