"""Message framing: whole messages out of a TCP byte stream.

TCP keeps no message boundaries.  Two ``send()`` calls can arrive as one
``recv()`` (the "sticky packet" problem) and one ``send()`` can arrive in
pieces, so every protocol over TCP needs a rule that says where a message
ends.  This module has the two rules almost every protocol uses:

* :class:`LengthPrefixFramer`: each frame starts with its length, a fixed-size
  integer or a LEB128 varint (as protobuf's length-delimited streams do);
* :class:`DelimitedFramer`: each frame ends with a delimiter (a newline, CRLF,
  a NUL byte ...).

The framers are sans-I/O: bytes in through :meth:`Framer.feed`, whole frames
out, no sockets, no event loop.  They work with any I/O, asyncio's included.

Their invariants:

* correct for every split of the input: a frame comes out whole however the
  bytes were chopped into chunks, and several frames in one chunk all come out
  in order;
* bounded memory: a frame over ``max_frame_size`` is refused as soon as that
  is known (for a length prefix, when the header is read), before its body is
  buffered; after a framing error the framer refuses all further input, since
  the stream can no longer be parsed;
* linear time: each byte received is copied a bounded number of times,
  never the whole buffer once per frame.

At the bottom, two thin adapters move bytes between a framer and a
connection: :class:`FramedProtocol` for the callback API, and
:func:`read_frame` / :func:`write_frame` for streams.  They only need the
shape of asyncio's transports and streams, so they run on netkit's loop and
on asyncio's alike; this module imports neither ``socket`` nor a loop.
"""

from __future__ import annotations

import abc
import collections
import logging
import struct
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol as TypingProtocol

from .errors import FrameTooLarge, IncompleteReadError, ProtocolError
from .protocols import Protocol

__all__ = [
    "Framer",
    "LengthPrefixFramer",
    "DelimitedFramer",
    "FramedProtocol",
    "read_frame",
    "write_frame",
    "write_frames",
]

Buffer = bytes | bytearray | memoryview
"""What the framers accept as input and as a payload to encode."""

logger = logging.getLogger("netkit")


class FrameSink(TypingProtocol):
    """Where :meth:`Framer.feed_into` puts complete frames: a ``list`` or a ``deque``."""

    def append(self, frame: bytes, /) -> None: ...

    def extend(self, frames: Iterable[bytes], /) -> None: ...


def _byte_length(payload: Buffer) -> int:
    """Size in bytes of ``payload``; ``len()`` of a memoryview counts items, not bytes."""
    if type(payload) is memoryview:
        return payload.nbytes
    return len(payload)


# ---------------------------------------------------------------------------
# The framer contract
# ---------------------------------------------------------------------------


