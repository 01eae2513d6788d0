"""HTTP/1.1 message heads (RFC 9112), parsed incrementally and bounded, and written.

This is the part of HTTP that a WebSocket opening handshake needs: a request
head (request line and header fields up to the blank line), a response head,
and, for a refused handshake, the response body.  It is sans-I/O: feed it
bytes, get a :class:`Request` or :class:`Response` back once the head is
complete, together with the bytes that followed it, untouched (they may
already be the first WebSocket frames).

Every parse is bounded, and linear in its input however the input is cut
into pieces: no regular expression ever runs on a peer's bytes.  Input over
a limit raises :class:`~netkit.errors.HTTPError` carrying the status to
answer with (414 for a request line too long, 431 for header fields too
large or too many, 400 for anything malformed); nothing is buffered past a
limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

from .errors import HTTPError, InvalidStateError

__all__ = [
    "DEFAULT_MAX_LINE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD_SIZE",
    "DEFAULT_MAX_BODY_SIZE",
    "Headers",
    "Request",
    "Response",
    "RequestParser",
    "ResponseParser",
    "BodyReader",
    "serialize_request",
    "serialize_response",
    "is_token",
    "parse_decimal",
]

# Limits, and the precedents behind them.  The line limit is websockets'
# 8192-byte line limit (Apache's LimitRequestLine and LimitRequestFieldSize
# are 8190); 128 fields is websockets' limit too (Apache allows 100).  A
# whole head of 8 KiB is what nginx's default large_client_header_buffers
# allow for one line and what Node.js allowed before v13 (16 KiB since; h11
# also uses 16 KiB): a WebSocket upgrade request is a few hundred bytes, so
# 8 KiB leaves room for large cookies while bounding what a slow or hostile
# client can make us hold.
DEFAULT_MAX_LINE = 8192
DEFAULT_MAX_HEADERS = 128
DEFAULT_MAX_HEAD_SIZE = 8192
# The body of a refused handshake is kept for the error only (an error page,
# a redirect notice), so 64 KiB is plenty; the rest is not waited for.
DEFAULT_MAX_BODY_SIZE = 65536

# Every check on peer data below is one linear pass of a bytes method
# (find, partition, strip, translate): no regular expression, so nothing can
# backtrack, whatever a peer sends.

# RFC 9110 §5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'"
# / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 5234 appendix B.1: VCHAR = %x21-7E, the visible ASCII characters.
_VCHAR = bytes(range(0x21, 0x7F))
# RFC 5234 appendix B.1: HEXDIG, in either case (RFC 9112 §7.1 reads the chunk
# size case-insensitively).
_HEXDIG = b"0123456789ABCDEFabcdef"
# RFC 9110 §5.5: field values are visible characters, SP, HTAB and obs-text;
# CR, LF, NUL and the other controls are invalid (RFC 9112 §4 allows the same
# in a reason phrase).
_CONTROLS = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"
# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT.
_HTTP_NAME = b"HTTP/"

# The longest numbers accepted, so that int() never sees more.  RFC 9110
# §8.6: "a recipient MUST anticipate potentially large decimal numerals and
# prevent parsing errors due to integer conversion overflows or precision
# loss"; 18 decimal digits always fit in a signed 64-bit integer, which is as
# large as any real Content-Length gets.  RFC 9112 §7.1 says the same of
# chunk sizes: 16 hexadecimal digits are 64 bits.
_MAX_CONTENT_LENGTH_DIGITS = 18
_MAX_CHUNK_SIZE_DIGITS = 16


def _consists_of(data: bytes, allowed: bytes) -> bool:
    """Whether ``data`` is not empty and holds only bytes from ``allowed``."""
    return bool(data) and not data.translate(None, allowed)


def _has_control(data: bytes) -> bool:
    """Whether ``data`` holds a byte that no field value may contain."""
    return len(data.translate(None, _CONTROLS)) != len(data)


def is_token(name: str) -> bool:
    """Whether ``name`` is an HTTP token (RFC 9110 §5.6.2): a valid method,
    field name or WebSocket subprotocol name."""
    return name.isascii() and _consists_of(name.encode("ascii"), _TCHAR)


def parse_decimal(text: str | bytes, max_digits: int) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else ``None``.

    Only ``0``-``9`` count as digits: ``str.isdigit`` alone also accepts
    ``"²"`` and other digits that ``int()`` refuses or reads differently.
    The length is checked before ``int()`` runs, so a peer's 5,000-digit
    number costs nothing and raises nothing.
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _parse_version(text: bytes) -> tuple[int, int] | None:
    """``(major, minor)`` of an ``HTTP/x.y`` version, ``None`` if malformed."""
    # RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT; the name
    # is case-sensitive.
    if len(text) != 8 or not text.startswith(_HTTP_NAME) or text[6:7] != b".":
        return None
    major, minor = parse_decimal(text[5:6], 1), parse_decimal(text[7:8], 1)
    if major is None or minor is None:
        return None
    return major, minor


class Headers:
    """Header fields in the order received: a case-insensitive multi-map.

    Names compare case-insensitively (RFC 9110 §5.1) and repeated fields are
    all kept, since some of them (``Sec-WebSocket-Protocol``) may legitimately
    appear on several lines.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any earlier field of the same name."""
        self._items.append((name, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of field ``name``, or ``default`` if absent."""
        wanted = name.lower()
        for key, value in self._items:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of field ``name``, in order (an empty list if absent)."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def get_list(self, name: str) -> list[str]:
        """The elements of a comma-separated list field, across all its lines.

        RFC 9110 §5.3 lets a list field be split over several lines, and §5.6.1
        says empty elements are ignored: ``a, ,b`` and two lines ``a`` and ``b``
        both give ``["a", "b"]``.
        """
        elements = []
        for value in self.get_all(name):
            for element in value.split(","):
                element = element.strip(" \t")
                if element:
                    elements.append(element)
        return elements

    def items(self) -> list[tuple[str, str]]:
        """All ``(name, value)`` pairs in order, names as they were given."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        wanted = name.lower()
        return any(key.lower() == wanted for key, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        mine = [(name.lower(), value) for name, value in self._items]
        theirs = [(name.lower(), value) for name, value in other._items]
        return mine == theirs

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _as_headers(headers: Headers | Iterable[tuple[str, str]] | Mapping[str, str]) -> Headers:
    return headers if isinstance(headers, Headers) else Headers(headers)


@dataclass(slots=True)
class Request:
    """An HTTP request head.  ``version`` is ``(major, minor)``, e.g. ``(1, 1)``."""

    method: str
    target: str
    version: tuple[int, int] = (1, 1)
    headers: Headers = field(default_factory=Headers)

    def __post_init__(self) -> None:
        self.headers = _as_headers(self.headers)


@dataclass(slots=True)
class Response:
    """An HTTP response head, and the body when there is one to send or keep.

    ``reason`` defaults to the standard phrase for ``status``.
    """

    status: int
    reason: str = ""
    version: tuple[int, int] = (1, 1)
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __post_init__(self) -> None:
        self.headers = _as_headers(self.headers)
        if not self.reason:
            try:
                self.reason = HTTPStatus(self.status).phrase
            except ValueError:
                self.reason = ""


class _HeadParser:
    """What request and response heads share: lines, fields and limits.

    Lines are found with ``bytes.find`` from where the previous search
    stopped, in one ``bytearray``, so a head arriving a byte at a time costs
    linear time, not quadratic.  The subclasses parse the start line and say
    whether obsolete line folding is unfolded (responses) or refused (requests).
    """

    _start_line_name = "start line"
    _start_line_status = 400  # what a start line over max_line is answered with
    _unfold = False

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
    ) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_head_size = max_head_size
        self._buffer = bytearray()
        self._line_start = 0  # where the line being read begins
        self._scanned = 0  # no LF between _line_start and here
        self._start_line: bytes | None = None
        self._fields: list[tuple[str, str]] = []
        # Obsolete line folding: the pieces of the last field's value, joined
        # once the field is complete (not one string rebuilt per line, which
        # costs quadratic time in the number of folded lines).
        self._folded: list[bytes] = []
        self._done = False

    def _feed(self, data: bytes) -> tuple[bytes, Headers, bytes] | None:
        """Return ``(start_line, headers, rest)`` once the blank line arrives."""
        if self._done:
            raise InvalidStateError("the head is already complete; parse the next one with a new parser")
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(buffer)
                self._check_partial_line(len(buffer) - self._line_start)
                return None
            line = bytes(buffer[self._line_start : end])
            self._line_start = self._scanned = end + 1
            # RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line
            # terminator and ignore any preceding CR".
            if line.endswith(b"\r"):
                line = line[:-1]
            self._check_line(line)
            if self._line_start > self.max_head_size:
                self._head_too_large()
            if self._start_line is None:
                # RFC 9112 §2.2: "a server that is expecting to receive and
                # parse a request-line SHOULD ignore at least one empty line
                # (CRLF) received prior to the request-line."
                if line:
                    self._start_line = line
                continue
            if not line:
                self._done = True
                self._unfold_last_field()
                rest = bytes(buffer[self._line_start :])
                self._buffer = bytearray()
                return self._start_line, Headers(self._fields), rest
            if line[0] in b" \t":
                self._continuation_line(line)
            else:
                self._add_field(line)

    def _check_partial_line(self, length: int) -> None:
        """Refuse a line that is already too long before its end arrives."""
        if length > self.max_line + 1:  # + 1: its CR may already be here
            self._line_too_long()
        if self._line_start + length > self.max_head_size:
            # Over both limits: the line is the more precise diagnosis.
            if length > self.max_line:
                self._line_too_long()
            self._head_too_large()

    def _check_line(self, line: bytes) -> None:
        if len(line) > self.max_line:
            self._line_too_long()
        # RFC 9112 §2.2: "A recipient of such a bare CR MUST consider that
        # element to be invalid or replace each bare CR with SP".
        if b"\r" in line:
            raise HTTPError("bare CR in the head", status=400)

    def _line_too_long(self) -> None:
        if self._start_line is None:
            what, status = self._start_line_name, self._start_line_status
        else:
            what, status = "header line", 431
        raise HTTPError(f"{what} longer than max_line={self.max_line} bytes", status=status)

    def _head_too_large(self) -> None:
        raise HTTPError(f"head larger than max_head_size={self.max_head_size} bytes", status=431)

    def _add_field(self, line: bytes) -> None:
        self._unfold_last_field()
        if len(self._fields) >= self.max_headers:
            raise HTTPError(f"more than max_headers={self.max_headers} header fields", status=431)
        # RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.
        name, colon, value = line.partition(b":")
        if not colon or not _consists_of(name, _TCHAR):
            # Covers RFC 9112 §5.1: "A server MUST reject, with a response
            # status code of 400 (Bad Request), any received request message
            # that contains whitespace between a header field name and colon."
            raise HTTPError("malformed header line", status=400)
        value = value.strip(b" \t")
        if _has_control(value):
            raise HTTPError("control character in a header value", status=400)
        # Field values are opaque octets (RFC 9110 §5.5): latin-1 maps each
        # one to one character and back without loss.
        self._fields.append((name.decode("ascii"), value.decode("latin-1")))

    def _continuation_line(self, line: bytes) -> None:
        """A line starting with whitespace: obsolete line folding (RFC 9112 §5.2)."""
        if not self._unfold:
            # RFC 9112 §5.2: "A server that receives an obs-fold in a request
            # message ... MUST either reject the message by sending a 400 (Bad
            # Request), preferably with a representation explaining that
            # obsolete line folding is unacceptable, or replace each received
            # obs-fold with one or more SP octets".  WebSocket clients never
            # fold, so refuse.  This also refuses whitespace before the first
            # field, which RFC 9112 §2.2 lets a recipient reject.
            raise HTTPError("obsolete line folding is unacceptable", status=400)
        if not self._fields:
            # RFC 9112 §2.2: a recipient of whitespace between the start line
            # and the first field "MUST either reject the message as invalid or
            # consume each whitespace-preceded line without further processing
            # of it".  A client can afford to be forgiving: consume it.
            return
        # RFC 9112 §5.2: "A user agent that receives an obs-fold in a response
        # message ... MUST replace each received obs-fold with one or more SP
        # octets prior to interpreting the field value."
        value = line.strip(b" \t")
        if _has_control(value):
            raise HTTPError("control character in a header value", status=400)
        if value:
            self._folded.append(value)

    def _unfold_last_field(self) -> None:
        """Join the folded lines of the last field onto its value, with one SP each."""
        if not self._folded:
            return
        name, first = self._fields[-1]
        pieces = [first] if first else []
        pieces.extend(piece.decode("latin-1") for piece in self._folded)
        self._fields[-1] = (name, " ".join(pieces))
        self._folded = []


class RequestParser(_HeadParser):
    """Incremental parser for one request head; see :meth:`feed`.

    Limits: ``max_line`` bytes per line (a longer request line is 414 URI Too
    Long, a longer header line 431), ``max_headers`` fields (431) and
    ``max_head_size`` bytes for the whole head (431).  Obsolete line folding
    is refused (400).
    """

    _start_line_name = "request line"
    _start_line_status = 414

    def feed(self, data: bytes) -> tuple[Request, bytes] | None:
        """Add ``data``; return ``(request, rest)`` once the head is complete.

        ``rest`` holds the bytes that followed the blank line, untouched.
        Returns ``None`` while more bytes are needed.  Raises
        :class:`~netkit.errors.HTTPError` (with ``status``) on a malformed or
        oversized head, and ``InvalidStateError`` if fed after completion.
        """
        parsed = self._feed(data)
        if parsed is None:
            return None
        start_line, headers, rest = parsed
        # RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
        # The target is restricted to visible ASCII (a URI never holds anything else).
        method, space, after_method = start_line.partition(b" ")
        target, space_too, version_text = after_method.partition(b" ")
        version = _parse_version(version_text)
        well_formed = space and space_too and _consists_of(method, _TCHAR) and _consists_of(target, _VCHAR)
        if not well_formed or version is None:
            raise HTTPError("malformed request line", status=400)
        if version[0] != 1:
            raise HTTPError("only HTTP/1.x is supported", status=505)
        return Request(method.decode("ascii"), target.decode("ascii"), version, headers), rest


class ResponseParser(_HeadParser):
    """Incremental parser for one response head; see :meth:`feed`.

    Same limits as :class:`RequestParser` (a status line over ``max_line`` is
    a 400: the server misbehaved).  Obsolete line folding is unfolded, as
    RFC 9112 §5.2 asks of a user agent.
    """

    _start_line_name = "status line"
    _unfold = True

    def feed(self, data: bytes) -> tuple[Response, bytes] | None:
        """Add ``data``; return ``(response, rest)`` once the head is complete.

        The response's ``body`` is left empty: ``rest`` holds what followed
        the head (read a body from it with :class:`BodyReader`).
        """
        parsed = self._feed(data)
        if parsed is None:
            return None
        start_line, headers, rest = parsed
        # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
        # A missing SP before an empty reason is tolerated (the reason is ignored anyway).
        version_text, space, after_version = start_line.partition(b" ")
        code, _, reason = after_version.partition(b" ")
        version = _parse_version(version_text)
        # RFC 9110 §15: "All valid status codes are within the range of 100
        # to 599, inclusive"; one below 100 (status-code = 3DIGIT lets "000"
        # through) is no HTTP status at all.
        status = parse_decimal(code, 3) if len(code) == 3 else None
        if not space or version is None or status is None or status < 100 or _has_control(reason):
            raise HTTPError("malformed status line", status=400)
        # RFC 9112 §4: "A client SHOULD ignore the reason-phrase content"; it
        # is kept for display only, decoded losslessly.
        return Response(status, reason.decode("latin-1"), version, headers), rest


class BodyReader:
    """Reads a response body, bounded, however it is delimited (RFC 9112 §6.3).

    Used for the body of a refused handshake, which the client keeps for the
    error: the body ends after ``Content-Length`` bytes, after the last chunk of
    a chunked transfer coding, or when the connection closes.  At most
    ``max_size`` bytes are kept; once that many have arrived the reader is done
    and marks the body ``truncated`` rather than waiting for the rest.
    """

    def __init__(self, response: Response, *, request_method: str = "GET", max_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.max_size = max_size
        self.truncated = False
        self.done = False
        self._body = bytearray()
        self._buffer = bytearray()  # unparsed chunked-coding bytes
        self._scanned = 0  # no LF in _buffer before this offset
        self._remaining: int | None = None  # bytes left in the body or chunk
        self._chunked = False
        self._chunk_state = "size"  # "size", "data", "data-end" or "trailers"
        headers = response.headers
        # RFC 9112 §6.3, rule 1: these responses never have content.
        if request_method == "HEAD" or response.status < 200 or response.status in (204, 304):
            self.done = True
        elif "Transfer-Encoding" in headers:
            # Rule 4: chunked as the final coding delimits the body; any other
            # coding means the body runs to the end of the connection.
            codings = headers.get_list("Transfer-Encoding")
            self._chunked = bool(codings) and codings[-1].lower() == "chunked"
        elif "Content-Length" in headers:
            # RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical
            # values may be taken as that one value.
            values = set(headers.get_list("Content-Length"))
            length = parse_decimal(values.pop(), _MAX_CONTENT_LENGTH_DIGITS) if len(values) == 1 else None
            if length is None:
                # Rule 5: an invalid length is an unrecoverable error; all we
                # were doing is keeping an error page, so keep nothing.
                self.done = True
            else:
                self._remaining = length
                self.done = length == 0

    @property
    def body(self) -> bytes:
        """The body read so far (all of it once ``done``)."""
        return bytes(self._body)

    def feed(self, data: bytes) -> bool:
        """Add ``data``; return whether the body is complete.

        Bytes after the end of the body are ignored.  Raises
        :class:`~netkit.errors.HTTPError` on a malformed chunked coding.
        """
        if self.done:
            return True
        if self._chunked:
            self._buffer += data
            self._parse_chunks()
        elif self._remaining is not None:
            take = data[: self._remaining]
            self._remaining -= len(take)
            self._keep(take)
            if self._remaining == 0:
                self.done = True
        else:
            self._keep(data)
        return self.done

    def feed_eof(self) -> None:
        """The connection closed: that ends a body delimited by the close.

        A body cut short by the close is kept as it is and flagged ``truncated``.
        """
        if not self.done:
            if self._chunked or self._remaining is not None:
                self.truncated = True
            self.done = True

    def _keep(self, data: bytes | bytearray) -> None:
        room = self.max_size - len(self._body)
        if len(data) > room:
            self._body += data[:room]
            self.truncated = True
            self.done = True
        else:
            self._body += data

    def _parse_chunks(self) -> None:
        """Consume what the buffer holds of the chunked coding (RFC 9112 §7.1)."""
        buffer = self._buffer
        while not self.done:
            if self._chunk_state == "data":
                assert self._remaining is not None
                take = buffer[: self._remaining]
                del buffer[: len(take)]
                self._remaining -= len(take)
                self._keep(take)
                if self._remaining:
                    return
                self._chunk_state = "data-end"
                continue
            line = self._next_line()
            if line is None:
                return
            if self._chunk_state == "size":
                self._remaining = _chunk_size(line)
                self._chunk_state = "data" if self._remaining else "trailers"
            elif self._chunk_state == "data-end":
                if line:
                    raise HTTPError("chunk data not followed by CRLF", status=400)
                self._chunk_state = "size"
            elif not line:  # the blank line that ends the trailer section
                self.done = True

    def _next_line(self) -> bytes | None:
        """Take the next line out of the buffer, without its line ending;
        ``None`` until its LF has arrived.

        The search for the LF resumes where the previous one stopped, so a
        line arriving a byte at a time is scanned once, not once per byte.
        """
        buffer = self._buffer
        end = buffer.find(b"\n", self._scanned)
        length = (len(buffer) if end < 0 else end) - 1  # - 1: a CR may end it
        if length > DEFAULT_MAX_LINE:
            raise HTTPError(f"chunk line exceeds max_line={DEFAULT_MAX_LINE}", status=400)
        if end < 0:
            self._scanned = len(buffer)
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        # RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line
        # terminator and ignore any preceding CR".
        return line[:-1] if line.endswith(b"\r") else line


def _chunk_size(line: bytes) -> int:
    """The size a chunk-size line announces; its extensions are ignored.

    RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF, chunk-size =
    1*HEXDIG, chunk-ext = *( BWS ";" BWS chunk-ext-name ... ), and
    "Recipients MUST anticipate potentially large hexadecimal numerals and
    prevent parsing errors due to integer conversion overflows or precision
    loss due to integer representation."
    """
    digits = line.partition(b";")[0].rstrip(b" \t")
    if len(digits) > _MAX_CHUNK_SIZE_DIGITS or not _consists_of(digits, _HEXDIG):
        raise HTTPError("malformed chunk size line", status=400)
    return int(digits, 16)


def _serialize_head(start_line: str, headers: Headers) -> bytes:
    lines = [start_line]
    for name, value in headers:
        if not is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} has a value that is not latin-1") from None
        if _has_control(encoded):
            raise ValueError(f"invalid character in the value of header {name!r}")
        lines.append(f"{name}: {value}")
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n"


def serialize_request(request: Request) -> bytes:
    """The bytes of a request head.  Raises ``ValueError`` on a field that
    would not survive the trip (a CR or LF in a value, a bad name)."""
    major, minor = request.version
    target = request.target
    if not is_token(request.method) or not (target.isascii() and _consists_of(target.encode("ascii"), _VCHAR)):
        raise ValueError("invalid method or request target")
    return _serialize_head(f"{request.method} {request.target} HTTP/{major}.{minor}", request.headers)


def serialize_response(response: Response) -> bytes:
    """The bytes of a response head followed by its ``body``.

    The caller sets ``Content-Length`` (or not); nothing is added here.
    """
    major, minor = response.version
    if not 100 <= response.status <= 999 or "\r" in response.reason or "\n" in response.reason:
        raise ValueError("invalid status code or reason phrase")
    head = _serialize_head(f"HTTP/{major}.{minor} {response.status} {response.reason}", response.headers)
    return head + response.body
