"""RESP, the protocol Redis speaks, as a sans-I/O codec: bytes in, replies out.

A client sends each command as an array of bulk strings, the command's name
and then its arguments.  ``SET k v`` is, on the wire::

    *3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n

The server answers with one reply per command, in order.  Every reply starts
with a type byte, and everything but the body of a string ends with CRLF:

====  ============================  ====================================
byte  type                          Python value
====  ============================  ====================================
``+`` simple string (``+OK``)       ``str``
``-`` error (``-ERR bad``)          :class:`RedisError`
``:`` integer (``:42``)             ``int``
``$`` bulk string (``$3 foo``)      ``bytes`` (``$-1``: ``None``)
``*`` array (``*2`` + 2 replies)    ``list`` (``*-1``: ``None``)
``_`` null (RESP3)                  ``None``
``,`` double (RESP3)                ``float``
``#`` boolean (RESP3)               ``bool``
``(`` big number (RESP3)            ``int``
``!`` blob error (RESP3)            :class:`RedisError`
``=`` verbatim string (RESP3)       :class:`VerbatimString`
``%`` map (RESP3)                   ``dict``
``~`` set (RESP3)                   ``set``
``>`` push (RESP3)                  :class:`Push` (a ``list``)
``|`` attribute (RESP3)             parsed, checked, then dropped
====  ============================  ====================================

RESP2 is the first five; a server speaks RESP3 once the client sent
``HELLO 3``.  The parser reads both at any time.

Its invariants, as for netkit's other codecs:

* correct for every split of the input: a reply comes out whole however the
  bytes were chopped, and several replies in one chunk all come out in order;
* bounded memory: every length the server declares is checked against
  :class:`Limits` as soon as its line is read, before the body is buffered,
  and no container is allocated from a declared count;
* linear time: each byte is scanned once for its line end and copied a
  bounded number of times; numbers are checked digit by digit with
  ``bytes.isdigit`` (ASCII only) before conversion, never with a regular
  expression;
* errors latch: after a :class:`RespProtocolError` or
  :class:`RespLimitExceeded` every later call raises the same error, since
  the rest of the stream cannot be parsed.

Streamed strings and aggregates (``$?``, ``*?``), which the RESP3
specification allows and Redis never sends, are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import IncompleteReadError
from .errors import RedisError, RespLimitExceeded, RespProtocolError

__all__ = [
    "Limits",
    "RespParser",
    "Push",
    "VerbatimString",
    "NEED_DATA",
    "encode_command",
    "encode_commands",
]

KIB = 1024
MIB = 1024 * KIB

Buffer = bytes | bytearray | memoryview
"""What the parser accepts as input."""


class _NeedData:
    """The type of :data:`NEED_DATA`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
"""What :meth:`RespParser.next_reply` returns when no whole reply is buffered
yet (a reply may be ``None``, so ``None`` cannot say it)."""


@dataclass(frozen=True)
class Limits:
    """The most one reply may hold; the parser refuses more before buffering it."""

    #: Bytes between a type byte and its CRLF (a simple string, an error, a
    #: number).  64 KiB is Redis' own bound on an inline command line
    #: (PROTO_INLINE_MAX_SIZE); Redis' replies' lines are far shorter.
    max_line_length: int = 64 * KIB
    #: Bytes of one bulk string, blob error or verbatim string.  Redis stores
    #: strings of up to 512 MB (its proto-max-bulk-len), which is the server's
    #: bound; a client reading every reply into memory gets one 8 times lower,
    #: room for any value an application stores on purpose, while a broken or
    #: hostile server's 1 GiB header fails at once.  Raise it for bigger values.
    max_bulk_length: int = 64 * MIB
    #: Elements of one array, set or push, or pairs of one map.  A million:
    #: replies that long come from calls that should page (``SCAN`` instead
    #: of ``KEYS``, ``LRANGE`` with bounds), and the count is checked before a
    #: single element is read.
    max_aggregate_length: int = 1 << 20
    #: Levels of nested aggregates; a top-level array is level 1.  Redis'
    #: deepest replies nest a handful of levels (``XREAD``: streams, entries,
    #: fields; ``EXEC`` adds one), and the bound caps the parser's stack.
    max_depth: int = 32
    #: Bytes of one whole reply on the wire, nesting included: the bound on
    #: what one reply can make the client hold (its Python objects take a few
    #: times as much).  Twice ``max_bulk_length``, so a reply can carry one of
    #: the largest strings and more.
    max_reply_size: int = 128 * MIB

    def __post_init__(self) -> None:
        for name in ("max_line_length", "max_bulk_length", "max_aggregate_length", "max_depth", "max_reply_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")