class Framer(abc.ABC):
    """What every netkit framer does, so that the adapters work with any of them.

    A framer turns received bytes into frames (:meth:`feed`, :meth:`feed_into`,
    :meth:`feed_eof`) and payloads into bytes to send (:meth:`encode`,
    :meth:`encode_parts`, :meth:`encode_many`).  It holds at most one
    unfinished frame, never more than ``max_frame_size`` bytes of it.

    Errors latch: once :meth:`feed_into` has raised a :class:`ProtocolError`,
    every later call raises that same error (as asyncio's ``StreamReader`` does
    after ``set_exception``), because the bytes after a bad frame cannot be
    parsed.  Close the connection.

    To write another framer, subclass this and implement ``feed_into``
    (starting with ``if self._error is not None: raise self._error`` and
    failing through ``self._fail(exc)``), ``buffered_size``,
    ``_incomplete_frame``, ``_discard_buffer``, ``encode`` and
    ``encode_parts``; ``docs/framing.md`` has an example.
    """

    __slots__ = ("max_frame_size", "_error", "_ready")

    def __init__(self, max_frame_size: int) -> None:
        if type(max_frame_size) is not int or max_frame_size < 0:
            raise ValueError(f"max_frame_size must be an int >= 0, not {max_frame_size!r}")
        self.max_frame_size = max_frame_size
        self._error: ProtocolError | None = None
        # Frames decoded but not yet returned by read_frame(), which reads a
        # chunk at a time and may decode several frames from one read.
        self._ready: collections.deque[bytes] = collections.deque()

    # -- receiving ----------------------------------------------------------

    def feed(self, data: Buffer) -> list[bytes]:
        """Add received bytes; return every frame they complete, in order.

        The bytes of an unfinished frame are kept for the next call.
        Raises :class:`FrameTooLarge` or :class:`ProtocolError` on bad input.
        """
        frames: list[bytes] = []
        self.feed_into(data, frames)
        return frames

    @abc.abstractmethod
    def feed_into(self, data: Buffer, frames: FrameSink) -> None:
        """Like :meth:`feed`, but append each complete frame to ``frames``.

        If the input is bad, the frames that came before the bad one are
        already in ``frames`` when the error is raised, so a caller can still
        handle what the peer sent correctly before closing.
        """

    def feed_eof(self) -> None:
        """Say the stream has ended; raise if it ended inside a frame.

        Raises :class:`IncompleteReadError` whose ``partial`` is what arrived of
        the unfinished frame, and whose ``expected`` is the size it needed
        (``None`` when that size is unknown).
        """
        if self._error is not None:
            raise self._error
        incomplete = self._incomplete_frame()
        if incomplete is not None:
            raise incomplete

    @abc.abstractmethod
    def _incomplete_frame(self) -> IncompleteReadError | None:
        """The error describing the unfinished frame, or ``None`` between frames."""

    @property
    @abc.abstractmethod
    def buffered_size(self) -> int:
        """How many bytes of an unfinished frame the framer holds right now."""

    @property
    def at_frame_boundary(self) -> bool:
        """True when no part of a frame is buffered (the stream may end here)."""
        return self.buffered_size == 0

    @property
    def error(self) -> ProtocolError | None:
        """The framing error that stopped this framer, or ``None``."""
        return self._error

    def _fail(self, exc: ProtocolError) -> NoReturn:
        """Latch ``exc``, drop what was buffered (it can never become a frame) and raise."""
        self._error = exc
        self._discard_buffer()
        raise exc

    @abc.abstractmethod
    def _discard_buffer(self) -> None:
        """Forget the unfinished frame."""

    # -- sending ------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, payload: Buffer) -> bytes:
        """The bytes that carry ``payload`` as one frame."""

    @abc.abstractmethod
    def encode_parts(self, payload: Buffer) -> tuple[Buffer, ...]:
        """The frame for ``payload`` as pieces to write in order, with
        ``payload`` itself among them uncopied (for ``transport.writelines``)."""

    def encode_many(self, payloads: Iterable[Buffer]) -> bytes:
        """Several frames as one ``bytes``, for a single write."""
        return b"".join([self.encode(payload) for payload in payloads])


# ---------------------------------------------------------------------------
# Length prefix
# ---------------------------------------------------------------------------

# Fixed-size headers: unsigned integers, network (big-endian) or little-endian
# byte order.  ">" is accepted as a synonym of "!", which struct treats alike.
_FIXED_HEADERS = tuple(f"{order}{code}" for order in "!><" for code in "BHIQ")

VARINT = "varint"

# An unsigned 64-bit value needs ceil(64 / 7) = 10 LEB128 bytes; protobuf
# reads no more than that ("Too many bytes when decoding varint").
_VARINT_MAX_BYTES = 10
_UINT64_MAX = (1 << 64) - 1

# 16 MiB: room for bulky binary messages (four times gRPC's default 4 MiB
# receive limit, sixteen times websockets' 1 MiB max_size, about the largest
# payload of one MySQL protocol packet, whose length has 3 bytes: 2**24 - 1),
# yet a connection cannot make a server hold more than that for one frame.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024


