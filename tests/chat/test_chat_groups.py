"""Groups of senders against one reader, over real sockets: however many
polite senders flood a room together, its readers are never evicted.

Each sender stays inside its own rate limit and comes from its own address
(127.0.0.2, 127.0.0.3, ...: all of 127.0.0.0/8 is loopback on Linux), so only
the room's byte budget stands between the group and the reader.  The hub's
clock is frozen, so the budgets admit exactly their bursts, whatever the
speed of the machine.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

import netkit
from netkit import framing
from netkit.chat import ChatHub, ChatLimits
from netkit.chat.server import ChatServer

from chat_helpers import FramedClient, WebSocketClient, run

SENDERS = 40
MESSAGES_EACH = 9  # with the join, exactly the default burst of 10 tokens
TEXT_BYTES = 4096  # the largest message text the defaults allow

# The server's kernel send buffer for each accepted connection (inherited
# from the listener) and the reader's receive buffer: small, so that what the
# reader has not read piles up in the server's own buffer, where the limit is.
KERNEL_BUFFER = 4096


class FrozenClock:
    """The hub's clock, stopped: token buckets never refill during a test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loopback_source_addresses_work() -> bool:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


needs_loopback_range = pytest.mark.skipif(
    not loopback_source_addresses_work(), reason="this system cannot send from 127.0.0.2 (only Linux routes all of 127/8)"
)


class Sender(framing.FramedProtocol):
    """A terminal client that reads everything as it arrives and counts, for
    each of its own messages, whether the room took it or refused it."""

    def __init__(self, name: str, done: netkit.Event, remaining: list[int]) -> None:
        super().__init__(framing.LengthPrefixFramer("!I", max_frame_size=1024 * 1024))
        self.name = name
        self.received: list[dict[str, Any]] = []
        self.answers = 0
        self.lost = False
        self._done = done  # set once every sender has its answers, or one lost its connection
        self._remaining = remaining  # one shared counter: senders still waiting for answers

    def say(self, text: str) -> None:
        self.send_frame(json.dumps({"type": "say", "text": text}).encode())

    def frame_received(self, frame: bytes) -> None:
        message = json.loads(frame)
        self.received.append(message)
        own_echo = message["type"] == "message" and message["nick"] == self.name
        if own_echo or message["type"] == "error":
            self.answers += 1
            if self.answers == MESSAGES_EACH:
                self._remaining[0] -= 1
                if self._remaining[0] == 0:
                    self._done.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self._done.set()  # no point waiting for the others: the test has failed

    def accepted(self) -> list[str]:
        return [m["text"] for m in self.received if m["type"] == "message" and m["nick"] == self.name]

    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.received if m["type"] == "error"]


@needs_loopback_range
def test_forty_polite_senders_cannot_evict_a_reader() -> None:
    async def scenario() -> None:
        hub = ChatHub(ChatLimits(), clock=FrozenClock())
        async with ChatServer("127.0.0.1", 0, 0, hub=hub) as server:
            assert server.http_address is not None and server.tcp_address is not None
            for listener in server.sockets:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
            reader = await WebSocketClient.connect(server.http_address, "reader")
            reader_socket = reader.connection.protocol.transport.get_extra_info("socket")
            reader_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)

            loop = netkit.get_running_loop()
            done = netkit.Event()
            remaining = [SENDERS]
            senders: list[Sender] = []
            for number in range(SENDERS):
                name = f"s{number}"
                source = (f"127.0.0.{number + 2}", 0)
                _, sender = await loop.create_connection(
                    lambda name=name: Sender(name, done, remaining), *server.tcp_address, local_addr=source
                )
                sender.send_frame(json.dumps({"type": "join", "nick": name}).encode())
                senders.append(sender)

            # Every sender fires its nine messages at once; the reader reads
            # nothing until every sender has heard back about every message.
            for sender in senders:
                for index in range(MESSAGES_EACH):
                    prefix = f"{sender.name} {index} "
                    sender.say(prefix + "x" * (TEXT_BYTES - len(prefix)))
            await done.wait()

            assert hub.stats.slow_dropped == 0, hub.stats
            assert not any(sender.lost for sender in senders)
            accepted = {text for sender in senders for text in sender.accepted()}
            assert 0 < len(accepted) < SENDERS * MESSAGES_EACH  # the room took some and refused the rest
            for sender in senders:
                refused = sender.errors()
                assert len(sender.accepted()) + len(refused) == MESSAGES_EACH
                assert {error["code"] for error in refused} <= {"room_busy"}, refused

            # The reader is still there and gets every message the room took.
            seen: set[str] = set()
            while seen != accepted:
                message = await reader.receive()  # raises ConnectionClosed if the reader was evicted
                assert message["type"] in ("joined", "message"), message
                if message["type"] == "message":
                    assert message["text"] in accepted, "the reader got a message no sender saw taken"
                    seen.add(message["text"])
            assert seen == accepted
            await reader.close()
            for sender in senders:
                sender.transport.close()

    run(scenario())


def test_too_many_connections_from_one_address_are_refused() -> None:
    async def scenario() -> None:
        limits = ChatLimits()
        async with ChatServer("127.0.0.1", 0, 0, limits=limits) as server:
            assert server.http_address is not None and server.tcp_address is not None
            # The most one address may hold, over both doors.
            watcher = await WebSocketClient.connect(server.http_address, "watcher")
            allowed = [await WebSocketClient.connect(server.http_address) for _ in range(limits.max_clients_per_address - 2)]
            framed = await FramedClient.connect(server.tcp_address, "term")
            extra = await WebSocketClient.connect(server.http_address)
            refusal = await extra.receive()
            assert refusal["code"] == "too_many_connections" and "from your address" in refusal["message"]
            await extra.connection.wait_closed()
            assert extra.connection.close_code == 1013  # RFC 6455 §7.4.1: try again later
            extra_framed = await FramedClient.connect(server.tcp_address)
            assert [m["code"] for m in await extra_framed.receive_all()] == ["too_many_connections"]
            await extra_framed.close()
            assert server.hub.stats.refused_address == 2

            await framed.close()  # one goes (as the hub sees once the room hears it left) ...
            await watcher.receive_until(lambda m: m["type"] == "left" and m["nick"] == "term")
            again = await WebSocketClient.connect(server.http_address, "again")  # ... and the address may connect again
            for client in [watcher, *allowed, again]:
                await client.close()

    run(scenario())
