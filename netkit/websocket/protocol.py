"""The WebSocket shell on netkit's loop: a ``Protocol`` that moves bytes
between a transport and the sans-I/O :class:`~netkit.websocket.connection.Connection`.

:class:`WebSocketProtocol` is the connection object of the callback API (its
``send`` never blocks) and the engine under the async API
(:class:`~netkit.websocket.async_api.WebSocket`).  It owns the things the
sans-I/O core leaves to the shell: timers (keepalive pings, the opening and
closing deadlines), closing TCP, and the order of outgoing frames.

Outgoing frames, and why control frames overtake data
-----------------------------------------------------
Data frames go straight to the transport while its buffer is below the
high-water mark (``write_limit``).  Above it, they wait in the protocol's
*outbox*, and large payloads enter the transport in slices of
``_SLICE`` bytes.  Pings and pongs skip the outbox, so a keepalive ping never
waits behind megabytes of queued data and times out for nothing; the
socket's ``TCP_NOTSENT_LOWAT`` keeps the kernel's own unsent backlog small
for the same reason.  A control frame may go between two frames but never
inside one (RFC 6455 §5.4), so one that comes while a large frame is half
way into the transport waits for the rest of that frame, and no longer.

A close frame started by the application goes after the data queued before
it: what was sent before ``close()`` is delivered.  When the peer broke the
protocol, the data not yet started is dropped and the close frame follows
the frame in progress: the connection has failed, and only the close frame
still has something to say.

While the transport's buffer is full, control frames wait in the protocol
too, and a pong waits alone: RFC 6455 §5.5.3 lets an endpoint answer only
the most recent of the pings it has not answered yet.

When reading pauses, and why
----------------------------
Reading pauses for any of these reasons, each a bit of ``_flow``, and
resumes once none is left; ``_update_reading`` is the one place that tells
the transport.

* *Answers wait.*  The peer sends what must be answered faster than it
  reads the answers: the handler's answers to a read (an echo, say) leave
  the send buffer above ``write_limit``, or a ping arrives while the pong
  to an earlier one still waits.  Reading resumes once the send buffer has
  drained (to a quarter of ``write_limit``), so TCP holds such a peer back
  and the send buffer stays within ``write_limit`` plus the answers to one
  read.
* *The queue is full.*  The async API holds ``max_queue`` messages not yet
  received; reading resumes once the application has caught up.
* *The application asked*, with :meth:`WebSocketProtocol.pause_reading`.

A send buffer filled by the application's own sending pauses nothing by
itself.  The sender waits for it to drain (``await send()``,
``on_resume_writing``), and reading on is what lets a peer that does the
same (a client that uploads while it downloads) see its own buffer drain:
two peers that stopped reading whenever their send buffers were full would
wait for each other for ever.  Reading on costs nothing there, since the
pongs owed meanwhile wait alone.

While the closing handshake is under way nothing pauses reading: the
peer's close frame is behind whatever it sent, a closing connection answers
nothing it reads, and ``close_timeout`` bounds the wait.
"""

from __future__ import annotations

import collections
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .._runtime import get_running_loop
from ..errors import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStateError, LimitExceeded
from ..protocols import Protocol
from .connection import CLOSED, CLOSING, OPEN, Connection, Role, State
from .events import BinaryMessage, CloseReceived, ConnectionFailed, Ping, Pong, TextMessage
from .frames import DEFAULT_MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    from ..http import Request, Response
    from ..loop import EventLoop

__all__ = ["Options", "WebSocketHandler", "WebSocketProtocol"]

logger = logging.getLogger("netkit.websocket")

# Slices of a large payload enter the transport this many bytes at a time, so
# at most about one slice sits between a newly queued ping and the wire.
_SLICE = 64 * 1024

# TCP_NOTSENT_LOWAT: keep at most this much unsent data in the kernel.  16 KiB
# is trio's choice ("bandwidth × rescheduling interval" for a typical link);
# more data waits in user space where control frames can overtake it.
_NOTSENT_LOWAT = 16 * 1024
# Python defines the constant on the systems that have the option (Linux, macOS).
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", None)

# A frame this size or smaller (64 KiB of payload and the longest header: 10
# bytes plus a 4-byte mask key) is written to an idle transport in one call.
_DIRECT_LIMIT = _SLICE + 14


# Stands for the keepalive timer among those waiting for a pong.
_KEEPALIVE = object()

# Close codes of a normal ending: normal closure, going away, and a close frame without a code.
_OK_CODES = frozenset({1000, 1001, 1005})

