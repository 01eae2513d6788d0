"""The WebSocket frame codec (RFC 6455 §5): bytes to frames and frames to bytes.

:class:`FrameParser` turns a byte stream into :class:`Frame` objects and
enforces everything about framing that the frame headers decide: reserved
bits, opcodes, masking by the right side, the rules for control frames,
fragmentation order, and the size limits, which are checked from the header
alone, before any payload is buffered.  A violation stops the parser and
leaves the error, carrying its close code, in :attr:`FrameParser.error`.

Serializing is :func:`serialize_frame` (one buffer) or :func:`encode_header`
plus :func:`apply_mask` (to write a large payload without copying it).

Speed matters here, since every byte of every message passes through: the
parser walks one buffer with integer offsets, builds one small tuple per
frame, and unmasks without a Python-level loop over bytes (see
:func:`apply_mask`).
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum
from typing import NamedTuple

from ..errors import FrameTooLarge, MessageTooBig, ProtocolError

__all__ = [
    "Opcode",
    "CONTINUATION",
    "TEXT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
    "RSV1",
    "RSV2",
    "RSV3",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_CONTROL_PAYLOAD",
    "Frame",
    "FrameParser",
    "apply_mask",
    "encode_header",
    "serialize_frame",
]


class Opcode(IntEnum):
    """RFC 6455 §5.2 opcodes; §11.8 registers no others."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


CONTINUATION = Opcode.CONTINUATION
TEXT = Opcode.TEXT
BINARY = Opcode.BINARY
CLOSE = Opcode.CLOSE
PING = Opcode.PING
PONG = Opcode.PONG

# The reserved bits, where they sit in a frame's first byte; a Frame's ``rsv``
# is their bitwise or.  RSV1 is permessage-deflate's (RFC 7692 §6).
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10

_FIN = 0x80
_MASK = 0x80
_RSV_BITS = 0x70
_OPCODE_BITS = 0x0F
_DATA_OPCODES = frozenset((CONTINUATION, TEXT, BINARY))
_CONTROL_OPCODES = frozenset((CLOSE, PING, PONG))

# RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes
# or less and MUST NOT be fragmented."
MAX_CONTROL_PAYLOAD = 125

# The default bound on a message, all its fragments together: 1 MiB, as
# websockets' max_size, far above what chat or RPC messages need and small
# enough that a peer cannot make one connection hold much memory.
DEFAULT_MAX_MESSAGE_SIZE = 2**20


class Frame(NamedTuple):
    """One frame: ``opcode``, unmasked ``payload``, ``fin`` and ``rsv`` bits.

    A named tuple so that the parser can build one cheaply and readers can
    unpack it: ``opcode, payload, fin, rsv = frame``.
    """

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0

    def serialize(self, *, mask: bool = False, mask_key: bytes | None = None) -> bytes:
        """This frame as bytes; see :func:`serialize_frame`."""
        return serialize_frame(self.opcode, self.payload, fin=self.fin, rsv=self.rsv, mask=mask, mask_key=mask_key)


