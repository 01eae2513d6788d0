"""Pub/sub against a real redis-server: channels and patterns, a subscriber that
does not read, Redis dropping it, and subscriptions that survive a restart."""

from __future__ import annotations

import logging

import pytest
from redis_helpers import RedisServer

import netkit
import netkit.redis
from netkit.redis import Message, PubSub, RedisConnectionError, RedisError

# Every test here runs on a real loop, and must leave no file descriptor open.
pytestmark = pytest.mark.usefixtures("loop")

MIB = 1024 * 1024

# netkit's stream transport reads at most 256 KiB at a time: what a subscriber
# that stopped reading may still hold as raw bytes, besides its queue.
ONE_READ = 256 * 1024

# Flood rounds: 100 messages of about 1 kB each, at most 300 rounds (30 MB):
# far more than the kernel's socket buffers hold, so a subscriber that stops
# reading makes the messages pile up in Redis well before the end.
FLOOD_ROUND = 100
FLOOD_ROUNDS = 300
PAYLOAD = b"x" * 1000


async def publish_round(r: netkit.redis.Redis, channel: str, first: int) -> list[int]:
    """Publish FLOOD_ROUND numbered messages in one pipeline; return the receiver counts."""
    pipe = r.pipeline()
    for number in range(first, first + FLOOD_ROUND):
        pipe.add("PUBLISH", channel, b"%08d:" % number + PAYLOAD)
    return await pipe.execute()


async def subscriber_output_memory(r: netkit.redis.Redis) -> int:
    """What Redis holds for its pub/sub clients beyond the kernel's buffers (CLIENT LIST's omem)."""
    listing = await r.execute("CLIENT", "LIST", "TYPE", "pubsub")
    fields = [dict(item.split(b"=", 1) for item in line.split()) for line in listing.splitlines()]
    return max((int(entry[b"omem"]) for entry in fields), default=0)


def number_of(message: Message) -> int:
    return int(message.data[:8])


@pytest.mark.parametrize("protocol", [2, 3])
async def test_channels_and_patterns(redis_url: str, protocol: int) -> None:
    async with netkit.redis.connect(redis_url, protocol=protocol) as r:
        sub = r.pubsub()
        await sub.subscribe("news", b"sport")
        await sub.psubscribe("alerts.*")
        assert sub.channels == {b"news", b"sport"} and sub.patterns == {b"alerts.*"}
        assert await r.publish("news", "hello") == 1
        assert await r.publish("alerts.fire", b"\x00\xff") == 1
        assert await r.publish("sport", 42) == 1
        assert await r.publish("elsewhere", "nobody") == 0
        assert await sub.get_message() == Message(b"news", b"hello")
        assert await sub.get_message() == Message(b"alerts.fire", b"\x00\xff", b"alerts.*")
        assert await sub.get_message() == (b"sport", b"42", None)
        await sub.close()


