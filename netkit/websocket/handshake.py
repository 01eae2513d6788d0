"""The WebSocket opening handshake (RFC 6455 §4), for servers and clients, sans-I/O.

Server: :meth:`ServerHandshake.respond` takes a parsed :class:`~netkit.http.Request`
and returns a :class:`HandshakeOutcome`: the ``101 Switching Protocols``
response that accepts it, or a complete HTTP error response that says why not
(``400``, ``403``, ``405``, ``426``), or whatever the application's
``process_request`` hook answered instead.  Bad input from a client never
raises; it becomes the response to send.

Client: :class:`ClientHandshake` builds the request (:meth:`~ClientHandshake.request`)
and checks the server's answer strictly, either a response at a time
(:meth:`~ClientHandshake.validate`) or from raw bytes
(:meth:`~ClientHandshake.receive_data`), which also reads the body of a refusal
for the error.  Anything wrong raises :class:`~netkit.errors.HandshakeError`
naming what was wrong.

Extensions (permessage-deflate) are not negotiated yet: a server accepts none,
and a client offers none and refuses a server that turns one on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import HandshakeError, HTTPError, InvalidStateError
from ..http import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HEAD_SIZE,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_LINE,
    BodyReader,
    Headers,
    Request,
    Response,
    ResponseParser,
    is_token,
    serialize_request,
    serialize_response,
)
from .uri import WebSocketURI, parse_uri

__all__ = [
    "GUID",
    "accept_key",
    "generate_key",
    "HandshakeOutcome",
    "ServerHandshake",
    "ClientHandshake",
]

# RFC 6455 §1.3: the server "concatenate[s] this with the Globally Unique
# Identifier (GUID, [RFC4122]) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"".
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 6455 §4.1 item 9 / §4.2.2 item 4: the only version this implements.
WEBSOCKET_VERSION = "13"

# Fields the handshake itself writes; extra headers from the application may
# not repeat them (a second Upgrade or Sec-WebSocket-Accept line would make
# the handshake ambiguous).
_RESERVED_FIELDS = frozenset(
    name.lower()
    for name in (
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
    )
)


# How many interim (1xx) responses a client skips before the final one.  RFC
# 9110 sets no limit, but a server sends one or two (103 Early Hints); Go's
# net/http client also gives up after 5.  Without a limit, a server could
# keep a client parsing heads forever.
_MAX_INTERIM_RESPONSES = 5

HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
OriginCheck = Sequence[str | None] | Callable[[str | None], bool]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``.

    RFC 6455 §4.2.2 item 5.4: "the base64-encoded SHA-1 of the concatenation
    of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the
    string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"".
    """
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """A fresh ``Sec-WebSocket-Key``.

    RFC 6455 §4.1 item 7: "a nonce consisting of a randomly selected 16-byte
    value that has been base64-encoded ... The nonce MUST be selected
    randomly for each connection."
    """
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _is_valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


def _check_extra_headers(headers: HeadersLike) -> Headers:
    headers = headers if isinstance(headers, Headers) else Headers(headers)
    for name, _ in headers:
        if name.lower() in _RESERVED_FIELDS:
            raise ValueError(f"{name} is set by the handshake itself; it cannot be an extra header")
    return headers


def refusal(status: int, why: str, headers: Iterable[tuple[str, str]] = ()) -> HandshakeError:
    """A server's :class:`~netkit.errors.HandshakeError` carrying a complete refusal.

    The body is one short line of text saying ``why``; it never contains
    anything the client sent.
    """
    body = f"Failed to open a WebSocket connection: {why}.\n".encode()
    fields = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        # Keep-alive after a refused upgrade would need request-body framing
        # the handshake does not do; the shell closes after the response.
        ("Connection", "close"),
        *headers,
    ]
    return HandshakeError(why, status=status, headers=fields, body=body)


