"""The chat server on netkit's loop: three doors into one :class:`ChatHub`.

1. ``GET /`` on the HTTP port serves the chat page (and ``/healthz`` a health
   check) through the WebSocket server's ``process_request`` hook;
2. ``/ws`` on the same port upgrades to a WebSocket carrying one JSON object
   per text message, for pages of the chat's own origin or of an allowed one
   (see :mod:`.origins`) and for clients that are not browsers;
3. the TCP port speaks the same JSON, one UTF-8 object per length-prefixed
   frame (4-byte big-endian length), for terminal clients.

Each door only moves messages between its connections and the hub: it wraps
a connection in a member whose ``send()`` queues without waiting (and says
``False`` once the connection's send buffer is over the limit) and tells the
hub what arrives.  One loop, one hub, so a message from any door reaches
everyone in the room in the order the hub received it.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
from collections.abc import Iterable
from typing import Any, Callable

from .. import framing, websocket
from ..errors import ConnectionClosed, FrameTooLarge, IncompleteReadError, ProtocolError
from ..http import Request, Response
from ..sync import Event
from ..tasks import Task, gather, get_running_loop, sleep, wait_for
from . import protocol
from .origins import OriginPolicy
from .page import page_html, page_response_headers
from .room import ChatHub, ChatLimits, CloseReason

__all__ = ["ChatServer", "run_chat_server", "DEFAULT_HOST", "DEFAULT_HTTP_PORT", "DEFAULT_TCP_PORT", "WEBSOCKET_PATH"]

logger = logging.getLogger("netkit.chat")

DEFAULT_HOST = "127.0.0.1"  # loopback: a chat server reachable from elsewhere is an explicit choice
DEFAULT_HTTP_PORT = 8765  # the port WebSocket tutorials conventionally use
DEFAULT_TCP_PORT = 8766  # the next one, so the pair is easy to remember
WEBSOCKET_PATH = "/ws"

# The hub's timeouts are checked once a second: they are tens of seconds
# long, so a second of slack does not matter, and one pass over the members
# per second costs nothing next to the traffic.
SWEEP_INTERVAL = 1.0

# A framed client closed on the server's initiative gets this long to read
# what is still buffered for it, then its connection is aborted: the same
# 10 s as the WebSocket server's close_timeout.
FRAMED_CLOSE_TIMEOUT = 10.0

# On shutdown, connections get this long to finish their closing handshakes
# (WebSocket close_timeout is 10 s; a little more so they can finish on their own).
SHUTDOWN_GRACE = 12.0

# RFC 6455 §7.4.1 and the IANA registry of close codes: 1001 "going away" for
# a server shutting down, 1008 "policy violation" for a client closed for what
# it did, 1013 "try again later" for a full server or a client that fell
# behind (it may well keep up after reconnecting).
_WEBSOCKET_CLOSE_CODES = {
    CloseReason.SHUTDOWN: 1001,
    CloseReason.FLOODING: 1008,
    CloseReason.JOIN_TIMEOUT: 1008,
    CloseReason.KEEPALIVE_TIMEOUT: 1008,
    CloseReason.SERVER_FULL: 1013,
    CloseReason.TOO_MANY_CONNECTIONS: 1013,
    CloseReason.SLOW: 1013,
}


def _host_of(address: Any) -> str | None:
    """The IP address in a socket address, for the per-address limits."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _text_response(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Response:
    body = text.encode("utf-8")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        *(extra or []),
    ]
    return Response(status, headers=headers, body=body)


# --------------------------------------------------------------- WebSocket door


class _WebSocketMember:
    """A WebSocket connection as a hub member."""

    __slots__ = ("connection", "door", "peer", "_server")

    def __init__(self, connection: Any, server: ChatServer) -> None:
        self.connection = connection
        self.door = "ws"
        self.peer = _format_address(connection.remote_address)
        self._server = server

    def send(self, text: str) -> bool:
        if self.connection.write_buffer_size > self._server.limits.send_buffer_limit:
            return False
        try:
            self.connection.send_nowait(text)
        except ConnectionClosed:
            pass  # already closing: its handler is about to tell the hub
        return True

    def close(self, reason: CloseReason) -> None:
        code = _WEBSOCKET_CLOSE_CODES[reason]
        self._server._spawn(self.connection.close(code, str(reason)))


# ------------------------------------------------------------------ framed door


