"""``StreamTransport``: a connected TCP or Unix stream socket driven by the loop.

The transport moves bytes between the socket and a ``Protocol``:

* reading: one read per readiness event, handed to ``data_received``: into
  the loop's shared buffer, or, while bulk data flows, exactly what the kernel
  has queued; ``pause_reading`` unregisters the socket, so the kernel's
  receive buffer fills and TCP pushes back on the peer;
* writing: ``write`` sends at once when nothing is queued and queues only
  the rest; every entry point goes through ``_buffer_append``, the one place
  that counts buffered bytes and calls ``pause_writing`` above the high-water
  mark (so no write path can bypass flow control);
* closing: ``close`` flushes, ``abort`` drops, ``write_eof`` half-closes,
  and ``connection_lost`` is called exactly once.

The life of a transport, one state at a time:

    OPEN ──close()──▶ CLOSING (flushing the write buffer) ──flushed──▶ CLOSED
      │                  │
      └────abort() / error / peer reset──────────────────────────────▶ CLOSED
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Any, Iterable

try:
    from fcntl import ioctl
    from termios import FIONREAD
except ImportError:  # pragma: no cover - not POSIX
    ioctl = None  # type: ignore[assignment]
    FIONREAD = 0

from ..protocols import Protocol
from .base import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, BaseTransport, TransportState, is_disconnect

if TYPE_CHECKING:
    from ..loop import EventLoop

__all__ = ["StreamTransport", "TransportState", "DEFAULT_HIGH_WATER", "DEFAULT_LOW_WATER"]

logger = logging.getLogger("netkit")

# sendmsg() takes at most IOV_MAX buffers (1024 on Linux).
try:
    _IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)
except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
    _IOV_MAX = 16
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")

# Reads of at least this size mean bulk data is flowing.  The next read then
# asks the kernel how much is queued (FIONREAD) and receives exactly that into
# a new bytes object: one copy instead of two (recv_into the loop's buffer,
# then out of it), which is 5% of a bulk echo's CPU time.  Smaller reads stay
# on the shared buffer, where they cost the least.
_LARGE_READ = 64 * 1024
_RECV_MAX = 256 * 1024  # the most one read takes, as the loop's shared buffer

# Small chunks that must wait are joined into one bytes object once this many
# of them follow each other at the end of the write buffer.  The buffer counts
# bytes, but each queued chunk also costs a list slot and an object header (41
# bytes for a bytes object): without merging, one-byte writes behind a full
# socket would hold 40 times the bytes counted against the water marks, so the
# high-water mark would bound nothing.  With it, at most this many small chunks
# wait unmerged (3 KiB of bookkeeping), and joining copies each byte once.
_MERGE_RUN = 64
# "Small": below 512 bytes, a chunk's bookkeeping is more than 8% of its size.
# Larger chunks are queued as they are, never copied.
_MERGE_BELOW = 512


class StreamTransport(BaseTransport):
    """A stream socket (TCP or Unix) connected to a ``Protocol``."""

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        protocol: Protocol,
        *,
        extra: dict[str, Any] | None = None,
        server: Any = None,
        waiter: Any = None,
        peername: Any = None,
    ) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            _set_nodelay(sock)
        self._data_received = protocol.data_received  # bound once: called per read
        self._server = server
        self._large_reads = False  # the last read was large: size the next one with FIONREAD
        self._eof_received = False
        self._eof_requested = False  # write_eof() called; shut down once flushed
        self._eof_sent = False
        # A list, not a deque: an empty deque costs 760 bytes, an empty list 56,
        # and most connections never buffer.  Sent chunks leave in one slice.
        self._buffer: list[bytes | memoryview] = []
        self._small_run = 0  # how many small chunks end the buffer, for _merge_small_run
        self._warned_closed_write = False
        # The peer's address is read now, while it is sure to be known (after a
        # reset getpeername() fails); the local one only when asked.  No dict
        # per connection unless the creator passes extras: at 10,000 idle
        # connections every hundred bytes count.
        if peername is None:
            try:
                peername = sock.getpeername()
            except OSError:
                peername = None
        self._peername: Any = peername
        self._extra: dict[str, Any] | None = dict(extra) if extra else None
        self._init_transport(loop, sock, protocol, waiter)
        if server is not None:
            server._attach(self)  # last: a transport that failed to start is not the server's to wait for

    # ------------------------------------------------------------------- info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"peername"``, ``"sockname"`` or ``"socket"`` (and whatever else the creator added);
        ``default`` when the value is unknown (``sockname`` once the socket is closed)."""
        if self._extra is not None and name in self._extra:
            return self._extra[name]
        if name == "peername":
            value = self._peername
        elif name == "sockname":
            value = self._sockname()
        elif name == "socket":
            value = self._sock
        else:
            value = None
        return default if value is None else value

    def _sockname(self) -> Any:
        sock = self._sock
        if sock is None:
            return None
        try:
            return sock.getsockname()
        except OSError:
            return None

    def set_protocol(self, protocol: Protocol) -> None:
        """Hand the connection to another protocol (e.g. after an HTTP upgrade)."""
        self._protocol = protocol
        self._data_received = protocol.data_received

    def __repr__(self) -> str:
        info = [type(self).__name__, self._state.value]
        peer = self._peername
        if peer:
            info.append(f"peer={peer}")
        if self._buffer_size:
            info.append(f"buffered={self._buffer_size}")
        if self._reading_paused:
            info.append("reading-paused")
        return f"<{' '.join(info)}>"

    # ---------------------------------------------------------------- reading

    def _read_ready(self) -> None:
        loop = self._loop
        try:
            if self._large_reads:
                data = self._recv_queued()
            else:
                size = self._sock.recv_into(loop._recv_buffer)  # type: ignore[union-attr]
                data = loop._recv_view[:size].tobytes()
                if size >= _LARGE_READ and ioctl is not None:
                    self._large_reads = True
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc)
            return
        if data:
            try:
                self._data_received(data)
            except BaseException as exc:
                self._protocol_failed(exc, "data_received")
                if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    raise
        else:
            self._read_eof()

    def _recv_queued(self) -> bytes:
        """One read while bulk data flows: exactly what the kernel has queued (at
        most ``_RECV_MAX``), straight into the bytes object handed to the protocol."""
        queued = int.from_bytes(ioctl(self._fileno, FIONREAD, b"\0\0\0\0"), sys.byteorder)
        if queued < _LARGE_READ:
            # The flow slowed down: back to the shared buffer (which also
            # reads the EOF or the error when nothing is queued).
            self._large_reads = False
            size = self._sock.recv_into(self._loop._recv_buffer)  # type: ignore[union-attr]
            return self._loop._recv_view[:size].tobytes()
        return self._sock.recv(min(queued, _RECV_MAX))  # type: ignore[union-attr]

    def _read_eof(self) -> None:
        # The peer shut down its write side (its FIN arrived): nothing more to read.
        self._stop_reading()
        self._eof_received = True
        try:
            keep_open = self._protocol.eof_received()
        except BaseException as exc:
            self._protocol_failed(exc, "eof_received")
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            return
        if not keep_open:
            self.close()
        elif self._eof_sent and not self._buffer:
            # Both directions are shut: nothing can travel any more.
            self.close()

    def _may_read(self) -> bool:
        return not self._eof_received  # after the peer's FIN there is nothing more to read

    # ---------------------------------------------------------------- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``: at once as far as the kernel takes it, the rest buffered."""
        if not data:
            return
        if self._state is not TransportState.OPEN or self._eof_requested:
            self._write_refused()
            return
        if type(data) is not bytes:
            # Count bytes, not items: len() of a memoryview over an array('I')
            # is its number of 4-byte items, which send() does not return.
            data = memoryview(data).cast("B")
        if not self._buffer:
            try:
                sent = self._sock.send(data)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc)
                return
            if sent == len(data):
                return
            # Keep the unsent tail without copying immutable data; a mutable
            # buffer is copied, since the caller may reuse it after write().
            data = memoryview(data)[sent:] if type(data) is bytes else bytes(data[sent:])
            self._loop.add_writer(self._fileno, self._write_ready)
        elif type(data) is not bytes:
            data = bytes(data)
        self._buffer_append(data)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Send several buffers in order, with one system call when possible."""
        if self._state is not TransportState.OPEN or self._eof_requested:
            self._write_refused()
            return
        chunks = [chunk if isinstance(chunk, bytes) else bytes(chunk) for chunk in chunks if chunk]
        if not chunks:
            return
        if self._buffer or not _HAS_SENDMSG or len(chunks) > _IOV_MAX:
            if not self._buffer:
                # The same path as write(): send what the kernel takes now.
                self.write(b"".join(chunks))
                return
            for chunk in chunks:
                self._buffer_append(chunk)
            return
        try:
            sent = self._sock.sendmsg(chunks)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fatal_error(exc)
            return
        for chunk in chunks:
            if sent >= len(chunk):
                sent -= len(chunk)
                continue
            if not self._buffer:
                self._loop.add_writer(self._fileno, self._write_ready)
            self._buffer_append(memoryview(chunk)[sent:] if sent else chunk)
            sent = 0

    def _buffer_append(self, data: bytes | memoryview) -> None:
        # The one place where buffered bytes are counted: every write path
        # (write, writelines, and whatever is added later) comes through here.
        self._buffer.append(data)
        size = len(data)
        if size < _MERGE_BELOW:
            self._small_run += 1
            if self._small_run >= _MERGE_RUN:
                self._merge_small_run()
        else:
            self._small_run = 0
        self._buffer_size += size
        if self._buffer_size > self._high_water:
            self._pause_protocol()

    def _merge_small_run(self) -> None:
        """Join the small chunks at the end of the buffer into one, so that the
        buffer's memory follows the bytes it counts, not the number of writes."""
        buffer = self._buffer
        run = min(self._small_run, len(buffer))
        merged = b"".join(buffer[-run:])
        del buffer[-run:]
        buffer.append(merged)
        # A merged run still small is the start of the next one.
        self._small_run = 1 if len(merged) < _MERGE_BELOW else 0

    def _write_ready(self) -> None:
        buffer = self._buffer
        sock = self._sock
        if sock is None:
            return
        try:
            if len(buffer) == 1 or not _HAS_SENDMSG:
                sent = sock.send(buffer[0])
            else:
                sent = sock.sendmsg(buffer[:_IOV_MAX])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc)
            return
        self._buffer_size -= sent
        done = 0  # chunks sent completely
        while sent and sent >= len(buffer[done]):
            sent -= len(buffer[done])
            done += 1
        if done:
            del buffer[:done]
            if self._small_run > len(buffer):
                self._small_run = len(buffer)  # the run's oldest chunks were sent
        if sent:
            buffer[0] = memoryview(buffer[0])[sent:]
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._resume_protocol()
        if not buffer:
            self._loop.remove_writer(self._fileno)
            if self._state is TransportState.CLOSING:
                self._finish(None)
            elif self._eof_requested:
                self._shutdown_write()

    def _write_refused(self) -> None:
        if self._eof_requested and self._state is TransportState.OPEN:
            raise RuntimeError("cannot write after write_eof()")
        if not self._warned_closed_write:
            self._warned_closed_write = True
            logger.warning("write() on a closing or closed transport %r: data dropped", self)

    # ------------------------------------------------------------ half-close

    def can_write_eof(self) -> bool:
        """Stream sockets can always half-close."""
        return True

    def write_eof(self) -> None:
        """Half-close: flush what is buffered, then shut down the write side
        (the peer reads EOF) while reading goes on."""
        if self._state is not TransportState.OPEN or self._eof_requested:
            return
        self._eof_requested = True
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        except OSError as exc:
            self._fatal_error(exc)
            return
        self._eof_sent = True
        if self._eof_received:
            self.close()

    # ---------------------------------------------------------------- closing

    def _fatal_error(self, exc: BaseException) -> None:
        """A system call on the socket failed: the connection is over either way.
        A peer or network that went away is news for the protocol alone
        (``connection_lost(exc)``); anything else is a bug, also reported to
        the loop's exception handler."""
        if is_disconnect(exc):
            logger.debug("%r: connection lost: %s", self, exc)
        else:
            self._report(exc, "fatal error on transport")
        self._force_close(exc)

    def _released(self) -> None:
        server = self._server
        self._server = None
        if server is not None:
            server._detach(self)


def _set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off: small writes go out at once, since latency
    matters more than packet count for request/response protocols, and netkit
    already coalesces writes."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        # macOS answers EINVAL for a connection reset before it was accepted.
        # The option does not matter then: the first read reports the reset.
        if not (is_disconnect(exc) or exc.errno == errno.EINVAL):
            raise
