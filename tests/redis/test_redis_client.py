"""The client against a real redis-server: every reply type, pipelines, errors,
timeouts, login and database from the URL, lost connections, no leaks."""

from __future__ import annotations

import logging
import math
import os
import signal

import pytest
from redis_helpers import RedisServer, free_port, open_fds

import netkit
import netkit.redis
from netkit.redis import Push, RedisConnectionError, RedisError, VerbatimString
from netkit.redis.url import RedisURL, parse_url

# Every test here runs on a real loop, and must leave no file descriptor open.
pytestmark = pytest.mark.usefixtures("loop")

# -- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://localhost", RedisURL("localhost", 6379, 0)),
    ("redis://127.0.0.1:6380/3", RedisURL("127.0.0.1", 6380, 3)),
    ("redis://:s3cret@h/1", RedisURL("h", 6379, 1, None, "s3cret")),
    ("redis://ann:p%40ss@h:7000", RedisURL("h", 7000, 0, "ann", "p@ss")),
    ("redis://[::1]:6390/", RedisURL("::1", 6390, 0)),
    ("redis://", RedisURL("localhost", 6379, 0)),
])
def test_urls(url: str, expected: RedisURL) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("rediss://localhost", "rediss:// needs TLS"),
    ("http://localhost", "starts with redis://"),
    ("localhost:6379", "starts with redis://"),
    ("unix:///tmp/redis.sock", "starts with redis://"),
    ("redis://ann@localhost", "needs its password"),
    ("redis://localhost/db1", "is a number"),
    ("redis://localhost/\u0663", "is a number"),
    ("redis://localhost/0?timeout=1", "no query"),
    ("redis://localhost:http/0", "not a valid Redis URL"),
    ("redis://localhost:99999/0", "not a valid Redis URL"),
])
def test_bad_urls_are_invalid_uri(url: str, message: str) -> None:
    with pytest.raises(netkit.InvalidURI, match=message):
        parse_url(url)


def test_the_password_stays_out_of_reprs_and_errors() -> None:
    assert "hunter2" not in repr(parse_url("redis://:hunter2@h/0"))
    with pytest.raises(netkit.InvalidURI) as caught:
        parse_url("redis://ann:hunter2@h:bad/0")
    assert "hunter2" not in str(caught.value)
    assert parse_url("redis://[::1]:7000").address == "[::1]:7000"


def test_connect_checks_its_arguments_before_connecting() -> None:
    with pytest.raises(netkit.InvalidURI):
        netkit.redis.connect("rediss://localhost")
    with pytest.raises(ValueError, match="protocol"):
        netkit.redis.connect("redis://localhost", protocol=4)


# -- replies, RESP2 --------------------------------------------------------------


