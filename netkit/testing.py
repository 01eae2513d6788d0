"""Deterministic tools for testing code written with netkit.

``TestLoop`` is an event loop whose clock moves only when told to (or, with
``autojump``, jumps straight to the next timer whenever every task is
waiting), so code with 30-second timeouts tests in milliseconds and never
depends on how fast the machine is.  ``RecordingTransport`` and
``transport_pair`` test protocols without sockets.
"""

from __future__ import annotations

import collections
import heapq
import logging
import selectors
from typing import Any, Iterable

from . import _runtime
from .loop import EventLoop
from .protocols import Protocol
from .transports.base import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, water_marks

__all__ = ["TestLoop", "RecordingTransport", "MemoryTransport", "transport_pair"]


class TestLoop(EventLoop):
    """An ``EventLoop`` on a virtual clock.

    ``advance(seconds)`` moves the clock; timers that come due run on the next
    iteration.  With ``autojump=True``, whenever nothing is ready to run and no
    I/O arrives within ``autojump_threshold`` real seconds, the clock jumps to
    the next timer — as if the loop had slept, without the wait.  Real I/O
    (sockets, threads posting with ``call_soon_threadsafe``) still works.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, start: float = 0.0, autojump: bool = False, autojump_threshold: float = 0.0) -> None:
        self._virtual_now = float(start)
        self.autojump = autojump
        self.autojump_threshold = autojump_threshold
        super().__init__()

    def time(self) -> float:
        """The virtual clock: ``start`` plus every ``advance()`` and autojump so far."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError("time cannot go backward")
        self._virtual_now += seconds

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # No timer is pending: only real I/O can make progress, so wait for it.
            return self._selector.select(None)
        if timeout <= 0:
            return self._selector.select(0)
        # A timer bounds the wait, but sleeping would not move a virtual clock.
        if not self.autojump:
            return self._selector.select(0)
        events = self._selector.select(self.autojump_threshold)
        if not events:
            # Jump to the next timer that will run, never to a cancelled one
            # (a finished timeout block's deadline is nobody's business).
            self._drop_cancelled_head()
            if self._timers and self._timers[0][0] > self._virtual_now:
                self._virtual_now = self._timers[0][0]
        return events

    def _drop_cancelled_head(self) -> None:
        timers = self._timers
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1


# --------------------------------------------------------------------------
# Transport doubles: test a protocol without sockets.
#
# ``RecordingTransport`` stands in for a connection whose other end is the
# test itself: what the protocol writes is recorded, and the test feeds data,
# EOF and connection loss in.  ``transport_pair`` connects two protocols to
# each other in memory, with a loop in between, for tests of both ends at once.

_logger = logging.getLogger("netkit")


