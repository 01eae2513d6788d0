"""The Redis client on netkit's loop: ``connect(url)``, ``execute``, pipelines, ``publish``.

::

    async with netkit.redis.connect("redis://127.0.0.1:6379/0") as r:
        await r.execute("SET", "greeting", "hello")
        assert await r.execute("GET", "greeting") == b"hello"

One :class:`Redis` holds one connection.  Commands from several tasks share
it: each is written at once and the replies come back in order, so
concurrent callers pipeline without asking.  When the connection is lost,
the commands waiting for a reply fail with :class:`RedisConnectionError`
and the next command connects again (logging in and selecting the database
of the URL again).  Subscriptions need a connection of their own: see
:meth:`Redis.pubsub`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import netkit

from .connection import Batch, RespConnection, open_resp_connection
from .errors import RedisConnectionError, RedisError
from .resp import DEFAULT_LIMITS, Limits, Push, encode_command
from .url import RedisURL, parse_url

if TYPE_CHECKING:
    from .pubsub import PubSub

__all__ = ["connect", "Redis", "Pipeline"]

# Seconds to open the connection and log in: netkit.websocket.connect's
# open_timeout, far above a healthy server's milliseconds, short enough that
# a black-holed address fails while someone still waits for the answer.
DEFAULT_CONNECT_TIMEOUT = 10.0

# Commands after which a connection carries a stream of messages instead of
# one reply per command: they belong on a PubSub's connection.
_STREAMING_COMMANDS = frozenset({"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"})
_STREAMING_LENGTHS = frozenset(map(len, _STREAMING_COMMANDS))

_CLIENT_DEFAULT: Any = object()  # "the client's command_timeout"


@dataclass(frozen=True)
class Settings:
    """What every connection of one client is opened with."""

    url: RedisURL
    protocol: int
    limits: Limits
    connect_timeout: float | None
    command_timeout: float | None
    push_handler: Callable[[Push], None] | None


def connect(
    url: str = "redis://localhost:6379/0",
    *,
    timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    command_timeout: float | None = None,
    protocol: int = 2,
    limits: Limits = DEFAULT_LIMITS,
    push_handler: Callable[[Push], None] | None = None,
) -> _Connect:
    """Connect to the Redis server at ``url``: ``await connect(url)`` or
    ``async with connect(url) as r``.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``; the client logs
            in (``AUTH``) and selects ``db`` (``SELECT``) on every connection
            it opens.  ``rediss://`` raises :class:`~netkit.InvalidURI`:
            TLS is not supported yet.
        timeout: seconds to connect and log in, then ``TimeoutError``.
        command_timeout: the default of :meth:`Redis.execute`'s ``timeout``
            (``None``: wait as long as the command takes, as ``BLPOP`` may).
        protocol: 2 for RESP2, 3 to send ``HELLO 3`` and get RESP3's types
            (maps, sets, doubles, booleans ...).
        limits: what one reply may hold (:class:`~netkit.redis.resp.Limits`).
        push_handler: called with each RESP3 push that is not a reply (for
            example client-side caching invalidations); ``None`` drops them.

    Raises :class:`RedisConnectionError` when the server cannot be reached
    and :class:`RedisError` when it refuses the login or the database.
    """
    if protocol not in (2, 3):
        raise ValueError(f"protocol is 2 (RESP2) or 3 (RESP3), not {protocol!r}")
    settings = Settings(parse_url(url), protocol, limits, timeout, command_timeout, push_handler)
    return _Connect(settings)


class _Connect:
    """What :func:`connect` returns: awaitable, and an async context manager
    that closes the client on the way out."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Redis | None = None

    def __await__(self) -> Generator[Any, None, Redis]:
        return self._open().__await__()

    async def _open(self) -> Redis:
        client = Redis(self._settings)
        await client._connect()
        return client

    async def __aenter__(self) -> Redis:
        self._client = await self._open()
        return self._client

    async def __aexit__(self, *exc: Any) -> None:
        if self._client is not None:
            await self._client.close()