class _FramedMember:
    """A framed TCP connection as a hub member."""

    __slots__ = ("protocol", "door", "peer")

    def __init__(self, protocol: _FramedChatProtocol, peer: str) -> None:
        self.protocol = protocol
        self.door = "tcp"
        self.peer = peer

    def send(self, text: str) -> bool:
        transport = self.protocol.transport
        if transport.is_closing():
            return True  # going away: connection_lost will tell the hub
        if transport.get_write_buffer_size() > self.protocol.chat.limits.send_buffer_limit:
            return False
        self.protocol.send_frame(text.encode("utf-8"))
        return True

    def close(self, reason: CloseReason) -> None:
        transport = self.protocol.transport
        if reason is CloseReason.SLOW:
            # Its buffer is full because it does not read: flushing would wait on it.
            transport.abort()
            return
        transport.close()
        get_running_loop().call_later(FRAMED_CLOSE_TIMEOUT, self.protocol.abort_if_open)


class _FramedChatProtocol(framing.FramedProtocol):
    """The terminal clients' door: one JSON object per length-prefixed frame."""

    def __init__(self, chat: ChatServer) -> None:
        # The frame limit is the hub's message limit: a larger frame is refused
        # when its header arrives, before its body is buffered.
        super().__init__(framing.LengthPrefixFramer("!I", max_frame_size=chat.limits.max_message_bytes))
        self.chat = chat
        self.member: _FramedMember | None = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.chat.stopping:
            transport.close()
            return
        self.member = _FramedMember(self, _format_address(transport.get_extra_info("peername")))
        # No WebSocket pings on this door: the hub pings silent members itself.
        self.chat.hub.connect(self.member, keepalive=True, address=_host_of(transport.get_extra_info("peername")))

    def frame_received(self, frame: bytes) -> None:
        if self.member is not None:
            self.chat.hub.receive(self.member, frame)

    def framing_error(self, exc: ProtocolError | IncompleteReadError) -> None:
        member = self.member
        peer = member.peer if member is not None else "-"
        logger.info("event=framing_error door=tcp peer=%s error=%s", peer, json.dumps(str(exc)))
        if isinstance(exc, FrameTooLarge) and member is not None:
            # str(exc) is worded for this side's log ("... (local)"); the
            # client gets the same refusal as any message over the limit.
            refusal = protocol.too_long_error(exc.value, exc.maximum)
            member.send(protocol.encode(protocol.error(refusal.code, f"{refusal.message}; closing the connection")))
        self.transport.close()

    def abort_if_open(self) -> None:
        if not self.lost:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        if self.member is not None:
            self.chat.hub.disconnect(self.member, "quit" if exc is None else "connection lost")


# ---------------------------------------------------------------------- server


