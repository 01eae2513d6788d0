"""What every transport shares: its life cycle, reading on and off, and
write flow control.

A transport is ``OPEN`` until ``close()`` (then ``CLOSING`` while it flushes)
or ``abort()``/an error (straight to ``CLOSED``).  ``connection_made`` is
called once when it starts, and ``connection_lost`` exactly once at the end —
or neither, when it was closed before it started.  Its write buffer is counted
in ``_buffer_size``; above the high-water mark the protocol's
``pause_writing()`` is called, at the low-water mark ``resume_writing()``.
"""

from __future__ import annotations

import enum
import errno
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

    from ..loop import EventLoop

__all__ = ["BaseTransport", "TransportState", "DEFAULT_HIGH_WATER", "DEFAULT_LOW_WATER", "is_disconnect"]

# 64 KiB high / 16 KiB low water marks, as asyncio: enough to keep a fast
# link busy between two loop iterations without letting a slow reader make
# the process hold more than a few socket buffers' worth per connection.
DEFAULT_HIGH_WATER = 64 * 1024
DEFAULT_LOW_WATER = DEFAULT_HIGH_WATER // 4


# errno values with which a system call on a connected socket says that the
# peer or the network ended the connection -- news about the connection, not
# a bug.  Errors such as EBADF or EINVAL, which only a bug can cause, are not here.
DISCONNECT_ERRNOS = frozenset(
    {
        errno.EPIPE,  # send() after the peer closed or reset
        errno.ECONNRESET,  # the peer sent a reset
        errno.ECONNABORTED,  # the local stack gave up on the connection
        errno.ETIMEDOUT,  # retransmissions or keepalive probes went unanswered
        errno.ENOTCONN,  # shutdown()/getpeername() once a reset has torn the connection down
        errno.ESHUTDOWN,  # send() on a connection already shut down (BSD's word for EPIPE)
        # ICMP errors on an established connection: the route to the peer is gone.
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    }
)


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means the peer or the network ended the connection (to be
    reported as ``connection_lost(exc)`` alone), rather than a bug (to be reported
    to the loop's exception handler as well)."""
    return isinstance(exc, OSError) and (
        isinstance(exc, (ConnectionError, TimeoutError)) or exc.errno in DISCONNECT_ERRNOS
    )


def water_marks(high: int | None = None, low: int | None = None) -> tuple[int, int]:
    """``(high, low)`` for ``set_write_buffer_limits``: a missing mark follows
    from the other (low is a quarter of high), both missing give the defaults.
    Raises ``ValueError`` unless ``0 <= low <= high``."""
    if high is None:
        high = DEFAULT_HIGH_WATER if low is None else 4 * low
    if low is None:
        low = high // 4
    if not 0 <= low <= high:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


class TransportState(enum.Enum):
    """Where a transport is in its life."""

    OPEN = "open"  # reading and writing
    CLOSING = "closing"  # close() called: no more reads, flushing what is buffered
    CLOSED = "closed"  # the socket is closed or about to be; connection_lost is scheduled


class BaseTransport:
    """The common half of ``StreamTransport`` and ``DatagramTransport``.

    Subclasses set up a write buffer (``_buffer``, anything with ``clear()``
    and a truth value), call ``_init_transport`` from ``__init__``, and
    implement ``_read_ready``.
    """

    _buffer: Any

    def _init_transport(self, loop: EventLoop, sock: socket.socket, protocol: Any, waiter: Any) -> None:
        sock.setblocking(False)
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fileno = sock.fileno()
        self._protocol = protocol
        self._state = TransportState.OPEN
        self._reading = False  # registered with the loop for reading
        self._reading_paused = False  # pause_reading() in effect
        self._buffer_size = 0
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_LOW_WATER
        self._protocol_paused = False
        self._protocol_connected = False  # connection_made was called
        self._connection_lost_called = False
        loop.call_soon(self._start, waiter)

    def _start(self, waiter: Any) -> None:
        if self._state is not TransportState.OPEN:
            # Closed before it started (a server's abort_clients() right after
            # the accept): the protocol hears of neither connection_made nor
            # connection_lost.
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError("the connection closed before it was set up"))
            return
        self._protocol_connected = True
        try:
            self._protocol.connection_made(self)
        except BaseException as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self._protocol_failed(exc, "connection_made")
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            return
        if self._state is TransportState.OPEN and not self._reading_paused:
            self._start_reading()
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ state

    def get_protocol(self) -> Any:
        """The protocol this transport drives."""
        return self._protocol

    def is_closing(self) -> bool:
        """Whether ``close()`` or ``abort()`` was called, or the connection was lost."""
        return self._state is not TransportState.OPEN

    @property
    def state(self) -> TransportState:
        """The transport's state (``OPEN``, ``CLOSING``, ``CLOSED``)."""
        return self._state

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # A transport whose __init__ failed early has no socket of its own to close.
        if getattr(self, "_sock", None) is not None and self._state is not TransportState.CLOSED:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    # ---------------------------------------------------------------- reading

    def _read_ready(self) -> None:
        raise NotImplementedError

    def _may_read(self) -> bool:
        """Whether reading makes sense at all (a stream stops for good at EOF)."""
        return True

    def pause_reading(self) -> None:
        """Stop delivering data until ``resume_reading()``; the kernel's buffer then
        fills and pushes back on the peer (or, for datagrams, drops what overflows)."""
        if self._reading_paused or self._state is not TransportState.OPEN:
            return
        self._reading_paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        """Deliver data again after ``pause_reading()``."""
        if not self._reading_paused or self._state is not TransportState.OPEN:
            return
        self._reading_paused = False
        self._start_reading()

    def is_reading(self) -> bool:
        """Whether data is being read (not paused, not closing, no EOF yet)."""
        return self._reading

    def _start_reading(self) -> None:
        if not self._reading and self._may_read():
            self._loop.add_reader(self._fileno, self._read_ready)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fileno)

    # ----------------------------------------------------------- flow control

    def get_write_buffer_size(self) -> int:
        """Bytes accepted for sending but not yet taken by the kernel."""
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The ``(low, high)`` water marks."""
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks: ``pause_writing()`` above ``high``, ``resume_writing()``
        at ``low``.  Default high 64 KiB; default low a quarter of high.  They
        apply at once to what is already buffered."""
        self._high_water, self._low_water = high, low = water_marks(high, low)
        if self._buffer_size > high:
            self._pause_protocol()
        elif self._buffer_size <= low:
            self._resume_protocol()

    def _pause_protocol(self) -> None:
        if self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self._protocol.pause_writing()
        except BaseException as exc:
            self._report(exc, "protocol.pause_writing() failed")
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise

    def _resume_protocol(self) -> None:
        if not self._protocol_paused:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
        except BaseException as exc:
            self._report(exc, "protocol.resume_writing() failed")
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Stop reading, send what is buffered, then close the socket and call
        ``connection_lost(None)``."""
        if self._state is not TransportState.OPEN:
            return
        self._state = TransportState.CLOSING
        self._stop_reading()
        if not self._buffer:
            self._finish(None)

    def abort(self) -> None:
        """Close at once, dropping whatever is still buffered."""
        self._force_close(None)

    def _protocol_failed(self, exc: BaseException, method: str) -> None:
        # A bug in the protocol: report it and drop this connection, whose
        # state can no longer be trusted.  The loop and the other connections go on.
        self._report(exc, f"protocol.{method}() raised; closing the connection")
        self._force_close(exc)

    def _report(self, exc: BaseException, message: str) -> None:
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )

    def _force_close(self, exc: BaseException | None) -> None:
        if self._state is TransportState.CLOSED:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop.remove_writer(self._fileno)
        self._stop_reading()
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        self._state = TransportState.CLOSED
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._connection_lost_called:
            return
        self._connection_lost_called = True
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            sock = self._sock
            self._sock = None
            if sock is not None:
                sock.close()
            self._released()

    def _released(self) -> None:
        """The socket is closed and the protocol told; subclasses let go of the rest."""