DEFAULT_LIMITS = Limits()


class Push(list):  # type: ignore[type-arg]
    """A RESP3 push (``>``): data the server sends on its own, such as a pub/sub
    message or a client-side caching invalidation, not a reply to a command."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Push({list.__repr__(self)})"


class VerbatimString(NamedTuple):
    """A RESP3 verbatim string (``=``): text with its format, ``"txt"`` or ``"mkd"``
    (Markdown), as ``INFO`` answers over RESP3."""

    format: str
    data: bytes


# The type bytes, as the ints that indexing a bytearray gives.
_SIMPLE, _ERROR, _INTEGER, _BULK, _ARRAY = 0x2B, 0x2D, 0x3A, 0x24, 0x2A  # + - : $ *
_NULL, _DOUBLE, _BOOLEAN, _BIG_NUMBER = 0x5F, 0x2C, 0x23, 0x28  # _ , # (
_BLOB_ERROR, _VERBATIM, _MAP, _SET, _ATTRIBUTE, _PUSH = 0x21, 0x3D, 0x25, 0x7E, 0x7C, 0x3E  # ! = % ~ | >
_TYPE_BYTES = frozenset(b"+-:$*_,#(!=%~|>")
_BULK_TYPES = {_BULK: "bulk string", _BLOB_ERROR: "blob error", _VERBATIM: "verbatim string"}
_AGGREGATE_TYPES = {_ARRAY: "array", _SET: "set", _PUSH: "push", _MAP: "map", _ATTRIBUTE: "attribute"}
_CR, _LF = 0x0D, 0x0A

# RESP: an integer is "a signed, base-10, 64-bit integer".
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# A length or a 64-bit integer has at most 19 digits; more is malformed,
# and checking the count first keeps int() off over-long input.
_MAX_LENGTH_DIGITS = 19
# Python's own default bound on converting digits to an int
# (sys.int_max_str_digits), set because the conversion is quadratic: a big
# number beyond it is refused rather than converted.
_MAX_BIG_NUMBER_DIGITS = 4300
# What a double may be made of, besides the words below: digits, a point, an
# exponent, signs.  Checked before float(), which would also take "1_0" or " 1".
_DOUBLE_CHARACTERS = b"0123456789.eE+-"
_DOUBLE_WORDS = {b"inf": math.inf, b"+inf": math.inf, b"-inf": -math.inf, b"nan": math.nan, b"-nan": math.nan}

_CONTINUE = object()  # a value was consumed inside an aggregate that is not finished yet


class _Open:
    """An aggregate whose elements are still arriving."""

    __slots__ = ("type", "items", "remaining")

    def __init__(self, type_byte: int, remaining: int) -> None:
        self.type = type_byte
        self.items: list[Any] = []
        self.remaining = remaining


class RespParser:
    """Turns the bytes a Redis server sends into replies, one whole reply at a time.

    Use :meth:`feed` to get every reply a chunk completes, or
    :meth:`receive` and then :meth:`next_reply` until it returns
    :data:`NEED_DATA`, to take replies one by one (and stop taking them, as a
    subscriber whose queue is full does).  Raises :class:`RespProtocolError`
    on malformed input and :class:`RespLimitExceeded` over a limit of
    ``limits``.
    """

    __slots__ = ("limits", "_buffer", "_pos", "_scan_from", "_bulk_type", "_bulk_length", "_stack", "_reply_start", "_error")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._pos = 0  # where the next token (or the awaited bulk body) starts
        self._scan_from = 0  # where the search for the current line's LF goes on
        self._bulk_type = 0  # the type byte of the bulk whose body is awaited
        self._bulk_length = -1  # its length, or -1 when no body is awaited
        self._stack: list[_Open] = []
        self._reply_start = 0  # buffer offset of the current reply's first byte
        self._error: RespProtocolError | RespLimitExceeded | None = None

    def __repr__(self) -> str:
        return f"RespParser(buffered={self.buffered_size}, depth={len(self._stack)})"

    @property
    def buffered_size(self) -> int:
        """Bytes received and not parsed yet (the finished parts of a partial
        reply are held as values, not bytes)."""
        return len(self._buffer) - self._pos

    @property
    def at_reply_boundary(self) -> bool:
        """Whether no reply is partly received (the stream may end here)."""
        return self._pos == len(self._buffer) and not self._stack and self._bulk_length < 0

    # -- receiving ------------------------------------------------------------

    def feed(self, data: Buffer) -> list[Any]:
        """Add received bytes; return every reply they complete, in order."""
        replies: list[Any] = []
        self.feed_into(data, replies)
        return replies

    def feed_into(self, data: Buffer, replies: list[Any]) -> None:
        """Like :meth:`feed`, appending to ``replies``: when the input turns out
        bad, the replies before the bad one are in ``replies`` as the error is raised."""
        self.receive(data)
        self._parse(replies, -1)

    def receive(self, data: Buffer) -> None:
        """Add received bytes without parsing them; :meth:`next_reply` does."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        consumed = self._pos
        if consumed == len(buffer):
            # All taken: parse the new bytes where they are.  Slicing bytes
            # gives bytes, one copy fewer per value than slicing a bytearray.
            self._buffer = data if type(data) is bytes else bytes(data)
        else:
            if type(buffer) is bytes:
                buffer = self._buffer = bytearray(memoryview(buffer)[consumed:])
            elif consumed:
                # Once per chunk, not per reply (CPython drops a bytearray's
                # head without moving the rest).
                del buffer[:consumed]
            buffer += data
        self._pos = 0
        self._scan_from -= consumed
        self._reply_start -= consumed

    def next_reply(self) -> Any:
        """The next whole reply, or :data:`NEED_DATA` when it has not all arrived."""
        replies: list[Any] = []
        self._parse(replies, 1)
        return replies[0] if replies else NEED_DATA

    def feed_eof(self) -> None:
        """Say the stream has ended; raise :class:`IncompleteReadError` (``partial``:
        the unconsumed bytes) if it ended inside a reply."""
        if not self.at_reply_boundary:
            raise IncompleteReadError(bytes(self._buffer[self._pos :]), None)

    # -- parsing --------------------------------------------------------------

    def _parse(self, replies: list[Any], wanted: int) -> None:
        """Append whole replies to ``replies`` until the buffer has no more, or
        ``wanted`` of them (-1: no bound).

        The hot loop: simple strings, integers and bulk strings that arrived
        whole are read inline (a call per token costs more than the token);
        everything else goes through the helpers below, which keep their
        state in ``self``.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        size = len(buffer)
        stack = self._stack
        limits = self.limits
        max_line = limits.max_line_length
        max_bulk = limits.max_bulk_length
        max_reply = limits.max_reply_size
        pos = self._pos
        reply_start = self._reply_start
        try:
            while wanted:
                if self._bulk_length >= 0:  # a bulk string's body that had not all arrived
                    self._pos = pos
                    value = self._bulk_body()
                    if value is NEED_DATA:
                        break
                    pos = self._pos
                else:
                    if pos >= size:
                        break
                    type_byte = buffer[pos]
                    if type_byte not in _TYPE_BYTES:
                        raise RespProtocolError(f"unknown RESP type byte {bytes([type_byte])!r} at the start of a reply or element")
                    if not stack:
                        reply_start = pos
                    scan_from = self._scan_from
                    # A type byte, at most max_line bytes, then CR LF: the LF
                    # lies before pos + max_line + 3.  The search resumes where
                    # the last one stopped, so a long line is scanned once.
                    lf = buffer.find(b"\n", pos if pos > scan_from else scan_from, pos + max_line + 3)
                    if lf < 0:
                        self._line_incomplete(pos)
                        break
                    # RESP: every line ends with CR LF.
                    if buffer[lf - 1] != _CR:
                        raise RespProtocolError("a RESP line ends with LF alone, without CR")
                    if lf + 1 - reply_start > max_reply:
                        raise RespLimitExceeded("max_reply_size", lf + 1 - reply_start, max_reply, what="reply", unit="bytes")
                    if type_byte == _BULK:
                        line = buffer[pos + 1 : lf - 1]
                        if line.isdigit() and len(line) <= _MAX_LENGTH_DIGITS:  # ASCII digits only
                            length = int(line)
                        else:
                            length = _length(bytes(line), "bulk string", null_allowed=True)
                        pos = lf + 1
                        if length < 0:  # RESP2's null bulk string
                            value = None
                        else:
                            if length > max_bulk:
                                raise RespLimitExceeded("max_bulk_length", length, max_bulk, what="bulk string", unit="bytes")
                            end = pos + length
                            if end + 2 - reply_start > max_reply:
                                raise RespLimitExceeded("max_reply_size", end + 2 - reply_start, max_reply, what="reply", unit="bytes")
                            if end + 2 > size or buffer[end] != _CR or buffer[end + 1] != _LF:
                                # Not all here (or malformed): the body is read, or refused, above.
                                self._bulk_type = _BULK
                                self._bulk_length = length
                                continue
                            value = buffer[pos:end]
                            if type(value) is not bytes:
                                value = bytes(value)
                            pos = end + 2
                    elif type_byte == _SIMPLE:
                        line = buffer[pos + 1 : lf - 1]
                        # RESP: a simple string "cannot contain a CR or LF character".
                        if _CR in line:
                            raise RespProtocolError("a RESP simple string contains a CR")
                        value = line.decode("utf-8", "replace")
                        pos = lf + 1
                    elif type_byte == _INTEGER:
                        value = _integer(bytes(buffer[pos + 1 : lf - 1]))
                        pos = lf + 1
                    elif type_byte == _ARRAY and buffer[pos + 1] != 0x2D:  # an array that is not "*-1"
                        line = buffer[pos + 1 : lf - 1]
                        count = int(line) if line.isdigit() and len(line) <= _MAX_LENGTH_DIGITS else _length(bytes(line), "array", null_allowed=True)
                        if count > limits.max_aggregate_length:
                            raise RespLimitExceeded("max_aggregate_length", count, limits.max_aggregate_length, what="array", unit="elements")
                        if len(stack) >= limits.max_depth:
                            raise RespLimitExceeded("max_depth", len(stack) + 1, limits.max_depth, what="nesting", unit="levels")
                        pos = lf + 1
                        if count:
                            stack.append(_Open(_ARRAY, count))
                            continue
                        value = []
                    else:
                        line = bytes(buffer[pos + 1 : lf - 1])
                        self._pos = lf + 1
                        self._reply_start = reply_start
                        value = self._line_value(type_byte, line)
                        pos = self._pos
                        if value is _CONTINUE:
                            continue
                if stack:
                    top = stack[-1]
                    top.items.append(value)
                    top.remaining -= 1
                    if top.remaining:
                        continue
                    value = self._close_aggregates()
                    if value is _CONTINUE:
                        continue
                replies.append(value)
                wanted -= 1
        except (RespProtocolError, RespLimitExceeded) as exc:
            self._error = exc
            raise
        finally:
            self._pos = pos
            self._reply_start = reply_start

    def _line_incomplete(self, pos: int) -> None:
        """The line starting at ``pos`` has no LF yet: refuse it if it is already
        too long, else remember how far the search for its end went."""
        buffer = self._buffer
        maximum = self.limits.max_line_length
        bound = pos + maximum + 3
        # Over the limit as soon as the byte after ``maximum`` bytes is not the CR.
        if len(buffer) >= bound or len(buffer) > bound - 2 and buffer[bound - 2] != _CR:
            raise RespLimitExceeded("max_line_length", len(buffer) - pos - 1, maximum, what="line", unit="bytes")
        self._scan_from = len(buffer)

    def _check_reply_size(self, end: int) -> None:
        size = end - self._reply_start
        if size > self.limits.max_reply_size:
            raise RespLimitExceeded("max_reply_size", size, self.limits.max_reply_size, what="reply", unit="bytes")

    def _line_value(self, type_byte: int, line: bytes) -> Any:
        """The value a line stands for, or ``_CONTINUE`` when it opens something
        (a bulk's body, an aggregate's elements) that the next tokens complete."""
        if type_byte == _BULK or type_byte == _BLOB_ERROR or type_byte == _VERBATIM:
            return self._bulk_header(type_byte, line)
        if type_byte == _SIMPLE:
            return _text(line, "simple string")
        if type_byte == _INTEGER:
            return _integer(line)
        if type_byte in _AGGREGATE_TYPES:
            return self._open_aggregate(type_byte, line)
        if type_byte == _ERROR:
            return RedisError(_text(line, "error"))
        if type_byte == _NULL:
            if line:
                raise RespProtocolError(f"a RESP3 null carries no data, not {line[:40]!r}")
            return None
        if type_byte == _DOUBLE:
            return _double(line)
        if type_byte == _BOOLEAN:
            if line == b"t":
                return True
            if line == b"f":
                return False
            raise RespProtocolError(f"a RESP3 boolean is #t or #f, not #{line[:40]!r}")
        return _big_number(line)  # the only type byte left: "("

    def _bulk_header(self, type_byte: int, line: bytes) -> Any:
        what = _BULK_TYPES[type_byte]
        # RESP2: "$-1" is the null bulk string; RESP3 keeps it for RESP2 commands.
        length = _length(line, what, null_allowed=type_byte == _BULK)
        if length < 0:
            return None
        if length > self.limits.max_bulk_length:
            raise RespLimitExceeded("max_bulk_length", length, self.limits.max_bulk_length, what=what, unit="bytes")
        self._check_reply_size(self._pos + length + 2)
        self._bulk_type = type_byte
        self._bulk_length = length
        return _CONTINUE

    def _bulk_body(self) -> Any:
        buffer = self._buffer
        start = self._pos
        end = start + self._bulk_length
        if len(buffer) > end and buffer[end] != _CR or len(buffer) > end + 1 and buffer[end + 1] != _LF:
            raise RespProtocolError(f"a {_BULK_TYPES[self._bulk_type]} of {self._bulk_length} bytes is not followed by CRLF")
        if len(buffer) < end + 2:
            return NEED_DATA
        with memoryview(buffer) as view:
            data = view[start:end].tobytes()  # one copy, where bytes(buffer[a:b]) makes two
        self._pos = end + 2
        self._bulk_length = -1
        if self._bulk_type == _BULK:
            return data
        if self._bulk_type == _BLOB_ERROR:
            return RedisError(data.decode("utf-8", "replace"))
        # RESP3: a verbatim string's first three bytes are its format, then ":".
        if len(data) < 4 or data[3] != 0x3A:
            raise RespProtocolError(f"a verbatim string starts with a 3-byte format and ':', not {data[:8]!r}")
        return VerbatimString(data[:3].decode("ascii", "replace"), data[4:])

    def _open_aggregate(self, type_byte: int, line: bytes) -> Any:
        what = _AGGREGATE_TYPES[type_byte]
        # RESP2: "*-1" is the null array.
        count = _length(line, what, null_allowed=type_byte == _ARRAY)
        if count < 0:
            return None
        limits = self.limits
        if count > limits.max_aggregate_length:
            unit = "pairs" if type_byte in (_MAP, _ATTRIBUTE) else "elements"
            raise RespLimitExceeded("max_aggregate_length", count, limits.max_aggregate_length, what=what, unit=unit)
        depth = len(self._stack) + 1
        if depth > limits.max_depth:
            raise RespLimitExceeded("max_depth", depth, limits.max_depth, what="nesting", unit="levels")
        if count == 0:
            return _CONTINUE if type_byte == _ATTRIBUTE else _finish(type_byte, [])
        # A map's and an attribute's entries are key, value, key, value ...
        self._stack.append(_Open(type_byte, count * 2 if type_byte in (_MAP, _ATTRIBUTE) else count))
        return _CONTINUE

    def _close_aggregates(self) -> Any:
        """The aggregate on top of the stack got its last element: close it, and
        the ones it completes in turn.  Return the whole reply once the
        outermost one is closed, else ``_CONTINUE``."""
        stack = self._stack
        while True:
            top = stack.pop()
            if top.type == _ATTRIBUTE:
                # RESP3: an attribute annotates the value that follows it and
                # does not count as an element: drop it, keep reading.
                return _CONTINUE
            value = _finish(top.type, top.items)
            if not stack:
                return value
            parent = stack[-1]
            parent.items.append(value)
            parent.remaining -= 1
            if parent.remaining:
                return _CONTINUE


# -- scalar values ---------------------------------------------------------------


def _text(line: bytes, what: str) -> str:
    # RESP: a simple string or error "cannot contain a CR or LF character".
    if b"\r" in line:
        raise RespProtocolError(f"a RESP {what} contains a CR")
    return line.decode("utf-8", "replace")


def _length(line: bytes, what: str, *, null_allowed: bool) -> int:
    """A declared length or count: ASCII digits, or ``-1`` where RESP allows a null."""
    if line.isdigit() and len(line) <= _MAX_LENGTH_DIGITS:  # bytes.isdigit(): ASCII digits only
        return int(line)
    if line == b"-1" and null_allowed:
        return -1
    if line.startswith(b"-") and line[1:].isdigit():
        raise RespProtocolError(f"a {what} of negative length {line[:24].decode()}")
    if line == b"?":
        raise RespProtocolError(f"a streamed {what} (RESP3 '?' length): Redis never sends one and netkit does not read them")
    raise RespProtocolError(f"the length of a {what} is not a decimal number of at most {_MAX_LENGTH_DIGITS} digits: {line[:40]!r}")


def _integer(line: bytes) -> int:
    digits = line[1:] if line.startswith(b"-") else line
    if not digits.isdigit() or len(digits) > _MAX_LENGTH_DIGITS:
        raise RespProtocolError(f"a RESP integer is at most {_MAX_LENGTH_DIGITS} decimal digits, not {line[:40]!r}")
    value = int(line)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise RespProtocolError(f"a RESP integer is 64-bit; {line.decode()} is out of range")
    return value


def _double(line: bytes) -> float:
    word = _DOUBLE_WORDS.get(line)
    if word is not None:
        return word
    if line and not line.translate(None, _DOUBLE_CHARACTERS):
        try:
            return float(line)
        except ValueError:
            pass
    raise RespProtocolError(f"a RESP3 double is a decimal number, inf, -inf or nan, not {line[:40]!r}")


def _big_number(line: bytes) -> int:
    digits = line[1:] if line.startswith((b"-", b"+")) else line
    if not digits.isdigit():
        raise RespProtocolError(f"a RESP3 big number is decimal digits, not {line[:40]!r}")
    if len(digits) > _MAX_BIG_NUMBER_DIGITS:
        raise RespProtocolError(f"a RESP3 big number of {len(digits)} digits: more than the {_MAX_BIG_NUMBER_DIGITS} netkit converts")
    return int(line)


# -- aggregates ------------------------------------------------------------------


def _finish(type_byte: int, items: list[Any]) -> Any:
    if type_byte == _ARRAY:
        return items
    if type_byte == _PUSH:
        return Push(items)
    if type_byte == _SET:
        try:
            return set(items)
        except TypeError:
            return {_hashable(item) for item in items}
    keys, values = items[0::2], items[1::2]
    try:
        return dict(zip(keys, values))
    except TypeError:  # a key that is itself an aggregate
        return dict(zip(map(_hashable, keys), values))


def _hashable(value: Any) -> Any:
    """``value`` as something a set or a dict key can hold: an aggregate's
    lists become tuples, its sets frozensets, its maps tuples of pairs."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, set):
        return frozenset(value)
    if isinstance(value, dict):
        return tuple((_hashable(key), _hashable(item)) for key, item in value.items())
    return value


