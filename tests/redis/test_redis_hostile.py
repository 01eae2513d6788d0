"""The client against a hostile or broken server: a plain socket server in a
thread that answers with malformed RESP, a 1 GiB bulk header, endless
nesting, an endless line, replies nobody asked for, or a connection cut
mid-reply.  Each gives the documented error, in bounded memory, and no
traceback in the log."""

from __future__ import annotations

import logging
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

import netkit
import netkit.redis
from netkit.redis import Limits, RedisConnectionError, RedisError, RespLimitExceeded, RespProtocolError

# Every test here runs on a real loop, and must leave no file descriptor open.
pytestmark = pytest.mark.usefixtures("loop")

MIB = 1024 * 1024

# What the server sends after a hostile header: far more than any limit lets
# the client buffer, so a client that kept reading would hold it all.
FLOOD = b"x" * (64 * MIB)

# Peak memory a client may reach while refusing the flood: a few reads of
# netkit's transport (256 KiB each) and the interpreter's own noise, far
# below the 64 MiB a client that buffered the flood would hold.
PEAK_BOUND = 8 * MIB

Respond = Callable[[socket.socket, int], None]


class FakeRedis:
    """A blocking-socket server: ``respond(connection, number)`` plays the
    server's part on each accepted connection (numbered from 0), each in a
    thread of its own."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.handlers: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # shut down
            number, self.connections = self.connections, self.connections + 1
            handler = threading.Thread(target=self._handle, args=(connection, number), daemon=True)
            self.handlers.append(handler)
            handler.start()

    def _handle(self, connection: socket.socket, number: int) -> None:
        with connection:
            try:
                self.respond(connection, number)
            except OSError:
                pass  # the client went away: what it should do after an error

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for thread in [self.thread, *self.handlers]:
            thread.join(timeout=30)
            assert not thread.is_alive()


@pytest.fixture
def fake_redis() -> Iterator[Callable[[Respond], FakeRedis]]:
    servers: list[FakeRedis] = []

    def start(respond: Respond) -> FakeRedis:
        server = FakeRedis(respond)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def answer(*replies: bytes, then: Callable[[socket.socket], None] | None = None) -> Respond:
    """Read one command, send ``replies`` (one per connection, the last one
    for every later connection), then ``then(connection)`` or wait for the client to close."""

    def respond(connection: socket.socket, number: int) -> None:
        connection.recv(65536)
        connection.sendall(replies[min(number, len(replies) - 1)])
        if then is not None:
            then(connection)
        while connection.recv(65536):
            pass

    return respond


def flood(connection: socket.socket) -> None:
    view = memoryview(FLOOD)
    for start in range(0, len(FLOOD), MIB):
        connection.sendall(view[start : start + MIB])


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info or "Traceback" in record.getMessage()]


async def test_malformed_resp_fails_the_command_and_the_next_one_reconnects(fake_redis, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    server = fake_redis(answer(b"@not resp\r\n", b"+PONG\r\n"))
    async with netkit.redis.connect(server.url) as r:
        with pytest.raises(RespProtocolError, match="unknown RESP type byte b'@'") as caught:
            await r.execute("PING")
        assert isinstance(caught.value, netkit.ProtocolError)
        assert not r.is_connected
        assert await r.execute("PING") == "PONG"
        assert server.connections == 2
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert [f"127.0.0.1:{server.port}" in record.getMessage() for record in warnings] == [True]
    assert no_tracebacks(caplog) == []


@pytest.mark.parametrize(("reply", "limit"), [
    (b"$1073741824\r\n", "max_bulk_length"),
    (b"!1073741824\r\n", "max_bulk_length"),
    (b"*1\r\n$1073741824\r\n", "max_bulk_length"),
    (b"+" + b"a" * 100, "max_line_length"),  # then 64 MiB more, never a CRLF
    (b"*4294967296\r\n", "max_aggregate_length"),
    (b"%4294967296\r\n", "max_aggregate_length"),
])
async def test_a_hostile_header_then_a_flood_is_refused_in_bounded_memory(fake_redis, caplog, reply: bytes, limit: str) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    server = fake_redis(answer(reply, then=flood))
    async with netkit.redis.connect(server.url) as r:
        tracemalloc.start()
        try:
            with pytest.raises(RespLimitExceeded) as caught:
                await r.execute("GET", "k")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert caught.value.limit == limit and isinstance(caught.value, netkit.LimitExceeded)
        assert peak < PEAK_BOUND
        assert not r.is_connected
    assert no_tracebacks(caplog) == []


async def test_without_the_limit_the_same_flood_is_buffered(fake_redis) -> None:
    """The measure above can fail: raise the limit and the client holds the flood."""
    server = fake_redis(answer(b"$%d\r\n" % len(FLOOD), then=lambda connection: (flood(connection), connection.sendall(b"\r\n"))))
    async with netkit.redis.connect(server.url, limits=Limits(max_bulk_length=len(FLOOD), max_reply_size=2 * len(FLOOD))) as r:
        tracemalloc.start()
        try:
            value = await r.execute("GET", "k")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(value) == len(FLOOD) and peak > PEAK_BOUND


async def test_endless_nesting_is_refused_at_max_depth(fake_redis) -> None:
    server = fake_redis(answer(b"*1\r\n" * 200_000))
    async with netkit.redis.connect(server.url) as r:
        with pytest.raises(RespLimitExceeded) as caught:
            await r.execute("GET", "k")
        assert (caught.value.limit, caught.value.value, caught.value.maximum) == ("max_depth", 33, 32)


async def test_every_pending_command_fails_with_the_protocol_error(fake_redis) -> None:
    def respond(connection: socket.socket, number: int) -> None:
        received = b""
        while received.count(b"PING") < 3:
            received += connection.recv(65536)
        connection.sendall(b"+PONG\r\n+PONG\r\n:1x\r\n")
        while connection.recv(65536):
            pass

    server = fake_redis(respond)
    async with netkit.redis.connect(server.url) as r:
        results = await netkit.gather(*(r.execute("PING") for _ in range(4)), return_exceptions=True)
        assert results[:2] == ["PONG", "PONG"]
        assert [type(result) for result in results[2:]] == [RespProtocolError, RespProtocolError]


async def test_a_reply_nobody_asked_for_closes_the_connection(fake_redis, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    server = fake_redis(answer(b"+PONG\r\n+EXTRA\r\n", b"+PONG\r\n"))
    async with netkit.redis.connect(server.url) as r:
        assert await r.execute("PING") == "PONG"
        assert not r.is_connected  # the extra reply came with the first, in one segment
        assert await r.execute("PING") == "PONG"
    assert any("no command was waiting" in record.getMessage() for record in caplog.records)
    assert no_tracebacks(caplog) == []


async def test_a_connection_cut_mid_reply(fake_redis, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")

    def respond(connection: socket.socket, number: int) -> None:
        connection.recv(65536)
        connection.sendall(b"*2\r\n$10\r\nabc")  # and close

    server = fake_redis(respond)
    async with netkit.redis.connect(server.url) as r:
        with pytest.raises(RedisConnectionError, match=f"lost the connection to Redis at 127.0.0.1:{server.port}"):
            await r.execute("GET", "k")
    assert no_tracebacks(caplog) == []


async def test_a_garbled_login_reply_fails_connect(fake_redis) -> None:
    server = fake_redis(answer(b"$-5\r\n"))
    with pytest.raises(RespProtocolError, match="negative length"):
        await netkit.redis.connect(server.url.replace("redis://", "redis://:pw@"))


async def test_error_text_that_is_not_utf8(fake_redis) -> None:
    server = fake_redis(answer(b"-ERR caf\xe9 \xff\r\n"))
    async with netkit.redis.connect(server.url) as r:
        with pytest.raises(RedisError) as caught:
            await r.execute("PING")
        assert caught.value.message == "ERR caf\ufffd \ufffd" and caught.value.code == "ERR"
        assert r.is_connected


async def test_a_hostile_subscriber_feed(fake_redis) -> None:
    """A server that confirms a subscription, then sends an endless message."""

    def respond(connection: socket.socket, number: int) -> None:
        connection.recv(65536)
        connection.sendall(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1073741824\r\n")
        flood(connection)

    server = fake_redis(respond)
    async with netkit.redis.connect(server.url) as r:
        sub = r.pubsub(reconnect=False)
        await sub.subscribe("c")
        with pytest.raises(RedisConnectionError, match="max_bulk_length"):
            await sub.get_message()
        await sub.close()
