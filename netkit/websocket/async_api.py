"""The async API: :class:`WebSocket`, what ``serve`` handlers receive and
``connect`` returns.

It is a :class:`~netkit.websocket.protocol.WebSocketHandler` of its own
protocol: messages that arrive wait in a bounded queue until ``recv()``;
``send()`` queues a message and then waits while the send buffer is above
``write_limit``.  Both are cancellation-safe: a message is either returned
by ``recv()`` or stays queued, and a cancelled ``send()`` has queued its
whole message (or, for a message sent in pieces, closes the connection
rather than leave half a message on the wire).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from typing import Any, AsyncIterable, Iterable

from ..errors import ConnectionClosedOK
from ..futures import Future, wait_until_woken, wake_waiters
from ..tasks import shield
from .connection import OPEN, State
from .protocol import _QUEUE_FULL, _WRITING_PAUSED, WebSocketHandler, WebSocketProtocol

__all__ = ["WebSocket"]

logger = logging.getLogger("netkit.websocket")

Message = str | bytes


class WebSocket(WebSocketHandler):
    """One WebSocket connection, driven with ``await``.

    ``await ws.send(msg)``, ``await ws.recv()``, ``async for msg in ws``,
    ``await ws.ping()``, ``await ws.close()``, ``await ws.wait_closed()``.
    """

    def __init__(self, protocol: WebSocketProtocol) -> None:
        self.protocol = protocol
        protocol.handler = self
        self._messages: collections.deque[Message] = collections.deque()
        self._max_queue = max(1, protocol.options.max_queue)
        self._resume_at = max(0, self._max_queue // 4)
        self._full_check_scheduled = False  # a _pause_reading_if_full() call is on its way
        self._discarded = 0  # messages dropped while closing with a full queue
        self._getter: Future[None] | None = None
        self._drain_waiters: list[Future[None]] = []
        self._closed: Future[None] | None = None

    # ----------------------------------------------------------- properties

    @property
    def state(self) -> State:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED``."""
        return self.protocol.state

    @property
    def request(self) -> Any:
        """The opening handshake's HTTP request (``.target`` is the path and query)."""
        return self.protocol.request

    @property
    def response(self) -> Any:
        """The opening handshake's HTTP response."""
        return self.protocol.response

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed on in the handshake, if any."""
        return self.protocol.subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address."""
        return self.protocol.remote_address

    @property
    def close_code(self) -> int | None:
        """The close code received once closed (1006 without a close frame)."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason received once closed."""
        return self.protocol.close_reason

    @property
    def latency(self) -> float | None:
        """The round trip of the last ping answered, in seconds."""
        return self.protocol.latency

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued for sending."""
        return self.protocol.write_buffer_size

    def __repr__(self) -> str:
        return f"<WebSocket {self.protocol.role.value} {self.state.name} peer={self.remote_address}>"

    # -------------------------------------------------------------- receiving

    def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
        messages = self._messages
        if len(messages) >= self._max_queue and ws.state is not OPEN:
            # We sent a close frame and the queue is full: keep reading so that
            # the peer's close frame gets through, and discard what comes before
            # it rather than buffer without bound (or stall the close).
            self._discarded += 1
            return
        messages.append(message)
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)
        if len(messages) >= self._max_queue and not self._full_check_scheduled and ws.state is OPEN:
            # The queue is full.  Whether the application keeps up is known
            # once the tasks woken by this read have run: check then, still
            # before the loop reads again.  Pausing at once would cost two
            # system calls per read whenever one read brings max_queue messages.
            self._full_check_scheduled = True
            ws.loop.call_soon(self._pause_reading_if_full)  # type: ignore[union-attr]

    def _pause_reading_if_full(self) -> None:
        """The application is not keeping up: stop reading, so TCP pushes back on the peer."""
        self._full_check_scheduled = False
        protocol = self.protocol
        if len(self._messages) >= self._max_queue and protocol.state is OPEN:
            protocol._set_read_flag(_QUEUE_FULL, True)

    async def recv(self) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises ``ConnectionClosedOK`` after a normal close,
        ``ConnectionClosedError`` otherwise, once every queued message was read.
        """
        messages = self._messages
        while not messages:
            if self._no_more_messages():
                raise self.protocol.closed_error()
            if self._getter is not None:
                raise RuntimeError("recv() called while another coroutine is already waiting for a message")
            getter: Future[None] = self.protocol.loop.create_future()  # type: ignore[union-attr]
            self._getter = getter
            try:
                await getter
            finally:
                if self._getter is getter:
                    self._getter = None
        message = messages.popleft()
        if len(messages) <= self._resume_at and self.protocol._flow & _QUEUE_FULL:
            self.protocol._set_read_flag(_QUEUE_FULL, False)
        return message

    def _no_more_messages(self) -> bool:
        conn = self.protocol.connection
        return self.protocol._lost or (conn is not None and conn.close_received is not None) or (
            conn is not None and conn.failure is not None
        )

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Message:
        """The next message, as ``recv()``; the iteration ends quietly at a normal close."""
        messages = self._messages
        if messages:
            # recv() without its call when a message is waiting: the common
            # case when messages arrive faster than they are handled.
            message = messages.popleft()
            if len(messages) <= self._resume_at and self.protocol._flow & _QUEUE_FULL:
                self.protocol._set_read_flag(_QUEUE_FULL, False)
            return message
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # ---------------------------------------------------------------- sending

    async def send(self, message: Message | Iterable[Message] | AsyncIterable[Message]) -> None:
        """Send a message (``str``: text, bytes-like: binary) and wait while the
        send buffer is above ``write_limit``.

        An iterable or async iterable of ``str`` (or of bytes) is sent as one
        message in fragments, as the pieces come.
        """
        protocol = self.protocol
        kind = type(message)
        if kind is str or kind is bytes or kind is bytearray or kind is memoryview:
            if self._messages:
                # More received messages wait to be handled, and most likely
                # answered: let the answers go out together.
                protocol._send_soon(message)  # type: ignore[arg-type]
            else:
                protocol.send(message)  # type: ignore[arg-type]
            if protocol._flow & _WRITING_PAUSED:  # drain() inlined: no coroutine per message
                await self.drain()
            return
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            self.protocol.send(message)  # a subclass (a StrEnum member, say)
        elif isinstance(message, Mapping):
            # Iterating a dict would send its keys: almost certainly a
            # forgotten json.dumps().
            raise TypeError("cannot send a dict (or another mapping): serialize it first, with json.dumps() say")
        elif hasattr(message, "__aiter__"):
            await self._send_fragments_async(message)  # type: ignore[arg-type]
        elif hasattr(message, "__iter__"):
            self._send_fragments(message)  # type: ignore[arg-type]
        else:
            raise TypeError(f"cannot send {type(message).__name__}: expected str, bytes or an iterable of them")
        await self.drain()

    def send_nowait(self, message: Message) -> None:
        """Queue a message without waiting (for fan-out code that checks
        ``write_buffer_size`` itself)."""
        self.protocol.send(message)

    def _send_fragments(self, pieces: Iterable[Message]) -> None:
        iterator = iter(pieces)
        try:
            current = next(iterator)
        except StopIteration:
            return  # nothing to send: no message
        kind = str if isinstance(current, str) else bytes
        self._check_kind(current, kind)
        first = True
        try:
            for following in iterator:
                # Checked before the piece ahead of it goes out: a wrong second
                # piece then fails the call with nothing sent.
                self._check_kind(following, kind)
                self.protocol.send_fragment(current, first=first, last=False)
                first = False
                current = following
        except BaseException:
            if not first:
                # Half a message is on the wire and nothing may follow it but
                # its continuation: close rather than corrupt the stream.
                self.protocol.close(1011, "message interrupted")
            raise
        self.protocol.send_fragment(current, first=first, last=True)

    async def _send_fragments_async(self, pieces: AsyncIterable[Message]) -> None:
        iterator = pieces.__aiter__()
        try:
            current = await iterator.__anext__()
        except StopAsyncIteration:
            return
        kind = str if isinstance(current, str) else bytes
        first = True
        try:
            while True:
                try:
                    following = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                self._check_kind(current, kind)
                self.protocol.send_fragment(current, first=first, last=False)
                first = False
                current = following
                await self.drain()
        except BaseException:
            if not first:
                # Half a message is on the wire and nothing may follow it but
                # its continuation: close rather than corrupt the stream.
                self.protocol.close(1011, "message interrupted")
            raise
        self._check_kind(current, kind)
        self.protocol.send_fragment(current, first=first, last=True)

    @staticmethod
    def _check_kind(piece: Any, kind: type) -> None:
        if kind is str and not isinstance(piece, str) or kind is bytes and isinstance(piece, str):
            raise TypeError("all the pieces of a fragmented message must be str, or all bytes-like")

    async def drain(self) -> None:
        """Wait until the send buffer is below ``write_limit``."""
        protocol = self.protocol
        if protocol._lost:
            raise protocol.closed_error()
        if not protocol.is_writing_paused():
            return
        await wait_until_woken(self._drain_waiters, protocol.loop)  # type: ignore[arg-type]

    def on_resume_writing(self, ws: WebSocketProtocol) -> None:
        wake_waiters(self._drain_waiters)


    # ------------------------------------------------------------------ pings

    async def ping(self, data: bytes | None = None) -> float:
        """Send a ping and wait for its pong; returns the round trip in seconds."""
        protocol = self.protocol
        payload = protocol.ping(data)
        waiter: Future[float] = protocol.loop.create_future()  # type: ignore[union-attr]
        protocol._await_pong(payload, waiter)
        return await waiter

    async def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited pong."""
        self.protocol.pong(data)

    # ---------------------------------------------------------------- closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake and wait until the connection is closed
        (at most ``close_timeout``; then it is aborted)."""
        self.protocol.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        if self.protocol._lost:
            return
        if self._closed is None:
            self._closed = self.protocol.loop.create_future()  # type: ignore[union-attr]
        # Shielded: one waiter being cancelled must not cancel the shared future.
        await shield(self._closed)

    def on_closing(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        # No message will follow: a recv() waiting on an empty queue must raise now.
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def on_close(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        if self._discarded:
            logger.debug(
                "discarded %d message(s) from %s that arrived after close() with max_queue=%d unread",
                self._discarded,
                ws.remote_address,
                self._max_queue,
            )
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)
        wake_waiters(self._drain_waiters, ws.closed_error())
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