class _FakeTransport:
    """What both doubles share: the transport interface around one protocol,
    reading flags, write-buffer water marks and ``pause_writing`` calls."""

    def __init__(self, protocol: Protocol | None, extra: dict[str, Any] | None) -> None:
        self._protocol: Any = protocol
        self._extra: dict[str, Any] = {"peername": None, "sockname": None, "socket": None}
        if extra:
            self._extra.update(extra)
        self._reading = True
        self._closing = False
        self._eof_written = False
        self._lost = False
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_LOW_WATER
        self._buffered = 0
        self._protocol_paused = False
        self._warned = False
        self.pause_reading_calls = 0
        self.resume_reading_calls = 0

    # ------------------------------------------------------------ interface

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peername``, ``sockname`` (``None`` unless given in ``extra``) and the rest of ``extra``."""
        return self._extra.get(name, default)

    def get_protocol(self) -> Any:
        """The protocol this transport drives."""
        return self._protocol

    def set_protocol(self, protocol: Protocol) -> None:
        """Hand the connection to another protocol."""
        self._protocol = protocol

    def is_closing(self) -> bool:
        """Whether ``close()``/``abort()`` was called or the connection was lost."""
        return self._closing or self._lost

    def can_write_eof(self) -> bool:
        """Half-close is supported, as on a TCP socket."""
        return True

    def pause_reading(self) -> None:
        """Stop delivering data to the protocol until ``resume_reading()``."""
        if self._reading and not self.is_closing():
            self._reading = False
            self.pause_reading_calls += 1

    def resume_reading(self) -> None:
        """Deliver data to the protocol again."""
        if not self._reading and not self.is_closing():
            self._reading = True
            self.resume_reading_calls += 1
            self._reading_resumed()

    def is_reading(self) -> bool:
        """Whether data reaches the protocol (not paused, not closing)."""
        return self._reading and not self.is_closing()

    def get_write_buffer_size(self) -> int:
        """Bytes counted as not yet sent."""
        return self._buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The ``(low, high)`` water marks."""
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """``pause_writing()`` above ``high``, ``resume_writing()`` at ``low`` (defaults as real transports)."""
        self._high_water, self._low_water = water_marks(high, low)
        self._check_water_marks()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several buffers in order (through ``write``, so counted the same way)."""
        self.write(b"".join(bytes(chunk) for chunk in chunks))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError  # each double says where written bytes go

    # -------------------------------------------------------------- helpers

    def _refuse_write(self) -> bool:
        """Whether a write must be dropped (closing) or refused (after write_eof)."""
        if self.is_closing():
            if not self._warned:
                self._warned = True
                _logger.warning("write() on a closing or closed transport %r: data dropped", self)
            return True
        if self._eof_written:
            raise RuntimeError("cannot write after write_eof()")
        return False

    def _set_buffered(self, size: int) -> None:
        self._buffered = size
        self._check_water_marks()

    def _check_water_marks(self) -> None:
        if not self._protocol_paused and self._buffered > self._high_water:
            self._protocol_paused = True
            self._protocol.pause_writing()
        elif self._protocol_paused and self._buffered <= self._low_water:
            self._protocol_paused = False
            self._protocol.resume_writing()

    def _reading_resumed(self) -> None:
        """Called when reading resumes: deliver what was held back."""

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._protocol.connection_lost(exc)


class RecordingTransport(_FakeTransport):
    """A transport whose other end is the test: it records what the protocol
    does and lets the test play the peer.

    Bytes written accumulate in ``written`` (``clear()`` empties it);
    ``eof_written``, ``closed`` and ``aborted`` tell whether ``write_eof()``,
    ``close()`` and ``abort()`` were called; ``is_reading()`` and the
    ``pause_reading_calls``/``resume_reading_calls`` counters show read flow
    control.  The test plays the peer with ``feed(data)``, ``feed_eof()`` and
    ``lose(exc)``; data fed while reading is paused is held back and delivered
    on ``resume_reading()``, as a real transport leaves it in the kernel.
    ``set_write_buffer_size(n)`` pretends ``n`` bytes are stuck in the buffer,
    which calls ``pause_writing``/``resume_writing`` across the water marks.

    ``connection_lost`` is called by ``lose()``; with a ``loop``, ``close()``
    and ``abort()`` also deliver it on the loop's next iteration, as a real
    transport does, so code awaiting the close (``StreamWriter.wait_closed``)
    completes.  Passing a protocol calls its ``connection_made`` at once.
    """

    def __init__(
        self,
        protocol: Protocol | None = None,
        *,
        loop: EventLoop | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(protocol, extra)
        self._loop = loop
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self._held: collections.deque[bytes] = collections.deque()
        self._eof_held = False
        if protocol is not None:
            protocol.connection_made(self)

    def __repr__(self) -> str:
        state = "lost" if self._lost else "closing" if self._closing else "open"
        return f"<RecordingTransport {state} written={len(self.written)}>"

    def connect(self, protocol: Protocol) -> None:
        """Attach ``protocol`` and call its ``connection_made``."""
        self._protocol = protocol
        protocol.connection_made(self)

    @property
    def eof_written(self) -> bool:
        """Whether the protocol half-closed with ``write_eof()``."""
        return self._eof_written

    # ------------------------------------------------------ what the protocol does

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Record ``data`` in ``written``."""
        if self._refuse_write():
            return
        self.written += data

    def write_eof(self) -> None:
        """Record the half-close; later writes raise ``RuntimeError``."""
        if not self.is_closing():
            self._eof_written = True

    def clear(self) -> None:
        """Forget what was written so far."""
        self.written.clear()

    def close(self) -> None:
        """Record the close (and, with a loop, deliver ``connection_lost(None)`` soon)."""
        if self.is_closing():
            return
        self.closed = True
        self._closing = True
        if self._loop is not None:
            self._loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        """Record the abort and drop what is counted as buffered."""
        if self._lost:
            return
        self.aborted = True
        self._closing = True
        self._buffered = 0
        if self._loop is not None:
            self._loop.call_soon(self._connection_lost, None)

    def set_write_buffer_size(self, size: int) -> None:
        """Pretend ``size`` bytes are waiting to be sent; crosses the water marks
        like a real buffer (``pause_writing`` above high, ``resume_writing`` at low)."""
        if size < 0:
            raise ValueError("a buffer size cannot be negative")
        self._set_buffered(size)

    # --------------------------------------------------------- the test as peer

    def feed(self, data: bytes) -> None:
        """The peer sent ``data``: ``data_received`` now, or on ``resume_reading()``
        if paused; dropped once the transport is closing, as a real one stops reading."""
        if self.is_closing() or not data:
            return
        if self._reading:
            self._protocol.data_received(bytes(data))
        else:
            self._held.append(bytes(data))

    def feed_eof(self) -> None:
        """The peer half-closed: ``eof_received``; a false return closes, as a real transport does."""
        if self.is_closing():
            return
        if self._reading:
            self._deliver_eof()
        else:
            self._eof_held = True

    def lose(self, exc: BaseException | None = None) -> None:
        """The connection ended (``exc``: why, e.g. ``ConnectionResetError()``):
        ``connection_lost(exc)``, at most once."""
        self._connection_lost(exc)

    def _deliver_eof(self) -> None:
        if not self._protocol.eof_received():
            self.close()

    def _reading_resumed(self) -> None:
        while self._held and self._reading and not self.is_closing():
            self._protocol.data_received(self._held.popleft())
        if self._eof_held and self._reading and not self._held:
            self._eof_held = False
            self._deliver_eof()


