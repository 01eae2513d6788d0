"""Clients for testing the chat server over real sockets: framed TCP, WebSocket, plain HTTP."""

from __future__ import annotations

import json
from typing import Any, Callable, Coroutine, TypeVar

import netkit
from netkit import framing, websocket

T = TypeVar("T")

# A test that has not finished after this long is stuck: fail it instead of
# hanging the run.  Far above what any of these tests needs.
TEST_DEADLINE = 30.0

Message = dict[str, Any]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh netkit loop, failing it if it hangs."""

    async def guarded() -> T:
        return await netkit.wait_for(coro, TEST_DEADLINE)

    return netkit.run(guarded())


class FramedClient:
    """A terminal client's side of the framed TCP door."""

    def __init__(self, reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = framing.LengthPrefixFramer("!I", max_frame_size=4 * 1024 * 1024)

    @classmethod
    async def connect(cls, address: tuple[str, int], nick: str | None = None, room: str | None = None) -> FramedClient:
        """Connect, and with ``nick`` join and wait for the welcome."""
        reader, writer = await netkit.open_connection(*address)
        client = cls(reader, writer)
        if nick is not None:
            join: Message = {"type": "join", "nick": nick}
            if room is not None:
                join["room"] = room
            client.send(join)
            welcome = await client.receive()
            assert welcome is not None and welcome["type"] == "welcome", welcome
        return client

    def send(self, message: Message) -> None:
        self.send_raw(json.dumps(message).encode())

    def send_raw(self, payload: bytes) -> None:
        framing.write_frame(self.writer, self.framer, payload)

    async def receive(self) -> Message | None:
        """The next message, ``None`` once the server closed the connection."""
        frame = await framing.read_frame(self.reader, self.framer)
        return None if frame is None else json.loads(frame)

    async def receive_until(self, done: Callable[[Message], bool]) -> list[Message]:
        """Messages up to and including the first for which ``done`` is true."""
        seen = []
        while True:
            message = await self.receive()
            assert message is not None, f"closed before the expected message; got {seen}"
            seen.append(message)
            if done(message):
                return seen

    async def receive_all(self) -> list[Message]:
        """Every message until the server closes the connection."""
        seen = []
        while (message := await self.receive()) is not None:
            seen.append(message)
        return seen

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class WebSocketClient:
    """A browser's side of the WebSocket door."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, address: tuple[str, int], nick: str | None = None, room: str | None = None) -> WebSocketClient:
        host, port = address
        client = cls(await websocket.connect(f"ws://{host}:{port}/ws"))
        if nick is not None:
            join: Message = {"type": "join", "nick": nick}
            if room is not None:
                join["room"] = room
            await client.send(join)
            welcome = await client.receive()
            assert welcome["type"] == "welcome", welcome
        return client

    async def send(self, message: Message) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> Message:
        return json.loads(await self.connection.recv())

    async def receive_until(self, done: Callable[[Message], bool]) -> list[Message]:
        seen = []
        while True:
            message = await self.receive()
            seen.append(message)
            if done(message):
                return seen

    async def close(self) -> None:
        await self.connection.close()


async def http_get(address: tuple[str, int], path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request; returns the status, the header fields (lower-case
    names) and the body read until the server closes."""
    reader, writer = await netkit.open_connection(*address)
    host, port = address
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode("ascii"))
    response = await reader.read(-1)
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *field_lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in field_lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), fields, body