# -- encoding commands -----------------------------------------------------------


def encode_command(*args: Any) -> bytes:
    """A command as RESP puts it on the wire: an array of bulk strings.

    ``str`` is sent as UTF-8, ``bytes``/``bytearray``/``memoryview`` as they
    are, ``int`` and ``float`` as their decimal text (``repr``, the shortest
    text that reads back as the same float).  ``bool`` and other types raise
    ``TypeError``: Redis has no such type, and guessing ``"True"`` or ``"1"``
    would store surprises.
    """
    if not args:
        raise ValueError("a Redis command needs at least its name")
    count = len(args)
    parts = [_ARRAY_HEADERS[count] if count < _CACHED_HEADERS else b"*%d\r\n" % count]
    append = parts.append
    for arg in args:
        data = arg.encode() if type(arg) is str else _argument(arg)
        size = len(data)
        if size < _CACHED_HEADERS:
            # Short arguments (most keys and values): one concatenation with a
            # prebuilt header instead of formatting one; join() copies once more.
            append(_BULK_HEADERS[size] + data + b"\r\n")
        else:  # a long value is copied by join() alone
            append(b"$%d\r\n" % size)
            append(data)
            append(b"\r\n")
    return b"".join(parts)


# Headers of arrays and bulk strings of fewer than this many elements or
# bytes, built once: formatting "$%d" costs more than the rest of a short argument.
_CACHED_HEADERS = 256
_ARRAY_HEADERS = [b"*%d\r\n" % number for number in range(_CACHED_HEADERS)]
_BULK_HEADERS = [b"$%d\r\n" % number for number in range(_CACHED_HEADERS)]