# Masking (RFC 6455 §5.3): octet i of the payload is XORed with octet i % 4 of
# the key.  A Python loop over bytes would cost ~50 ns per byte; instead:
#
# * small payloads are XORed as one big integer with the key repeated to the
#   payload's length, itself an integer: for up to 128 bytes it is
#   key * 0x...0000000100000001, shifted, both factors from tables, so a
#   64-byte frame costs three integer operations;
# * from 2 KiB on, bytes.translate runs four times, once per key octet, over
#   the strided slices data[i::4], with the table "XOR with that octet":
#   memory-speed C loops, faster than the big integer (which converts to and
#   from 30-bit digits).  It works through 64 KiB blocks joined at the end,
#   so that no temporary buffer is large enough for the C allocator to map
#   fresh pages for it, which would cost more than the XOR itself.
_SMALL_MASK_LIMIT = 128
_TRANSLATE_THRESHOLD = 2048
_TRANSLATE_BLOCK = 65536  # a multiple of 4, so every block starts at key octet 0
# _KEY_REPEAT[n] * key has the key repeated ceil(n / 4) times; shifting right
# by _KEY_SHIFT[n] bits keeps exactly its first n octets.
_KEY_REPEAT = [sum(1 << (32 * i) for i in range((n + 3) // 4)) for n in range(_SMALL_MASK_LIMIT + 1)]
_KEY_SHIFT = [8 * (-n % 4) for n in range(_SMALL_MASK_LIMIT + 1)]
_XOR_TABLES = [bytes(octet ^ k for octet in range(256)) for k in range(256)]


def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """Mask or unmask ``data`` with the 4-byte ``key`` (the operation is its own inverse)."""
    n = len(data)
    if n <= _SMALL_MASK_LIMIT:
        if not n:
            return b""
        stream = int.from_bytes(key, "big") * _KEY_REPEAT[n] >> _KEY_SHIFT[n]
        return (int.from_bytes(data, "big") ^ stream).to_bytes(n, "big")
    if n < _TRANSLATE_THRESHOLD:
        stream = int.from_bytes(key * ((n >> 2) + 1), "big") >> (8 * (4 - (n & 3)))
        return (int.from_bytes(data, "big") ^ stream).to_bytes(n, "big")
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    table0, table1, table2, table3 = (_XOR_TABLES[octet] for octet in key)
    parts = []
    for start in range(0, n, _TRANSLATE_BLOCK):
        end = min(start + _TRANSLATE_BLOCK, n)
        out = bytearray(end - start)
        out[0::4] = data[start:end:4].translate(table0)
        out[1::4] = data[start + 1 : end : 4].translate(table1)
        out[2::4] = data[start + 2 : end : 4].translate(table2)
        out[3::4] = data[start + 3 : end : 4].translate(table3)
        parts.append(out)
    return b"".join(parts)


_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_unpack_short = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from
_unpack_key = struct.Struct("!I").unpack_from  # the mask key as a big-endian integer


def encode_header(opcode: int, length: int, *, fin: bool = True, rsv: int = 0, mask_key: bytes | None = None) -> bytes:
    """The header of a frame carrying ``length`` payload bytes, mask key included.

    RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the
    length", so a 7-bit length up to 125, 16 bits up to 65535, else 64.
    Raises ``ValueError`` for a frame that would break the protocol (an
    unknown opcode, stray bits, an oversized or fragmented control frame).
    """
    if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES:
        raise ValueError(f"unknown opcode {opcode:#x}")
    if rsv & ~_RSV_BITS:
        raise ValueError(f"rsv must be a combination of RSV1, RSV2 and RSV3, not {rsv:#x}")
    if opcode in _CONTROL_OPCODES and (length > MAX_CONTROL_PAYLOAD or not fin):
        raise ValueError("control frames carry at most 125 bytes and cannot be fragmented")
    first = (_FIN if fin else 0) | rsv | opcode
    mask_bit = _MASK if mask_key is not None else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = _pack_short(first, mask_bit | 126, length)
    elif length < 1 << 63:
        header = _pack_long(first, mask_bit | 127, length)
    else:
        raise ValueError("a frame payload is limited to 2**63 - 1 bytes")
    if mask_key is None:
        return header
    if len(mask_key) != 4:
        raise ValueError("the mask key is 4 bytes")
    return header + mask_key


def serialize_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = False,
    mask_key: bytes | None = None,
) -> bytes:
    """A whole frame as one buffer.

    ``mask=True`` masks the payload, as a client must (RFC 6455 §5.3), with
    ``mask_key`` or else a fresh key from ``os.urandom``.  To send a large
    unmasked payload without copying it, write :func:`encode_header` and the
    payload as two buffers instead.
    """
    if mask or mask_key is not None:
        # RFC 6455 §5.3: "The masking key is a 32-bit value chosen at random
        # by the client ... MUST be derived from a strong source of entropy".
        key = os.urandom(4) if mask_key is None else mask_key
        return encode_header(opcode, len(payload), fin=fin, rsv=rsv, mask_key=key) + apply_mask(payload, key)
    return encode_header(opcode, len(payload), fin=fin, rsv=rsv) + payload


# What a frame's first byte says about it, before looking at anything else.
_INVALID = 0  # reserved bits not allowed, unknown opcode, fragmented control frame
_STARTS_MESSAGE = 1  # text or binary
_CONTINUES_MESSAGE = 2  # continuation
_IS_CONTROL = 3  # close, ping, pong with FIN set


def _classify_first_bytes(allowed_rsv: int) -> bytes:
    """The kind of every possible first byte, given the reserved bits allowed."""
    kinds = bytearray([_INVALID]) * 256
    for first in range(256):
        opcode = first & _OPCODE_BITS
        if first & _RSV_BITS & ~allowed_rsv:
            continue
        if opcode in (TEXT, BINARY):
            kinds[first] = _STARTS_MESSAGE
        elif opcode == CONTINUATION:
            kinds[first] = _CONTINUES_MESSAGE
        elif opcode in _CONTROL_OPCODES and first & _FIN:
            kinds[first] = _IS_CONTROL
    return bytes(kinds)


class FrameParser:
    """Incremental frame parser for one direction of one connection.

    Feed it bytes as they arrive, in chunks of any size; :meth:`feed` returns
    the frames completed so far.  The parser checks, from the headers:

    * RFC 6455 §5.1: frames from a client are masked, frames from a server are
      not (``expect_masked``);
    * §5.2: reserved bits are zero unless an extension allows them
      (``allowed_rsv``), the opcode is known, a 64-bit length has its most
      significant bit clear;
    * §5.4: continuations continue a message, and a new message does not
      start inside another;
    * §5.5: control frames carry at most 125 bytes and are not fragmented;
    * the frame size (``max_frame_size``, no limit by default) and the size of
      the message so far, all fragments together (``max_message_size``,
      1 MiB by default); ``None`` means no limit.

    On a violation the parser returns the frames before it, stores the error
    (a :class:`~netkit.errors.ProtocolError` whose ``close_code`` is 1002, or
    1009 for a limit) in :attr:`error`, and ignores any further input.

    With ``split_partial=True``, a data frame whose payload has only partly
    arrived is returned in pieces as its bytes come in, as if the sender had
    fragmented it: the first piece keeps the frame's opcode and ``rsv`` with
    ``fin=False``, the next ones are continuations, and the last one has the
    frame's ``fin``.  That is the same message (RFC 6455 §5.4 lets
    intermediaries refragment), it lets a large message be consumed while it
    arrives, and nothing is buffered twice.  Control frames are always whole.

    A payload length above the limits is refused from the header alone, and
    a length that is not in its shortest form is accepted: RFC 6455 §5.2
    asks the shortest form of senders, and refusing it gains nothing.
    """

    __slots__ = (
        "error",
        "expect_masked",
        "max_frame_size",
        "max_message_size",
        "split_partial",
        "allowed_rsv",
        "_kinds",
        "_mask_bit",
        "_frame_limit",
        "_message_limit",
        "_lone_limit",
        "_buffer",
        "_needed",
        "_in_message",
        "_message_size",
        "_remaining",
        "_piece_opcode",
        "_piece_rsv",
        "_piece_fin",
        "_piece_key",
    )

    def __init__(
        self,
        *,
        expect_masked: bool,
        max_frame_size: int | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        allowed_rsv: int = 0,
        split_partial: bool = False,
    ) -> None:
        self.error: ProtocolError | None = None
        self.expect_masked = expect_masked
        self.max_frame_size = max_frame_size
        self.max_message_size = max_message_size
        self.split_partial = split_partial
        self.allowed_rsv = allowed_rsv
        self._kinds = _classify_first_bytes(allowed_rsv)
        self._mask_bit = _MASK if expect_masked else 0
        # No limit is a limit no length can exceed (lengths are below 2**63).
        self._frame_limit = 1 << 63 if max_frame_size is None else max_frame_size
        self._message_limit = 1 << 63 if max_message_size is None else max_message_size
        # The longest payload feed_lone_message() takes: a 7-bit length, within both limits.
        self._lone_limit = min(125, self._frame_limit, self._message_limit)
        self._buffer = bytearray()  # bytes of a frame not complete yet
        self._needed = 0  # bytes _buffer must hold before parsing is worth trying
        self._in_message = False  # a fragmented data message is under way
        self._message_size = 0  # its size so far
        # A data frame being returned in pieces (split_partial): payload bytes
        # still to come, and the opcode, rsv, fin and key the next piece gets.
        self._remaining = 0
        self._piece_opcode = 0
        self._piece_rsv = 0
        self._piece_fin = True
        self._piece_key: bytes | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Parse ``data`` after what came before; return the frames completed.

        After an error, returns the frames before it and sets :attr:`error`;
        from then on input is ignored.
        """
        if self.error is not None or not data:
            return []
        frames: list[Frame] = []
        if self._remaining:
            taken = self._continue_piece(data, frames)
            if taken == len(data):
                return frames
            data = data[taken:]
        buffer = self._buffer
        if buffer:
            if len(buffer) + len(data) < self._needed:
                buffer += data
                return frames
            data = b"".join((buffer, data))
            buffer.clear()
        elif not isinstance(data, bytes):
            data = bytes(data)
        self._parse(data, frames)
        return frames

    def feed_lone_message(self, data: bytes | bytearray | memoryview) -> tuple[int, bytes] | None:
        """The fast path for the most common read of all: ``data`` is exactly
        one whole, unfragmented text or binary frame of at most 125 bytes, and
        nothing is buffered or under way.  Returns ``(opcode, payload)``, or
        ``None`` (consuming nothing) when any of that is not so: then call
        :meth:`feed`, which also reports every error this path leaves to it.

        It skips the general parser's setup, which costs as much as the
        parsing itself for a lone small frame.
        """
        if self._buffer or self._remaining or self._in_message or self.error is not None or type(data) is not bytes:
            return None
        size = len(data)
        if size < 2:
            return None
        first = data[0]
        if first != 0x81 and first != 0x82:  # FIN, no RSV bits, text or binary
            return None
        # The mask bit must be as expected, so XOR-ing it away leaves the
        # 7-bit length, or a number above 127 when the bit was wrong.
        # Lengths 126 and 127 announce an extended length: the general path.
        length = data[1] ^ self._mask_bit
        if length > self._lone_limit:
            return None
        if self._mask_bit:
            if size != 6 + length:
                return None
            if not length:
                return first & _OPCODE_BITS, b""
            stream = _unpack_key(data, 2)[0] * _KEY_REPEAT[length] >> _KEY_SHIFT[length]
            return first & _OPCODE_BITS, (int.from_bytes(data[6:], "big") ^ stream).to_bytes(length, "big")
        if size != 2 + length:
            return None
        return first & _OPCODE_BITS, data[2:]

    def _parse(self, data: bytes, frames: list[Frame]) -> None:
        """The hot loop: frames from ``data`` into ``frames``, the rest buffered."""
        kinds = self._kinds
        mask_bit = self._mask_bit
        frame_limit = self._frame_limit
        message_limit = self._message_limit
        in_message = self._in_message
        message_size = self._message_size
        append = frames.append
        new_frame = tuple.__new__
        from_bytes = int.from_bytes
        key_repeat = _KEY_REPEAT
        key_shift = _KEY_SHIFT
        unpack_key = _unpack_key
        mask_length = 4 if mask_bit else 0
        end = len(data)
        position = 0
        needed = 2
        while True:
            available = end - position
            if available < 2:
                needed = 2
                break
            first = data[position]
            second = data[position + 1]
            kind = kinds[first]
            length = second & 0x7F
            if not kind or second & _MASK != mask_bit:
                self._fail(self._header_error(first, second))
                break
            header_end = position + 2
            if length > 125:
                if kind == _IS_CONTROL:
                    self._fail(self._header_error(first, second))
                    break
                if length == 126:
                    if available < 4:
                        needed = 4 + mask_length
                        break
                    length = _unpack_short(data, header_end)[0]
                    header_end += 2
                else:
                    if available < 10:
                        needed = 10 + mask_length
                        break
                    length = _unpack_long(data, header_end)[0]
                    header_end += 8
                    if length >> 63:
                        # RFC 6455 §5.2: "the most significant bit MUST be 0".
                        self._fail(ProtocolError("the most significant bit of a 64-bit payload length is set"))
                        break
            if kind == _STARTS_MESSAGE:
                # RFC 6455 §5.4: "The fragments of one message MUST NOT be
                # interleaved between the fragments of another message".
                if in_message:
                    self._fail(ProtocolError("a new data frame started inside a fragmented message"))
                    break
                size = length
            elif kind == _CONTINUES_MESSAGE:
                if not in_message:
                    self._fail(ProtocolError("a continuation frame came with no message to continue"))
                    break
                size = message_size + length
            else:
                size = 0  # control frames are not part of a message
            # The limits, from the header alone, before buffering any payload.
            if length > frame_limit or size > message_limit:
                self._fail(self._size_error(length, size))
                break
            payload_start = header_end + mask_length
            payload_end = payload_start + length
            if payload_end > end:
                if not self.split_partial or kind == _IS_CONTROL:
                    needed = payload_end - position
                    break
                if end < payload_start:
                    needed = payload_start - position  # the rest of the header
                    break
                # Hand over what is here and keep the frame open for the rest.
                in_message = first < _FIN
                message_size = size if in_message else 0
                self._start_piece(data, position, header_end, payload_start, length, frames)
                position = end
                continue
            if mask_bit:
                payload = data[payload_start:payload_end]
                if length <= 128:
                    if length:
                        stream = unpack_key(data, header_end)[0] * key_repeat[length] >> key_shift[length]
                        payload = (from_bytes(payload, "big") ^ stream).to_bytes(length, "big")
                else:
                    payload = apply_mask(payload, data[header_end:payload_start])
            else:
                payload = data[payload_start:payload_end]
            if kind != _IS_CONTROL:
                # FIN clear: the message goes on in continuation frames.
                in_message = first < _FIN
                message_size = size if in_message else 0
            append(new_frame(Frame, (first & _OPCODE_BITS, payload, first >= _FIN, first & _RSV_BITS)))
            position = payload_end
        self._in_message = in_message
        self._message_size = message_size
        if position < end and self.error is None:
            self._buffer += data[position:]
            self._needed = needed

    def _start_piece(
        self, data: bytes, position: int, header_end: int, payload_start: int, length: int, frames: list[Frame]
    ) -> None:
        """Begin returning the frame at ``position`` in pieces."""
        first = data[position]
        self._piece_opcode = first & _OPCODE_BITS
        self._piece_rsv = first & _RSV_BITS
        self._piece_fin = first >= _FIN
        self._piece_key = data[header_end:payload_start] if payload_start > header_end else None
        self._remaining = length
        if payload_start < len(data):
            self._continue_piece(memoryview(data)[payload_start:], frames)

    def _continue_piece(self, data: bytes | bytearray | memoryview, frames: list[Frame]) -> int:
        """Return the next piece of the open frame from ``data``; say how much was used."""
        taken = min(self._remaining, len(data))
        piece = data[:taken]
        key = self._piece_key
        if key is not None:
            piece = apply_mask(piece, key)
            # The next byte is unmasked with key octet (offset % 4): rotate.
            shift = taken & 3
            self._piece_key = key[shift:] + key[:shift]
        elif not isinstance(piece, bytes):
            piece = bytes(piece)
        self._remaining -= taken
        fin = self._piece_fin if not self._remaining else False
        frames.append(Frame(self._piece_opcode, piece, fin, self._piece_rsv))
        self._piece_opcode = 0  # the next pieces are continuations
        self._piece_rsv = 0
        return taken

    def _fail(self, error: ProtocolError) -> None:
        self.error = error
        self._buffer = bytearray()

    def _header_error(self, first: int, second: int) -> ProtocolError:
        """Say precisely what is wrong with a header the fast path refused."""
        opcode = first & _OPCODE_BITS
        if first & _RSV_BITS & ~self.allowed_rsv:
            # RFC 6455 §5.2: "If a nonzero value is received and none of the
            # negotiated extensions defines the meaning of such a nonzero
            # value, the receiving endpoint MUST _Fail the WebSocket
            # Connection_."
            return ProtocolError(f"reserved bits {first & _RSV_BITS:#04x} set without an extension that defines them")
        if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES:
            # RFC 6455 §5.2: "If an unknown opcode is received, the receiving
            # endpoint MUST _Fail the WebSocket Connection_."
            return ProtocolError(f"unknown opcode {opcode:#x}")
        if opcode in _CONTROL_OPCODES and not first & _FIN:
            return ProtocolError("a control frame cannot be fragmented")
        if opcode in _CONTROL_OPCODES and second & 0x7F > MAX_CONTROL_PAYLOAD:
            return ProtocolError("a control frame carries at most 125 bytes")
        if self.expect_masked:
            # RFC 6455 §5.1: "a server MUST close the connection upon receiving
            # a frame that is not masked".
            return ProtocolError("a frame from the client is not masked")
        # RFC 6455 §5.1: "A client MUST close a connection if it detects a
        # masked frame."
        return ProtocolError("a frame from the server is masked")

    def _size_error(self, length: int, size: int) -> ProtocolError:
        # RFC 6455 §7.4.1: 1009 "indicates that an endpoint is terminating the
        # connection because it has received a message that is too big for
        # it to process."
        if length > self._frame_limit:
            return FrameTooLarge(length, self._frame_limit)
        return MessageTooBig(size, self._message_limit)

