"""HTTP/1.1 message heads (RFC 9112), parsed incrementally and bounded, and written.

This is the part of HTTP that a WebSocket opening handshake needs: a request
head (request line and header fields up to the blank line), a response head,
and, for a refused handshake, the response body.  It is sans-I/O: feed it
bytes, get a :class:`Request` or :class:`Response` back once the head is
complete, together with the bytes that followed it, untouched (they may
already be the first WebSocket frames).

Every parse is bounded.  Input over a limit raises :class:`~netkit.errors.HTTPError`
carrying the status to answer with (414 for a request line too long, 431 for
header fields too large or too many, 400 for anything malformed); nothing is
buffered past a limit.
"""

from __future__ import annotations

import re
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

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9112 §3: request-line = method SP request-target SP HTTP-version.  The
# target is restricted to visible ASCII (a URI never holds anything else).
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
# A missing SP before an empty reason is tolerated (the reason is ignored anyway).
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*")
# RFC 9110 §5.5: field values are visible characters, SP, HTAB and obs-text;
# CR, LF, NUL and the other controls are invalid.
_INVALID_VALUE_CHAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN_STR = re.compile(_TOKEN.decode("ascii"))


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
        if len(self._fields) >= self.max_headers:
            raise HTTPError(f"more than max_headers={self.max_headers} header fields", status=431)
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            # Covers RFC 9112 §5.1: "A server MUST reject, with a response
            # status code of 400 (Bad Request), any received request message
            # that contains whitespace between a header field name and colon."
            raise HTTPError("malformed header line", status=400)
        name, value = match.groups()
        if _INVALID_VALUE_CHAR.search(value):
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
        if _INVALID_VALUE_CHAR.search(value):
            raise HTTPError("control character in a header value", status=400)
        name, previous = self._fields[-1]
        folded = value.decode("latin-1")
        self._fields[-1] = (name, f"{previous} {folded}" if previous else folded)


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
        match = _REQUEST_LINE.fullmatch(start_line)
        if match is None:
            raise HTTPError("malformed request line", status=400)
        method, target, major, minor = match.groups()
        if major != b"1":
            raise HTTPError("only HTTP/1.x is supported", status=505)
        return Request(method.decode("ascii"), target.decode("ascii"), (1, int(minor)), headers), rest


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
        match = _STATUS_LINE.fullmatch(start_line)
        if match is None:
            raise HTTPError("malformed status line", status=400)
        major, minor, status, reason = match.groups()
        # RFC 9112 §4: "A client SHOULD ignore the reason-phrase content"; it
        # is kept for display only, decoded losslessly.
        phrase = (reason or b"").decode("latin-1")
        return Response(int(status), phrase, (int(major), int(minor)), headers), rest


class BodyReader:
    """Reads a response body, bounded, however it is delimited (RFC 9112 §6.3).

    Used for the body of a refused handshake, which the client keeps for the
    error: the body ends after ``Content-Length`` bytes, after the last chunk of
    a chunked transfer coding, or when the connection closes.  At most
    ``max_size`` bytes are kept; once that many have arrived the reader is done
    and marks the body ``truncated`` rather than waiting for the rest.
    """

    _CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;.*)?")

    def __init__(self, response: Response, *, request_method: str = "GET", max_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.max_size = max_size
        self.truncated = False
        self.done = False
        self._body = bytearray()
        self._buffer = bytearray()  # unparsed chunked-coding bytes
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
            values = set(headers.get_list("Content-Length"))
            if len(values) != 1 or not next(iter(values)).isdigit():
                # Rule 5: an invalid length is an unrecoverable error; all we
                # were doing is keeping an error page, so keep nothing.
                self.done = True
            else:
                self._remaining = int(next(iter(values)))
                self.done = self._remaining == 0

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
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > DEFAULT_MAX_LINE:
                    raise HTTPError(f"chunk line exceeds max_line={DEFAULT_MAX_LINE}", status=400)
                return
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if self._chunk_state == "size":
                match = self._CHUNK_SIZE_LINE.fullmatch(line)
                if match is None:
                    raise HTTPError("malformed chunk size line", status=400)
                self._remaining = int(match.group(1), 16)
                self._chunk_state = "data" if self._remaining else "trailers"
            elif self._chunk_state == "data-end":
                if line:
                    raise HTTPError("chunk data not followed by CRLF", status=400)
                self._chunk_state = "size"
            elif not line:  # the blank line that ends the trailer section
                self.done = True


def _serialize_head(start_line: str, headers: Headers) -> bytes:
    lines = [start_line]
    for name, value in headers:
        if not _TOKEN_STR.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} has a value that is not latin-1") from None
        if _INVALID_VALUE_CHAR.search(encoded):
            raise ValueError(f"invalid character in the value of header {name!r}")
        lines.append(f"{name}: {value}")
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n"


def serialize_request(request: Request) -> bytes:
    """The bytes of a request head.  Raises ``ValueError`` on a field that
    would not survive the trip (a CR or LF in a value, a bad name)."""
    major, minor = request.version
    if not _TOKEN_STR.fullmatch(request.method) or not re.fullmatch(r"[\x21-\x7e]+", request.target):
        raise ValueError("invalid method or request target")
    return _serialize_head(f"{request.method} {request.target} HTTP/{major}.{minor}", request.headers)


def serialize_response(response: Response) -> bytes:
    """The bytes of a response head followed by its ``body``.

    The caller sets ``Content-Length`` (or not); nothing is added here.
    """
    major, minor = response.version
    if not 100 <= response.status <= 999 or re.search(r"[\r\n]", response.reason):
        raise ValueError("invalid status code or reason phrase")
    head = _serialize_head(f"HTTP/{major}.{minor} {response.status} {response.reason}", response.headers)
    return head + response.body
