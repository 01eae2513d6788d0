"""WebSocket servers on netkit's loop: ``serve``, ``unix_serve`` and ``broadcast``.

Each TCP connection starts as HTTP: the request head is parsed (bounded by
the HTTP limits), offered to ``process_request`` (which may answer it as a
plain HTTP request: a page, a health check, a 404), then checked as an
opening handshake.  An accepted connection switches to WebSocket frames and
runs the handler; a refused one gets a complete HTTP error response.  The
whole opening must finish within ``open_timeout``, or the TCP connection is
dropped: a client that connects and sends nothing (or trickles a header a
byte a minute) cannot hold the server's resources.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Awaitable, Callable, Iterable, Sequence

from .._runtime import get_running_loop
from ..errors import HTTPError
from ..http import Request, RequestParser, Response, serialize_response
from ..tasks import gather
from ..transports.server import Server
from .async_api import WebSocket
from .connection import OPEN, Role
from .handshake import ServerHandshake
from .protocol import Options, WebSocketHandler, WebSocketProtocol

__all__ = ["serve", "unix_serve", "broadcast", "WebSocketServer", "ServerProtocol"]

logger = logging.getLogger("netkit.websocket")

Handler = Callable[[WebSocket], Awaitable[None]]


class _ServerState:
    """What every connection of one server shares: policy, options, the handler,
    and the set of open connections (for ``max_connections`` and shutdown)."""

    def __init__(
        self,
        handler: Handler | type[WebSocketHandler] | WebSocketHandler,
        handshake: ServerHandshake,
        options: Options,
        max_connections: int | None,
        http_limits: dict[str, int],
    ) -> None:
        self.handler = handler
        self.handshake = handshake
        self.options = options
        self.max_connections = max_connections
        self.http_limits = http_limits
        self.protocols: set[ServerProtocol] = set()
        self.open_count = 0
        self.closing = False


class ServerProtocol(WebSocketProtocol):
    """A server-side connection: HTTP first, WebSocket after the handshake."""

    def __init__(self, state: _ServerState) -> None:
        super().__init__(Role.SERVER, state.options)
        self._state = state
        self._parser: RequestParser | None = RequestParser(**state.http_limits)
        self._open_handle: Any = None
        self._task: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._state.protocols.add(self)
        self._set_data_handler(self._head_received)
        timeout = self.options.open_timeout
        if timeout is not None:
            self._open_handle = self.loop.call_later(timeout, self._open_timed_out)  # type: ignore[union-attr]

    def _open_timed_out(self) -> None:
        self._open_handle = None
        if self.response is None:
            logger.info("opening handshake from %s timed out after %s s; dropping it", self.remote_address, self.options.open_timeout)
        else:
            logger.info("%s did not read its HTTP answer within %s s; dropping it", self.remote_address, self.options.open_timeout)
        self.transport.abort()

    def _head_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return  # answered already; ignore what follows
        try:
            parsed = parser.feed(data)
        except HTTPError as error:
            self._parser = None
            self._answer(self._state.handshake.reject(error).response)
            return
        if parsed is None:
            return
        request, leftover = parsed
        self._parser = None
        self.request = request
        state = self._state
        try:
            outcome = state.handshake.respond(request)
        except Exception as exc:
            self._report(exc, "process_request raised; answering 500")
            self._answer(Response(500, headers=[("Content-Type", "text/plain; charset=utf-8")], body=b"internal server error\n"))
            return
        if not outcome.accepted:
            self._answer(outcome.response)
            return
        if state.closing:
            self._answer(_plain(503, "the server is shutting down"))
            return
        if state.max_connections is not None and state.open_count >= state.max_connections:
            self._answer(_plain(503, f"too many connections (max_connections={state.max_connections})", retry=True))
            return
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        self.response = outcome.response
        self.transport.write(outcome.to_bytes())
        conn = self._new_connection(outcome.subprotocol)
        # Counted while self._conn is set, that is until connection_lost().
        state.open_count += 1
        self._conn = conn
        self._start_handler()
        self._open(conn, leftover)

    def _answer(self, response: Response) -> None:
        """Answer plain HTTP (a page, an error) and close the connection.

        The opening deadline keeps running: a client that asks for a page
        and never reads it cannot hold the connection (and the page) for ever.
        """
        self.response = response
        self.transport.write(serialize_response(response))
        self.transport.close()

    def _start_handler(self) -> None:
        handler = self._state.handler
        if isinstance(handler, WebSocketHandler):
            self.handler = handler
        elif isinstance(handler, type) and issubclass(handler, WebSocketHandler):
            self.handler = handler()
        else:
            ws = WebSocket(self)
            self._task = self.loop.create_task(self._run_handler(handler, ws))  # type: ignore[union-attr, arg-type]

    async def _run_handler(self, handler: Handler, ws: WebSocket) -> None:
        try:
            await handler(ws)
        except Exception as exc:
            if not self._lost and self._conn is not None and self._conn.state is OPEN:
                self._report(exc, "WebSocket handler raised; closing the connection with 1011")
                self.close(1011, "internal error")
            elif not _is_closed_error(exc):
                self._report(exc, "WebSocket handler raised after the connection closed")
        else:
            # RFC 6455 §7.4.1: 1000, normal closure, when the handler is done.
            self.close(1000, "")
        await ws.wait_closed()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._open_handle is not None:
            self._open_handle.cancel()
            self._open_handle = None
        state = self._state
        state.protocols.discard(self)
        if self._conn is not None:
            state.open_count -= 1
        super().connection_lost(exc)


def _is_closed_error(exc: BaseException) -> bool:
    from ..errors import ConnectionClosed

    return isinstance(exc, ConnectionClosed)


def _plain(status: int, text: str, retry: bool = False) -> Response:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
    if retry:
        headers.append(("Retry-After", "1"))
    body = (text + "\n").encode()
    headers.append(("Content-Length", str(len(body))))
    return Response(status, headers=headers, body=body)


class WebSocketServer:
    """What ``serve`` returns: the listening server plus its WebSocket connections.

    ``close()`` stops listening and starts the closing handshake of every
    open connection with 1001 (going away); ``await wait_closed()`` waits for
    all of them to end (each within its ``close_timeout``).
    """

    def __init__(self, server: Server, state: _ServerState) -> None:
        self.server = server
        self._state = state
        self._serving_forever: Any = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return self.server.sockets

    @property
    def connections(self) -> set[WebSocketProtocol]:
        """The connections that completed the opening handshake and are not closed."""
        return {p for p in self._state.protocols if p.state is OPEN}

    def is_serving(self) -> bool:
        """Whether the server accepts connections."""
        return self.server.is_serving()

    def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop accepting; close open connections with ``code`` (drop those still in the handshake)."""
        self._state.closing = True
        self.server.close()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.set_result(None)
        for protocol in list(self._state.protocols):
            if protocol.connection is None:
                protocol.abort()
            else:
                protocol.close(code, reason)

    def abort_clients(self) -> None:
        """Drop every connection at once, without a closing handshake."""
        for protocol in list(self._state.protocols):
            protocol.abort()

    async def wait_closed(self) -> None:
        """Wait until the listener and every connection are closed."""
        await self.server.wait_closed()
        tasks = [p._task for p in list(self._state.protocols) if p._task is not None]
        if tasks:
            await gather(*tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        """Serve until cancelled (or closed); cancelling closes the server and
        its connections (1001), and waits for them to end."""
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever() is already running")
        # Not the listener's own serve_forever(): on the way out, it waits for
        # every connection to end before anything has asked them to.
        self.server.start_serving_now()
        self._serving_forever = get_running_loop().create_future()
        try:
            await self._serving_forever
        finally:
            self._serving_forever = None
            self.close()
            await self.wait_closed()

    async def __aenter__(self) -> WebSocketServer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<WebSocketServer sockets={[s.getsockname() for s in self.sockets]} connections={len(self._state.protocols)}>"


def _server_state(
    handler: Handler | type[WebSocketHandler] | WebSocketHandler,
    *,
    subprotocols: Sequence[str] = (),
    origins: Any = None,
    process_request: Callable[[Request], Response | None] | None = None,
    extra_headers: Any = (),
    max_connections: int | None = None,
    max_line: int = 8192,
    max_headers: int = 128,
    max_head_size: int = 8192,
    **options: Any,
) -> _ServerState:
    """What every connection of one server shares, from ``serve``'s options;
    the connection options (:class:`Options`) are the remaining keywords."""
    if not (
        isinstance(handler, WebSocketHandler)
        or (isinstance(handler, type) and issubclass(handler, WebSocketHandler))
        or callable(handler)
    ):
        raise TypeError("handler must be an async function, a WebSocketHandler subclass or instance")
    unknown = set(options) - set(Options.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unexpected options: {', '.join(sorted(unknown))}")
    handshake = ServerHandshake(
        subprotocols=subprotocols, origins=origins, extra_headers=extra_headers, process_request=process_request
    )
    limits = {"max_line": max_line, "max_headers": max_headers, "max_head_size": max_head_size}
    return _ServerState(handler, handshake, Options(**options), max_connections, limits)


# Options that go to the listening socket rather than to the WebSocket layer.
_LISTENER_OPTIONS = frozenset({"family", "flags", "backlog", "reuse_address", "reuse_port", "start_serving", "cleanup_socket"})


def _listener_options(options: dict[str, Any]) -> dict[str, Any]:
    return {name: options.pop(name) for name in list(options) if name in _LISTENER_OPTIONS}


async def serve(
    handler: Handler | type[WebSocketHandler] | WebSocketHandler,
    host: str | None = None,
    port: int | None = None,
    *,
    sock: socket.socket | None = None,
    **options: Any,
) -> WebSocketServer:
    """Serve WebSockets on ``host``:``port`` (or on a listening ``sock``).

    ``handler`` is either an async function ``handler(ws)`` run for every
    connection with a :class:`WebSocket` (when it returns, the connection is
    closed with 1000; 1011 if it raised), or a :class:`WebSocketHandler`
    subclass (one instance per connection) or instance (shared), for the
    callback API.

    Options of the opening handshake: ``subprotocols`` (in order of
    preference), ``origins`` (allowed ``Origin`` values or a callable; others
    get 403), ``process_request(request)`` (return a ``Response`` to answer
    plain HTTP on the same port instead of upgrading), ``extra_headers`` (added
    to the 101 response), ``max_connections`` (more get 503), and the HTTP
    limits ``max_line``, ``max_headers``, ``max_head_size`` (8192, 128, 8192).
    Options of every connection: those of :class:`Options` (``max_message_size``,
    ``max_queue``, ``write_limit``, ``open_timeout``, ``close_timeout``,
    ``ping_interval``, ``ping_timeout``, ``auto_pong``).  Options of the
    listener: ``family``, ``flags``, ``backlog``, ``reuse_address``,
    ``reuse_port``, ``start_serving``, as ``loop.create_server`` takes them.
    """
    loop = get_running_loop()
    listener = _listener_options(options)
    state = _server_state(handler, **options)
    if sock is not None:
        server = await loop.create_server(lambda: ServerProtocol(state), sock=sock, **listener)
    else:
        server = await loop.create_server(lambda: ServerProtocol(state), host, port, **listener)
    return WebSocketServer(server, state)


async def unix_serve(
    handler: Handler | type[WebSocketHandler] | WebSocketHandler, path: str | os.PathLike[str], **options: Any
) -> WebSocketServer:
    """Like ``serve``, on a Unix socket at ``path``; the same options, plus
    ``cleanup_socket`` (remove the socket file on close, default true)."""
    loop = get_running_loop()
    listener = _listener_options(options)
    state = _server_state(handler, **options)
    server = await loop.create_unix_server(lambda: ServerProtocol(state), os.fspath(path), **listener)
    return WebSocketServer(server, state)


def broadcast(connections: Iterable[WebSocketProtocol | WebSocket], message: str | bytes, *, limit: int | None = None) -> int:
    """Send ``message`` to every open connection without waiting.

    A connection whose send buffer is above ``limit`` (default: its own
    ``write_limit``) is skipped rather than allowed to hold everyone up or
    grow memory.  Returns how many connections were skipped that way.
    """
    skipped = 0
    for connection in connections:
        protocol = connection.protocol if isinstance(connection, WebSocket) else connection
        conn = protocol.connection
        if conn is None or protocol._lost or not conn.writable:
            continue
        threshold = protocol.options.write_limit if limit is None else limit
        if protocol.write_buffer_size > threshold:
            skipped += 1
            continue
        protocol.send(message)
    if skipped:
        logger.debug("broadcast skipped %d slow connection(s)", skipped)
    return skipped