# The first byte of every pong we send: FIN and the opcode 0xA (RFC 6455 §5.2).
_PONG_FIRST_BYTE = 0x8A

# Flow control: the bits of WebSocketProtocol._flow.  The first says whether
# writing is paused; the others why reading is (see the module's docstring).
_WRITING_PAUSED = 1  # the send buffer went above write_limit and has not drained yet
_ANSWERS_WAIT = 2  # answers to what the peer sends pile up in the send buffer
_QUEUE_FULL = 4  # the async API holds max_queue messages not yet received
_PAUSED_BY_APPLICATION = 8  # pause_reading() was called
_READ_PAUSES = _ANSWERS_WAIT | _QUEUE_FULL | _PAUSED_BY_APPLICATION


@dataclass
class Options:
    """Connection options shared by servers and clients; defaults as most users want them.

    Timeouts are in seconds; ``None`` turns a timeout or a limit off.
    """

    #: Largest message accepted, all fragments together (close 1009 above it).
    #: 1 MiB, as the websockets library: far above chat or RPC messages.
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    #: Messages received but not yet read with ``recv()`` before reading pauses
    #: (TCP then pushes back on the peer).  16, as websockets.
    max_queue: int = 16
    #: High-water mark of the send buffer (transport + outbox): ``send()`` waits
    #: and callback handlers get ``on_pause_writing`` above it, and a peer whose
    #: answers pile up above it is no longer read.  64 KiB, as netkit's
    #: transports; the low-water mark is a quarter of it.
    write_limit: int = 64 * 1024
    #: The opening handshake must be complete within this time (slowloris-proof).
    open_timeout: float | None = 10.0
    #: The whole closing sequence (send close, wait for the peer's, close TCP)
    #: takes at most this long; then the connection is aborted.
    close_timeout: float | None = 10.0
    #: Send a keepalive ping this often; ``None``: never.  20 s, as websockets:
    #: shorter than the idle timeouts of common proxies and NATs (30-60 s).
    ping_interval: float | None = 20.0
    #: Close with 1011 when a keepalive ping gets no pong within this time.
    ping_timeout: float | None = 20.0
    #: Answer pings automatically (RFC 6455 §5.5.2 says an endpoint MUST).
    auto_pong: bool = True