def _encode_varint(value: int) -> bytes:
    """``value`` as an unsigned LEB128 varint: 7 bits per byte, low bits
    first, the top bit set on every byte but the last.

    Raises ``struct.error`` for a value outside 0 .. 2**64 - 1, as
    ``Struct.pack`` does for a fixed-size header.
    """
    if value < 0x80:
        if value < 0:
            raise struct.error("a varint length cannot be negative")
        return bytes((value,))
    if value > _UINT64_MAX:
        raise struct.error("a varint length must fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _decode_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``data[pos:end]``: ``(value, position after it)``,
    or ``(0, -1)`` when its last byte has not arrived yet.

    Looks at 10 bytes at most and raises :class:`ProtocolError` for a longer
    varint or one above 2**64 - 1.
    """
    value = 0
    shift = 0
    stop = min(end, pos + _VARINT_MAX_BYTES)
    for index in range(pos, stop):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > _UINT64_MAX:
                raise ProtocolError(
                    "malformed varint length: its value does not fit in 64 bits"
                )
            return value, index + 1
        shift += 7
    if stop - pos >= _VARINT_MAX_BYTES:
        raise ProtocolError(
            f"malformed varint length: longer than {_VARINT_MAX_BYTES} bytes"
        )
    return 0, -1


class LengthPrefixFramer(Framer):
    """Frames that start with their length: ``header + payload``.

    ``header`` is a :mod:`struct` format for an unsigned integer, big-endian
    (``"!B"``, ``"!H"``, ``"!I"``, ``"!Q"``; ``">"`` works too) or
    little-endian (``"<B"`` ... ``"<Q"``), or ``"varint"`` for an unsigned
    LEB128 varint.  The length counts the payload only.  A zero-length frame
    is a frame (``b""``).

    A declared length above ``max_frame_size`` raises :class:`FrameTooLarge`
    as soon as the header is read, before any of the body is buffered.
    """

    __slots__ = ("header_format", "_header_size", "_struct", "_pack", "_capacity", "_partial", "_body_length")

    def __init__(self, header: str = "!I", max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(max_frame_size)
        self.header_format = header
        if header == VARINT:
            self._struct: struct.Struct | None = None
            self._header_size = 0  # variable: 1 to 10 bytes
            self._capacity = _UINT64_MAX
            self._pack: Callable[[int], bytes] = _encode_varint
        elif header in _FIXED_HEADERS:
            self._struct = struct.Struct(header)
            self._header_size = self._struct.size
            self._capacity = (1 << (8 * self._header_size)) - 1
            self._pack = self._struct.pack
        else:
            allowed = ", ".join(repr(name) for name in [*_FIXED_HEADERS, VARINT])
            raise ValueError(f"unsupported header format {header!r}; use one of {allowed}")
        # The bytes of the unfinished frame: its header while the header is
        # incomplete, then its body (the header bytes are dropped once read).
        self._partial = bytearray()
        # The unfinished frame's declared length once its header is read, else -1.
        self._body_length = -1

    def __repr__(self) -> str:
        return f"LengthPrefixFramer(header={self.header_format!r}, max_frame_size={self.max_frame_size})"

    # -- sending ------------------------------------------------------------

    def header(self, length: int) -> bytes:
        """The header announcing a payload of ``length`` bytes.

        Write it, then the payload, to send a large payload without copying it.
        Raises :class:`FrameTooLarge` if ``length`` does not fit the header
        format (above 255 for ``"!B"``, for example).
        """
        try:
            return self._pack(length)
        except struct.error:
            raise self._unencodable(length) from None

    def _unencodable(self, length: int) -> Exception:
        if length < 0:
            return ValueError(f"a frame length cannot be negative: {length}")
        return FrameTooLarge(length, self._capacity, limit=f"header {self.header_format!r} capacity")

    # The encoders call self._pack directly and let struct.error stand for a
    # length that does not fit: a check per frame that costs nothing.

    def encode(self, payload: Buffer) -> bytes:
        """``header + payload`` as one ``bytes``."""
        size = len(payload) if type(payload) is bytes else _byte_length(payload)
        try:
            return self._pack(size) + payload
        except struct.error:
            raise self._unencodable(size) from None

    def encode_parts(self, payload: Buffer) -> tuple[Buffer, ...]:
        """``(header, payload)``, without copying the payload."""
        return (self.header(_byte_length(payload)), payload)

    def encode_many(self, payloads: Iterable[Buffer]) -> bytes:
        """Several frames joined into one ``bytes`` with a single copy."""
        parts: list[Buffer] = []
        append = parts.append
        pack = self._pack
        size = 0
        try:
            for payload in payloads:
                size = len(payload) if type(payload) is bytes else _byte_length(payload)
                append(pack(size))
                append(payload)
        except struct.error:
            raise self._unencodable(size) from None
        return b"".join(parts)

    # -- receiving ----------------------------------------------------------

    @property
    def buffered_size(self) -> int:
        return len(self._partial)

    @property
    def at_frame_boundary(self) -> bool:
        # A header announcing a body of which nothing arrived yet is mid-frame.
        return self._body_length < 0 and not self._partial

    def _discard_buffer(self) -> None:
        self._partial = bytearray()
        self._body_length = -1

    def _incomplete_frame(self) -> IncompleteReadError | None:
        if self._body_length >= 0:
            return IncompleteReadError(bytes(self._partial), self._body_length)
        if self._partial:
            expected = self._header_size or None  # a varint's size is unknown
            return IncompleteReadError(bytes(self._partial), expected)
        return None

    def _too_large(self, length: int) -> NoReturn:
        self._fail(FrameTooLarge(length, self.max_frame_size))

    def feed_into(self, data: Buffer, frames: FrameSink) -> None:
        if self._error is not None:
            raise self._error
        if type(data) is not bytes:
            data = bytes(data)
        end = len(data)
        pos = 0
        if self._partial or self._body_length >= 0:
            pos = self._finish_partial_frame(data, frames)
            if pos < 0 or pos == end:
                return  # all of ``data`` went into that frame
        # The fast path: frames are sliced straight out of ``data``, so each
        # one is copied exactly once and nothing is buffered but the tail.
        append = frames.append
        limit = self.max_frame_size
        if self._struct is not None:
            unpack_from = self._struct.unpack_from
            header_size = self._header_size
            # No check of the room left before each header: the one comparison
            # per frame, body_end >= end, also ends the loop when the data ends
            # with a whole frame (the usual case for request/response traffic),
            # and unpack_from() raising struct.error ends it when the data ends
            # inside a header.  Raising and catching that error costs about as
            # much as decoding five small frames, so it must stay the rare exit.
            try:
                while True:
                    (length,) = unpack_from(data, pos)
                    if length > limit:
                        self._too_large(length)
                    body_start = pos + header_size
                    body_end = body_start + length
                    if body_end >= end:
                        if body_end == end:
                            append(data[body_start:body_end])
                            pos = end
                        else:
                            self._body_length = length
                            pos = body_start
                        break
                    append(data[body_start:body_end])
                    pos = body_end
            except struct.error:
                pass  # fewer than header_size bytes left: buffered below
        else:
            while pos < end:
                length = data[pos]
                if length < 0x80:  # a one-byte varint: lengths up to 127
                    body_start = pos + 1
                else:
                    try:
                        length, body_start = _decode_varint(data, pos, end)
                    except ProtocolError as exc:
                        self._fail(exc)
                    if body_start < 0:
                        break
                if length > limit:
                    self._too_large(length)
                body_end = body_start + length
                if body_end > end:
                    self._body_length = length
                    pos = body_start
                    break
                append(data[body_start:body_end])
                pos = body_end
        if pos < end:
            self._partial += memoryview(data)[pos:] if pos else data

    def _finish_partial_frame(self, data: bytes, frames: FrameSink) -> int:
        """Complete the frame left unfinished by the previous feed.

        Returns the position in ``data`` just after that frame, or -1 if
        ``data`` ran out before the frame was complete (it is then buffered).
        """
        partial = self._partial
        end = len(data)
        pos = 0
        if self._body_length < 0:
            # ``partial`` holds the first bytes of a header.
            have = len(partial)
            if self._struct is not None:
                need = self._header_size - have
                if end < need:
                    partial += data
                    return -1
                (length,) = self._struct.unpack(bytes(partial) + data[:need])
                pos = need
            else:
                head = bytes(partial) + data[: _VARINT_MAX_BYTES - have]
                try:
                    length, header_end = _decode_varint(head, 0, len(head))
                except ProtocolError as exc:
                    self._fail(exc)
                if header_end < 0:
                    partial += data
                    return -1
                pos = header_end - have
            if length > self.max_frame_size:
                self._too_large(length)
            partial.clear()
            self._body_length = length
        # ``partial`` holds the first bytes of the body.
        need = self._body_length - len(partial)
        if end - pos < need:
            partial += memoryview(data)[pos:] if pos else data
            return -1
        body_end = pos + need
        if partial:
            partial += memoryview(data)[pos:body_end]
            frames.append(bytes(partial))
            self._partial = bytearray()  # frees the old one, as large as the frame
        else:
            frames.append(data[pos:body_end])
        self._body_length = -1
        return body_end


# ---------------------------------------------------------------------------
# Delimiter
# ---------------------------------------------------------------------------

# 64 KiB: a line-oriented peer has no business sending longer lines; asyncio's
# StreamReader.readline() limit is the same 64 KiB (2**16), while Twisted's
# LineReceiver.MAX_LENGTH is a stricter 16 KiB.
DEFAULT_MAX_LINE_SIZE = 64 * 1024


class DelimitedFramer(Framer):
    """Frames that end with ``delimiter``: ``payload + delimiter``.

    The delimiter may be several bytes (``b"\\r\\n"``) and is found even when it
    is split across chunks.  ``max_frame_size`` bounds the payload, delimiter
    not counted: once more bytes than that have arrived without a delimiter,
    :class:`FrameTooLarge` is raised and nothing more is buffered.  With
    ``strip=True`` frames are returned without their delimiter.
    """

    __slots__ = ("delimiter", "strip", "_partial")

    def __init__(
        self,
        delimiter: bytes = b"\n",
        max_frame_size: int = DEFAULT_MAX_LINE_SIZE,
        strip: bool = True,
    ) -> None:
        super().__init__(max_frame_size)
        if not isinstance(delimiter, bytes) or not delimiter:
            raise ValueError(f"delimiter must be non-empty bytes, not {delimiter!r}")
        self.delimiter = delimiter
        self.strip = strip
        # The start of the unfinished frame; it never contains the delimiter
        # and never grows past max_frame_size + len(delimiter) - 1 bytes.
        self._partial = bytearray()

    def __repr__(self) -> str:
        return (
            f"DelimitedFramer(delimiter={self.delimiter!r}, "
            f"max_frame_size={self.max_frame_size}, strip={self.strip})"
        )

    # -- sending ------------------------------------------------------------

    def _check_payload(self, payload: Buffer) -> None:
        if self.delimiter in (payload.tobytes() if type(payload) is memoryview else payload):
            raise ValueError(
                f"payload contains the delimiter {self.delimiter!r}: "
                "the receiver would see it as more than one frame"
            )

    def encode(self, payload: Buffer) -> bytes:
        """``payload + delimiter``; raises ``ValueError`` if ``payload``
        contains the delimiter, which would split it on the other side."""
        self._check_payload(payload)
        return bytes(payload) + self.delimiter

    def encode_parts(self, payload: Buffer) -> tuple[Buffer, ...]:
        """``(payload, delimiter)``, without copying the payload."""
        self._check_payload(payload)
        return (payload, self.delimiter)

    def encode_many(self, payloads: Iterable[Buffer]) -> bytes:
        """Several frames as one ``bytes``."""
        payloads = list(payloads)
        if not payloads:
            return b""
        for payload in payloads:
            self._check_payload(payload)
        return self.delimiter.join(payloads) + self.delimiter

    # -- receiving ----------------------------------------------------------

    @property
    def buffered_size(self) -> int:
        return len(self._partial)

    def _discard_buffer(self) -> None:
        self._partial = bytearray()

    def _incomplete_frame(self) -> IncompleteReadError | None:
        if self._partial:
            return IncompleteReadError(bytes(self._partial), None)
        return None

    def feed_into(self, data: Buffer, frames: FrameSink) -> None:
        if self._error is not None:
            raise self._error
        if type(data) is not bytes:
            data = bytes(data)
        delimiter = self.delimiter
        delimiter_size = len(delimiter)
        limit = self.max_frame_size
        keep = 0 if self.strip else delimiter_size  # delimiter bytes left on a frame
        end = len(data)
        pos = 0
        partial = self._partial
        if partial:
            have = len(partial)
            frame_end = -1  # where the delimiter starts, counted from the frame's start
            if delimiter_size > 1:
                # A delimiter split across the chunk boundary: look in the last
                # delimiter_size - 1 buffered bytes plus the first new ones.
                # Earlier buffered positions were searched when they arrived.
                seam_start = max(0, have - delimiter_size + 1)
                seam = bytes(partial[seam_start:]) + data[: delimiter_size - 1]
                found = seam.find(delimiter)
                if found >= 0:
                    frame_end = seam_start + found
            if frame_end < 0:
                found = data.find(delimiter, 0, limit - have + delimiter_size)
                if found >= 0:
                    frame_end = have + found
            if frame_end < 0:
                if have + end >= limit + delimiter_size:
                    # Too long.  Its size is known if its delimiter is in
                    # this chunk, past the window searched above (which the
                    # frames after it must not be counted with); else it is
                    # all that has arrived.
                    found = data.find(delimiter)
                    self._fail(FrameTooLarge(have + (found if found >= 0 else end), limit))
                partial += data
                return
            if frame_end > limit:
                self._fail(FrameTooLarge(frame_end, limit))
            frame_size = frame_end + keep
            if frame_size <= have:  # the delimiter began inside the buffer
                frames.append(bytes(partial[:frame_size]))
            else:
                partial += memoryview(data)[: frame_size - have]
                frames.append(bytes(partial))
            # The buffer never holds a whole delimiter, so this one ends in ``data``.
            pos = frame_end + delimiter_size - have
            self._partial = partial = bytearray()
        # The fast path: one bytes.split() cuts every frame out of the chunk in
        # C, 3-4 times faster than a find() and a slice per frame in Python.
        frames_here = (data[pos:] if pos else data).split(delimiter)
        tail = frames_here.pop()  # what follows the last delimiter
        if frames_here:
            if max(map(len, frames_here)) > limit:
                for frame in frames_here:  # hand over the frames before the long one
                    if len(frame) > limit:
                        self._fail(FrameTooLarge(len(frame), limit))
                    frames.append(frame + delimiter if keep else frame)
            if keep:
                frames_here = [frame + delimiter for frame in frames_here]
            frames.extend(frames_here)
        if tail:
            # With limit + len(delimiter) bytes and no delimiter, no delimiter
            # can start within the limit any more.
            if len(tail) >= limit + delimiter_size:
                self._fail(FrameTooLarge(len(tail), limit))
            partial += tail


# ---------------------------------------------------------------------------
# Adapters: a framer on a connection
#
# They rely on the shape of asyncio's transports and streams only (duck
# typing), so the same code runs on netkit's loop and on asyncio's.
# ---------------------------------------------------------------------------

# Below this size a payload is copied behind its header into one write, which
# costs less than handing the transport two buffers; above it the payload is
# passed on uncopied with writelines().  16 KiB: about where copying starts to
# cost more than wrapping two buffers for sendmsg() (bench_framing.py encode).
_COPY_THRESHOLD = 16 * 1024

# 256 KiB: asyncio's socket transports receive up to 256 KiB per recv(), so one
# read() drains whatever one network read delivered; a StreamReader returns
# at most what it already holds, so a large size costs no extra memory.
DEFAULT_READ_SIZE = 256 * 1024


class FramedProtocol(Protocol):
    """A :class:`~netkit.Protocol` that speaks in frames instead of bytes.

    Override :meth:`frame_received` to handle one frame, or
    :meth:`frames_received` to handle all the frames of one read at once (and
    answer them with one :meth:`send_frames`, which is much faster than a
    write per frame).  Send with :meth:`send_frame`.  ``framer`` defaults to a
    :class:`LengthPrefixFramer` with a 4-byte big-endian header.

    Frames are delivered in the order they were sent.  Delivery stops as soon
    as the transport is closing, so a handler may close the connection in the
    middle of a batch.  A handler that (directly or not) makes
    ``data_received`` run again gets its new frames queued behind the ones
    being delivered.  An exception from a handler ends the connection (the
    loop reports it and closes the transport), so undelivered frames are
    dropped.  ``transport.pause_reading()`` takes effect from the next read:
    the rest of the current batch (one read's worth) is still delivered.

    A peer that breaks the framing (a frame over ``max_frame_size``, a
    malformed header, EOF inside a frame) gets :meth:`framing_error` called,
    whose default logs once and closes this connection only.

    A peer that sends frames faster than it reads the replies would make the
    replies pile up in the write buffer.  When replies to its frames leave
    that buffer above the transport's high-water mark, :meth:`replies_pile_up`
    is called, whose default stops reading from the peer until the buffer
    has drained (``resume_writing``), so TCP holds it back.  What the
    protocol sends on its own, outside a delivery, pauses nothing: it is
    the sender's to pace, with ``pause_writing``/``resume_writing``.

    From the transport it needs ``write``, ``writelines``, ``close``,
    ``is_closing`` and ``get_extra_info("peername")``, and
    ``pause_reading``/``resume_reading`` when replies pile up.  A subclass
    that overrides ``connection_made``, ``eof_received``, ``pause_writing``
    or ``resume_writing`` must call the base method.
    """

    __slots__ = (
        "framer",
        "transport",
        "_delivering",
        "_backlog",
        "_failed",
        "_deferred_error",
        "_writing_paused",
        "_replies_piled_up",
        "_paused_for_replies",
    )

    def __init__(self, framer: Framer | None = None) -> None:
        self.framer: Framer = framer if framer is not None else LengthPrefixFramer()
        self.transport: Any = None
        self._delivering = False
        # Frames decoded by a data_received() that ran inside a handler; the
        # outer delivery loop hands them over after the current batch.
        self._backlog: list[bytes] = []
        self._failed = False
        self._deferred_error: ProtocolError | None = None
        self._writing_paused = False  # the transport's write buffer is above its high-water mark
        self._replies_piled_up = False  # replies_pile_up() was called since writing paused
        self._paused_for_replies = False  # and, by default, paused reading

    # -- callbacks from the transport ----------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # the stream cannot be parsed any more; the connection is closing
        frames: list[bytes] = []
        try:
            self.framer.feed_into(data, frames)
        except ProtocolError as exc:
            # Frames before the bad one are in ``frames``: deliver them first,
            # then report the error.
            self._failed = True
            self._deferred_error = exc
        if self._delivering:
            # Called from a handler: the outer call delivers these frames after
            # the current batch, then reports the error if there is one.
            self._backlog.extend(frames)
            return
        if frames:
            self._deliver(frames)
        error = self._deferred_error
        if error is not None:
            self._deferred_error = None
            self.framing_error(error)

    def eof_received(self) -> bool | None:
        if not self._failed:
            try:
                self.framer.feed_eof()
            except IncompleteReadError as exc:
                self._failed = True
                self.framing_error(exc)
        return None

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._delivering:
            self._replies_wait()  # replies to the frames being delivered filled the buffer

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._replies_piled_up = False
        if self._paused_for_replies:
            self._paused_for_replies = False
            self.transport.resume_reading()

    def _deliver(self, frames: list[bytes]) -> None:
        self._delivering = True
        try:
            while True:
                self.frames_received(frames)
                if not self._backlog or self.transport.is_closing():
                    break
                frames, self._backlog = self._backlog, []
        finally:
            self._delivering = False
            if self._backlog:  # left over when the transport closed or a handler raised
                self._backlog = []

    # -- hooks for subclasses ------------------------------------------------

    def frames_received(self, frames: list[bytes]) -> None:
        """All the frames decoded from one read, in order.

        The default calls :meth:`frame_received` for each, stopping if the
        transport starts closing.  Override it to batch: handle every frame,
        then answer with one :meth:`send_frames`.
        """
        frame_received = self.frame_received
        is_closing = self.transport.is_closing
        for frame in frames:
            if is_closing():
                return
            frame_received(frame)

    def frame_received(self, frame: bytes) -> None:
        """One whole frame arrived.  Override it: the default drops the frame."""

    def replies_pile_up(self) -> None:
        """Replies to the peer's frames are above the write buffer's high-water
        mark: the peer sends faster than it reads.  Called once until the
        buffer drains (``resume_writing``).

        The default stops reading from it until the buffer has drained to
        its low-water mark, so that TCP holds it back and the buffer holds at
        most the high-water mark plus the replies to one read.  Override it
        to do otherwise: close the connection, say, or nothing at all for a
        protocol whose replies are bounded some other way (then reading
        goes on, and so does the buffer's growth).
        """
        self._paused_for_replies = True
        self.transport.pause_reading()

    def framing_error(self, exc: ProtocolError | IncompleteReadError) -> None:
        """The peer broke the framing; no more frames will come from it.

        ``exc`` is a :class:`FrameTooLarge` (which names the limit and the
        declared size), a :class:`ProtocolError` (a malformed header), or an
        :class:`IncompleteReadError` (the peer closed inside a frame).

        The default logs one warning on the ``netkit`` logger naming the peer
        and the error, then closes this connection.  It closes rather than
        aborts: reading stops at once either way, and closing still flushes
        the answers already written to the frames that came before the bad
        one (the write buffer is bounded by the transport's high-water mark).
        """
        peer = self.transport.get_extra_info("peername")
        logger.warning("closing the connection from %s: %s", peer, exc)
        self.transport.close()

    # -- sending -------------------------------------------------------------

    def send_frame(self, payload: Buffer) -> None:
        """Send ``payload`` as one frame; a large payload is not copied."""
        if _byte_length(payload) < _COPY_THRESHOLD:
            self.transport.write(self.framer.encode(payload))
        else:
            self.transport.writelines(self.framer.encode_parts(payload))
        if self._writing_paused and self._delivering:
            self._replies_wait()

    def send_frames(self, payloads: Iterable[Buffer]) -> None:
        """Send several frames with a single write."""
        self.transport.write(self.framer.encode_many(payloads))
        if self._writing_paused and self._delivering:
            self._replies_wait()

    def _replies_wait(self) -> None:
        """Replies filled the write buffer, or joined it while full: tell
        ``replies_pile_up``, once until the buffer drains."""
        if not self._replies_piled_up:
            self._replies_piled_up = True
            self.replies_pile_up()


class StreamReaderLike(TypingProtocol):
    """What :func:`read_frame` needs: ``StreamReader.read``."""

    async def read(self, n: int = -1, /) -> bytes: ...


class StreamWriterLike(TypingProtocol):
    """What :func:`write_frame` needs: ``StreamWriter.write`` and ``writelines``."""

    def write(self, data: Buffer, /) -> None: ...

    def writelines(self, data: Iterable[Buffer], /) -> None: ...


async def read_frame(
    reader: StreamReaderLike,
    framer: Framer,
    *,
    read_size: int = DEFAULT_READ_SIZE,
) -> bytes | None:
    """Read the next frame from ``reader``.

    Returns ``None`` at a clean EOF (between frames) and raises
    :class:`IncompleteReadError` at an EOF inside a frame, or the framer's
    :class:`FrameTooLarge` / :class:`ProtocolError` on bad input: a frame
    over the limit is refused once its header is read, before its body.

    Reads up to ``read_size`` bytes at a time, so one read often completes
    several frames: the framer keeps them and the next calls return them
    without reading.  So once a reader is used with ``read_frame``, read it
    only through ``read_frame`` with the same framer.
    """
    ready = framer._ready
    if ready:
        return ready.popleft()
    if framer._error is not None:
        raise framer._error
    while True:
        data = await reader.read(read_size)
        if not data:
            framer.feed_eof()
            return None
        try:
            framer.feed_into(data, ready)
        except ProtocolError:
            if not ready:
                raise
            # Hand out the good frames before the bad one first; the framer
            # keeps the error and the call after the last of them raises it.
        if ready:
            return ready.popleft()


def write_frame(writer: StreamWriterLike, framer: Framer, payload: Buffer) -> None:
    """Write ``payload`` as one frame; a large payload is not copied.

    Like ``StreamWriter.write`` it does not wait: ``await writer.drain()``
    afterwards to respect flow control.
    """
    if _byte_length(payload) < _COPY_THRESHOLD:
        writer.write(framer.encode(payload))
    else:
        writer.writelines(framer.encode_parts(payload))


def write_frames(writer: StreamWriterLike, framer: Framer, payloads: Iterable[Buffer]) -> None:
    """Write several frames with one ``write``; then ``await writer.drain()``."""
    writer.write(framer.encode_many(payloads))
