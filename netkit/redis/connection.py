"""One TCP connection to Redis: the thin shell around :class:`RespParser`.

:class:`RespConnection` is a ``netkit.Protocol``: it moves the bytes a
server sends into the parser and hands each reply to whoever waits for it.
Redis answers the commands of one connection in the order they were sent,
so the waiters form a FIFO queue: the first reply is the first waiter's.
A reply that arrives with nobody waiting is a protocol error (the client
never sent a command for it), which is why the client's memory for replies
is bounded by the commands it sent.

Pushes (RESP3 ``>``) and, on a subscriber's connection, replies beyond the
commands sent go to a sink instead.  A sink may ``hold()`` the connection:
parsing stops, the transport stops reading, the kernel's buffers fill, and
TCP pushes back on the server.  ``release()`` goes on where it stopped.

Only the loop's public interface is used (``create_connection``,
``create_future``, a transport's ``write``, ``pause_reading`` ...).
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable

import netkit

from ..errors import ProtocolError
from .errors import RedisConnectionError, RedisError, RespProtocolError
from .resp import NEED_DATA, Limits, Push, RespParser, encode_commands
from .url import RedisURL

__all__ = ["RespConnection", "Batch", "open_resp_connection"]

logger = logging.getLogger("netkit")


class Batch:
    """One waiter for the replies of several commands sent together (a pipeline):
    one queue entry and one future for all of them."""

    __slots__ = ("future", "replies", "size")

    def __init__(self, future: netkit.Future[list[Any]], size: int) -> None:
        self.future = future
        self.replies: list[Any] = []
        self.size = size


class RespConnection(netkit.Protocol):
    """Sends commands, parses replies and gives each to the command it answers."""

    def __init__(self, url: RedisURL, limits: Limits, loop: Any) -> None:
        self.url = url
        self.address = url.address
        self.loop = loop
        self.parser = RespParser(limits)
        self.transport: Any = None
        #: The waiters for replies, oldest first: futures and batches.
        self.pending: collections.deque[Any] = collections.deque()
        #: Where RESP3 pushes go; ``None`` drops them.
        self.push_sink: Callable[[Push], None] | None = None
        #: Where replies go when no command waits (a subscriber's messages in RESP2).
        self.reply_sink: Callable[[Any], None] | None = None
        #: Called once, with ``error``, when the connection has ended.
        self.on_lost: Callable[[BaseException], None] | None = None
        #: Why the connection ended (``None`` while it is up).
        self.error: BaseException | None = None
        #: Done once ``connection_lost`` has run (the socket is closed).
        self.closed: netkit.Future[None] = loop.create_future()
        self.server_info: dict[Any, Any] = {}
        self._holding = False
        self.writing_paused = False
        self._drain_waiters: list[netkit.Future[None]] = []

    def __repr__(self) -> str:
        state = "open" if self.error is None else "closed"
        return f"<RespConnection {self.address} {state} pending={len(self.pending)}>"

    @property
    def usable(self) -> bool:
        """Whether a command sent now can get its reply."""
        return self.error is None and self.transport is not None and not self.transport.is_closing()

    # -- sending ---------------------------------------------------------------

    def send(self, data: bytes, waiter: Any) -> None:
        """Write ``data`` (one or more commands); ``waiter`` takes their replies."""
        if not self.usable:
            raise self.failure()
        self.pending.append(waiter)
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        """Write commands whose answers are not replies (``SUBSCRIBE`` and the like:
        their confirmations go to the sinks)."""
        if not self.usable:
            raise self.failure()
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self.writing_paused and self.error is None:
            waiter: netkit.Future[None] = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- receiving -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.reply_sink is not None:
            # A subscriber's connection: one reply at a time, so that a full
            # queue stops the parsing where it is.
            try:
                self.parser.receive(data)
            except ProtocolError as exc:
                self._protocol_failed(exc)
                return
            self.process()
            return
        replies: list[Any] = []
        try:
            self.parser.feed_into(data, replies)
        except ProtocolError as exc:
            self._dispatch_all(replies)  # what came before the bad reply is answered
            self._protocol_failed(exc)
            return
        self._dispatch_all(replies)

    def _dispatch_all(self, replies: list[Any]) -> None:
        dispatch = self._dispatch
        for reply in replies:
            if self.error is not None:
                return  # a stray reply ended the connection: the rest cannot be trusted
            dispatch(reply)

    def process(self) -> None:
        """Hand out every whole reply buffered, unless a sink holds the connection."""
        next_reply = self.parser.next_reply
        dispatch = self._dispatch
        while not self._holding:
            try:
                reply = next_reply()
            except ProtocolError as exc:
                self._protocol_failed(exc)
                return
            if reply is NEED_DATA:
                return
            dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        pending = self.pending
        if type(reply) is Push:
            self._to_sink(self.push_sink, reply)
        elif pending:
            waiter = pending[0]
            if type(waiter) is Batch:
                waiter.replies.append(reply)
                if len(waiter.replies) < waiter.size:
                    return
                pending.popleft()
                if not waiter.future.done():
                    waiter.future.set_result(waiter.replies)
            else:
                pending.popleft()
                if not waiter.done():  # done: its caller timed out or was cancelled
                    waiter.set_result(reply)
        elif self.reply_sink is not None:
            self._to_sink(self.reply_sink, reply)
        else:
            self._protocol_failed(RespProtocolError(f"Redis at {self.address} sent a reply no command was waiting for: {reply!r:.80}"))

    def _to_sink(self, sink: Callable[[Any], None] | None, value: Any) -> None:
        if sink is None:
            logger.debug("redis %s: push dropped (no push handler): %.80r", self.address, value)
            return
        try:
            sink(value)
        except Exception as exc:  # a user's handler failed: report it, keep the connection
            self.loop.call_exception_handler({"message": f"Redis push handler failed on {value!r:.80}", "exception": exc, "protocol": self})

    def hold(self) -> None:
        """Stop handing out replies and stop reading: TCP pushes back on the server."""
        self._holding = True
        if self.transport is not None:
            self.transport.pause_reading()

    def release(self) -> None:
        """Hand out the buffered replies again and read more once they are out."""
        if not self._holding:
            return
        self._holding = False
        self.process()
        if not self._holding and self.transport is not None:
            self.transport.resume_reading()

    @property
    def holding(self) -> bool:
        """Whether a sink holds the connection (reading is paused)."""
        return self._holding

    # -- ending ------------------------------------------------------------------

    def eof_received(self) -> bool | None:
        return None  # the server closed its side: close ours, connection_lost follows

    def close(self) -> None:
        """Close the connection after what is written; waiting commands fail."""
        if self.error is None:
            self.error = RedisConnectionError(self.address, f"the connection to Redis at {self.address} was closed by the client")
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is not sent yet."""
        if self.error is None:
            self.error = RedisConnectionError(self.address, f"the connection to Redis at {self.address} was aborted by the client")
        if self.transport is not None:
            self.transport.abort()

    def _protocol_failed(self, exc: ProtocolError) -> None:
        """The server's bytes cannot be parsed: drop the connection; every waiting
        command fails with ``exc``."""
        if self.error is None:
            self.error = exc
            logger.warning("redis %s: closing the connection: %s", self.address, exc)
        self._holding = True  # parse nothing more
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.error is None:
            reason = f": {exc}" if exc is not None else " (the server closed it)"
            self.error = RedisConnectionError(self.address, f"lost the connection to Redis at {self.address}{reason}")
            if exc is not None:
                self.error.__cause__ = exc
        pending, self.pending = self.pending, collections.deque()
        for waiter in pending:
            future = waiter.future if type(waiter) is Batch else waiter
            if not future.done():
                future.set_exception(self.failure())
        self._wake_drainers()
        self.closed.set_result(None)
        if self.on_lost is not None:
            try:
                self.on_lost(self.error)
            except Exception as error:  # a bug: report it, as the loop does for protocols
                self.loop.call_exception_handler({"message": "Redis connection-lost callback failed", "exception": error, "protocol": self})

    def failure(self) -> BaseException:
        """A fresh exception saying why this connection cannot be used: the same
        instance raised in many tasks would pile up their tracebacks."""
        error = self.error
        if isinstance(error, RedisConnectionError) or error is None:
            message = error.reason if error is not None else f"the connection to Redis at {self.address} is closing"
            fresh = RedisConnectionError(self.address, message)
            fresh.__cause__ = error.__cause__ if error is not None else None
            return fresh
        return error  # a protocol error or limit: the one the parser raised


