"""netkit.testing's transport doubles: RecordingTransport and transport_pair."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import netkit
from netkit import EventLoop
from netkit.streams import StreamReader, StreamReaderProtocol, StreamWriter
from netkit.testing import MemoryTransport, RecordingTransport, transport_pair

from transport_helpers import Echo, Recorder


class LineUpper(netkit.Protocol):
    """Answers each complete line in upper case; ``QUIT`` closes."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lost: list[BaseException | None] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"hello\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line == b"QUIT":
                self.transport.close()
                return
            self.transport.write(line.upper() + b"\n")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


# ------------------------------------------------------- RecordingTransport


def test_recording_transport_records_writes_and_feeds_data() -> None:
    protocol = LineUpper()
    transport = RecordingTransport(protocol)
    assert transport.written == b"hello\n"
    transport.clear()
    transport.feed(b"abc\nde")
    transport.feed(b"f\n")
    assert transport.written == b"ABC\nDEF\n"
    transport.feed(b"QUIT\n")
    assert transport.closed and not transport.aborted
    assert transport.is_closing()
    assert protocol.lost == []  # without a loop, connection loss is the test's to inject
    transport.lose()
    transport.lose(ConnectionResetError())
    assert protocol.lost == [None]  # at most once


def test_recording_transport_injects_eof_and_errors() -> None:
    events: list[str] = []

    class HalfCloser(netkit.Protocol):
        def eof_received(self) -> bool:
            events.append("eof")
            return True

        def connection_lost(self, exc: BaseException | None) -> None:
            events.append(f"lost {exc!r}")

    transport = RecordingTransport(HalfCloser())
    transport.feed_eof()
    assert events == ["eof"] and not transport.closed  # a true return keeps it open
    transport.lose(ConnectionResetError("reset"))
    assert events == ["eof", "lost ConnectionResetError('reset')"]
    assert transport.is_closing()

    closes = RecordingTransport(netkit.Protocol())
    closes.feed_eof()
    assert closes.closed  # eof_received returned None: the transport closes


def test_recording_transport_holds_data_while_reading_is_paused() -> None:
    received: list[bytes] = []

    class Collect(netkit.Protocol):
        def data_received(self, data: bytes) -> None:
            received.append(data)

        def eof_received(self) -> bool:
            received.append(b"<eof>")
            return True

    transport = RecordingTransport(Collect())
    transport.pause_reading()
    assert not transport.is_reading()
    transport.feed(b"one")
    transport.feed(b"two")
    transport.feed_eof()
    assert received == []
    transport.resume_reading()
    assert transport.is_reading()
    assert received == [b"one", b"two", b"<eof>"]
    assert transport.pause_reading_calls == 1 and transport.resume_reading_calls == 1


