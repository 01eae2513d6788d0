"""Transports: sockets connected to protocols by the loop.

``StreamTransport`` (TCP and Unix stream sockets), ``DatagramTransport``
(UDP and Unix datagram sockets), ``Server`` (listening sockets), and the
coroutines that open them.
"""

from .datagram import DatagramTransport
from .server import Server
from .stream import StreamTransport, TransportState

__all__ = ["StreamTransport", "DatagramTransport", "Server", "TransportState"]
