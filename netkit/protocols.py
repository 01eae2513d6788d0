"""The callback interfaces a transport drives: :class:`Protocol` for byte
streams, :class:`DatagramProtocol` for datagrams.

The method names and their order of calls are asyncio's, so a protocol written
for netkit also runs on an asyncio loop, and the other way round.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BaseProtocol", "Protocol", "DatagramProtocol"]


class BaseProtocol:
    """Connection lifecycle and write flow control, common to every protocol."""

    __slots__ = ()

    def connection_made(self, transport: Any) -> None:
        """The connection is up; ``transport`` is how to write to it."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone: ``exc`` is ``None`` after a clean close,
        otherwise the error that ended it.  Called exactly once."""

    def pause_writing(self) -> None:
        """The transport's write buffer rose above its high-water mark: stop writing."""

    def resume_writing(self) -> None:
        """The write buffer drained down to the low-water mark: writing may go on."""


class Protocol(BaseProtocol):
    """A byte-stream protocol (TCP, Unix sockets).

    Call order: ``connection_made``, then ``data_received`` any number of times,
    then at most one ``eof_received``, then exactly one ``connection_lost``.
    """

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        """Some bytes arrived.  Message boundaries are not kept: see ``netkit.framing``."""

    def eof_received(self) -> bool | None:
        """The peer shut down its write side (a TCP FIN).

        Return a true value to keep the connection open for writing (half-close);
        otherwise the transport closes itself.
        """
        return None


class DatagramProtocol(BaseProtocol):
    """A datagram protocol (UDP, Unix datagram sockets)."""

    __slots__ = ()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """One whole datagram arrived from ``addr``."""

    def error_received(self, exc: OSError) -> None:
        """A send or receive failed, e.g. an ICMP port-unreachable on a connected socket."""
