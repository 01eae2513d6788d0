"""Shared pieces of the tests of WebSockets on the loop: a deadline for every
test, addresses of servers, and a raw client that speaks the protocol by hand
so that a test can play a peer that misbehaves on purpose (stays silent,
never reads, never closes)."""

from __future__ import annotations

import base64
import logging
import os
import socket
from typing import Any, Coroutine, TypeVar

import netkit
from netkit.websocket import Frame, FrameParser, accept_key, serialize_frame
from netkit.websocket.frames import CLOSE, PING, PONG
from netkit.websocket.server import WebSocketServer

T = TypeVar("T")

# A test that has not finished after this long is stuck: fail it instead of
# hanging the run.  Far above what any of these tests needs.
TEST_DEADLINE = 10.0


def run(coro: Coroutine[Any, Any, T], deadline: float = TEST_DEADLINE) -> T:
    """Run ``coro`` on a fresh netkit loop; a hang fails with ``TimeoutError``."""
    return netkit.run(netkit.wait_for(coro, deadline))


def port_of(server: WebSocketServer) -> int:
    return server.sockets[0].getsockname()[1]


def uri_of(server: WebSocketServer, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port_of(server)}{path}"


def opening_request(path: str = "/", key: str | None = None, extra: str = "") -> tuple[bytes, str]:
    """A client's opening request, and the ``Sec-WebSocket-Accept`` it expects."""
    key = key or base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    return request.encode(), accept_key(key)


class RawClient:
    """A WebSocket client written by hand over a netkit stream: it does only
    what the test tells it to (answers no ping, sends no close by itself)."""

    def __init__(self, reader: netkit.StreamReader, writer: netkit.StreamWriter, leftover: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(expect_masked=False, max_message_size=None)
        self._frames: list[Frame] = self.parser.feed(leftover) if leftover else []

    @classmethod
    async def open(cls, port: int, path: str = "/", buffer_size: int | None = None) -> RawClient:
        """Connect and complete the opening handshake.  ``buffer_size`` shrinks
        the socket's kernel buffers, so that a client that does not read
        pushes back on the server after a few KiB."""
        sock = socket.socket()
        if buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_size)
        sock.connect(("127.0.0.1", port))  # loopback: immediate
        reader, writer = await netkit.open_connection(sock=sock)
        request, expected_accept = opening_request(path)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert f"Sec-WebSocket-Accept: {expected_accept}".encode() in head
        return cls(reader, writer, b"")

    def stop_reading(self) -> None:
        """Read nothing more until :meth:`read_frame` is called: a client that
        does not read (its stream would otherwise take 64 KiB first)."""
        self.writer.transport.pause_reading()

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True) -> None:
        self.writer.write(serialize_frame(opcode, payload, fin=fin, mask=True))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(CLOSE, code.to_bytes(2, "big") + reason.encode())

    async def read_frame(self) -> Frame | None:
        """The next frame from the server, ``None`` at EOF."""
        self.writer.transport.resume_reading()
        while not self._frames:
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                return None
            self._frames = self.parser.feed(data)
            assert self.parser.error is None, self.parser.error
        return self._frames.pop(0)

    async def read_until_close(self) -> Frame:
        """Skip frames up to the server's close frame, answering pings never."""
        while True:
            frame = await self.read_frame()
            assert frame is not None, "EOF before a close frame"
            if frame.opcode == CLOSE:
                return frame

    async def read_eof(self) -> bytes:
        """Everything until the server closes TCP (a reset counts as a close)."""
        chunks = []
        while True:
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.transport.abort()


def close_code_of(frame: Frame) -> int:
    assert frame.opcode == CLOSE
    return int.from_bytes(frame.payload[:2], "big")


def small_buffer_listener(size: int = 4096) -> socket.socket:
    """A listening socket on loopback whose accepted sockets inherit small
    kernel buffers, so that TCP pushes back after a few KiB rather than a few MiB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    sock.bind(("127.0.0.1", 0))
    return sock


class RecordingHandler(logging.Handler):
    """Collects the records of a logger, for tests that check what was logged
    from inside ``netkit.run`` (pytest's caplog sees them too, but only at
    the end)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


__all__ = [
    "PING",
    "PONG",
    "CLOSE",
    "TEST_DEADLINE",
    "run",
    "port_of",
    "uri_of",
    "opening_request",
    "RawClient",
    "close_code_of",
    "small_buffer_listener",
    "RecordingHandler",
]