def encode_commands(commands: Iterable[Sequence[Any]]) -> bytes:
    """Several commands in one string of bytes, to send at once (a pipeline)."""
    return b"".join([encode_command(*command) for command in commands])


def _argument(arg: Any) -> bytes | bytearray | memoryview:
    kind = type(arg)
    if kind is str:
        return arg.encode()  # type: ignore[no-any-return]
    if kind is bytes or kind is bytearray:
        return arg  # type: ignore[no-any-return]
    if kind is int:
        return b"%d" % arg
    if kind is memoryview:
        # Bytes, not items: len() of a view over an array('I') counts 4-byte items.
        return arg.cast("B") if arg.c_contiguous else arg.tobytes()  # type: ignore[no-any-return]
    if kind is float:
        return repr(arg).encode()
    if isinstance(arg, bool) or not isinstance(arg, (str, bytes, bytearray, int, float)):
        raise TypeError(f"a Redis command argument is str, bytes, int or float, not {type(arg).__name__}")
    # Subclasses of the accepted types (an IntEnum, a str subclass) as their base.
    if isinstance(arg, str):
        return str(arg).encode()
    if isinstance(arg, int):
        return b"%d" % int(arg)
    if isinstance(arg, float):
        return repr(float(arg)).encode()
    return bytes(arg)