@dataclass(slots=True)
class HandshakeOutcome:
    """What a server answers to one opening request.

    ``accepted`` says whether ``response`` is the ``101`` that opens the
    WebSocket connection.  Otherwise it is a complete HTTP response to send
    before closing the connection: a refusal (``error`` says why) or the
    answer of the application's ``process_request`` hook (``error`` is
    ``None``).  ``subprotocol`` is the one agreed on, if any.
    """

    accepted: bool
    response: Response
    subprotocol: str | None = None
    error: HandshakeError | None = None

    def to_bytes(self) -> bytes:
        """The response, ready to write."""
        return serialize_response(self.response)


class ServerHandshake:
    """A server's policy for opening handshakes; one instance serves every connection.

    Args:
        subprotocols: the subprotocols this server speaks, in order of
            preference.  The first of them that the client offered is chosen;
            with no overlap, none is (and the application decides whether to
            carry on, RFC 6455 §4.2.2 item 5.4 lets the server omit the field).
        origins: ``None`` to accept any ``Origin``; a sequence of allowed
            values (include ``None`` to allow requests without ``Origin``, as
            sent by non-browser clients); or a callable taking the value (or
            ``None``) and returning whether to accept it.  Refusal is ``403``.
        extra_headers: fields added to the ``101`` response.
        process_request: called first with every request; returning a
            :class:`~netkit.http.Response` answers the request with it instead
            of upgrading (a health check, a page, a 404).  ``Content-Length``
            and ``Connection: close`` are added when missing.  Exceptions it
            raises propagate to the caller.
    """

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        origins: OriginCheck | None = None,
        extra_headers: HeadersLike = (),
        process_request: Callable[[Request], Response | None] | None = None,
    ) -> None:
        for name in subprotocols:
            if not is_token(name):  # RFC 6455 §4.1: subprotocol names are tokens
                raise ValueError(f"subprotocol {name!r} is not a token")
        self.subprotocols = list(subprotocols)
        self.origins = origins
        self.extra_headers = _check_extra_headers(extra_headers)
        self.process_request = process_request

    def respond(self, request: Request) -> HandshakeOutcome:
        """Answer an opening request: accept it, refuse it, or let the hook answer."""
        if self.process_request is not None:
            answer = self.process_request(request)
            if answer is not None:
                return HandshakeOutcome(False, _complete(answer))
        try:
            key, subprotocol = self.check(request)
        except HandshakeError as error:
            return self.reject(error)
        # RFC 6455 §4.2.2 item 5: the 101 response and its fields.
        headers = Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(key)),
            ]
        )
        if subprotocol is not None:
            headers.add("Sec-WebSocket-Protocol", subprotocol)
        for name, value in self.extra_headers:
            headers.add(name, value)
        return HandshakeOutcome(True, Response(101, headers=headers), subprotocol)

    def reject(self, error: HandshakeError | HTTPError) -> HandshakeOutcome:
        """The refusal for ``error``: a handshake failure, or an
        :class:`~netkit.errors.HTTPError` from parsing the request head (its
        status, 400/414/431/505, is kept)."""
        if isinstance(error, HTTPError):
            error = refusal(error.status, str(error))
        response = Response(error.status, headers=error.headers, body=error.body)
        return HandshakeOutcome(False, response, error=error)

    def check(self, request: Request) -> tuple[str, str | None]:
        """Validate an opening request; return its key and the chosen subprotocol.

        Raises :class:`~netkit.errors.HandshakeError` carrying the refusal.
        The checks follow RFC 6455 §4.2.1 in order.
        """
        headers = request.headers
        # Item 1: "An HTTP/1.1 or higher GET request".
        if request.method != "GET":
            raise refusal(405, "the method must be GET", [("Allow", "GET")])
        if request.version < (1, 1):
            raise refusal(400, "WebSocket needs HTTP/1.1 or later")
        # Item 2: "A |Host| header field"; RFC 9112 §3.2: "A server MUST
        # respond with a 400 (Bad Request) status code to any HTTP/1.1 request
        # message that lacks a Host header field and to any request message
        # that contains more than one Host header field line".
        hosts = headers.get_all("Host")
        if len(hosts) != 1 or not hosts[0]:
            raise refusal(400, "exactly one Host header is required")
        # Item 3: "An |Upgrade| header field containing the value "websocket",
        # treated as an ASCII case-insensitive value."  Items 3 and 4 missing
        # mean a plain HTTP request: RFC 9110 §15.5.22, 426 Upgrade Required,
        # "MUST send an Upgrade header field" naming the protocol required.
        upgrade_required = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        if not any(token.lower() == "websocket" for token in headers.get_list("Upgrade")):
            raise refusal(426, "the Upgrade header must contain websocket", upgrade_required)
        # Item 4: "A |Connection| header field that includes the token
        # "Upgrade", treated as an ASCII case-insensitive value."
        if not any(token.lower() == "upgrade" for token in headers.get_list("Connection")):
            raise refusal(426, "the Connection header must contain upgrade", upgrade_required)
        # Item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded
        # value that, when decoded, is 16 bytes in length."
        keys = headers.get_all("Sec-WebSocket-Key")
        if len(keys) != 1:
            raise refusal(400, "exactly one Sec-WebSocket-Key header is required")
        key = keys[0]
        if not _is_valid_key(key):
            raise refusal(400, "Sec-WebSocket-Key must be the base64 encoding of 16 bytes")
        # Item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
        # §4.4: otherwise "send an appropriate HTTP error code (such as 426
        # Upgrade Required) and a |Sec-WebSocket-Version| header field
        # indicating the version(s) the server is capable of understanding."
        if headers.get_list("Sec-WebSocket-Version") != [WEBSOCKET_VERSION]:
            raise refusal(
                426,
                f"Sec-WebSocket-Version must be {WEBSOCKET_VERSION}",
                [("Sec-WebSocket-Version", WEBSOCKET_VERSION)],
            )
        # Item 7: "Optionally, an |Origin| header field."  §10.2: servers that
        # only want browsers on their own pages check it; 403 per §4.2.2.
        if self.origins is not None:
            origins = headers.get_all("Origin")
            if len(origins) > 1:
                raise refusal(400, "more than one Origin header")
            origin = origins[0] if origins else None
            allowed = self.origins(origin) if callable(self.origins) else origin in self.origins
            if not allowed:
                raise refusal(403, "this origin is not allowed")
        # Item 8: the client's subprotocols, "ordered by preference"; §4.2.2
        # item 5.4 leaves the choice to the server, which here prefers its
        # own order.
        offered = headers.get_list("Sec-WebSocket-Protocol")
        chosen = next((name for name in self.subprotocols if name in offered), None)
        # Item 9, Sec-WebSocket-Extensions: nothing is supported yet, so every
        # offer is declined by leaving the field out of the response.
        return key, chosen