class ChatServer:
    """The chat on the running loop: ``await start()``, then ``await stop()``.

    ``http_port`` serves the page and the WebSocket door, ``tcp_port`` the
    framed door; port 0 picks a free port (see :attr:`http_address` and
    :attr:`tcp_address`), ``None`` leaves that door shut.  ``origins`` are the
    web origins (``https://chat.example.com``) whose pages may open the
    WebSocket besides the chat's own page (``"*"``: any).  ``websocket_options``
    go to ``netkit.websocket.serve`` as they are (``open_timeout``,
    ``close_timeout``, ``max_message_size``, ...).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        http_port: int | None = DEFAULT_HTTP_PORT,
        tcp_port: int | None = DEFAULT_TCP_PORT,
        *,
        limits: ChatLimits | None = None,
        hub: ChatHub | None = None,
        origins: Iterable[str] = (),
        websocket_options: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.hub = hub if hub is not None else ChatHub(limits)
        self.limits = self.hub.limits
        self.origin_policy = OriginPolicy(origins)
        self._http_port = http_port
        self._tcp_port = tcp_port
        self._websocket_options = dict(websocket_options or {})
        self._web_server: Any = None
        self._tcp_server: Any = None
        self._sweeper: Task[None] | None = None
        self._tasks: set[Task[Any]] = set()
        self.stopping = False

    # ------------------------------------------------------------ addresses

    @property
    def http_address(self) -> tuple[str, int] | None:
        """``(host, port)`` the page and WebSocket listen on, once started."""
        return self._bound(self._web_server)

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the framed TCP door, once started."""
        return self._bound(self._tcp_server)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (the HTTP door's, then the TCP door's), once
        started: to read their addresses or set socket options, which the
        connections accepted afterwards inherit on Linux and the BSDs."""
        return tuple(sock for server in (self._web_server, self._tcp_server) if server is not None for sock in server.sockets)

    @staticmethod
    def _bound(server: Any) -> tuple[str, int] | None:
        if server is None or not server.sockets:
            return None
        host, port = server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def url(self) -> str | None:
        """The page's address, for the "open this" line."""
        address = self.http_address
        if address is None:
            return None
        return f"http://{_format_address(address)}/"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the doors and start the timeout sweeper."""
        loop = get_running_loop()
        try:
            if self._http_port is not None:
                options: dict[str, Any] = {
                    "process_request": self.answer_http,
                    "max_message_size": self.limits.max_message_bytes,
                    "ping_interval": self.limits.ping_interval,
                    "ping_timeout": self.limits.ping_timeout,
                }
                options.update(self._websocket_options)
                self._web_server = await websocket.serve(self._serve_websocket, self.host, self._http_port, **options)
            if self._tcp_port is not None:
                self._tcp_server = await loop.create_server(lambda: _FramedChatProtocol(self), self.host, self._tcp_port)
        except BaseException:
            for server in (self._web_server, self._tcp_server):
                if server is not None:
                    server.close()
            raise
        self._sweeper = loop.create_task(self._sweep_forever(), name="chat-sweeper")
        logger.info(
            "event=listening http=%s tcp=%s",
            _format_address(self.http_address) if self.http_address else "-",
            _format_address(self.tcp_address) if self.tcp_address else "-",
        )

    async def stop(self) -> None:
        """Stop accepting, close every client (WebSocket clients with 1001) and
        wait until their connections are gone.  Idempotent."""
        if self.stopping:
            return
        self.stopping = True
        servers = [server for server in (self._web_server, self._tcp_server) if server is not None]
        for server in servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.hub.shutdown()
        for server in servers:
            try:
                await wait_for(server.wait_closed(), SHUTDOWN_GRACE)
            except TimeoutError:
                server.abort_clients()
                await server.wait_closed()
        if self._tasks:
            await gather(*self._tasks, return_exceptions=True)
        logger.info("event=stopped messages=%d slow_dropped=%d", self.hub.stats.messages, self.hub.stats.slow_dropped)

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_forever(self) -> None:
        while True:
            await sleep(SWEEP_INTERVAL)
            self.hub.sweep()

    # ------------------------------------------------------------------ doors

    def answer_http(self, request: Request) -> Response | None:
        """``process_request``: the page, the health check, 404 for the rest;
        ``None`` lets ``/ws`` go on to the WebSocket handshake, 403 refuses it
        to a page from an origin that may not use it."""
        path = request.target.partition("?")[0]
        if path == WEBSOCKET_PATH:
            headers = request.headers
            if self.origin_policy.allows(headers.get_all("Origin"), headers.get("Host")):
                return None
            logger.info("event=origin_refused origin=%s", json.dumps(headers.get("Origin")))
            # RFC 6455 §4.2.2: a server that does not accept the origin
            # "MUST return an appropriate HTTP error code (e.g., 403 Forbidden)".
            return _text_response(403, "pages from this origin may not open the chat's WebSocket\n")
        if request.method not in ("GET", "HEAD"):
            return _text_response(405, "method not allowed\n", [("Allow", "GET, HEAD")])
        if path == "/":
            body = page_html() if request.method == "GET" else b""
            return Response(200, headers=page_response_headers(), body=body)
        if path == "/healthz":
            return _text_response(200, "ok\n", [("Cache-Control", "no-store")])
        return _text_response(404, "not found\n")

    async def _serve_websocket(self, connection: Any) -> None:
        """One WebSocket client, from its first message to its close."""
        if self.stopping:
            await connection.close(1001, str(CloseReason.SHUTDOWN))
            return
        member = _WebSocketMember(connection, self)
        if not self.hub.connect(member, address=_host_of(connection.remote_address)):
            await connection.wait_closed()
            return
        reason = "quit"
        try:
            async for message in connection:
                if isinstance(message, str):
                    self.hub.receive(member, message)
                else:
                    # The WebSocket door carries JSON in text messages only.
                    self.hub.reject(member, protocol.binary_message_error())
        except ConnectionClosed:
            reason = "connection lost"
        finally:
            self.hub.disconnect(member, reason)


async def run_chat_server(
    host: str = DEFAULT_HOST,
    http_port: int | None = DEFAULT_HTTP_PORT,
    tcp_port: int | None = DEFAULT_TCP_PORT,
    *,
    limits: ChatLimits | None = None,
    origins: Iterable[str] = (),
    websocket_options: dict[str, Any] | None = None,
    on_ready: Callable[[ChatServer], object] | None = None,
) -> None:
    """Run a chat server until SIGINT or SIGTERM, then shut it down cleanly.

    ``limits``, ``origins`` and ``websocket_options`` are :class:`ChatServer`'s;
    ``on_ready(server)`` is called once it listens (to print its addresses).
    """
    server = ChatServer(host, http_port, tcp_port, limits=limits, origins=origins, websocket_options=websocket_options)
    await server.start()
    loop = get_running_loop()
    stop = Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await server.stop()