async def test_strings_integers_nil_and_arrays(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        assert await r.execute("SET", "s", "caf\u00e9") == "OK"
        assert await r.execute("GET", "s") == "caf\u00e9".encode()
        assert await r.execute("GET", "missing") is None
        assert await r.execute("INCRBY", "n", 41) == 41
        assert await r.execute("INCR", b"n") == 42
        assert await r.execute("INCRBYFLOAT", "f", 1.5) == b"1.5"
        assert await r.execute("RPUSH", "l", "a", b"\x00\xff", 3) == 3
        assert await r.execute("LRANGE", "l", 0, -1) == [b"a", b"\x00\xff", b"3"]
        assert await r.execute("LRANGE", "missing", 0, -1) == []
        assert await r.execute("BLPOP", "missing", 0.01) is None  # RESP2's null array
        assert await r.execute("HSET", "h", "k", "v") == 1
        assert await r.execute("HGETALL", "h") == [b"k", b"v"]
        assert await r.execute("PING") == "PONG"
        assert await r.execute("TYPE", "l") == "list"


async def test_nested_arrays(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        assert await r.execute("EVAL", "return {1, {2, {3, 'x'}}, {}}", 0) == [1, [2, [3, b"x"]], []]
        await r.execute("XADD", "stream", "1-1", "field", "value")
        assert await r.execute("XRANGE", "stream", "-", "+") == [[b"1-1", [b"field", b"value"]]]


async def test_every_byte_value_and_a_large_value_round_trip(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        binary = bytes(range(256)) * 4
        await r.execute("SET", "bin", binary)
        assert await r.execute("GET", "bin") == binary
        big = bytes(range(256)) * 16384  # 4 MiB
        await r.execute("SET", "big", big)
        assert await r.execute("GET", "big") == big
        assert await r.execute("STRLEN", "big") == len(big)


async def test_an_error_reply_raises_and_the_connection_stays_usable(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        with pytest.raises(RedisError) as caught:
            await r.execute("NOSUCHCOMMAND", "x")
        assert caught.value.code == "ERR" and "unknown command" in caught.value.message
        assert isinstance(caught.value, netkit.NetkitError)
        await r.execute("SET", "s", "text")
        with pytest.raises(RedisError) as wrong:
            await r.execute("LPUSH", "s", "x")
        assert wrong.value.code == "WRONGTYPE"
        with pytest.raises(RedisError, match="not an integer"):
            await r.execute("INCR", "s")
        assert await r.execute("GET", "s") == b"text"
        assert r.is_connected


async def test_errors_inside_exec_are_values(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        await r.execute("SET", "s", "text")
        pipe = r.pipeline().add("MULTI").add("SET", "a", 1).add("INCR", "s").add("EXEC")
        replies = await pipe.execute()
        assert replies[:3] == ["OK", "QUEUED", "QUEUED"]
        assert replies[3][0] == "OK" and isinstance(replies[3][1], RedisError)


# -- replies, RESP3 --------------------------------------------------------------


async def test_resp3_types_through_hello_3(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url, protocol=3) as r:
        await r.execute("HSET", "h", "a", 1, "b", 2)
        assert await r.execute("HGETALL", "h") == {b"a": b"1", b"b": b"2"}
        await r.execute("SADD", "set", "x", "y")
        assert await r.execute("SMEMBERS", "set") == {b"x", b"y"}
        await r.execute("ZADD", "z", 1.5, "m")
        score = await r.execute("ZSCORE", "z", "m")
        assert score == 1.5 and type(score) is float
        assert await r.execute("GET", "missing") is None
        assert await r.execute("DEBUG", "PROTOCOL", "true") is True
        assert await r.execute("DEBUG", "PROTOCOL", "false") is False
        assert await r.execute("DEBUG", "PROTOCOL", "bignum") == 1234567999999999999999999999999999999
        assert await r.execute("DEBUG", "PROTOCOL", "double") == 3.141
        assert await r.execute("DEBUG", "PROTOCOL", "null") is None
        assert await r.execute("DEBUG", "PROTOCOL", "map") == {0: False, 1: True, 2: False}
        assert await r.execute("DEBUG", "PROTOCOL", "set") == {0, 1, 2}
        assert await r.execute("DEBUG", "PROTOCOL", "attrib") == b"Some real reply following the attribute"
        verbatim = await r.execute("DEBUG", "PROTOCOL", "verbatim")
        assert verbatim == VerbatimString("txt", b"This is a verbatim\nstring")
        info = await r.execute("INFO", "server")
        assert isinstance(info, VerbatimString) and b"redis_version" in info.data
        assert math.isinf(await r.execute("EVAL", "redis.setresp(3); return {double=1/0}", 0))


async def test_resp3_pushes_go_to_the_push_handler(redis_url: str) -> None:
    pushes: list[Push] = []
    async with netkit.redis.connect(redis_url, protocol=3, push_handler=pushes.append) as r:
        assert await r.execute("DEBUG", "PROTOCOL", "push") == b"Some real reply following the push reply"
        assert pushes == [[b"server-cpu-usage", 42]] and type(pushes[0]) is Push


async def test_resp3_pushes_without_a_handler_are_dropped(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url, protocol=3) as r:
        assert await r.execute("DEBUG", "PROTOCOL", "push") == b"Some real reply following the push reply"
        assert await r.execute("PING") == "PONG"


async def test_a_failing_push_handler_is_reported_and_the_connection_goes_on(redis_url: str, errors) -> None:
    def handler(push: Push) -> None:
        raise ValueError("bug in the handler")

    async with netkit.redis.connect(redis_url, protocol=3, push_handler=handler) as r:
        assert await r.execute("DEBUG", "PROTOCOL", "push") == b"Some real reply following the push reply"
        assert await r.execute("PING") == "PONG"
    assert [type(context["exception"]) for context in errors.contexts] == [ValueError]


async def test_hello_3_keeps_what_the_server_said(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url, protocol=3) as r:
        assert r._connection is not None and r._connection.server_info[b"proto"] == 3


async def test_resp2_converts_resp3_only_types(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        assert await r.execute("DEBUG", "PROTOCOL", "true") == 1
        assert await r.execute("DEBUG", "PROTOCOL", "map") == [0, 0, 1, 1, 2, 0]


# -- pipelining ---------------------------------------------------------------------


async def test_a_pipeline_of_1000_commands(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        pipe = r.pipeline()
        for number in range(1000):
            pipe.add("SET", f"key:{number}", number).add("GET", f"key:{number}")
        assert len(pipe) == 2000
        replies = await pipe.execute()
        assert replies == [item for number in range(1000) for item in ("OK", str(number).encode())]
        assert len(pipe) == 0 and await pipe.execute() == []
        assert await r.execute("DBSIZE") == 1000


async def test_a_pipeline_raises_its_first_error_after_all_replies(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        pipe = r.pipeline().add("SET", "a", "x").add("INCR", "a").add("SET", "b", 1).add("BOGUS")
        with pytest.raises(RedisError, match="not an integer"):
            await pipe.execute()
        assert await r.execute("GET", "b") == b"1"  # the commands after the error ran
        replies = await r.pipeline().add("INCR", "a").add("INCR", "b").execute(raise_on_error=False)
        assert isinstance(replies[0], RedisError) and replies[1] == 2


async def test_concurrent_commands_from_many_tasks_get_their_own_replies(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:

        async def worker(number: int) -> list[object]:
            return [await r.execute("SET", f"w{number}", number), await r.execute("GET", f"w{number}")]

        results = await netkit.gather(*(worker(number) for number in range(200)))
        assert results == [["OK", str(number).encode()] for number in range(200)]


async def test_subscribe_commands_belong_to_pubsub(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        for name in ("SUBSCRIBE", "psubscribe", b"MONITOR", "ssubscribe"):
            with pytest.raises(netkit.InvalidStateError, match="pubsub"):
                await r.execute(name, "channel")
            with pytest.raises(netkit.InvalidStateError):
                r.pipeline().add(name, "channel")
        assert await r.execute("PING") == "PONG"


async def test_a_bad_argument_fails_before_anything_is_sent(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        with pytest.raises(TypeError):
            await r.execute("SET", "k", None)
        with pytest.raises(ValueError):
            await r.execute()
        assert await r.execute("PING") == "PONG"


# -- timeouts ------------------------------------------------------------------------


async def test_a_command_timeout_discards_the_late_reply(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r, netkit.redis.connect(redis_url) as other:
        with pytest.raises(TimeoutError, match="did not answer BLPOP within 0.05 s"):
            await r.execute("BLPOP", "queue", 0, timeout=0.05)
        # The BLPOP still blocks r's connection on the server; serve it, and
        # the next reply must be the PING's, not the BLPOP's.
        ping = netkit.create_task(r.execute("PING"))
        await other.execute("RPUSH", "queue", "item")
        assert await ping == "PONG"
        assert await other.execute("LLEN", "queue") == 0


async def test_the_clients_command_timeout_is_the_default(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url, command_timeout=0.05) as r, netkit.redis.connect(redis_url) as other:
        with pytest.raises(TimeoutError):
            await r.execute("BLPOP", "queue", 0)
        with pytest.raises(TimeoutError):
            await r.pipeline().add("BLPOP", "queue", 0).execute()
        ping = netkit.create_task(r.execute("PING", timeout=None))
        await other.execute("RPUSH", "queue", "one", "two")
        assert await ping == "PONG"


async def test_connect_timeout_against_a_server_that_never_answers() -> None:
    async def silent(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        await reader.read()  # read the login, answer nothing, until the client goes
        writer.close()

    server = await netkit.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError, match=f"connecting to Redis at 127.0.0.1:{port} took more than 0.1 s"):
            await netkit.redis.connect(f"redis://:pw@127.0.0.1:{port}", timeout=0.1)
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_refused_names_the_address() -> None:
    port = free_port()
    with pytest.raises(RedisConnectionError, match=f"cannot connect to Redis at 127.0.0.1:{port}") as caught:
        await netkit.redis.connect(f"redis://127.0.0.1:{port}")
    assert caught.value.address == f"127.0.0.1:{port}"
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    assert isinstance(caught.value, netkit.ConnectionClosed)


# -- AUTH and SELECT from the URL ----------------------------------------------------


async def test_password_from_the_url(own_redis_server: RedisServer) -> None:
    own_redis_server.command("CONFIG", "SET", "requirepass", "s3cret")
    port = own_redis_server.port
    async with netkit.redis.connect(f"redis://:s3cret@127.0.0.1:{port}") as r:
        assert await r.execute("PING") == "PONG"
    with pytest.raises(RedisError) as caught:
        await netkit.redis.connect(f"redis://:wrong@127.0.0.1:{port}")
    assert caught.value.code == "WRONGPASS"
    async with netkit.redis.connect(f"redis://127.0.0.1:{port}") as anonymous:
        with pytest.raises(RedisError) as denied:
            await anonymous.execute("GET", "k")
        assert denied.value.code == "NOAUTH"
    async with netkit.redis.connect(f"redis://:s3cret@127.0.0.1:{port}/2", protocol=3) as r3:
        assert await r3.execute("CLIENT", "INFO") is not None


async def test_user_and_password_from_the_url(redis_url: str, redis_server: RedisServer) -> None:
    redis_server.command("ACL", "SETUSER", "ann", "reset", "on", ">p@ss word", "~*", "&*", "+@all")
    try:
        port = redis_server.port
        async with netkit.redis.connect(f"redis://ann:p%40ss%20word@127.0.0.1:{port}") as r:
            assert await r.execute("ACL", "WHOAMI") == b"ann"
        async with netkit.redis.connect(f"redis://ann:p%40ss%20word@127.0.0.1:{port}", protocol=3) as r3:
            assert await r3.execute("ACL", "WHOAMI") == b"ann"
        with pytest.raises(RedisError, match="WRONGPASS"):
            await netkit.redis.connect(f"redis://ann:nope@127.0.0.1:{port}")
    finally:
        redis_server.command("ACL", "DELUSER", "ann")


async def test_the_database_from_the_url(redis_url: str, redis_server: RedisServer) -> None:
    async with netkit.redis.connect(f"redis://127.0.0.1:{redis_server.port}/3") as r3, netkit.redis.connect(redis_url) as r0:
        await r3.execute("SET", "where", "three")
        assert await r0.execute("GET", "where") is None
        assert b"db=3" in await r3.execute("CLIENT", "INFO")
    with pytest.raises(RedisError, match="out of range"):
        await netkit.redis.connect(f"redis://127.0.0.1:{redis_server.port}/999")


# -- lost connections, reconnection, closing ---------------------------------------------


async def test_a_lost_connection_fails_pending_commands_then_reconnects(own_redis_server: RedisServer, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    async with netkit.redis.connect(own_redis_server.url) as r:
        blocked = [netkit.create_task(r.execute("BLPOP", "queue", 0)) for _ in range(3)]
        # The tasks send their BLPOPs as soon as this one waits for the PING's reply.
        assert await r.execute("PING") == "PONG"
        own_redis_server.restart()
        for task in blocked:
            with pytest.raises(RedisConnectionError) as caught:
                await task
            assert caught.value.address == own_redis_server.address
            assert own_redis_server.address in str(caught.value)
        assert not r.is_connected
        assert await r.execute("PING") == "PONG"  # the next command connects again
        assert r.is_connected
    assert [record for record in caplog.records if record.exc_info or "Traceback" in record.getMessage()] == []


async def test_reconnection_logs_in_and_selects_again(own_redis_server: RedisServer) -> None:
    own_redis_server.command("CONFIG", "SET", "requirepass", "pw")
    async with netkit.redis.connect(f"redis://:pw@127.0.0.1:{own_redis_server.port}/5") as r:
        await r.execute("SET", "k", "before")
        blocked = netkit.create_task(r.execute("BLPOP", "queue", 0))
        await netkit.sleep(0)
        own_redis_server.kill()
        own_redis_server.extra = ("--requirepass", "pw")
        own_redis_server.start()
        with pytest.raises(RedisConnectionError):
            await blocked
        await r.execute("SET", "k", "after")
        assert b"db=5" in await r.execute("CLIENT", "INFO")


async def test_the_server_closing_the_connection_fails_pending_commands(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r, netkit.redis.connect(redis_url) as killer:
        client_id = await r.execute("CLIENT", "ID")
        blocked = netkit.create_task(r.execute("BLPOP", "queue", 0))
        await netkit.sleep(0)  # the task sends its BLPOP on this connection
        assert await killer.execute("CLIENT", "KILL", "ID", client_id) == 1
        with pytest.raises(RedisConnectionError, match="lost the connection to Redis at"):
            await blocked
        assert await r.execute("PING") == "PONG"


async def test_close_fails_pending_commands_and_later_ones(redis_url: str) -> None:
    r = await netkit.redis.connect(redis_url)
    blocked = netkit.create_task(r.execute("BLPOP", "queue", 0))
    await netkit.sleep(0)
    await r.close()
    assert r.is_closed and "closed" in repr(r)
    with pytest.raises(RedisConnectionError, match="closed by the client"):
        await blocked
    with pytest.raises(RedisConnectionError, match="is closed"):
        await r.execute("PING")
    with pytest.raises(RedisConnectionError, match="is closed"):
        r.pubsub()
    await r.close()  # twice is fine


async def test_200_connect_close_cycles_leak_no_descriptor(redis_url: str) -> None:
    before = open_fds()
    for number in range(200):
        async with netkit.redis.connect(redis_url, protocol=2 if number % 2 else 3) as r:
            assert await r.execute("PING") == "PONG"
    assert open_fds() == before


async def test_async_with_on_the_client_itself(redis_url: str) -> None:
    r = await netkit.redis.connect(redis_url)
    async with r:
        assert await r.execute("ECHO", "hi") == b"hi"
    assert r.is_closed


# -- flow control --------------------------------------------------------------------


async def test_a_pipeline_bigger_than_the_write_buffer_waits_for_it_to_drain(own_redis_server: RedisServer) -> None:
    value = b"v" * 100_000
    async with netkit.redis.connect(own_redis_server.url) as r:
        os.kill(own_redis_server.pid, signal.SIGSTOP)  # Redis reads nothing: the buffers fill
        try:
            pipe = r.pipeline()
            for number in range(200):  # 20 MB: more than the kernel's buffers and the high-water mark
                pipe.add("SET", f"k{number}", value)
            sending = netkit.create_task(pipe.execute())
            await netkit.sleep(0)
            connection = r._connection
            assert connection is not None and connection.writing_paused
            stuck = netkit.create_task(r.execute("SET", "last", "one"))
            await netkit.sleep(0)
            stuck.cancel()  # cancelled while waiting for the buffer to drain
            with pytest.raises(netkit.CancelledError):
                await stuck
            assert all(waiter.cancelled() for waiter in list(connection.pending)[1:])
        finally:
            os.kill(own_redis_server.pid, signal.SIGCONT)
        assert await sending == ["OK"] * 200
        assert await r.execute("PING") == "PONG"  # the cancelled SET's reply went nowhere
        assert await r.execute("STRLEN", "k199") == len(value)
