"""``Server``: listening sockets that accept connections into transports."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Callable

from ..futures import Future, wait_until_woken, wake_waiters
from ..protocols import Protocol
from .base import is_disconnect
from .stream import StreamTransport

if TYPE_CHECKING:
    from ..loop import EventLoop

__all__ = ["Server"]

logger = logging.getLogger("netkit")

# Errors from accept() that mean "out of a resource right now", not "this
# listener is broken".  Accepting pauses and resumes after _ACCEPT_RETRY_DELAY
# rather than spinning at full speed on an error that will not go away in a
# microsecond (trio waits 100 ms in the same situation).
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_ACCEPT_RETRY_DELAY = 0.1

# Errors meaning the connection died in the accept queue: skip it.  Linux's
# accept(2) returns a new connection's pending network error instead of the
# connection, and says to treat those "like EAGAIN"; EPERM is a firewall rule
# refusing the connection.  The listener itself is fine in every case.
_ACCEPT_SKIP_ERRORS = {
    errno.ECONNABORTED,
    errno.ECONNRESET,
    errno.EPROTO,
    errno.EPERM,
    errno.ETIMEDOUT,
    errno.ENETDOWN,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    *([errno.ENONET] if hasattr(errno, "ENONET") else []),  # Linux only
}


class Server:
    """Listening sockets plus the connections they accepted.

    ``close()`` stops accepting (open connections carry on);
    ``await wait_closed()`` returns once the listeners are closed and every
    connection they accepted is gone.  ``async with`` closes and waits.
    """

    def __init__(
        self,
        loop: EventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], Protocol],
        *,
        backlog: int = 100,
        unix_paths: list[str] | None = None,
    ) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] = list(sockets)
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._unix_paths = list(unix_paths or [])
        self._transports: set[StreamTransport] = set()
        self._serving = False
        self._closed = False
        self._waiters: list[Future[None]] = []
        self._serving_forever: Future[None] | None = None
        self._retry_handle: Any = None
        for sock in self._sockets:
            sock.setblocking(False)

    # ------------------------------------------------------------------ state

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty once closed)."""
        return tuple(self._sockets)

    def get_loop(self) -> EventLoop:
        """The loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the server is accepting connections."""
        return self._serving

    def connection_count(self) -> int:
        """How many accepted connections are still open."""
        return len(self._transports)

    def __repr__(self) -> str:
        names = [s.getsockname() for s in self._sockets]
        return f"<Server {'serving' if self._serving else 'idle'} sockets={names} connections={len(self._transports)}>"

    # -------------------------------------------------------------- accepting

    def start_serving_now(self) -> None:
        """Listen and accept (called by ``create_server`` unless ``start_serving=False``)."""
        if self._serving or self._closed:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    async def start_serving(self) -> None:
        """Start accepting connections."""
        self.start_serving_now()

    async def serve_forever(self) -> None:
        """Accept connections until the server is closed or this call is cancelled.

        Cancelling it (Ctrl-C under ``netkit.run``) stops the listening at once
        and does not wait for the open connections, which could take forever:
        close or abort them (``close_clients``, ``abort_clients``) and
        ``await wait_closed()`` for that.
        """
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever() is already running")
        if self._closed:
            raise RuntimeError("the server is closed")
        self.start_serving_now()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        finally:
            self._serving_forever = None
            self.close()

    def _accept(self, sock: socket.socket) -> None:
        # Accept a burst (up to the backlog) per readiness event: a connection
        # storm then costs one select() per burst instead of one per client.
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP_ERRORS:
                    logger.debug("%r: a connection died before it was accepted: %s", self, exc)
                    continue
                if exc.errno in _RESOURCE_ERRORS:
                    self._loop.call_exception_handler(
                        {
                            "message": f"accept() failed ({os.strerror(exc.errno or 0)}); "
                            f"pausing accepts for {_ACCEPT_RETRY_DELAY} s",
                            "exception": exc,
                            "server": self,
                        }
                    )
                    self._pause_accepting()
                    return
                raise
            try:
                protocol = self._protocol_factory()
            except BaseException as exc:
                conn.close()
                self._loop.call_exception_handler(
                    {"message": "the server's protocol factory raised; connection dropped", "exception": exc, "server": self}
                )
                if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    raise
                continue
            try:
                StreamTransport(self._loop, conn, protocol, server=self, peername=addr)
            except BaseException as exc:
                self._drop_connection(conn, exc)
                if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                    raise
                continue
            if not self._serving:
                return  # the factory closed the server: its socket is gone

    def _drop_connection(self, conn: socket.socket, exc: BaseException) -> None:
        """An accepted socket could not be set up as a transport: close it at once,
        and report why unless the peer simply went away already."""
        conn.close()
        if is_disconnect(exc):
            logger.debug("%r: a connection died while it was being set up: %s", self, exc)
            return
        self._loop.call_exception_handler(
            {"message": "could not set up an accepted connection; connection dropped", "exception": exc, "server": self}
        )

    def _pause_accepting(self) -> None:
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
        self._retry_handle = self._loop.call_later(_ACCEPT_RETRY_DELAY, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._retry_handle = None
        if self._serving and not self._closed:
            for sock in self._sockets:
                self._loop.add_reader(sock.fileno(), self._accept, sock)

    # ---------------------------------------------------------- connections

    def _attach(self, transport: StreamTransport) -> None:
        self._transports.add(transport)

    def _detach(self, transport: StreamTransport) -> None:
        self._transports.discard(transport)
        self._wake_waiters_if_done()

    def close_clients(self) -> None:
        """Close every accepted connection (each flushes what it has buffered)."""
        for transport in list(self._transports):
            transport.close()

    def abort_clients(self) -> None:
        """Abort every accepted connection at once."""
        for transport in list(self._transports):
            transport.abort()

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Stop listening and close the listening sockets; connections stay open."""
        if self._closed:
            return
        self._closed = True
        self._serving = False
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        for sock in self._sockets:
            if not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []
        for path in self._unix_paths:
            _remove_socket_file(path)
        self._unix_paths = []
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._wake_waiters_if_done()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and all its connections are gone."""
        if self._closed and not self._transports:
            return
        await wait_until_woken(self._waiters, self._loop)

    def _wake_waiters_if_done(self) -> None:
        if not self._closed or self._transports:
            return
        wake_waiters(self._waiters)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


def _remove_socket_file(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove Unix socket file %r: %s", path, exc)
