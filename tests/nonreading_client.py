"""A client that sends a lot and never reads, against a server in a subprocess.

An echo server that keeps reading while its replies cannot be sent buffers
them all: its memory grows with what the client sends.  One that honours
flow control stops reading, the kernel buffers on both sides fill, and the
client's sends stop going through.  ``flood`` measures both: how much the
client got to send, and how much the server's resident memory grew.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from dataclasses import dataclass

# 64 MiB: several times what the kernel buffers between two loopback sockets
# can hold (this machine's tcp_rmem and tcp_wmem maxima are 32 MiB and 4 MiB),
# so a server that stops reading makes the client stall well before the end.
FLOOD_BYTES = 64 * 1024 * 1024

# The client's receive buffer: small, so the echoes pile up in the server
# rather than in the client's kernel (Linux doubles it and rounds it up to
# its minimum of a few KiB).
SMALL_RECEIVE_BUFFER = 4096

# Seconds without a send going through before the client concludes that the
# server stopped reading.  Only the test's length depends on it: a server
# that reads everything never keeps a send waiting that long, and for one
# that stopped reading the wait is over either way.
STALL_SECONDS = 1.0

# How much a server's resident memory may grow while it is flooded: far
# above what one that honours flow control holds (its transport's write
# buffer, 64 KiB past the high-water mark, plus one read of 256 KiB, plus
# the interpreter's own growth), far below the tens of MiB that one
# buffering every echo holds.
RSS_GROWTH_BOUND = 24 * 1024 * 1024


def resident_memory(pid: int) -> int:
    """``VmRSS`` of process ``pid``, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


@dataclass
class FloodResult:
    sent: int  # bytes the client got to send
    rss_growth: int  # bytes the server's resident memory grew by meanwhile

    def check_bounded(self) -> None:
        """The server stopped reading and held its memory."""
        mib = 1024 * 1024
        assert self.rss_growth < RSS_GROWTH_BOUND, (
            f"the server grew by {self.rss_growth / mib:.1f} MiB while the client sent {self.sent / mib:.1f} MiB without reading"
        )
        assert self.sent < FLOOD_BYTES, "the server read all 64 MiB although the client read none of its answers"


def connect_small_window(port: int) -> socket.socket:
    """A loopback connection whose receive buffer holds only a few KiB."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RECEIVE_BUFFER)  # before connect: it sets the window
    sock.connect(("127.0.0.1", port))
    return sock


def flood(pid: int, sock: socket.socket, unit: bytes) -> FloodResult:
    """Send ``unit`` over and over on ``sock`` (up to ``FLOOD_BYTES``) without
    reading, until done, stalled or cut off; then measure server ``pid``'s growth."""
    before = resident_memory(pid)
    sock.settimeout(STALL_SECONDS)
    sent = 0
    view = memoryview(unit)
    try:
        while sent < FLOOD_BYTES:
            offset = 0
            while offset < len(view):  # sendall() would hide how much went
                offset += sock.send(view[offset:])
            sent += len(view)
    except TimeoutError:
        pass  # stalled: the server is not reading
    except ConnectionError:
        pass  # the server closed the connection: it is not reading either
    return FloodResult(sent, resident_memory(pid) - before)


def websocket_handshake(sock: socket.socket, host_port: str, path: str = "/") -> None:
    """The client's side of the opening handshake, by hand (RFC 6455 §4.1)."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the head is consumed
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head


def masked_binary_frame(payload: bytes) -> bytes:
    """One client-to-server binary frame (RFC 6455 §5.2).  The all-zero
    masking key leaves the payload as it is; a server cannot tell it from a
    random one, which is all §5.3 asks of it."""
    assert 126 <= len(payload) < 1 << 16
    return struct.pack("!BBH", 0x82, 0x80 | 126, len(payload)) + b"\0\0\0\0" + payload


def length_prefixed_frame(payload: bytes) -> bytes:
    """One frame of netkit's framed echo: a 4-byte big-endian length, then the payload."""
    return struct.pack("!I", len(payload)) + payload