async def test_unsubscribe_and_punsubscribe(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub()
        await sub.subscribe("a", "b", "c")
        await sub.psubscribe("p.*", "q.*")
        await sub.unsubscribe("a")
        assert await r.publish("a", "x") == 0 and await r.publish("b", "x") == 1
        await sub.punsubscribe("p.*")
        assert await r.publish("p.1", "x") == 0 and await r.publish("q.1", "x") == 1
        assert sub.channels == {b"b", b"c"} and sub.patterns == {b"q.*"}
        await sub.unsubscribe()
        await sub.punsubscribe()
        assert sub.channels == sub.patterns == frozenset()
        assert await r.publish("b", "x") == 0 and await r.publish("q.1", "x") == 0
        # the messages that came before unsubscribing are still delivered
        assert [await sub.get_message(), await sub.get_message()] == [(b"b", b"x", None), (b"q.1", b"x", b"q.*")]
        await sub.close()


async def test_async_for_ends_when_the_subscriber_is_closed(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub()
        await sub.subscribe("chat")
        received: list[bytes] = []

        async def consume() -> None:
            async for message in sub:
                received.append(message.data)
                if len(received) == 3:
                    await sub.close()

        consumer = netkit.create_task(consume())
        for text in ("one", "two", "three"):
            await r.publish("chat", text)
        await consumer
        assert received == [b"one", b"two", b"three"] and sub.is_closed
        with pytest.raises(RedisConnectionError, match="closed"):
            await sub.subscribe("more")
        with pytest.raises(RedisConnectionError, match="closed"):
            await sub.get_message()


async def test_closing_the_client_closes_its_subscribers(redis_url: str) -> None:
    r = await netkit.redis.connect(redis_url)
    sub = r.pubsub()
    await sub.subscribe("chat")
    waiting = netkit.create_task(sub.get_message())
    await netkit.sleep(0)
    await r.close()
    assert sub.is_closed
    with pytest.raises(RedisConnectionError):
        await waiting


async def test_get_message_timeout(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        async with r.pubsub() as sub:
            await sub.subscribe("quiet")
            with pytest.raises(TimeoutError):
                await sub.get_message(timeout=0.01)
            await r.publish("quiet", "now")
            assert (await sub.get_message(timeout=10)).data == b"now"


async def test_arguments_are_checked(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        with pytest.raises(ValueError):
            r.pubsub(max_messages=0)
        async with r.pubsub() as sub:
            with pytest.raises(ValueError):
                await sub.subscribe()
            with pytest.raises(TypeError):
                await sub.subscribe(1)  # type: ignore[arg-type]


async def test_a_refused_subscription_raises_redis_error(redis_url: str, redis_server: RedisServer) -> None:
    redis_server.command("ACL", "SETUSER", "limited", "reset", "on", ">pw", "~*", "resetchannels", "&allowed", "+@all")
    try:
        async with netkit.redis.connect(f"redis://limited:pw@127.0.0.1:{redis_server.port}") as r:
            async with r.pubsub() as sub:
                with pytest.raises(RedisError) as caught:
                    await sub.subscribe("forbidden")
                assert caught.value.code == "NOPERM"
                assert sub.channels == frozenset()
                await sub.subscribe("allowed")
                assert await r.publish("allowed", "yes") == 1
                assert (await sub.get_message()).data == b"yes"
    finally:
        redis_server.command("ACL", "DELUSER", "limited")


async def test_subscribing_without_a_server_raises(own_redis_server: RedisServer) -> None:
    async with netkit.redis.connect(own_redis_server.url) as r:
        own_redis_server.kill()
        async with r.pubsub() as sub:
            with pytest.raises(RedisConnectionError, match="cannot connect to Redis at"):
                await sub.subscribe("news")
            assert sub.channels == frozenset()


# -- a subscriber that does not read --------------------------------------------------


async def test_a_subscriber_that_does_not_read_stays_bounded(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub(max_messages=16)
        await sub.subscribe("flood")
        published = 0
        for _ in range(FLOOD_ROUNDS):
            await publish_round(r, "flood", published)
            published += FLOOD_ROUND
            if await subscriber_output_memory(r) > 2 * MIB:
                break  # the kernel's buffers are full: Redis holds the rest
        else:
            pytest.fail(f"after {published} messages Redis still held nothing: the subscriber read them all")
        connection = sub._connection
        assert connection is not None and connection.holding and not connection.transport.is_reading()
        assert sub.qsize() == 16
        assert connection.parser.buffered_size <= ONE_READ + len(PAYLOAD) + 100
        # Reading again delivers every message, in order, none lost.
        for number in range(published):
            message = await sub.get_message()
            assert number_of(message) == number
        assert sub.qsize() == 0 and not connection.holding
        await sub.close()


async def test_redis_drops_a_slow_subscriber_and_the_client_reports_it(redis_url: str, redis_server: RedisServer, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    # Redis' limit on what it holds for one pub/sub client: 1 MB at once, then it drops the client.
    redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0")
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub(max_messages=16, reconnect=False)
        await sub.subscribe("flood")
        published = 0
        for _ in range(FLOOD_ROUNDS):
            receivers = await publish_round(r, "flood", published)
            published += FLOOD_ROUND
            if receivers[-1] == 0:
                break  # Redis dropped the subscriber
        else:
            pytest.fail(f"Redis never dropped the subscriber after {published} messages")
        assert sub.qsize() == 16
        received = 0
        with pytest.raises(RedisConnectionError) as caught:
            async for message in sub:
                assert number_of(message) == received
                received += 1
        assert 16 <= received < published
        assert caught.value.address == redis_server.address
        assert f"lost the connection to Redis at {redis_server.address}" in str(caught.value)
        with pytest.raises(RedisConnectionError):
            await sub.subscribe("flood")
        await sub.close()
    assert [record for record in caplog.records if record.exc_info] == []


async def test_a_dropped_subscriber_reconnects_and_subscribes_again(redis_url: str, redis_server: RedisServer) -> None:
    redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0")
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub(max_messages=16)
        await sub.subscribe("flood")
        published = 0
        for _ in range(FLOOD_ROUNDS):
            receivers = await publish_round(r, "flood", published)
            published += FLOOD_ROUND
            if receivers[-1] == 0:
                break
        else:
            pytest.fail("Redis never dropped the subscriber")
        redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
        numbers: list[int] = []

        async def consume() -> None:
            async for message in sub:
                if message.data == b"after":
                    return
                numbers.append(number_of(message))

        consumer = netkit.create_task(consume())
        await sub.subscribe("flood")  # confirmed by the new connection only: the old one is gone
        assert await r.publish("flood", "after") == 1
        await consumer
        assert numbers == list(range(len(numbers))) and 16 <= len(numbers) < published
        assert sub.reconnects == 1 and isinstance(sub.last_error, RedisConnectionError)
        await sub.close()


# -- server restarts ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
async def test_subscriptions_resume_after_the_server_restarts(own_redis_server: RedisServer, protocol: int, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    async with netkit.redis.connect(own_redis_server.url, protocol=protocol) as r:
        sub = r.pubsub()
        await sub.subscribe("a", "b")
        await sub.psubscribe("p.*")
        await r.publish("a", "before")
        assert (await sub.get_message()).data == b"before"
        own_redis_server.restart()  # kill -9, then a new server on the same port
        # Confirmed by the new server only, after the subscriber subscribed
        # again to everything (this pattern last).
        await sub.psubscribe("p.*")
        assert sub.reconnects == 1 and isinstance(sub.last_error, RedisConnectionError)
        assert await r.publish("b", "after") == 1  # the client reconnected too
        assert await sub.get_message() == Message(b"b", b"after")
        assert await r.publish("p.x", "pattern") == 1
        assert await sub.get_message() == Message(b"p.x", b"pattern", b"p.*")
        await sub.close()
    assert [record for record in caplog.records if record.exc_info or "Traceback" in record.getMessage()] == []
    lost = [record for record in caplog.records if "subscriber lost its connection" in record.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING and own_redis_server.address in lost[0].getMessage()


async def test_subscribing_while_the_server_is_down_waits_for_it(own_redis_server: RedisServer) -> None:
    async with netkit.redis.connect(own_redis_server.url) as r:
        sub = r.pubsub()
        await sub.subscribe("a")
        own_redis_server.kill()
        # Let the subscriber notice (it then retries, with a growing delay).
        with pytest.raises(TimeoutError):
            await sub.subscribe("b", timeout=0.2)
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await sub.subscribe("b", timeout=0.001)
        assert sub.channels == {b"a", b"b"}
        # The timed-out calls leave no waiter behind: one, the last, at most.
        assert len(sub._confirmations[(b"subscribe", b"b")]) <= 1
        own_redis_server.start()
        await sub.subscribe("b")
        assert await r.publish("a", "1") == 1 and await r.publish("b", "2") == 1
        assert [await sub.get_message(), await sub.get_message()] == [(b"a", b"1", None), (b"b", b"2", None)]
        await sub.close()


async def test_pubsub_objects_are_public(redis_url: str) -> None:
    async with netkit.redis.connect(redis_url) as r:
        sub = r.pubsub(max_messages=5, reconnect=False)
        assert isinstance(sub, PubSub) and sub.max_messages == 5 and not sub.reconnect
        assert "channels=0" in repr(sub)
        await sub.close()
        await sub.close()