def _complete(response: Response) -> Response:
    """Add the framing fields a ``process_request`` answer may lack."""
    headers = Headers(response.headers.items())
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        headers.add("Content-Length", str(len(response.body)))
    if "Connection" not in headers:
        headers.add("Connection", "close")
    return Response(response.status, response.reason, response.version, headers, response.body)


class ClientHandshake:
    """One client's opening handshake: the request to send and the checks on
    the answer.

    Args:
        uri: where to connect (``ws://`` or ``wss://``), a string or a parsed
            :class:`~netkit.websocket.uri.WebSocketURI`.
        origin: the ``Origin`` to send, if any (browsers always send one).
        subprotocols: subprotocols to offer, in order of preference.
        extra_headers: more request fields (``Authorization``, ``User-Agent``,
            cookies).  A ``Host`` here replaces the one derived from ``uri``.
        key: the ``Sec-WebSocket-Key``; leave it to the default (fresh random)
            except in tests.
        max_line, max_headers, max_head_size: limits on the response head.
        max_body_size: how much of a refusal's body to keep for the error.
    """

    def __init__(
        self,
        uri: str | WebSocketURI,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extra_headers: HeadersLike = (),
        key: str | None = None,
        max_line: int = DEFAULT_MAX_LINE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.uri = uri if isinstance(uri, WebSocketURI) else parse_uri(uri)
        self.key = generate_key() if key is None else key
        for name in subprotocols:
            if not is_token(name):  # RFC 6455 §4.1: subprotocol names are tokens
                raise ValueError(f"subprotocol {name!r} is not a token")
        self.subprotocols = list(subprotocols)
        extra = _check_extra_headers(extra_headers)
        if origin is not None and "Origin" in extra:
            raise ValueError("give the Origin either as origin= or in extra_headers, not both")
        # RFC 6455 §4.1, items 2-10: the request line and fields a client sends.
        headers = Headers([("Host", extra.get("Host") or self.uri.host_header)])
        headers.add("Upgrade", "websocket")
        headers.add("Connection", "Upgrade")
        headers.add("Sec-WebSocket-Key", self.key)
        headers.add("Sec-WebSocket-Version", WEBSOCKET_VERSION)
        if origin is not None:
            headers.add("Origin", origin)
        if self.subprotocols:
            headers.add("Sec-WebSocket-Protocol", ", ".join(self.subprotocols))
        for name, value in extra:
            if name.lower() != "host":
                headers.add(name, value)
        self.http_request = Request("GET", self.uri.resource_name, (1, 1), headers)
        self._max_body_size = max_body_size
        self._parser = ResponseParser(max_line=max_line, max_headers=max_headers, max_head_size=max_head_size)
        self._body: BodyReader | None = None
        self._interim_responses = 0
        #: The server's response, once its head has arrived.
        self.response: Response | None = None
        #: The subprotocol the server chose, once accepted.
        self.subprotocol: str | None = None
        #: Bytes received after the ``101`` head: the first WebSocket frames.
        self.leftover = b""
        #: Whether the server accepted the handshake.
        self.accepted = False

    def request(self) -> bytes:
        """The opening request, ready to write."""
        return serialize_request(self.http_request)

    def receive_data(self, data: bytes) -> bool:
        """Feed bytes from the server; return ``True`` once the handshake succeeded.

        Then :attr:`subprotocol` is set and :attr:`leftover` holds the bytes
        that followed the response head (hand them to the connection).
        Returns ``False`` while more bytes are needed.  Raises
        :class:`~netkit.errors.HandshakeError` when the server refused (after
        reading the body of the refusal, bounded by ``max_body_size``; a
        malformed body ends it early), when the ``101`` response is wrong, or
        when the answer is not valid HTTP or not a final response after
        5 interim ones (``status`` 0 then).  It never raises anything else,
        whatever the server sends.
        """
        if self.accepted:
            raise InvalidStateError("the handshake is over; feed the connection instead")
        if self._body is None:
            parsed = self._parse_head(data)
            if parsed is None:
                return False
            response, rest = parsed
            self.response = response
            if response.status == 101:
                self.subprotocol = self.validate(response)
                self.leftover = rest
                self.accepted = True
                return True
            self._body = BodyReader(response, max_size=self._max_body_size)
            data = rest
        self._read_refusal_body(data)
        return False

    def _parse_head(self, data: bytes) -> tuple[Response, bytes] | None:
        """The final response head and the bytes after it, once complete;
        interim responses before it are skipped."""
        try:
            parsed = self._parser.feed(data)
            # RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx
            # responses received prior to a final response"; 101 is final here.
            while parsed is not None and 100 <= parsed[0].status < 200 and parsed[0].status != 101:
                self._interim_responses += 1
                if self._interim_responses > _MAX_INTERIM_RESPONSES:
                    raise HandshakeError(
                        f"the server sent more than {_MAX_INTERIM_RESPONSES} interim (1xx) responses", status=0
                    )
                self._parser = ResponseParser(
                    max_line=self._parser.max_line,
                    max_headers=self._parser.max_headers,
                    max_head_size=self._parser.max_head_size,
                )
                parsed = self._parser.feed(parsed[1])
        except HTTPError as exc:
            raise HandshakeError(f"invalid HTTP response from the server: {exc}", status=0) from exc
        return parsed

    def _read_refusal_body(self, data: bytes) -> None:
        """Read the body of a refusal; raise the refusal once it is complete.

        A malformed body still raises the refusal, which carries what the
        server said (its status, fields and the body as far as it parsed).
        """
        assert self._body is not None
        try:
            complete = self._body.feed(data)
        except HTTPError as exc:
            raise self._refused(f"its body is malformed: {exc}") from exc
        if complete:
            raise self._refused()

    def receive_eof(self) -> None:
        """The server closed the connection before the handshake succeeded.

        Raises :class:`~netkit.errors.HandshakeError`: the refusal, with the
        body as far as it came, or a note that no response arrived.
        """
        if self.accepted:
            raise InvalidStateError("the handshake is over; feed the connection instead")
        if self._body is not None:
            self._body.feed_eof()
            raise self._refused()
        raise HandshakeError("the server closed the connection without completing a response", status=0)

    def _refused(self, problem: str = "") -> HandshakeError:
        assert self.response is not None and self._body is not None
        response = self.response
        response.body = self._body.body
        return _refused_error(response, problem)

    def validate(self, response: Response) -> str | None:
        """Check the server's response; return the subprotocol it chose, if any.

        Raises :class:`~netkit.errors.HandshakeError` naming the first thing
        wrong.  The checks are RFC 6455 §4.1's, in its order, each of which
        says the client "MUST _Fail the WebSocket Connection_".
        """
        if response.status != 101:
            raise _refused_error(response)
        headers = response.headers

        def wrong(why: str) -> HandshakeError:
            return HandshakeError(f"invalid handshake response: {why}", status=101, headers=headers.items())

        # Item 2: "If the response lacks an |Upgrade| header field or the
        # |Upgrade| header field contains a value that is not an ASCII
        # case-insensitive match for the value "websocket"".
        upgrade = headers.get_list("Upgrade")
        if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
            raise wrong("the Upgrade header must be websocket")
        # Item 3: "If the response lacks a |Connection| header field or the
        # |Connection| header field doesn't contain a token that is an ASCII
        # case-insensitive match for the value "Upgrade"".
        if not any(token.lower() == "upgrade" for token in headers.get_list("Connection")):
            raise wrong("the Connection header must contain upgrade")
        # Item 4: "If the response lacks a |Sec-WebSocket-Accept| header field
        # or the |Sec-WebSocket-Accept| contains a value other than the
        # base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key|
        # (as a string, not base64-decoded) with the string
        # "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"".
        accepts = headers.get_all("Sec-WebSocket-Accept")
        if len(accepts) != 1:
            raise wrong("exactly one Sec-WebSocket-Accept header is required")
        if accepts[0] != accept_key(self.key):
            raise wrong("Sec-WebSocket-Accept does not match Sec-WebSocket-Key")
        # Item 5: "If the response includes a |Sec-WebSocket-Extensions| header
        # field and this header field indicates the use of an extension that
        # was not present in the client's handshake".  None is offered.
        extensions = headers.get_list("Sec-WebSocket-Extensions")
        if extensions:
            name = extensions[0].partition(";")[0].strip(" \t")
            raise wrong(f"the server enabled extension {name!r}, which was not offered")
        # Item 6: "If the response includes a |Sec-WebSocket-Protocol| header
        # field and this header field indicates the use of a subprotocol that
        # was not present in the client's handshake".  §4.2.2 item 5.4: the
        # server answers with a single value.
        chosen = headers.get_list("Sec-WebSocket-Protocol")
        if not chosen:
            return None
        if len(chosen) > 1:
            raise wrong("the server chose more than one subprotocol")
        if chosen[0] not in self.subprotocols:
            raise wrong(f"the server chose subprotocol {chosen[0]!r}, which was not offered")
        return chosen[0]


def _refused_error(response: Response, problem: str = "") -> HandshakeError:
    """The client's error for a response that is not ``101``: it keeps the
    status, fields and body, and names a redirect's target and any
    ``problem`` found in the response."""
    message = f"the server refused the WebSocket connection: HTTP {response.status} {response.reason}"
    location = response.headers.get("Location")
    if 300 <= response.status < 400 and location:
        message += f", redirecting to {location}"
    if problem:
        message += f"; {problem}"
    return HandshakeError(message, status=response.status, headers=response.headers.items(), body=response.body)