async def open_resp_connection(url: RedisURL, *, limits: Limits, protocol: int, timeout: float | None) -> RespConnection:
    """Connect to ``url``, then log in and pick the database (``HELLO``/``AUTH``,
    ``SELECT``) in one round trip, all within ``timeout`` seconds."""
    loop = netkit.get_running_loop()
    connection = RespConnection(url, limits, loop)
    try:
        async with netkit.timeout(timeout):
            try:
                await loop.create_connection(lambda: connection, url.host, url.port)
            except OSError as exc:
                raise RedisConnectionError(url.address, f"cannot connect to Redis at {url.address}: {exc.strerror or exc}") from exc
            await _handshake(connection, protocol)
    except TimeoutError:
        connection.abort()
        raise TimeoutError(f"connecting to Redis at {url.address} took more than {timeout} s") from None
    except BaseException:
        connection.abort()
        raise
    return connection


async def _handshake(connection: RespConnection, protocol: int) -> None:
    url = connection.url
    commands: list[tuple[Any, ...]] = []
    if protocol == 3:
        # RESP3: HELLO switches the protocol and can log in at the same time.
        hello: tuple[Any, ...] = ("HELLO", 3)
        if url.password is not None:
            hello += ("AUTH", url.username or "default", url.password)
        commands.append(hello)
    elif url.password is not None:
        commands.append(("AUTH", url.username, url.password) if url.username else ("AUTH", url.password))
    if url.db:
        commands.append(("SELECT", url.db))
    if not commands:
        return
    batch = Batch(connection.loop.create_future(), len(commands))
    connection.send(encode_commands(commands), batch)
    replies = await batch.future
    for reply in replies:
        if isinstance(reply, RedisError):
            raise reply
    if protocol == 3 and isinstance(replies[0], dict):
        connection.server_info = replies[0]