def test_recording_transport_write_flow_control_and_half_close(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    class Writer(netkit.Protocol):
        def pause_writing(self) -> None:
            calls.append("pause")

        def resume_writing(self) -> None:
            calls.append("resume")

    transport = RecordingTransport(Writer())
    transport.set_write_buffer_limits(high=100, low=10)
    transport.set_write_buffer_size(100)
    assert calls == []
    transport.set_write_buffer_size(101)
    assert calls == ["pause"]
    assert transport.get_write_buffer_size() == 101
    transport.set_write_buffer_size(11)
    assert calls == ["pause"]
    transport.set_write_buffer_size(10)
    assert calls == ["pause", "resume"]
    with pytest.raises(ValueError):
        transport.set_write_buffer_size(-1)

    transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    assert transport.can_write_eof()
    transport.write_eof()
    assert transport.eof_written
    with pytest.raises(RuntimeError):
        transport.write(b"after eof")
    transport.abort()
    assert transport.aborted and transport.get_write_buffer_size() == 0
    with caplog.at_level(logging.WARNING, logger="netkit"):
        transport.write(b"dropped")
        transport.write(b"dropped too")
    assert transport.written == b"abc"
    assert len([r for r in caplog.records if r.name == "netkit"]) == 1


def test_recording_transport_extra_info() -> None:
    transport = RecordingTransport(extra={"peername": ("192.0.2.1", 4242)})
    assert transport.get_extra_info("peername") == ("192.0.2.1", 4242)
    assert transport.get_extra_info("sockname") is None
    assert transport.get_extra_info("missing", 7) == 7
    protocol = LineUpper()
    transport.connect(protocol)
    assert transport.get_protocol() is protocol
    assert transport.written == b"hello\n"
    assert "RecordingTransport open" in repr(transport)


async def test_recording_transport_with_a_loop_runs_the_streams_api(loop: EventLoop) -> None:
    reader = StreamReader(limit=16, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport = RecordingTransport(protocol, loop=loop)
    writer = StreamWriter(transport, protocol, reader, loop)
    transport.feed(b"line one\nline")
    assert await reader.readline() == b"line one\n"
    # Over the reader's limit: the reader pauses the transport ...
    transport.feed(b" two\nthree and more stuff")
    assert not transport.is_reading()
    assert await reader.readline() == b"line two\n"
    assert not transport.is_reading()
    # ... until the application has consumed enough.
    assert await reader.read(4) == b"thre"
    assert transport.is_reading()
    writer.write(b"answer")
    await writer.drain()
    assert transport.written == b"answer"
    writer.close()
    await writer.wait_closed()  # the loop delivered connection_lost(None)
    assert await reader.read() == b"e and more stuff"  # what was received, then EOF
    assert reader.at_eof()


# ---------------------------------------------------------- transport_pair


async def test_pair_echo_and_clean_close(loop: EventLoop) -> None:
    client = Recorder(loop)
    a, b = transport_pair(client, Echo())
    assert isinstance(a, MemoryTransport)
    await client.made
    a.write(b"hello ")
    a.writelines([b"in ", bytearray(b"memory")])
    assert await client.wait_bytes(15) == b"hello in memory"
    a.close()
    assert await client.lost is None
    assert client.lost_calls == [None]
    assert b.is_closing()  # the echo end read EOF and closed too


async def test_pair_half_close_both_ways(loop: EventLoop) -> None:
    asker = Recorder(loop, keep_open=True)

    class Answer(Recorder):
        def eof_received(self) -> bool:
            super().eof_received()
            self.transport.write(b"answer to " + bytes(self.data))
            self.transport.write_eof()
            return True

    answerer = Answer(loop)
    a, b = transport_pair(asker, answerer)
    await asker.made
    a.write(b"question")
    a.write_eof()
    with pytest.raises(RuntimeError):
        a.write(b"more")
    await asker.got_eof
    assert asker.data == b"answer to question"
    # Each side shut its write side and read the other's EOF: both close.
    assert await asker.lost is None
    assert await answerer.lost is None
    assert asker.events[-2:] == ["eof", "lost"]


async def test_pair_abort_is_a_reset_for_the_peer(loop: EventLoop) -> None:
    left, right = Recorder(loop), Recorder(loop)
    a, b = transport_pair(left, right)
    await left.made
    a.write(b"never delivered")
    a.abort()
    assert await left.lost is None
    assert isinstance(await right.lost, ConnectionResetError)
    assert right.data == b""


async def test_pair_writing_to_a_closed_peer_is_reset(loop: EventLoop) -> None:
    left, right = Recorder(loop, keep_open=True), Recorder(loop)
    a, b = transport_pair(left, right)
    await right.made
    b.close()
    await left.got_eof  # the peer's FIN arrived; we kept our side open
    a.write(b"anyone?")
    assert isinstance(await left.lost, ConnectionResetError)
    assert await right.lost is None


async def test_pair_flow_control_follows_the_water_marks(loop: EventLoop) -> None:
    writer_side, reader_side = Recorder(loop), Recorder(loop)
    a, b = transport_pair(writer_side, reader_side)
    await reader_side.made
    b.pause_reading()
    a.set_write_buffer_limits(high=1000, low=100)
    for _ in range(11):
        a.write(bytes(100))
    assert writer_side.pauses == 1
    assert a.get_write_buffer_size() == 1100
    for _ in range(5):
        await netkit.sleep(0)
    assert reader_side.data == b"" and a.get_write_buffer_size() == 1100
    b.resume_reading()
    await reader_side.wait_bytes(1100)
    assert writer_side.resumes == 1
    assert a.get_write_buffer_size() == 0
    a.close()
    await writer_side.lost
    await reader_side.lost


async def test_pair_carries_the_streams_api(loop: EventLoop) -> None:
    server_reader = StreamReader(loop=loop)
    client_reader = StreamReader(loop=loop)
    handled = loop.create_future()

    async def handle(reader: StreamReader, writer: StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"got " + str(len(request)).encode())
        writer.write_eof()
        await writer.drain()
        handled.set_result(request)

    server_protocol = StreamReaderProtocol(server_reader, handle, loop=loop)
    client_protocol = StreamReaderProtocol(client_reader, loop=loop)
    transport_pair(client_protocol, server_protocol, extra_b={"peername": ("client", 1)})
    await netkit.sleep(0)
    writer = client_protocol._writer
    assert writer is not None
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert await client_reader.read() == b"got 18"
    assert await handled == b"GET / HTTP/1.1\r\n\r\n"
    writer.close()
    await writer.wait_closed()
