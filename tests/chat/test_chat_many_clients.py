"""200 clients in one room, one of which never reads.

The chat must not slow down for anyone because of a client that does not
read: every other client gets every message, in order, while the stalled
one still holds its connection, and the stalled one is disconnected once
the server's send buffer for it passes the limit.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
from typing import Any

import pytest

import netkit
from netkit import framing, websocket
from netkit.chat import ChatLimits
from netkit.chat.server import ChatServer

from chat_helpers import run

CLIENTS = 200
WEBSOCKET_READERS = 20  # the rest are terminal (framed TCP) clients
TEXT = "x" * 3000

# Small buffers, so that the stalled client trips the limit after a few dozen
# messages rather than the megabytes the kernel would otherwise absorb for it
# (Linux grows a connection's send buffer up to 4 MiB): the kernel buffers on
# both ends of its connection are 4 KiB and the server's own limit is 32 KiB.
KERNEL_BUFFER = 4096
SEND_BUFFER_LIMIT = 32 * 1024
# A room's burst of a few messages: with the history kept to one message,
# it lets the hub accept SEND_BUFFER_LIMIT (see ChatLimits.min_send_buffer_limit).
SMALL_ROOM_BURST = 8 * 1024
# Far more than needed to fill every buffer on the way; reaching it means the
# stalled client is never dropped.
MAX_MESSAGES = 2000

# Every client holds two descriptors in this process (its end and the
# server's), plus a margin for the loop, the listeners and pytest.
FDS_NEEDED = 2 * CLIENTS + 64


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def enough_fds() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < open_fds() + FDS_NEEDED:
        if hard != resource.RLIM_INFINITY and hard < open_fds() + FDS_NEEDED:
            pytest.skip(f"needs {FDS_NEEDED} more file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds() + FDS_NEEDED, hard))


class Reader:
    """What one reading client received; counts each chat message for :class:`Tally`."""

    def __init__(self, tally: Tally, nick: str) -> None:
        self.tally = tally
        self.nick = nick
        self.received: list[dict[str, Any]] = []

    def record(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.received.append(message)
        self.tally.saw(message)

    def texts(self) -> list[str]:
        return [m["text"] for m in self.received if m["type"] == "message"]


class Tally:
    """How many readers have seen each message; wakes whoever waits for all of them."""

    def __init__(self, readers: int) -> None:
        self.readers = readers
        self.counts: dict[tuple[str, str], int] = {}
        self._complete: dict[tuple[str, str], netkit.Event] = {}

    @staticmethod
    def key(message: dict[str, Any]) -> tuple[str, str]:
        if message["type"] == "message":
            return ("message", message["text"])
        if message["type"] == "welcome":
            return ("welcome", "")  # every reader gets its own: count them together
        return (message["type"], str(message.get("nick")))

    def saw(self, message: dict[str, Any]) -> None:
        key = self.key(message)
        count = self.counts[key] = self.counts.get(key, 0) + 1
        if count == self.readers:
            self._event(key).set()

    def _event(self, key: tuple[str, str]) -> netkit.Event:
        return self._complete.setdefault(key, netkit.Event())

    async def everyone_saw(self, key: tuple[str, str]) -> None:
        await self._event(key).wait()


class FramedReader(framing.FramedProtocol):
    """A terminal client that reads everything, as it arrives."""

    def __init__(self, reader: Reader) -> None:
        super().__init__(framing.LengthPrefixFramer("!I", max_frame_size=1024 * 1024))
        self.reader = reader

    def frame_received(self, frame: bytes) -> None:
        self.reader.record(frame)


class WebSocketReader(websocket.WebSocketHandler):
    """A browser-protocol client that reads everything, as it arrives."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def on_message(self, ws: websocket.WebSocketProtocol, message: str | bytes) -> None:
        self.reader.record(message)


def join_frame(nick: str) -> bytes:
    payload = json.dumps({"type": "join", "nick": nick}).encode()
    return struct.pack("!I", len(payload)) + payload


