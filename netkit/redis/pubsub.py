"""Redis pub/sub: subscriptions on a connection of their own, messages through ``async for``.

::

    sub = r.pubsub()
    await sub.subscribe("news")           # returns once Redis confirmed it
    await sub.psubscribe("alerts.*")
    async for message in sub:             # Message(channel, data, pattern)
        print(message.channel, message.data)

A subscribed connection carries messages, not replies, so a :class:`PubSub`
opens its own (with the client's URL, login and limits) when it first
subscribes.

Bounded memory.  Received messages wait in a queue of at most
``max_messages``.  When it is full the subscriber stops reading its socket:
the kernel's buffers fill, TCP pushes back, and the messages pile up in
Redis instead, where its ``client-output-buffer-limit`` for pub/sub clients
(by default 32 MB at once, or 8 MB for 60 s) decides when to drop the
slow subscriber.  That is the right place to drop: Redis knows, and says in
its log.  Reading resumes once the queue is down to half.

Reconnection.  When the connection is lost (Redis restarted, or dropped a
slow subscriber), the messages that arrived before are still delivered; then,
with ``reconnect=True`` (the default), the subscriber connects again, with a
growing delay between attempts, and subscribes again to every channel and
pattern.  Redis' pub/sub delivers at most once: what was published while
the subscriber was away is lost.  ``reconnects`` counts the reconnections
and ``last_error`` says why the last connection ended.  With
``reconnect=False``, ``async for`` raises :class:`RedisConnectionError`
instead, after the messages that arrived before.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import netkit

from ..errors import ProtocolError
from .connection import RespConnection, open_resp_connection
from .errors import RedisConnectionError, RedisError
from .resp import NEED_DATA, encode_command, encode_commands

if TYPE_CHECKING:
    from .client import Settings

__all__ = ["PubSub", "Message", "DEFAULT_MAX_MESSAGES"]

logger = logging.getLogger("netkit")

# Messages a subscriber holds before it stops reading: a burst that a busy
# reader catches up with (a few MiB at typical message sizes of a few KiB).
# Beyond it TCP pushes back and Redis' own pub/sub output limit decides.
DEFAULT_MAX_MESSAGES = 1024

# Delays between reconnection attempts: Redis restarts in tens of
# milliseconds to seconds, so start at 50 ms and double up to 2 s, which
# bounds both the wait after a short restart and the attempts during a long
# outage (one every 2 s).
FIRST_RETRY_DELAY = 0.05
MAX_RETRY_DELAY = 2.0

_CLIENT_DEFAULT: Any = object()  # "the client's command_timeout"
_SUBSCRIBE, _PSUBSCRIBE, _UNSUBSCRIBE, _PUNSUBSCRIBE = b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe"


class Message(NamedTuple):
    """A message published on ``channel``; ``pattern`` is the pattern it matched
    when it came through :meth:`PubSub.psubscribe`, else ``None``."""

    channel: bytes
    data: bytes
    pattern: bytes | None = None


class PubSub:
    """A subscriber: ``subscribe``/``psubscribe``, then ``async for message in sub``.

    Made by :meth:`Redis.pubsub`.  ``max_messages`` bounds the queue of
    received messages (reading pauses when it is full); ``reconnect`` says
    whether to connect and subscribe again when the connection is lost.
    """

    def __init__(self, settings: Settings, *, max_messages: int = DEFAULT_MAX_MESSAGES, reconnect: bool = True) -> None:
        if type(max_messages) is not int or max_messages < 1:
            raise ValueError(f"max_messages must be an int >= 1, not {max_messages!r}")
        self.max_messages = max_messages
        self.reconnect = reconnect
        #: How many times the subscriber connected again after losing its connection.
        self.reconnects = 0
        #: Why the last connection ended, or the last attempt to open one failed.
        self.last_error: BaseException | None = None
        self._settings = settings
        self._address = settings.url.address
        self._channels: set[bytes] = set()
        self._patterns: set[bytes] = set()
        self._messages: collections.deque[Message] = collections.deque()
        self._getters: list[netkit.Future[None]] = []
        self._confirmations: dict[tuple[bytes, bytes], list[netkit.Future[None]]] = {}
        self._connection: RespConnection | None = None
        self._connecting: netkit.Task[None] | None = None
        self._ever_connected = False
        self._closed = False
        self._failed: BaseException | None = None

    def __repr__(self) -> str:
        return (
            f"<PubSub {self._address} channels={len(self._channels)} patterns={len(self._patterns)} "
            f"queued={len(self._messages)}/{self.max_messages}{' closed' if self._closed else ''}>"
        )

    @property
    def channels(self) -> frozenset[bytes]:
        """The channels subscribed to (or being subscribed to)."""
        return frozenset(self._channels)

    @property
    def patterns(self) -> frozenset[bytes]:
        """The patterns subscribed to (or being subscribed to)."""
        return frozenset(self._patterns)

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def qsize(self) -> int:
        """Messages received and not read yet (at most ``max_messages``, plus what
        one read from the socket held when the connection ended)."""
        return len(self._messages)

    # -- subscribing -------------------------------------------------------------

    async def subscribe(self, *channels: str | bytes, timeout: float | None = _CLIENT_DEFAULT) -> None:
        """Subscribe to ``channels``; return once Redis confirmed each of them.

        Raises :class:`RedisError` if Redis refuses (an ACL, for example),
        :class:`RedisConnectionError` if no connection can be opened, and
        ``TimeoutError`` after ``timeout`` seconds (the client's
        ``command_timeout`` by default).
        """
        await self._subscribe("SUBSCRIBE", _SUBSCRIBE, channels, self._channels, timeout)

    async def psubscribe(self, *patterns: str | bytes, timeout: float | None = _CLIENT_DEFAULT) -> None:
        """Subscribe to every channel matching one of ``patterns`` (``news.*``)."""
        await self._subscribe("PSUBSCRIBE", _PSUBSCRIBE, patterns, self._patterns, timeout)

    async def unsubscribe(self, *channels: str | bytes, timeout: float | None = _CLIENT_DEFAULT) -> None:
        """Unsubscribe from ``channels`` (all of them when none is named).
        Messages already queued are still delivered."""
        await self._unsubscribe("UNSUBSCRIBE", _UNSUBSCRIBE, channels, self._channels, timeout)

    async def punsubscribe(self, *patterns: str | bytes, timeout: float | None = _CLIENT_DEFAULT) -> None:
        """Unsubscribe from ``patterns`` (all of them when none is named)."""
        await self._unsubscribe("PUNSUBSCRIBE", _PUNSUBSCRIBE, patterns, self._patterns, timeout)

    async def _subscribe(self, command: str, kind: bytes, names: tuple[Any, ...], wanted: set[bytes], timeout: float | None) -> None:
        self._check_open()
        if not names:
            raise ValueError(f"{command} needs at least one name")
        keys = [_name(name) for name in names]
        wanted.update(keys)
        confirmations = [self._expect(kind, key) for key in keys]
        connection = self._connection
        if connection is not None and connection.usable:
            connection.write(encode_command(command, *keys))
        else:
            # The connection being opened subscribes to everything wanted.
            self._start_connecting()
        await self._confirmed(confirmations, timeout, command)

    async def _unsubscribe(self, command: str, kind: bytes, names: tuple[Any, ...], wanted: set[bytes], timeout: float | None) -> None:
        self._check_open()
        keys = [_name(name) for name in names] if names else sorted(wanted)
        wanted.difference_update(keys)
        connection = self._connection
        if not keys or connection is None or not connection.usable:
            return  # no connection subscribed: the next one subscribes to what is wanted only
        confirmations = [self._expect(kind, key) for key in keys]
        connection.write(encode_command(command, *keys))
        await self._confirmed(confirmations, timeout, command)

    def _expect(self, kind: bytes, key: bytes) -> netkit.Future[None]:
        future: netkit.Future[None] = netkit.get_running_loop().create_future()
        waiting = self._confirmations.get((kind, key), [])
        # Drop the waiters of calls that timed out or were cancelled: a
        # confirmation that never comes must not let the list grow.
        self._confirmations[(kind, key)] = [*(other for other in waiting if not other.done()), future]
        return future

    async def _confirmed(self, confirmations: list[netkit.Future[None]], timeout: float | None, command: str) -> None:
        if timeout is _CLIENT_DEFAULT:
            timeout = self._settings.command_timeout
        try:
            await netkit.wait_for(netkit.gather(*confirmations), timeout)
        except TimeoutError:
            raise TimeoutError(f"Redis at {self._address} did not confirm {command} within {timeout} s") from None

    # -- receiving ---------------------------------------------------------------

    async def get_message(self, timeout: float | None = None) -> Message:
        """The next message; wait for one at most ``timeout`` seconds (``None``: no limit).

        Raises :class:`RedisConnectionError` when the subscriber is closed, or
        when its connection was lost with ``reconnect=False``.
        """
        if not self._messages:
            if timeout is None:
                await self._message_arrived()
            else:
                await netkit.wait_for(self._message_arrived(), timeout)
        message = self._messages.popleft()
        connection = self._connection
        # Read again once the queue is down to half: not at every message,
        # which would pause and resume the socket at each one.
        if connection is not None and connection.holding and len(self._messages) <= self.max_messages // 2:
            connection.release()
        return message

    async def _message_arrived(self) -> None:
        while not self._messages:
            if self._closed:
                raise RedisConnectionError(self._address, f"the subscriber to Redis at {self._address} is closed")
            if self._failed is not None:
                raise _ended(self._failed, self._address) from self._failed
            getter: netkit.Future[None] = netkit.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            finally:
                if getter in self._getters:
                    self._getters.remove(getter)

    def __aiter__(self) -> PubSub:
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration ends when the subscriber is closed."""
        try:
            return await self.get_message()
        except RedisConnectionError:
            if self._closed:
                raise StopAsyncIteration from None
            raise

    def _on_reply(self, reply: Any) -> None:
        """A message, a confirmation or an error from the subscribed connection."""
        if isinstance(reply, RedisError):
            self._refused(reply)
            return
        if not isinstance(reply, list) or len(reply) < 3:
            logger.debug("redis %s: subscriber ignored %.80r", self._address, reply)
            return
        kind = reply[0]
        if kind == b"message":
            self._deliver(Message(reply[1], reply[2]))
        elif kind == b"pmessage" and len(reply) == 4:
            self._deliver(Message(reply[2], reply[3], reply[1]))
        elif kind in (_SUBSCRIBE, _PSUBSCRIBE, _UNSUBSCRIBE, _PUNSUBSCRIBE):
            for future in self._confirmations.pop((kind, reply[1]), ()):
                if not future.done():
                    future.set_result(None)
        else:
            logger.debug("redis %s: subscriber ignored %.80r", self._address, reply)

    def _deliver(self, message: Message) -> None:
        self._messages.append(message)
        self._wake_getters()
        connection = self._connection
        if len(self._messages) >= self.max_messages and connection is not None:
            connection.hold()

    def _wake_getters(self) -> None:
        getters, self._getters = self._getters, []
        for getter in getters:
            if not getter.done():
                getter.set_result(None)

    def _refused(self, error: RedisError) -> None:
        """Redis refused a (p)subscribe: fail every subscription waiting for its
        confirmation (replies do not say which command they answer)."""
        logger.warning("redis %s: a subscription was refused: %s", self._address, error)
        self._fail_confirmations(lambda: RedisError(error.message))

    def _fail_confirmations(self, make_error: Any) -> None:
        confirmations, self._confirmations = self._confirmations, {}
        for (kind, key), futures in confirmations.items():
            if kind == _SUBSCRIBE:
                self._channels.discard(key)
            elif kind == _PSUBSCRIBE:
                self._patterns.discard(key)
            for future in futures:
                if not future.done():
                    future.set_exception(make_error())

    # -- the connection --------------------------------------------------------

    def _start_connecting(self) -> None:
        if self._connecting is None and not self._closed and self._failed is None:
            self._connecting = netkit.create_task(self._open())

    async def _open(self) -> None:
        settings = self._settings
        delay = FIRST_RETRY_DELAY
        while True:
            try:
                connection = await open_resp_connection(
                    settings.url, limits=settings.limits, protocol=settings.protocol, timeout=settings.connect_timeout
                )
                break
            except (OSError, ProtocolError, RedisConnectionError, RedisError) as exc:
                failure: BaseException = exc
                self.last_error = failure
                if not (self._ever_connected and self.reconnect):
                    # No connection yet: tell those who wait rather than retry.
                    self._connecting = None
                    self._fail_confirmations(lambda: _copy(failure, self._address))
                    return
                logger.debug("redis %s: subscriber could not reconnect (%s); next attempt in %.2f s", self._address, failure, delay)
                await netkit.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
        self._connecting = None
        if self._closed:
            connection.close()
            return
        if self._ever_connected:
            self.reconnects += 1
            logger.info("redis %s: subscriber reconnected; subscribing again", self._address)
        self._ever_connected = True
        self._use(connection)

    def _use(self, connection: RespConnection) -> None:
        """Make ``connection`` the subscribed one: route its messages here and
        subscribe to every channel and pattern wanted, in one write."""
        connection.reply_sink = connection.push_sink = self._on_reply
        connection.on_lost = lambda error: self._lost(connection, error)
        self._connection = connection
        commands = []
        if self._channels:
            commands.append(("SUBSCRIBE", *sorted(self._channels)))
        if self._patterns:
            commands.append(("PSUBSCRIBE", *sorted(self._patterns)))
        if commands:
            connection.write(encode_commands(commands))
        if len(self._messages) >= self.max_messages:
            connection.hold()

    def _lost(self, connection: RespConnection, error: BaseException) -> None:
        if connection is not self._connection:
            return  # closed by close(), or replaced already
        self._connection = None
        # What arrived before the end is delivered, whatever the queue's bound:
        # those bytes are in memory already.
        self._take_buffered(connection)
        self.last_error = error
        # Unsubscribing is done: the subscriptions ended with the connection.
        for key in [key for key in self._confirmations if key[0] in (_UNSUBSCRIBE, _PUNSUBSCRIBE)]:
            for future in self._confirmations.pop(key):
                if not future.done():
                    future.set_result(None)
        if self._closed:
            return
        if self.reconnect:
            logger.warning("redis %s: subscriber lost its connection (%s); reconnecting", self._address, error)
            self._start_connecting()
        else:
            self._failed = error
            self._fail_confirmations(lambda: _ended(error, self._address))
        self._wake_getters()

    def _take_buffered(self, connection: RespConnection) -> None:
        parser = connection.parser
        while True:
            try:
                reply = parser.next_reply()
            except ProtocolError:
                return
            if reply is NEED_DATA:
                return
            self._on_reply(reply)

    def _check_open(self) -> None:
        if self._closed:
            raise RedisConnectionError(self._address, f"the subscriber to Redis at {self._address} is closed")
        if self._failed is not None:
            raise _ended(self._failed, self._address) from self._failed

    async def close(self) -> None:
        """Close the connection; queued messages are dropped, ``async for`` ends."""
        if self._closed:
            return
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self._messages.clear()
        self._fail_confirmations(lambda: RedisConnectionError(self._address, f"the subscriber to Redis at {self._address} is closed"))
        self._wake_getters()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            await connection.closed

    async def __aenter__(self) -> PubSub:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _name(name: Any) -> bytes:
    if isinstance(name, str):
        return name.encode()
    if isinstance(name, (bytes, bytearray)):
        return bytes(name)
    raise TypeError(f"a channel or pattern is str or bytes, not {type(name).__name__}")


def _copy(exc: BaseException, address: str) -> BaseException:
    """A new exception like ``exc``, to raise in several tasks without piling up tracebacks."""
    if isinstance(exc, RedisError):
        fresh: BaseException = RedisError(exc.message)
    else:
        fresh = _ended(exc, address)
    fresh.__cause__ = exc
    return fresh


def _ended(error: BaseException, address: str) -> RedisConnectionError:
    """The error a subscriber whose connection ended with ``error`` raises."""
    if isinstance(error, RedisConnectionError):
        return RedisConnectionError(address, error.reason)
    return RedisConnectionError(address, f"the connection to Redis at {address} ended: {error}")
