"""Streams: the coroutine API over stream transports.

``StreamReader`` buffers what arrives and hands it out with ``read``,
``readexactly``, ``readline`` and ``readuntil``; ``StreamWriter`` writes and
``drain()``s.  Both are bounded: the reader pauses the transport once its
buffer holds more than ``limit`` bytes, and ``drain()`` waits while the
transport's write buffer is above its high-water mark.

So a handler that answers with ``write()`` then ``await drain()`` is bounded
against a peer that sends without reading: while it waits in ``drain()`` it
reads nothing, the reader fills to its limit and stops reading the socket,
and TCP holds the peer back.  ``write()`` alone never waits: code that
writes without ``drain()`` grows the write buffer for as long as the peer
does not read, and pacing its writes is its own job.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Union

from . import _runtime
from .errors import IncompleteReadError, LimitOverrunError
from .futures import Future, wait_until_woken, wake_waiters
from .loop import EventLoop
from .protocols import Protocol

__all__ = [
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
    "open_unix_connection",
    "start_unix_server",
]

# The reader's buffer limit, as asyncio's: big enough for any sane line or
# header, small enough that 10,000 connections cannot pin gigabytes.
DEFAULT_LIMIT = 64 * 1024

ClientConnected = Callable[["StreamReader", "StreamWriter"], Union[Awaitable[None], None]]


class StreamReader:
    """Bytes received from a stream, read by coroutines.

    Only one coroutine may wait on a reader at a time (two concurrent reads
    would interleave unpredictably), which is checked.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, loop: EventLoop | None = None) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self._limit = limit
        self._loop = loop if loop is not None else _runtime.get_running_loop()
        self._buffer = bytearray()
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: Future[None] | None = None
        self._transport: Any = None
        self._paused = False

    def __repr__(self) -> str:
        info = [f"{len(self._buffer)} bytes"]
        if self._eof:
            info.append("eof")
        if self._exception is not None:
            info.append(f"exception={self._exception!r}")
        if self._paused:
            info.append("paused")
        return f"<StreamReader {' '.join(info)}>"

    # ------------------------------------------------------- fed by the protocol

    def set_transport(self, transport: Any) -> None:
        """Attach the transport whose reading this reader pauses and resumes."""
        self._transport = transport

    def feed_data(self, data: bytes) -> None:
        """Append received bytes; pause the transport if the buffer is over the limit."""
        if not data:
            return
        self._buffer += data
        self._wake()
        if not self._paused and self._transport is not None and len(self._buffer) > self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                self._transport = None  # cannot pause: the limit is only advisory then
            else:
                self._paused = True

    def feed_eof(self) -> None:
        """The peer will send nothing more."""
        self._eof = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        """Make the current and later reads raise ``exc``."""
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)

    def exception(self) -> BaseException | None:
        """The error set with ``set_exception``, if any."""
        return self._exception

    def at_eof(self) -> bool:
        """Whether EOF was received and the buffer is empty."""
        return self._eof and not self._buffer

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _consumed(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    async def _wait_for_data(self, method: str) -> None:
        if self._waiter is not None:
            raise RuntimeError(f"{method}() called while another coroutine is already waiting for data")
        if self._eof:
            raise AssertionError("_wait_for_data after EOF")
        # The application asked for more than is buffered: let data in even
        # if the buffer is over the limit, or a large readexactly() would hang.
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # ------------------------------------------------------------------ reads

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at EOF); ``n=-1`` reads until EOF."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            chunks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                chunks.append(block)
            return b"".join(chunks)
        if not self._buffer and not self._eof:
            await self._wait_for_data("read")
            if self._exception is not None:
                raise self._exception
        data = bytes(memoryview(self._buffer)[:n])
        del self._buffer[:n]
        self._consumed()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``IncompleteReadError`` (with what came) if EOF comes first."""
        if n < 0:
            raise ValueError("readexactly size cannot be negative")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        while len(self._buffer) < n:
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(partial, n)
            await self._wait_for_data("readexactly")
            if self._exception is not None:
                raise self._exception
        if len(self._buffer) == n:
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(memoryview(self._buffer)[:n])
            del self._buffer[:n]
        self._consumed()
        return data

    async def readline(self) -> bytes:
        """One line ending in ``b"\\n"`` (or the rest at EOF).  A line longer than
        the limit raises ``ValueError`` after discarding it."""
        try:
            return await self.readuntil(b"\n")
        except IncompleteReadError as exc:
            return exc.partial
        except LimitOverrunError as exc:
            if self._buffer.startswith(b"\n", exc.consumed):
                del self._buffer[: exc.consumed + 1]
            else:
                self._buffer.clear()
            self._consumed()
            raise ValueError(exc.args[0]) from None

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``separator``.

        ``LimitOverrunError`` when no separator appears within the limit (the
        data stays buffered); ``IncompleteReadError`` at EOF before one.
        """
        seplen = len(separator)
        if seplen == 0:
            raise ValueError("the separator must not be empty")
        if self._exception is not None:
            raise self._exception
        offset = 0  # where the search resumes: the separator cannot start earlier
        while True:
            index = self._buffer.find(separator, offset)
            if index != -1:
                break
            offset = max(0, len(self._buffer) + 1 - seplen)
            if offset > self._limit:
                raise LimitOverrunError(f"no separator within the first {self._limit} bytes (the reader's limit)", offset)
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(partial, None)
            await self._wait_for_data("readuntil")
            if self._exception is not None:
                raise self._exception
        end = index + seplen
        if index > self._limit:
            raise LimitOverrunError(f"separator found after {index} bytes, beyond the reader's limit of {self._limit}", index)
        data = bytes(memoryview(self._buffer)[:end])
        del self._buffer[:end]
        self._consumed()
        return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class StreamReaderProtocol(Protocol):
    """Adapts a transport's callbacks to a ``StreamReader``/``StreamWriter`` pair."""

    def __init__(
        self,
        reader: StreamReader,
        client_connected_cb: ClientConnected | None = None,
        loop: EventLoop | None = None,
    ) -> None:
        self._loop = loop if loop is not None else _runtime.get_running_loop()
        self._reader: StreamReader | None = reader
        self._writer: StreamWriter | None = None
        self._client_connected_cb = client_connected_cb
        self._task: Any = None
        self._paused = False
        self._drain_waiters: list[Future[None]] = []
        self._connection_lost = False
        self._closed: Future[None] = self._loop.create_future()
        self._exc: BaseException | None = None
        self.data_received = reader.feed_data  # type: ignore[method-assign]  # one call less per read

    def connection_made(self, transport: Any) -> None:
        reader = self._reader
        assert reader is not None
        reader.set_transport(transport)
        self._writer = StreamWriter(transport, self, reader, self._loop)
        if self._client_connected_cb is not None:
            result = self._client_connected_cb(reader, self._writer)
            if hasattr(result, "send") and hasattr(result, "throw"):
                self._task = self._loop.create_task(result)  # type: ignore[arg-type]
                self._task.add_done_callback(self._handler_done)

    def _handler_done(self, task: Any) -> None:
        if task.cancelled():
            exc: BaseException | None = None
        else:
            exc = task.exception()
        if exc is not None:
            self._loop.call_exception_handler(
                {"message": "unhandled exception in a client_connected_cb", "exception": exc, "protocol": self}
            )
        if self._writer is not None and exc is not None:
            self._writer.transport.abort()
        self._task = None

    def eof_received(self) -> bool:
        if self._reader is not None:
            self._reader.feed_eof()
        # Keep the write side open: the application may still answer (half-close).
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connection_lost = True
        self._exc = exc
        if self._reader is not None:
            if exc is None:
                self._reader.feed_eof()
            else:
                self._reader.set_exception(exc)
        if not self._closed.done():
            if exc is None:
                self._closed.set_result(None)
            else:
                self._closed.set_exception(exc)
                self._closed.exception()  # retrieved: reported through drain/read instead
        wake_waiters(self._drain_waiters, exc)
        self._reader = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        wake_waiters(self._drain_waiters)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            if self._exc is not None:
                raise self._exc
            raise ConnectionResetError("connection lost")
        if not self._paused:
            return
        await wait_until_woken(self._drain_waiters, self._loop)

    def _get_close_waiter(self) -> Future[None]:
        return self._closed