class Redis:
    """A client of one Redis server, over one connection that reopens when lost.

    Made by :func:`connect`.  ``execute`` runs one command, ``pipeline``
    sends many at once, ``publish`` publishes, and ``pubsub`` subscribes on a
    connection of its own.  ``close()`` (or ``async with``) ends it all.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: RespConnection | None = None
        self._connecting: netkit.Task[RespConnection] | None = None
        self._closed = False
        self._subscribers: weakref.WeakSet[PubSub] = weakref.WeakSet()

    def __repr__(self) -> str:
        url = self._settings.url
        state = "closed" if self._closed else "connected" if self.is_connected else "disconnected"
        return f"<Redis {url.address} db={url.db} {state}>"

    @property
    def address(self) -> str:
        """The server's ``host:port``."""
        return self._settings.url.address

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up (as far as the client knows: a server that
        went away without a word is noticed at the next command)."""
        return self._connection is not None and self._connection.usable

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    async def _connect(self) -> RespConnection:
        """The connection, opened (once, whoever asks) when there is none."""
        if self._closed:
            raise RedisConnectionError(self.address, f"the Redis client for {self.address} is closed")
        task = self._connecting
        if task is None:
            task = self._connecting = netkit.create_task(self._open())
            task.add_done_callback(_retrieve_exception)
        try:
            return await netkit.shield(task)
        except netkit.CancelledError:
            if task.cancelled() and self._closed:  # close() stopped the connecting, not this caller's canceller
                raise RedisConnectionError(self.address, f"the Redis client for {self.address} is closed") from None
            raise

    async def _open(self) -> RespConnection:
        settings = self._settings
        try:
            connection = await open_resp_connection(
                settings.url, limits=settings.limits, protocol=settings.protocol, timeout=settings.connect_timeout
            )
        finally:
            self._connecting = None
        if self._closed:  # closed while connecting
            connection.close()
            raise RedisConnectionError(self.address, f"the Redis client for {self.address} is closed")
        connection.push_sink = settings.push_handler
        self._connection = connection
        return connection

    async def execute(self, *args: Any, timeout: float | None = _CLIENT_DEFAULT) -> Any:
        """Run one command and return its reply: ``await r.execute("GET", "k")``.

        Arguments are sent as RESP bulk strings (``str`` as UTF-8, ``bytes``
        as is, ``int``/``float`` as decimal text).  Replies are ``str``
        (status), ``int``, ``bytes``, ``None``, ``list`` and, over RESP3,
        ``dict``, ``set``, ``float``, ``bool`` (see :mod:`netkit.redis.resp`).

        Raises :class:`RedisError` for an error reply (the connection stays
        usable), ``TimeoutError`` after ``timeout`` seconds (the default is the
        client's ``command_timeout``; the late reply is discarded when it
        comes), :class:`RedisConnectionError` when the connection is lost
        before the reply, and :class:`RespProtocolError` or
        :class:`RespLimitExceeded` when the reply is malformed or too big (the
        connection is then closed and the next command opens another).
        """
        _refuse_streaming(args)
        data = encode_command(*args)
        connection = self._connection
        if connection is None or not connection.usable:
            connection = await self._connect()
        future: netkit.Future[Any] = connection.loop.create_future()
        connection.send(data, future)
        if connection.writing_paused:
            await _drain(connection, future)
        if timeout is _CLIENT_DEFAULT:
            timeout = self._settings.command_timeout
        if timeout is None:
            reply = await future
        else:
            reply = await _wait(future, timeout, self.address, args[0])
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def pipeline(self) -> Pipeline:
        """A batch of commands to send at once: ``r.pipeline().add(...).add(...)``,
        then ``await pipe.execute()`` for the list of replies."""
        return Pipeline(self)

    async def publish(self, channel: str | bytes, message: str | bytes | int | float) -> int:
        """Publish ``message`` on ``channel``; return how many subscribers got it."""
        return await self.execute("PUBLISH", channel, message)  # type: ignore[no-any-return]

    def pubsub(self, *, max_messages: int | None = None, reconnect: bool = True) -> PubSub:
        """A subscriber on a connection of its own, with this client's settings.

        See :class:`PubSub` for ``max_messages`` (the bound of its queue) and
        ``reconnect`` (resubscribe after the connection is lost).
        """
        from .pubsub import DEFAULT_MAX_MESSAGES, PubSub

        if self._closed:
            raise RedisConnectionError(self.address, f"the Redis client for {self.address} is closed")
        subscriber = PubSub(self._settings, max_messages=DEFAULT_MAX_MESSAGES if max_messages is None else max_messages, reconnect=reconnect)
        self._subscribers.add(subscriber)
        return subscriber

    async def close(self) -> None:
        """Close the connection and every subscriber made by :meth:`pubsub`.
        Commands still waiting for a reply fail with :class:`RedisConnectionError`."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        for subscriber in list(self._subscribers):
            await subscriber.close()
        connection = self._connection
        if connection is not None:
            connection.close()
            if connection.transport is not None:
                await connection.closed

    async def __aenter__(self) -> Redis:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class Pipeline:
    """Commands collected with :meth:`add` and sent in one write by :meth:`execute`.

    Redis runs them in order and answers each; nothing else makes them
    atomic (add ``MULTI`` first and ``EXEC`` last for a transaction).
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._commands: list[bytes] = []

    def __len__(self) -> int:
        return len(self._commands)

    def __repr__(self) -> str:
        return f"<Pipeline of {len(self._commands)} commands to {self._client.address}>"

    def add(self, *args: Any) -> Pipeline:
        """Queue one command (arguments as for :meth:`Redis.execute`); returns the pipeline."""
        _refuse_streaming(args)
        self._commands.append(encode_command(*args))
        return self

    async def execute(self, *, raise_on_error: bool = True, timeout: float | None = _CLIENT_DEFAULT) -> list[Any]:
        """Send every queued command at once and return their replies, in order.

        With ``raise_on_error`` the first error reply is raised (as a
        :class:`RedisError`) after all replies are in; without it, error
        replies are :class:`RedisError` values in the list.  The pipeline is
        empty again afterwards, ready for more.
        """
        commands, self._commands = self._commands, []
        if not commands:
            return []
        client = self._client
        connection = client._connection
        if connection is None or not connection.usable:
            connection = await client._connect()
        batch = Batch(connection.loop.create_future(), len(commands))
        connection.send(b"".join(commands), batch)
        if connection.writing_paused:
            await _drain(connection, batch.future)
        if timeout is _CLIENT_DEFAULT:
            timeout = client._settings.command_timeout
        replies = await batch.future if timeout is None else await _wait(batch.future, timeout, client.address, "a pipeline")
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, RedisError):
                    raise reply
        return replies


def _refuse_streaming(args: tuple[Any, ...]) -> None:
    """Refuse the commands after which replies stop matching commands one to one."""
    if not args:
        raise ValueError("a Redis command needs at least its name")
    name = args[0]
    # The length first: it rules out nearly every command without upper().
    if isinstance(name, (str, bytes, bytearray)) and len(name) in _STREAMING_LENGTHS:
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode("latin-1")
        if isinstance(name, str) and name.upper() in _STREAMING_COMMANDS:
            raise netkit.InvalidStateError(f"{name.upper()} turns a connection into a message stream: use Redis.pubsub() for it")


async def _drain(connection: RespConnection, future: netkit.Future[Any]) -> None:
    """Wait for the write buffer to drain; if that wait is cancelled, so is the
    reply's future, which nobody would await (its reply is discarded on arrival)."""
    try:
        await connection.drain()
    except BaseException:
        future.cancel()
        raise


async def _wait(future: netkit.Future[Any], timeout: float, address: str, what: Any) -> Any:
    try:
        return await netkit.wait_for(future, timeout)
    except TimeoutError:
        if isinstance(what, (bytes, bytearray)):
            what = bytes(what).decode("utf-8", "replace")
        raise TimeoutError(f"Redis at {address} did not answer {what} within {timeout} s") from None


def _retrieve_exception(task: netkit.Task[Any]) -> None:
    """Mark a connecting task's failure as seen: its callers got it, or were cancelled."""
    if not task.cancelled():
        task.exception()
