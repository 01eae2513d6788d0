"""``DatagramTransport``: a UDP (or Unix datagram) socket driven by the loop.

Each readiness event drains up to ``_READS_PER_EVENT`` datagrams into one
reusable buffer, so a busy socket costs one ``select`` per batch rather than
per datagram, and no 256 KiB buffer is allocated per datagram.  Sends go out
at once; only when the kernel's buffer is full are datagrams queued, within
the high-water mark (``pause_writing``) like stream transports, and never
beyond ``_QUEUE_LIMIT_FACTOR`` times it.  Each queued datagram counts as its
payload plus ``DATAGRAM_OVERHEAD``, so empty datagrams fill the queue too.
"""

from __future__ import annotations

import collections
import errno
import logging
import socket
from typing import TYPE_CHECKING, Any

from ..protocols import DatagramProtocol
from .base import BaseTransport, TransportState

if TYPE_CHECKING:
    from ..loop import EventLoop

__all__ = ["DatagramTransport"]

logger = logging.getLogger("netkit")

# The largest UDP payload over IPv4 is 65,507 bytes (65,535 minus the IP and
# UDP headers); 64 KiB holds any datagram a socket without jumbograms receives.
MAX_DATAGRAM = 65536

# Datagrams read per readiness event before going back to the loop: enough to
# amortise select(), few enough that one busy socket cannot starve the others.
_READS_PER_EVENT = 64

# What a queued datagram costs beyond its payload, counted in the send queue's
# size so that empty or tiny datagrams cannot pile up as "0 bytes": the queue
# entry (a 2-tuple, 56 bytes, plus its 8-byte deque slot), the bytes object's
# header (33 bytes) and the destination address (an (host, port) tuple, 56
# bytes) -- 153 bytes on 64-bit CPython (sys.getsizeof), rounded up.
DATAGRAM_OVERHEAD = 160

# The send queue holds at most this many times the high-water mark: room for a
# protocol that reacts to pause_writing() a few sends late.  Past it the
# protocol is ignoring flow control, and the datagram is dropped (as a full
# kernel queue would drop it) and reported to error_received as ENOBUFS.
_QUEUE_LIMIT_FACTOR = 4


class DatagramTransport(BaseTransport):
    """A datagram socket connected to a ``DatagramProtocol``."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        protocol: DatagramProtocol,
        *,
        address: Any = None,
        waiter: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._address = address  # the peer of a connected socket, else None
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._recv_buffer = bytearray(MAX_DATAGRAM)
        self._recv_view = memoryview(self._recv_buffer)
        self._extra: dict[str, Any] = {"socket": sock}
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        self._extra["peername"] = address
        if extra:
            self._extra.update(extra)
        self._init_transport(loop, sock, protocol, waiter)

    # ------------------------------------------------------------------- info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"sockname"``, ``"peername"`` (connected sockets) or ``"socket"``."""
        return self._extra.get(name, default)

    def __repr__(self) -> str:
        return f"<DatagramTransport {self._state.value} sockname={self._extra.get('sockname')}>"

    # ---------------------------------------------------------------- reading

    def _read_ready(self) -> None:
        sock = self._sock
        view = self._recv_view
        for _ in range(_READS_PER_EVENT):
            try:
                size, addr = sock.recvfrom_into(self._recv_buffer)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # On a connected socket an ICMP error (port unreachable) arrives
                # as an error on the next receive: the protocol hears of it.
                self._error_received(exc)
                return
            try:
                self._protocol.datagram_received(bytes(view[:size]), addr)
            except BaseException as exc:
                self._report(exc, "protocol.datagram_received() raised")
                if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    raise
            if self._sock is None or not self._reading:
                return  # closed or paused by the protocol

    # ---------------------------------------------------------------- sending

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (or to the connected peer when ``addr`` is ``None``)."""
        if self._state is not TransportState.OPEN:
            logger.warning("sendto() on a closed datagram transport %r: datagram dropped", self)
            return
        if addr is not None and self._address is not None and addr != self._address:
            raise ValueError(f"this endpoint is connected to {self._address!r}, not {addr!r}")
        if addr is None and self._address is None:
            raise ValueError("sendto() needs an address on an unconnected endpoint")
        if not self._buffer:
            try:
                if self._address is not None:
                    self._sock.send(data)  # type: ignore[union-attr]
                else:
                    self._sock.sendto(data, addr)  # type: ignore[union-attr]
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._fileno, self._write_ready)
            except OSError as exc:
                self._error_received(exc)
                return
        self._buffer_append(bytes(data), addr)

    def get_write_buffer_size(self) -> int:
        """Bytes the send queue holds: each queued datagram's payload plus a fixed
        ``DATAGRAM_OVERHEAD`` (160 bytes) for the memory it costs beyond its payload."""
        return self._buffer_size

    def _buffer_append(self, data: bytes, addr: Any) -> None:
        # The one place that counts queued bytes, as for stream transports.
        cost = len(data) + DATAGRAM_OVERHEAD
        limit = self._high_water * _QUEUE_LIMIT_FACTOR
        if self._buffer_size + cost > limit:
            self._error_received(
                OSError(
                    errno.ENOBUFS,
                    f"datagram of {len(data)} bytes dropped: the send queue holds {len(self._buffer)} datagrams, "
                    f"{self._buffer_size} bytes with {DATAGRAM_OVERHEAD} per datagram for its bookkeeping; "
                    f"its limit is {limit} ({_QUEUE_LIMIT_FACTOR} x the high-water mark)",
                )
            )
            return
        self._buffer.append((data, addr))
        self._buffer_size += cost
        if self._buffer_size > self._high_water:
            self._pause_protocol()

    def _write_ready(self) -> None:
        sock = self._sock
        while self._buffer and sock is not None:
            data, addr = self._buffer[0]
            try:
                if self._address is not None:
                    sock.send(data)
                else:
                    sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._buffer.popleft()
                self._buffer_size -= len(data) + DATAGRAM_OVERHEAD
                self._error_received(exc)
                continue
            self._buffer.popleft()
            self._buffer_size -= len(data) + DATAGRAM_OVERHEAD
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._resume_protocol()
        if not self._buffer:
            self._loop.remove_writer(self._fileno)
            if self._state is TransportState.CLOSING:
                self._finish(None)

    def _error_received(self, exc: OSError) -> None:
        try:
            self._protocol.error_received(exc)
        except BaseException as error:
            self._report(error, "protocol.error_received() raised")
            if isinstance(error, (SystemExit, KeyboardInterrupt)):
                raise