class MemoryTransport(_FakeTransport):
    """One end of an in-memory connection made by ``transport_pair``.

    Written bytes reach the peer's ``data_received`` on a later loop
    iteration (never re-entrantly), in order but without write boundaries.
    Bytes the peer has not taken yet (its reading is paused, or the loop has
    not run) count in this end's write buffer, so ``pause_writing`` and
    ``resume_writing`` follow the water marks.  ``write_eof()`` becomes the
    peer's ``eof_received`` once the bytes before it are delivered;
    ``close()`` flushes, sends EOF, then calls ``connection_lost(None)``;
    ``abort()`` drops what is buffered and the peer sees a reset
    (``connection_lost(ConnectionResetError)``), as does a write that reaches
    a peer which has closed.
    """

    def __init__(self, loop: EventLoop, protocol: Protocol, extra: dict[str, Any] | None) -> None:
        super().__init__(protocol, extra)
        self._loop = loop
        self._peer: MemoryTransport | None = None
        self._outgoing = bytearray()  # written here, not yet taken by the peer
        self._eof_pending = False  # the write side is shut; the peer has not read the EOF yet
        self._eof_received = False  # the peer's EOF was delivered here
        self._delivery_scheduled = False

    def __repr__(self) -> str:
        state = "lost" if self._lost else "closing" if self._closing else "open"
        return f"<MemoryTransport {state} buffered={len(self._outgoing)}>"

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for the peer; it arrives on a later loop iteration."""
        if self._refuse_write() or not data:
            return
        self._outgoing += data
        self._set_buffered(len(self._outgoing))
        self._schedule_delivery()

    def write_eof(self) -> None:
        """Half-close: the peer's ``eof_received`` follows the bytes written so far."""
        if self.is_closing() or self._eof_written:
            return
        self._eof_written = True
        self._eof_pending = True
        self._schedule_delivery()

    def close(self) -> None:
        """Stop reading, deliver what is buffered and the EOF, then ``connection_lost(None)``."""
        if self.is_closing():
            return
        self._closing = True
        if not self._eof_written:
            self._eof_written = True
            self._eof_pending = True
        self._schedule_delivery()

    def abort(self) -> None:
        """Drop what is buffered and end at once: ``connection_lost(None)`` here,
        a reset on the peer."""
        if self._lost:
            return
        self._closing = True
        self._outgoing.clear()
        self._buffered = 0
        self._eof_pending = False
        self._loop.call_soon(self._connection_lost, None)
        peer = self._peer
        if peer is not None:
            self._loop.call_soon(peer._reset)

    def _schedule_delivery(self) -> None:
        if not self._delivery_scheduled:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def _reading_resumed(self) -> None:
        # What the peer held back for us can come now.
        peer = self._peer
        if peer is not None and (peer._outgoing or peer._eof_pending):
            peer._schedule_delivery()

    def _deliver(self) -> None:
        # Runs on the loop: hand the peer what it takes now, in order: bytes,
        # then EOF, then (after close()) this end's connection_lost.
        self._delivery_scheduled = False
        peer = self._peer
        if self._lost or peer is None:
            return
        peer_gone = peer._lost or peer._closing  # nobody reads at the other end
        if self._outgoing:
            if peer_gone:
                # TCP answers data sent to a closed socket with a reset.
                self._reset()
                return
            if not peer._reading:
                return  # held back until the peer resumes reading
            data = bytes(self._outgoing)
            self._outgoing.clear()
            self._set_buffered(0)
            peer._protocol.data_received(data)
            if self._lost or self._outgoing:
                return  # the peer's reaction changed things: a later delivery goes on
        if self._eof_pending:
            if not peer_gone:
                if not peer._reading:
                    return
                self._eof_pending = False
                peer._eof_received = True
                if not peer._protocol.eof_received():
                    peer.close()
                elif peer._eof_written and not peer._eof_pending:
                    peer.close()  # both directions are shut
            else:
                self._eof_pending = False
        if self._closing:
            self._connection_lost(None)
        elif self._eof_received and self._eof_written and not self._eof_pending:
            self.close()  # both directions are shut

    def _reset(self) -> None:
        if not self._lost:
            self._outgoing.clear()
            self._buffered = 0
            self._eof_pending = False
            self._connection_lost(ConnectionResetError("the peer reset the connection"))


def transport_pair(
    protocol_a: Protocol,
    protocol_b: Protocol,
    *,
    loop: EventLoop | None = None,
    extra_a: dict[str, Any] | None = None,
    extra_b: dict[str, Any] | None = None,
) -> tuple[MemoryTransport, MemoryTransport]:
    """Connect two protocols in memory and return their transports ``(a, b)``.

    Both ``connection_made`` calls happen on the loop's next iteration (a
    running loop unless ``loop`` is given), then bytes written by one reach
    the other through the loop, with half-close, close, abort and write flow
    control as over a socket.
    """
    if loop is None:
        loop = _runtime.get_running_loop()
    a = MemoryTransport(loop, protocol_a, extra_a)
    b = MemoryTransport(loop, protocol_b, extra_b)
    a._peer, b._peer = b, a
    loop.call_soon(protocol_a.connection_made, a)
    loop.call_soon(protocol_b.connection_made, b)
    return a, b