def test_a_client_that_never_reads_holds_up_nobody(enough_fds: None) -> None:
    fds_before = open_fds()

    async def scenario() -> None:
        limits = ChatLimits(
            rate=1e6,
            burst=10**6,
            max_clients=CLIENTS,
            # Every client comes from 127.0.0.1, and messages follow each
            # other as fast as the readers take them: this test is about one
            # reader that stalls, not about the limits on groups of senders.
            max_clients_per_address=CLIENTS,
            address_rate=1e6,
            address_burst=10**6,
            room_byte_rate=10**9,
            room_byte_burst=SMALL_ROOM_BURST,
            # Little history and short texts, so that the least send buffer
            # limit the hub accepts stays below SEND_BUFFER_LIMIT.
            history_size=1,
            max_text_bytes=len(TEXT) + 100,
            send_buffer_limit=SEND_BUFFER_LIMIT,
        )
        async with ChatServer("127.0.0.1", 0, 0, limits=limits) as server:
            assert server.http_address is not None and server.tcp_address is not None
            loop = netkit.get_running_loop()
            tally = Tally(CLIENTS - 1)
            readers = [Reader(tally, f"r{number}") for number in range(CLIENTS - 1)]
            framed: list[FramedReader] = []
            web_connections: list[websocket.WebSocketProtocol] = []
            host, port = server.http_address
            for reader in readers[:WEBSOCKET_READERS]:
                connection = await websocket.connect(f"ws://{host}:{port}/ws", handler=WebSocketReader(reader))
                connection.send(json.dumps({"type": "join", "nick": reader.nick}))
                web_connections.append(connection)
            for reader in readers[WEBSOCKET_READERS:]:
                _, protocol = await loop.create_connection(lambda r=reader: FramedReader(r), *server.tcp_address)
                protocol.send_frame(json.dumps({"type": "join", "nick": reader.nick}).encode())
                framed.append(protocol)
            await tally.everyone_saw(("welcome", ""))
            sender = framed[-1]

            # The stalled client joins last and then never reads again.  The
            # server's end of its connection inherits the listener's send buffer
            # size; its own end gets a small receive buffer (set before connecting,
            # so the window it advertises is small from the start).
            (tcp_listener,) = [s for s in server.sockets if s.getsockname()[:2] == server.tcp_address]
            tcp_listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
            stalled.connect(server.tcp_address)
            stalled.sendall(join_frame("stalled"))
            await tally.everyone_saw(("joined", "stalled"))
            assert server.hub.client_count == CLIENTS

            # One message at a time, each seen by all 199 readers before the
            # next is sent, until the hub gives up on the stalled client.
            sent: list[str] = []
            while ("left", "stalled") not in tally.counts:
                assert len(sent) < MAX_MESSAGES, f"the stalled client was never dropped; stats: {server.hub.stats}"
                text = f"{len(sent)} {TEXT}"
                sender.send_frame(json.dumps({"type": "say", "text": text}).encode())
                await tally.everyone_saw(("message", text))
                sent.append(text)
            await tally.everyone_saw(("left", "stalled"))
            assert len(sent) > 1  # the stalled client held on for a while: its buffers filled first

            # After it is gone, the room carries on.
            sender.send_frame(json.dumps({"type": "say", "text": "after"}).encode())
            await tally.everyone_saw(("message", "after"))
            sent.append("after")

            for reader in readers:
                assert reader.texts() == sent, f"{reader.nick} got {len(reader.texts())} of {len(sent)} messages"
            left = [m for m in sender.reader.received if m["type"] == "left"]
            assert [(m["nick"], m["reason"]) for m in left] == [("stalled", "too slow to keep up")]
            assert server.hub.stats.slow_dropped == 1
            assert server.hub.client_count == CLIENTS - 1

            # The stalled client's connection was aborted: once it reads, it finds the end.
            stalled.settimeout(10)
            try:
                while stalled.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            stalled.close()

            for protocol in framed:
                protocol.transport.close()
            for connection in web_connections:
                connection.close()

    run(scenario())
    assert open_fds() == fds_before  # every socket of the server and the clients released
