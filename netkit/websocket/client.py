"""WebSocket clients on netkit's loop: ``connect`` and ``unix_connect``.

``await connect(uri)`` opens the TCP connection, sends the opening request,
checks the answer strictly, and returns a :class:`WebSocket` (the async API);
``async with connect(uri) as ws:`` closes it on the way out.  A refused
handshake raises ``HandshakeError`` with the server's status, headers and
body; redirects (3xx with ``Location``) are followed when asked to.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Generator, Sequence

from .._runtime import get_running_loop
from ..errors import HandshakeError, InvalidURI
from ..futures import Future
from ..tasks import timeout as timeout_scope
from .async_api import WebSocket
from .connection import Role
from .handshake import ClientHandshake
from .protocol import Options, WebSocketHandler, WebSocketProtocol
from .uri import WebSocketURI, parse_uri

__all__ = ["connect", "unix_connect", "ClientProtocol"]


class ClientProtocol(WebSocketProtocol):
    """A client-side connection: sends the opening request, reads the answer,
    then speaks frames."""

    def __init__(self, handshake: ClientHandshake, options: Options, handler: WebSocketHandler | None = None) -> None:
        super().__init__(Role.CLIENT, options, handler)
        self._handshake = handshake
        self.opened: Future[None] = get_running_loop().create_future()
        self.request = handshake.http_request

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._set_data_handler(self._response_received)
        transport.write(self._handshake.request())

    def _response_received(self, data: bytes) -> None:
        handshake = self._handshake
        try:
            accepted = handshake.receive_data(data)
        except HandshakeError as error:
            self.response = handshake.response
            self._fail_opening(error)
            return
        if not accepted:
            return
        self.response = handshake.response
        conn = self._new_connection(handshake.subprotocol)
        if not self.opened.done():
            self.opened.set_result(None)
        self._open(conn, handshake.leftover)

    def _fail_opening(self, error: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        self.transport.abort()

    def eof_received(self) -> bool:
        if self._conn is None:
            try:
                self._handshake.receive_eof()  # always raises: the answer is cut short
            except HandshakeError as error:
                self.response = self._handshake.response
                self._fail_opening(error)
            return False
        return super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.opened.done():
            # A reset or a write error during the handshake is a failed
            # handshake too: connect() promises HandshakeError once the TCP
            # connection is made, and the OSError stays as the cause.
            why = "the connection was lost during the opening handshake"
            error = HandshakeError(f"{why}: {exc}" if exc is not None else why, status=0)
            error.__cause__ = exc
            self.opened.set_exception(error)
        super().connection_lost(exc)


class connect:
    """Open a WebSocket connection: ``ws = await connect(uri)`` or
    ``async with connect(uri) as ws:``.

    Errors: :class:`~netkit.errors.InvalidURI` for a URI it cannot connect
    to; ``OSError`` when the TCP connection cannot be made; then
    :class:`~netkit.errors.HandshakeError` for whatever goes wrong in the
    opening handshake (a refusal, an answer that is not a valid handshake,
    a connection closed or reset before the answer is complete, a redirect
    to somewhere it cannot follow); ``TimeoutError`` once ``open_timeout``
    has passed.

    Options: ``origin``, ``subprotocols``, ``extra_headers``, ``open_timeout``
    (the whole opening, redirects included), ``max_redirects`` (0: a redirect
    is an error), the connection options of :class:`Options`
    (``max_message_size``, ``max_queue``, ``write_limit``, ``close_timeout``,
    ``ping_interval``, ``ping_timeout``, ``auto_pong``), and ``handler`` for
    the callback API (then the :class:`WebSocketProtocol` is returned).
    """

    def __init__(
        self,
        uri: str,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extra_headers: Any = (),
        max_redirects: int = 0,
        handler: WebSocketHandler | None = None,
        unix_path: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        self.uri = uri
        self.origin = origin
        self.subprotocols = list(subprotocols)
        self.extra_headers = extra_headers
        self.max_redirects = max_redirects
        self.handler = handler
        self.unix_path = os.fspath(unix_path) if unix_path is not None else None
        unknown = set(options) - set(Options.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unexpected options: {', '.join(sorted(unknown))}")
        self.options = Options(**options)
        self._ws: Any = None

    def __await__(self) -> Generator[Any, None, Any]:
        return self._connect().__await__()

    async def __aenter__(self) -> Any:
        self._ws = await self._connect()
        return self._ws

    async def __aexit__(self, *exc: Any) -> None:
        ws = self._ws
        if isinstance(ws, WebSocket):
            await ws.close()
        else:
            ws.close()

    async def _connect(self) -> Any:
        async with timeout_scope(self.options.open_timeout):
            uri = parse_uri(self.uri)
            redirects = 0
            while True:
                try:
                    return await self._open_one(uri)
                except HandshakeError as error:
                    location = _redirect_target(error)
                    if location is None or self.max_redirects == 0:
                        raise
                    if redirects == self.max_redirects:
                        raise HandshakeError(
                            f"too many redirects (max_redirects={self.max_redirects}); the last one went to {location}",
                            status=error.status,
                            headers=error.headers,
                            body=error.body,
                        ) from error
                    redirects += 1
                    uri = _follow_redirect(uri, location, error)

    async def _open_one(self, uri: WebSocketURI) -> Any:
        if uri.secure:
            raise InvalidURI("wss:// needs TLS, which netkit does not provide yet; use ws:// (or a TLS-terminating proxy)")
        loop = get_running_loop()
        handshake = ClientHandshake(uri, origin=self.origin, subprotocols=self.subprotocols, extra_headers=self.extra_headers)
        handler = self.handler
        ws: WebSocket | None = None

        def factory() -> ClientProtocol:
            nonlocal ws
            protocol = ClientProtocol(handshake, self.options, handler)
            if handler is None:
                # Attach the async API before any byte can arrive: the server's
                # first messages may come in the same read as its 101 response.
                ws = WebSocket(protocol)
            return protocol

        if self.unix_path is not None:
            transport, protocol = await loop.create_unix_connection(factory, self.unix_path)
        else:
            transport, protocol = await loop.create_connection(factory, uri.host, uri.port)
        try:
            await protocol.opened
        except BaseException:
            transport.abort()
            raise
        return protocol if ws is None else ws


def unix_connect(path: str | os.PathLike[str], uri: str = "ws://localhost/", **options: Any) -> connect:
    """Like ``connect``, over the Unix socket at ``path`` (``uri`` gives the Host and path)."""
    return connect(uri, unix_path=path, **options)


def _redirect_target(error: HandshakeError) -> str | None:
    """The ``Location`` of a redirect, ``None`` for any other refusal."""
    if error.status not in (301, 302, 303, 307, 308):
        return None
    for name, value in error.headers:
        if name.lower() == "location":
            return value or None
    return None


def _follow_redirect(current: WebSocketURI, location: str, redirect: HandshakeError) -> WebSocketURI:
    """Where a redirect leads.  The ``Location`` comes from the server, so a
    target that cannot be connected to is the server's failure: a
    :class:`HandshakeError` carrying the redirect, not the ``ValueError``
    of a bad URI given by the caller."""
    try:
        target = parse_uri(_resolve_redirect(str(current), location))
        if target.secure:
            raise InvalidURI("wss:// needs TLS, which netkit does not provide yet")
    except ValueError as exc:  # InvalidURI is one; urljoin raises a bare one
        raise HandshakeError(
            f"the server redirected to {location!r}, which cannot be followed: {exc}",
            status=redirect.status,
            headers=redirect.headers,
            body=redirect.body,
        ) from exc
    return target


def _resolve_redirect(current: str, location: str) -> str:
    """The absolute ``ws://`` URI a ``Location`` points to (relative ones resolve
    against the current URI; ``http(s)`` maps to ``ws(s)``)."""
    http_form = "http" + current[2:] if current.startswith("ws") else current
    target = urllib.parse.urljoin(http_form, location)
    if target.startswith("http"):
        target = "ws" + target[4:]
    return target