class StreamWriter:
    """Writes to a stream; ``await drain()`` after writes to respect flow control."""

    def __init__(self, transport: Any, protocol: StreamReaderProtocol, reader: StreamReader | None, loop: EventLoop) -> None:
        self._transport = transport
        self._protocol = protocol
        self._reader = reader
        self._loop = loop
        self.write = transport.write  # type: ignore[method-assign]  # bound once: no extra call per write

    def __repr__(self) -> str:
        return f"<StreamWriter transport={self._transport!r}>"

    @property
    def transport(self) -> Any:
        """The underlying transport."""
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:  # replaced per instance in __init__
        """Queue ``data`` for sending without waiting; ``await drain()`` after
        it, or the buffer grows for as long as the peer does not read."""
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        """Queue several buffers for sending, in order."""
        self._transport.writelines(data)

    def write_eof(self) -> None:
        """Half-close: the peer reads EOF once everything written is sent."""
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the transport supports ``write_eof``."""
        return bool(self._transport.can_write_eof())

    def close(self) -> None:
        """Close the stream (what is buffered is still sent)."""
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the stream is closing or closed."""
        return bool(self._transport.is_closing())

    async def wait_closed(self) -> None:
        """Wait until the connection is closed; raises the error that ended it, if any."""
        await self._protocol._get_close_waiter()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport information: ``peername``, ``sockname``, ``socket``."""
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark; raise the
        connection's error if it was lost."""
        if self._reader is not None:
            exc = self._reader.exception()
            if exc is not None:
                raise exc
        if self._transport.is_closing():
            # Let connection_lost run, so the error (if any) is known.
            from .tasks import sleep

            await sleep(0)
        await self._protocol._drain_helper()

    async def __aenter__(self) -> StreamWriter:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        try:
            await self.wait_closed()
        except OSError:
            pass


