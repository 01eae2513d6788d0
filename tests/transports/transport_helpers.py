"""Protocols that record what happens to them, for the transport tests."""

from __future__ import annotations

import random
import resource
import socket
from typing import Any

import pytest

import netkit
from netkit import EventLoop


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible pseudo-random bytes (any reordering or loss shows)."""
    return random.Random(seed).randbytes(size)


class Recorder(netkit.Protocol):
    """Records every callback; futures let a test await the interesting ones.

    ``keep_open`` is what ``eof_received`` returns (half-close when true).
    """

    def __init__(self, loop: EventLoop, *, keep_open: bool = False) -> None:
        self.loop = loop
        self.keep_open = keep_open
        self.transport: Any = None
        self.data = bytearray()
        self.chunks = 0
        self.eof = False
        self.lost_calls: list[BaseException | None] = []
        self.events: list[str] = []
        self.pauses = 0
        self.resumes = 0
        self.made: netkit.Future[None] = loop.create_future()
        self.got_eof: netkit.Future[None] = loop.create_future()
        self.lost: netkit.Future[BaseException | None] = loop.create_future()
        self._want = 0
        self._enough: netkit.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.events.append("made")
        self.transport = transport
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        assert isinstance(data, bytes)
        self.data += data
        self.chunks += 1
        if self._enough is not None and len(self.data) >= self._want and not self._enough.done():
            self._enough.set_result(None)

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.eof = True
        self.got_eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost_calls.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.pauses += 1
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.resumes += 1
        self.events.append("resume")

    async def wait_bytes(self, count: int) -> bytes:
        """Wait until at least ``count`` bytes have arrived; return everything so far."""
        if len(self.data) < count:
            self._want = count
            self._enough = self.loop.create_future()
            await self._enough
            self._enough = None
        return bytes(self.data)


class Echo(netkit.Protocol):
    """Writes back whatever arrives; keeps writing after the peer's EOF, then closes."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        # Everything received was already written back: close (which flushes).
        return False


def port_of(server: Any) -> int:
    """The port the server's first socket listens on."""
    return int(server.sockets[0].getsockname()[1])


def has_ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def raise_fd_limit(wanted: int) -> None:
    """Raise the soft fd limit to ``wanted`` (restored by the caller), or skip the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