class WebSocketHandler:
    """The callback API: subclass it and override what you need.

    Every method receives the connection (``ws``, a :class:`WebSocketProtocol`)
    first.  ``ws.send()`` never blocks; when the send buffer passes
    ``write_limit``, ``on_pause_writing`` is called, and ``on_resume_writing``
    once it has drained.  What a handler sends in answer to a message is
    bounded for it: when answers leave the buffer above ``write_limit``, the
    connection stops reading until it drains.  Code that sends on its own
    (not in answer to a message) must wait for ``on_resume_writing``, or it
    grows memory.
    An exception raised here is logged and closes that connection with 1011.
    """

    def on_open(self, ws: WebSocketProtocol) -> None:
        """The opening handshake is complete."""

    def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
        """A whole message arrived: ``str`` for text, ``bytes`` for binary."""

    def on_ping(self, ws: WebSocketProtocol, data: bytes) -> None:
        """A ping arrived (already answered unless ``auto_pong`` is off)."""

    def on_pong(self, ws: WebSocketProtocol, data: bytes) -> None:
        """A pong arrived."""

    def on_pause_writing(self, ws: WebSocketProtocol) -> None:
        """The send buffer is above ``write_limit``: stop sending for now."""

    def on_resume_writing(self, ws: WebSocketProtocol) -> None:
        """The send buffer has drained: sending may go on."""

    def on_closing(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        """The peer sent a close frame (or broke the protocol, ``code`` then being
        the one sent to it): no message will follow, and the closing handshake
        is under way."""

    def on_close(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        """The connection is closed; ``code``/``reason`` are the peer's (1006: no close frame)."""


class WebSocketProtocol(Protocol):
    """One WebSocket connection, opened or being opened, on netkit's loop."""

    # Every attribute is set here, in this order, and there are fewer than 30
    # of them (subclasses included): CPython then shares one key table among
    # all instances, which saves about 1.2 KiB per connection (10,000 idle
    # connections are 12 MiB).  What is often absent is None until needed.

    def __init__(self, role: Role, options: Options, handler: WebSocketHandler | None = None) -> None:
        self.data_received = _discard  # replaced by _set_data_handler()
        self.role = role
        self.options = options
        self.handler: WebSocketHandler = handler if handler is not None else WebSocketHandler()
        self.transport: Any = None
        self.loop: EventLoop | None = None
        #: The opening request and response (for a server, the request it accepted).
        self.request: Request | None = None
        self.response: Response | None = None
        self.latency: float | None = None  # seconds, from the last ping answered
        self._conn: Connection | None = None
        # Created on first use: an empty deque is 760 bytes, and most
        # connections never queue anything.
        self._outbox: collections.deque[bytes | memoryview] | None = None
        self._outbox_size = 0
        # Bytes of the frame being moved into the transport that are still in
        # the outbox: while not 0, the transport ends inside a frame, and a
        # control frame written now would land in the middle of its payload.
        self._frame_left = 0
        self._control_waiting: list[bytes] | None = None  # control frames held until that frame is in
        # Batching: while the messages of one read are handed to the handler,
        # what it sends stays in the connection and goes out in one write
        # afterwards (``_held`` counts it, about the bytes, up to ``_SLICE``).
        self._dispatching = False
        self._held = 0
        self._flush_scheduled = False
        self._transport_paused = False
        # Whether writing is paused and why reading is, as bits (_WRITING_PAUSED, ...).
        self._flow = 0
        self._closing_transport = False
        self._lost = False
        self._close_handle: Any = None  # the closing deadline
        self._ping_handle: Any = None  # the next keepalive ping, or its pong deadline
        # Pings awaiting their pong: payload -> (time sent, who waits: the
        # future of an awaiting ping(), _KEEPALIVE, or None).
        self._pings: dict[bytes, tuple[float, Any]] | None = None
        # Called once closed; None once they have been (or the handler's on_close).
        self._closed_callbacks: list[Callable[[WebSocketProtocol], None]] | None = []

    # ------------------------------------------------------------------ state

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed on in the opening handshake, if any."""
        conn = self._conn
        return None if conn is None else conn.subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address (``None`` before the connection is made)."""
        transport = self.transport
        return None if transport is None else transport.get_extra_info("peername")

    @property
    def state(self) -> State:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED``."""
        conn = self._conn
        if conn is None:
            return CLOSED if self._lost else State.CONNECTING
        if self._lost:
            return CLOSED
        return conn.state

    @property
    def close_code(self) -> int | None:
        """The close code received (1005: none in the frame, 1006: no close frame);
        ``None`` while the connection is open."""
        if self._conn is None or self.state is OPEN:
            return None
        return self._conn.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason received; ``None`` while the connection is open."""
        if self._conn is None or self.state is OPEN:
            return None
        return self._conn.close_reason

    @property
    def connection(self) -> Connection | None:
        """The sans-I/O connection underneath (``None`` before the handshake)."""
        return self._conn

    @property
    def write_buffer_size(self) -> int:
        """Bytes queued for sending (outbox + transport buffer)."""
        transport = self.transport
        size = self._outbox_size
        if transport is not None:
            size += transport.get_write_buffer_size()
        return size

    def is_writing_paused(self) -> bool:
        """Whether the send buffer is above ``write_limit``."""
        return self._flow & _WRITING_PAUSED != 0

    def closed_error(self) -> ConnectionClosedOK | ConnectionClosedError:
        """The exception that says how the connection ended (raised by ``recv``/``send``).

        ``ConnectionClosedOK`` when the closing handshake completed with normal
        codes (1000, 1001, or none) both ways, ``ConnectionClosedError`` otherwise.
        """
        conn = self._conn
        if conn is None:
            return ConnectionClosedError(1006, "", message="connection closed during the opening handshake")
        code, reason = conn.close_code, conn.close_reason
        if conn.failure is not None:
            return ConnectionClosedError(code, reason, message=f"connection failed: {conn.failure}")
        if conn.close_was_clean and code in _OK_CODES and conn.close_sent.code in _OK_CODES:  # type: ignore[union-attr]
            return ConnectionClosedOK(code, reason)
        return ConnectionClosedError(code, reason)

    def add_closed_callback(self, callback: Callable[[WebSocketProtocol], None]) -> None:
        """Call ``callback(ws)`` once the connection is closed (at once if it is)."""
        if self._closed_callbacks is None:
            callback(self)
        else:
            self._closed_callbacks.append(callback)

    def __repr__(self) -> str:
        return f"<WebSocketProtocol {self.role.value} {self.state.name} peer={self.remote_address}>"

    # --------------------------------------------------------- transport side

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.loop = get_running_loop()
        transport.set_write_buffer_limits(self.options.write_limit)
        sock = transport.get_extra_info("socket")
        if sock is not None and _TCP_NOTSENT_LOWAT is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, _NOTSENT_LOWAT)
            except OSError:
                pass  # an older kernel: control frames still overtake queued data in user space

    def _new_connection(self, subprotocol: str | None) -> Connection:
        """The sans-I/O connection for a successful handshake, with the options' limits."""
        return Connection(
            self.role,
            subprotocol=subprotocol,
            max_message_size=self.options.max_message_size,
            auto_pong=self.options.auto_pong,
            # Messages that came just before a protocol violation still get
            # their answers out ahead of the close frame (_frames_received).
            answer_before_failing=True,
        )

    def _open(self, conn: Connection, leftover: bytes) -> None:
        """The handshake succeeded: switch to frames and tell the handler."""
        self._conn = conn
        self._set_data_handler(self._frames_received)
        self._schedule_keepalive()
        try:
            self.handler.on_open(self)
        except Exception as exc:
            self._handler_failed(exc, "on_open")
            return
        if leftover:
            self._frames_received(leftover)

    def _set_data_handler(self, handler: Callable[[bytes], None]) -> None:
        """Route incoming bytes to ``handler`` (the HTTP head, then frames, then
        nothing).  ``set_protocol`` makes a netkit transport, which binds
        ``data_received`` once for speed, pick up the new method."""
        self.data_received = handler  # type: ignore[method-assign]
        set_protocol = getattr(self.transport, "set_protocol", None)
        if set_protocol is not None:
            set_protocol(self)

    def _frames_received(self, data: bytes) -> None:
        conn = self._conn
        assert conn is not None
        if self._held:
            # Sent by the application before this read (the async API's
            # batched send): out first, so that what is held while handling
            # this read is only what answers it.
            self._flush()
        message = conn.receive_message(data)
        if message is not None:
            # The common read, one small whole message: no event objects.
            self._dispatching = True
            try:
                self.handler.on_message(self, message)
            except Exception as exc:
                if not self._handler_failed(exc, "a handler method"):
                    self._dispatching = False
                    return
            self._dispatching = False
            if self._held:
                self._flush()
                if self._flow:  # _flush_answers() inlined: the hot path of a callback echo
                    self._check_answers()
            return
        close_queued = conn.close_sent is not None  # our close frame may wait in the outbox
        events = conn.receive_data(data)
        handler = self.handler
        # Answers to the messages of this read are written together below:
        # one send() system call for the batch instead of one per message.
        self._dispatching = True
        replied = False  # whether the core queued frames of its own (a pong, a close)
        for event in events:
            kind = type(event)
            try:  # costs nothing unless something raises (CPython 3.11+)
                if kind is TextMessage or kind is BinaryMessage:
                    handler.on_message(self, event.data)  # type: ignore[attr-defined]
                elif kind is Ping:
                    replied = True
                    handler.on_ping(self, event.data)  # type: ignore[attr-defined]
                elif kind is Pong:
                    self._pong_received(event)  # type: ignore[arg-type]
                elif kind is CloseReceived:
                    replied = True
                    self._start_closing_deadline()
                    handler.on_closing(self, event.code, event.reason)  # type: ignore[attr-defined]
                elif kind is ConnectionFailed:
                    replied = True
                    self._connection_failed(event, close_queued)  # type: ignore[arg-type]
            except Exception as exc:
                if self._handler_failed(exc, "a handler method"):
                    continue
                self._dispatching = False
                if conn.failure_pending:
                    self.loop.call_soon(self._fail_pending)  # type: ignore[union-attr]
                return
        self._dispatching = False
        # Nothing to write otherwise (the async API answers later).
        if self._held:
            self._flush_answers()
        elif replied:
            self._flush()
        if replied and self._flow and conn.state is not OPEN:
            self._update_reading()  # closing now: the rest must be read whatever paused it
        if conn.failure_pending:
            # The messages before a protocol violation in this read were handed
            # over: fail once their answers are queued, from the callback API
            # now (see _flush above) or from tasks woken by this read, which
            # run before this call.
            self.loop.call_soon(self._fail_pending)  # type: ignore[union-attr]
        if conn.should_close_transport:
            self._close_transport()

    def _fail_pending(self) -> None:
        conn = self._conn
        if conn is None or self._lost or not conn.failure_pending:
            return
        close_queued = conn.close_sent is not None  # the application closed meanwhile
        for event in conn.fail_pending():
            try:
                self._connection_failed(event, close_queued)  # type: ignore[arg-type]
            except Exception as exc:
                if not self._handler_failed(exc, "on_closing"):
                    return
        self._flush()
        if conn.should_close_transport:
            self._close_transport()

    def _connection_failed(self, event: ConnectionFailed, close_queued: bool) -> None:
        """The peer broke the protocol: log it, drop what has not started to go
        out (the close frame is what matters now) and tell the handler.
        ``close_queued``: our own close frame was queued before, and may wait
        in the outbox behind data; then nothing is dropped, or it would be."""
        self._failed(event.error)
        if not close_queued:
            self._drop_unstarted_frames()
        self.handler.on_closing(self, event.code, str(event.error))

    def eof_received(self) -> bool:
        conn = self._conn
        if conn is not None and conn.state is not CLOSED:
            conn.receive_eof()
        # Close our side too: nothing more will arrive, and if we were
        # waiting for this FIN after the closing handshake, we are done.
        self._close_transport(drain=False)
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        conn = self._conn
        if conn is not None and conn.state is not CLOSED:
            conn.receive_eof()
        self._cancel_timers()
        self._outbox = None
        self._outbox_size = 0
        self._frame_left = 0
        self._control_waiting = None
        pings, self._pings = self._pings, None
        if pings:
            error = self.closed_error()
            for _, waiter in pings.values():
                if waiter is not None and waiter is not _KEEPALIVE and not waiter.done():
                    waiter.set_exception(error)
        self._flow = 0
        self._notify_closed()

    def _notify_closed(self) -> None:
        callbacks = self._closed_callbacks
        if callbacks is None:
            return
        self._closed_callbacks = None
        conn = self._conn
        if conn is not None:
            try:
                self.handler.on_close(self, conn.close_code, conn.close_reason)
            except Exception as exc:
                self._report(exc, "the handler's on_close() raised")
        for callback in callbacks:
            try:
                callback(self)
            except Exception as exc:
                self._report(exc, "a closed callback raised")

    # ---------------------------------------------------------------- sending

    def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send one message without blocking: ``str`` as text, bytes-like as binary.

        Raises ``ConnectionClosed`` once a close frame has been sent or the
        connection is gone.  Answers sent from a handler method are bounded
        for you (reading pauses when they pile up); for what you send on
        your own, watch ``is_writing_paused()`` (or ``on_pause_writing``) so
        as not to queue without bound.
        """
        self._queue_message(message)
        if not self._dispatching:
            self._flush()
        elif self._held >= _SLICE:
            self._flush_answers()  # a handler answering a read: a slice at a time

    def _queue_message(self, message: str | bytes | bytearray | memoryview) -> None:
        """Hand ``message`` to the connection; ``_held`` counts what waits to be flushed."""
        conn = self._conn
        if conn is None or self._lost or not conn.writable:
            raise self._not_sendable()
        kind = type(message)  # the exact types first: faster than isinstance()
        if kind is bytes:
            conn.send_binary(message)  # type: ignore[arg-type]
        elif kind is str or isinstance(message, str):
            conn.send_text(message)  # type: ignore[arg-type]
        else:
            conn.send_binary(message)  # type: ignore[arg-type]
        self._held += len(message) + 2  # at least a 2-byte header: never 0

    def _send_soon(self, message: str | bytes | bytearray | memoryview) -> None:
        """Send ``message`` with whatever else is sent before the loop's next
        turn, in one write (the async API uses it while more received
        messages wait to be answered).  Up to ``_SLICE`` bytes are held."""
        self._queue_message(message)
        if self._held >= _SLICE:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)  # type: ignore[union-attr]

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        if self._held and not self._lost and not self.transport.is_closing():
            self._flush()

    def send_fragment(self, data: str | bytes | bytearray | memoryview, *, first: bool, last: bool) -> None:
        """Send one fragment of a message sent in pieces (``first`` starts it,
        ``last`` ends it); text and binary as in ``send``."""
        conn = self._conn
        if conn is None or self._lost or not conn.writable:
            raise self._not_sendable()
        if first:
            if isinstance(data, str):
                conn.send_text(data, fin=last)
            else:
                conn.send_binary(data, fin=last)
        else:
            conn.send_continuation(data, fin=last)
        self._flush()

    def ping(self, data: bytes | None = None) -> bytes:
        """Send a ping; returns its payload (4 random bytes unless given)."""
        conn = self._conn
        if conn is None or self._lost or not conn.writable:
            raise self._not_sendable()
        payload = conn.send_ping(data)
        if self._pings is None:
            self._pings = {}
        self._pings[payload] = (self.loop.time(), None)  # type: ignore[union-attr]
        self._flush()
        return payload

    def _await_pong(self, payload: bytes, waiter: Any) -> None:
        """Resolve ``waiter`` with the round trip when the pong for ``payload`` comes."""
        if self._pings is not None and payload in self._pings:
            self._pings[payload] = (self._pings[payload][0], waiter)

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat, RFC 6455 §5.5.3)."""
        conn = self._conn
        if conn is None or self._lost or not conn.writable:
            raise self._not_sendable()
        conn.send_pong(data)
        self._flush()

    def _not_sendable(self) -> Exception:
        if self._conn is None and not self._lost:
            return InvalidStateError("the opening handshake is not complete")
        return self.closed_error()

    def _flush(self) -> None:
        """Write what the connection produced: control frames at once (between
        two frames), data frames through the outbox when the transport is full."""
        self._held = 0
        conn = self._conn
        if self._outbox or self._transport_paused:
            control = conn.control_to_send()  # type: ignore[union-attr]
            if control:
                if self._frame_left or self._transport_paused:
                    self._hold_control(control)
                else:
                    self.transport.writelines(control)
            data = conn.data_to_send()  # type: ignore[union-attr]
            if data:
                self._enqueue(data)
                self._pump()
            return
        # Nothing is queued, so the transport ends on a frame boundary.
        data = conn.data_to_send()  # type: ignore[union-attr]
        if not data:
            return
        if len(data) == 1:
            if len(data[0]) <= _DIRECT_LIMIT:
                self.transport.write(data[0])  # the common case: one small frame
                return
        elif sum(map(len, data)) <= _DIRECT_LIMIT:
            self.transport.writelines(data)  # a header and its payload: one sendmsg()
            return
        self._enqueue(data)
        self._pump()

    def _flush_answers(self) -> None:
        """Write what a handler sent in answer to a read, and check what that left."""
        self._flush()
        self._check_answers()

    def _check_answers(self) -> None:
        """Answers to a read were just written: if the send buffer is above
        ``write_limit``, the peer sends more than it reads, so read no more of
        it until the buffer has drained."""
        if self._flow & _WRITING_PAUSED:
            self._answers_wait()

    def _answers_wait(self) -> None:
        if not self._flow & _ANSWERS_WAIT:
            self._flow |= _ANSWERS_WAIT
            self._update_reading()

    def _hold_control(self, control: list[bytes]) -> None:
        """Keep control frames until the transport may take them: at the end of
        the frame in progress, once its buffer has drained.

        RFC 6455 §5.5.3: "If an endpoint receives a Ping frame and has not yet
        sent Pong frame(s) in response to previous Ping frame(s), the endpoint
        MAY elect to send a Pong frame for only the most recently processed
        Ping frame."  So a new pong replaces the one waiting, and one pong at
        most waits; a peer that pings again before it has read that pong is
        no longer read until the send buffer drains.
        """
        waiting = self._control_waiting
        if waiting is None:
            waiting = self._control_waiting = []
        for frame in control:
            if frame[0] == _PONG_FIRST_BYTE:
                for index, held in enumerate(waiting):
                    if held[0] == _PONG_FIRST_BYTE:
                        del waiting[index]
                        self._answers_wait()
                        break
            waiting.append(frame)

    def _enqueue(self, data: list[bytes]) -> None:
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = collections.deque()
        for buffer in data:
            outbox.append(buffer)
            self._outbox_size += len(buffer)

    def _pump(self) -> None:
        """Move queued data into the transport until it is full: a large
        buffer in slices, small ones together, up to a slice per call;
        control frames held back go in as soon as a frame ends."""
        outbox = self._outbox
        transport = self.transport
        if self._control_waiting and not self._frame_left and not self._transport_paused:
            waiting, self._control_waiting = self._control_waiting, None
            transport.writelines(waiting)
        while outbox and not self._transport_paused:
            buffer = outbox[0]
            if len(buffer) > _SLICE:
                if not self._frame_left:
                    self._frame_left = _frame_size(buffer)
                view = buffer if isinstance(buffer, memoryview) else memoryview(buffer)
                outbox[0] = view[_SLICE:]
                self._outbox_size -= _SLICE
                self._frame_left -= _SLICE
                transport.write(view[:_SLICE].tobytes())
                continue
            # Whole buffers, as many as fit in a slice, with one writelines():
            # one system call for a burst of small frames, not one per frame.
            batch: list[bytes | memoryview] = []
            size = 0
            while outbox and len(outbox[0]) <= _SLICE - size:
                buffer = outbox.popleft()
                if not self._frame_left:
                    self._frame_left = _frame_size(buffer)
                self._frame_left -= len(buffer)
                size += len(buffer)
                batch.append(buffer)
                if not self._frame_left and self._control_waiting:
                    batch.extend(self._control_waiting)
                    self._control_waiting = None
            self._outbox_size -= size
            transport.writelines(batch)
        if not outbox and not self._transport_paused and self._flow & _WRITING_PAUSED:
            # Drained: writing resumes, and reading if answers were what waited.
            flow = self._flow
            self._flow = flow & ~(_WRITING_PAUSED | _ANSWERS_WAIT)
            if flow & _ANSWERS_WAIT:
                self._update_reading()
            self._call_handler("on_resume_writing")
        if self._closing_transport and not outbox:
            self._close_transport()

    def _drop_unstarted_frames(self) -> None:
        """Forget the queued frames that have not started to go out, keeping
        the rest of the frame in progress (cutting it short would corrupt the
        stream).  For a failed connection, whose close frame is all that
        still matters."""
        keep = self._frame_left
        outbox = self._outbox
        if not outbox:
            return
        kept: collections.deque[bytes | memoryview] = collections.deque()
        while keep and outbox:
            buffer = outbox.popleft()  # frames end at buffer boundaries
            kept.append(buffer)
            keep -= len(buffer)
        self._outbox = kept
        self._outbox_size = sum(map(len, kept))

    def pause_writing(self) -> None:
        self._transport_paused = True
        if not self._flow & _WRITING_PAUSED:
            self._flow |= _WRITING_PAUSED
            self._call_handler("on_pause_writing")

    def resume_writing(self) -> None:
        self._transport_paused = False
        self._pump()

    # ---------------------------------------------------------------- reading

    def pause_reading(self) -> None:
        """Stop reading from the peer until :meth:`resume_reading` (TCP then
        holds it back).  Use this rather than the transport's own method: the
        connection pauses and resumes reading for reasons of its own too
        (answers piling up, a full queue), and reads while closing whatever
        paused it, since the peer's close frame must get through."""
        self._set_read_flag(_PAUSED_BY_APPLICATION, True)

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading`; reading resumes unless another reason holds it."""
        self._set_read_flag(_PAUSED_BY_APPLICATION, False)

    def _set_read_flag(self, flag: int, on: bool) -> None:
        """Set or clear one reason to pause reading and apply the outcome."""
        flow = self._flow
        if bool(flow & flag) is not on:
            self._flow = flow ^ flag
            self._update_reading()

    def _update_reading(self) -> None:
        """Pause or resume the transport's reading as the reasons in ``_flow``
        and the closing handshake say: the one place that does."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._flow & _READ_PAUSES and not self._is_closing():
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _is_closing(self) -> bool:
        """Whether the closing handshake (or the TCP close after it) is under way."""
        conn = self._conn
        return self._closing_transport or (conn is not None and conn.state is not OPEN)

    def _call_handler(self, method: str) -> None:
        try:
            getattr(self.handler, method)(self)
        except Exception as exc:
            self._handler_failed(exc, method)

    # ---------------------------------------------------------------- closing

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the transport is closed when it completes
        or when ``close_timeout`` runs out, whichever comes first."""
        conn = self._conn
        if conn is None:
            if self.transport is not None:
                self.transport.abort()
            return
        if self._lost or conn.state is not OPEN:
            return
        conn.close(code, reason)
        self._flush()
        self._start_closing_deadline()
        self._update_reading()  # the peer's close frame is behind whatever it sent
        if conn.should_close_transport:
            self._close_transport()

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        if self.transport is not None:
            self.transport.abort()

    def _start_closing_deadline(self) -> None:
        # One deadline for the whole closing sequence: sending our close frame
        # (behind queued data), the peer's answer, and the TCP close.
        if self._close_handle is None and self.options.close_timeout is not None and not self._lost:
            self._close_handle = self.loop.call_later(self.options.close_timeout, self._closing_deadline_passed)  # type: ignore[union-attr]

    def _closing_deadline_passed(self) -> None:
        self._close_handle = None
        if not self._lost:
            logger.debug("closing handshake with %s timed out; aborting", self.remote_address)
            self.transport.abort()

    def _close_transport(self, drain: bool = True) -> None:
        """Close TCP once queued frames are out: half-close and keep reading
        (and discarding) until the peer's FIN, so our close frame is not lost
        to a reset; the closing deadline bounds the wait."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._closing_transport = True
        if self._outbox:
            self._start_closing_deadline()
            return  # _pump() comes back here once the outbox is empty
        self._cancel_keepalive()
        if not drain or (self._conn is not None and self._conn.state is CLOSED):
            transport.close()
            return
        self._set_data_handler(_discard)
        self._start_closing_deadline()
        self._update_reading()  # until the peer's FIN
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def _failed(self, error: Exception) -> None:
        if isinstance(error, LimitExceeded):
            # Name the limit, the side and the values, so the log says what to tune.
            logger.warning("closing connection from %s: %s", self.remote_address, error)
        else:
            logger.info("closing connection from %s: protocol error: %s", self.remote_address, error)

    def _handler_failed(self, exc: Exception, where: str) -> bool:
        """A handler method raised: report it and close with 1011.  Returns
        whether to go on handing events to the handler."""
        conn = self._conn
        if isinstance(exc, ConnectionClosed) and conn is not None and conn.state is not OPEN:
            # A handler that sent while the closing handshake was under way
            # (an echo handler when the server shuts down): no bug, and the
            # close is already going on.
            return True
        self._report(exc, f"WebSocket handler failed in {where}; closing the connection with 1011")
        if conn is not None and conn.state is OPEN and not self._lost:
            conn.close(1011, "internal error")
            self._flush()
            self._start_closing_deadline()
            self._update_reading()
        elif self.transport is not None:
            self.transport.abort()
        return False

    def _report(self, exc: BaseException, message: str) -> None:
        if self.loop is not None:
            self.loop.call_exception_handler({"message": message, "exception": exc, "protocol": self})

    # -------------------------------------------------------------- keepalive

    def _schedule_keepalive(self) -> None:
        interval = self.options.ping_interval
        if interval is not None and not self._lost:
            self._ping_handle = self.loop.call_later(interval, self._send_keepalive)  # type: ignore[union-attr]

    def _send_keepalive(self) -> None:
        self._ping_handle = None
        conn = self._conn
        if conn is None or self._lost or conn.state is not OPEN:
            return
        payload = self.ping()
        self._pings[payload] = (self._pings[payload][0], _KEEPALIVE)  # type: ignore[index]
        timeout = self.options.ping_timeout
        if timeout is not None:
            self._ping_handle = self.loop.call_later(timeout, self._keepalive_timed_out)  # type: ignore[union-attr]
        else:
            self._schedule_keepalive()

    def _keepalive_timed_out(self) -> None:
        self._ping_handle = None
        conn = self._conn
        if conn is None or self._lost:
            return
        logger.info("keepalive ping to %s timed out after %s s; closing with 1011", self.remote_address, self.options.ping_timeout)
        if conn.state is OPEN:
            conn.close(1011, "keepalive ping timeout")
            self._flush()
        # The peer is not answering: do not wait for its close frame either.
        self.transport.abort()

    def _pong_received(self, event: Pong) -> None:
        now = self.loop.time()  # type: ignore[union-attr]
        pings = self._pings
        for payload in event.answered:
            sent, waiter = pings.pop(payload, (None, None)) if pings else (None, None)
            if sent is not None:
                self.latency = now - sent
            if waiter is _KEEPALIVE:
                if self._ping_handle is not None:
                    self._ping_handle.cancel()
                    self._ping_handle = None
                self._schedule_keepalive()
            elif waiter is not None and not waiter.done():
                waiter.set_result(self.latency)
        self.handler.on_pong(self, event.data)

    def _cancel_keepalive(self) -> None:
        if self._ping_handle is not None:
            self._ping_handle.cancel()
            self._ping_handle = None

    def _cancel_timers(self) -> None:
        self._cancel_keepalive()
        if self._close_handle is not None:
            self._close_handle.cancel()
            self._close_handle = None


def _frame_size(start: bytes | memoryview) -> int:
    """The total size of the frame that ``start`` begins with (our own output:
    a frame's whole header, mask key included, is always in its first buffer)."""
    # RFC 6455 §5.2: a 7-bit length, or 126 and 16 bits, or 127 and 64 bits;
    # then the 4-byte masking key when the MASK bit is set.
    second = start[1]
    length = second & 0x7F
    header = 2
    if length == 126:
        length = int.from_bytes(start[2:4], "big")
        header = 4
    elif length == 127:
        length = int.from_bytes(start[2:10], "big")
        header = 10
    if second & 0x80:
        header += 4
    return header + length


def _discard(data: bytes) -> None:
    """Bytes after our close frame and half-close: read only to see the FIN."""