# ------------------------------------------------------------------ helpers


async def open_connection(
    host: str | None = None, port: int | str | None = None, *, limit: int = DEFAULT_LIMIT, **kwargs: Any
) -> tuple[StreamReader, StreamWriter]:
    """Connect over TCP and return a ``(reader, writer)`` pair (options as ``create_connection``)."""
    loop = _runtime.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    transport, protocol = await loop.create_connection(lambda: StreamReaderProtocol(reader, loop=loop), host, port, **kwargs)
    return reader, protocol._writer


async def start_server(
    client_connected_cb: ClientConnected,
    host: Any = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwargs: Any,
) -> Any:
    """Listen, and call ``client_connected_cb(reader, writer)`` (a function or a
    coroutine function) for every connection.  Returns the ``Server``."""
    loop = _runtime.get_running_loop()

    def factory() -> StreamReaderProtocol:
        return StreamReaderProtocol(StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwargs)


async def open_unix_connection(path: str | None = None, *, limit: int = DEFAULT_LIMIT, **kwargs: Any) -> tuple[StreamReader, StreamWriter]:
    """Like ``open_connection`` for a Unix socket."""
    loop = _runtime.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    transport, protocol = await loop.create_unix_connection(lambda: StreamReaderProtocol(reader, loop=loop), path, **kwargs)
    return reader, protocol._writer


async def start_unix_server(client_connected_cb: ClientConnected, path: str | None = None, *, limit: int = DEFAULT_LIMIT, **kwargs: Any) -> Any:
    """Like ``start_server`` on a Unix socket."""
    loop = _runtime.get_running_loop()

    def factory() -> StreamReaderProtocol:
        return StreamReaderProtocol(StreamReader(limit=limit, loop=loop), client_connected_cb, loop=loop)

    return await loop.create_unix_server(factory, path, **kwargs)

