"""The coroutine streams API: StreamReader on its own, then open_connection and
start_server over real sockets."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

import pytest

import netkit
from netkit import EventLoop, IncompleteReadError, LimitOverrunError, StreamReader, StreamWriter
from netkit.testing import RecordingTransport

from transport_helpers import Recorder, pattern, port_of


def fed(loop: EventLoop, *chunks: bytes, eof: bool = False, limit: int = 2**16) -> StreamReader:
    reader = StreamReader(limit=limit, loop=loop)
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


def splits(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at random points (fixed seed), one to five bytes apart."""
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        end = start + rng.randint(1, 5)
        pieces.append(data[start:end])
        start = end
    return pieces


# ----------------------------------------------------------- StreamReader


async def test_read_returns_what_is_there_and_read_all_waits_for_eof(loop: EventLoop) -> None:
    reader = fed(loop, b"hello ", b"world")
    assert await reader.read(0) == b""
    assert await reader.read(3) == b"hel"
    assert await reader.read(100) == b"lo world"
    loop.call_soon(reader.feed_data, b"more")
    assert await reader.read(10) == b"more"  # waited for data
    loop.call_soon(reader.feed_data, b"rest")
    loop.call_soon(reader.feed_eof)
    assert await reader.read() == b"rest"
    assert reader.at_eof()
    assert await reader.read() == b""
    assert await reader.read(5) == b""


async def test_readexactly(loop: EventLoop) -> None:
    reader = fed(loop, b"abc", b"defg")
    assert await reader.readexactly(0) == b""
    assert await reader.readexactly(5) == b"abcde"
    loop.call_soon(reader.feed_data, b"hij")
    assert await reader.readexactly(4) == b"fghi"
    with pytest.raises(ValueError):
        await reader.readexactly(-1)
    loop.call_soon(reader.feed_eof)
    with pytest.raises(IncompleteReadError) as info:
        await reader.readexactly(10)
    assert info.value.partial == b"j"  # what came before EOF, handed over
    assert info.value.expected == 10
    assert isinstance(info.value, EOFError)
    assert reader.at_eof()


@pytest.mark.parametrize("seed", range(20))
async def test_readuntil_with_a_multi_byte_separator_across_every_split(loop: EventLoop, seed: int) -> None:
    messages = [b"first", b"", b"se\rcond\r", b"\nthird" * 3]
    stream = b"".join(m + b"\r\n" for m in messages) + b"tail"
    reader = fed(loop, *splits(stream, seed), eof=True)
    for message in messages:
        assert await reader.readuntil(b"\r\n") == message + b"\r\n"
    with pytest.raises(IncompleteReadError) as info:
        await reader.readuntil(b"\r\n")
    assert info.value.partial == b"tail" and info.value.expected is None


async def test_readuntil_waits_for_the_separator(loop: EventLoop) -> None:
    reader = fed(loop, b"abc\r")
    loop.call_soon(reader.feed_data, b"\nxyz")
    assert await reader.readuntil(b"\r\n") == b"abc\r\n"
    with pytest.raises(ValueError):
        await reader.readuntil(b"")


async def test_readuntil_limit_overrun_keeps_the_data(loop: EventLoop) -> None:
    reader = fed(loop, b"x" * 11, limit=10)
    with pytest.raises(LimitOverrunError) as info:
        await reader.readuntil(b"\n")
    assert info.value.consumed == 11
    assert "10" in str(info.value)
    assert await reader.read(11) == b"x" * 11  # nothing was thrown away

    reader = fed(loop, b"y" * 15 + b"\nok\n", limit=10)
    with pytest.raises(LimitOverrunError) as info:
        await reader.readuntil(b"\n")  # found, but beyond the limit
    assert info.value.consumed == 15
    assert await reader.readexactly(16) == b"y" * 15 + b"\n"
    assert await reader.readuntil(b"\n") == b"ok\n"

    reader = fed(loop, b"z" * 10 + b"\n", limit=10)
    assert await reader.readuntil(b"\n") == b"z" * 10 + b"\n"  # at the limit is fine


async def test_readline_and_async_iteration(loop: EventLoop) -> None:
    reader = fed(loop, *splits(b"one\ntwo\n\nlast", 3), eof=True)
    lines = [line async for line in reader]
    assert lines == [b"one\n", b"two\n", b"\n", b"last"]
    assert await reader.readline() == b""
    assert reader.at_eof()


async def test_readline_over_the_limit_raises_value_error_and_discards_the_line(loop: EventLoop) -> None:
    reader = fed(loop, b"a" * 20 + b"\nnext\n", limit=10)
    with pytest.raises(ValueError):
        await reader.readline()
    assert await reader.readline() == b"next\n"

    reader = fed(loop, b"b" * 20, limit=10)
    with pytest.raises(ValueError):
        await reader.readline()
    loop.call_soon(reader.feed_data, b"fresh\n")
    assert await reader.readline() == b"fresh\n"


async def test_an_error_set_on_the_reader_is_raised_by_reads(loop: EventLoop) -> None:
    reader = StreamReader(loop=loop)
    waiting = loop.create_task(reader.read(10))
    await netkit.sleep(0)
    reader.set_exception(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError):
        await waiting
    for read in (reader.read(), reader.readexactly(1), reader.readuntil(b"\n"), reader.readline()):
        with pytest.raises(ConnectionResetError):
            await read
    assert isinstance(reader.exception(), ConnectionResetError)


async def test_two_coroutines_cannot_wait_on_one_reader(loop: EventLoop) -> None:
    reader = StreamReader(loop=loop)
    first = loop.create_task(reader.readexactly(2))
    await netkit.sleep(0)
    with pytest.raises(RuntimeError):
        await reader.read(1)
    reader.feed_data(b"ok")
    assert await first == b"ok"


async def test_the_reader_pauses_its_transport_above_the_limit(loop: EventLoop) -> None:
    reader = StreamReader(limit=8, loop=loop)
    transport = RecordingTransport()
    reader.set_transport(transport)
    reader.feed_data(b"12345678")
    assert transport.is_reading()
    reader.feed_data(b"9")
    assert not transport.is_reading()
    assert await reader.read(1) == b"1"  # back at the limit
    assert transport.is_reading()
    reader.feed_data(b"abcdefgh")
    assert not transport.is_reading()
    # A read that needs more than is buffered lets data in again.
    loop.call_soon(reader.feed_data, b"ijklmnop")
    assert await reader.readexactly(24) == b"23456789abcdefghijklmnop"
    assert transport.is_reading()


# ------------------------------------------------------- over real sockets


async def echo_handler(reader: StreamReader, writer: StreamWriter) -> None:
    async for line in reader:
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_open_connection_and_start_server_with_a_coroutine_handler(loop: EventLoop) -> None:
    server = await netkit.start_server(echo_handler, "127.0.0.1", 0)
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    assert writer.get_extra_info("peername") == ("127.0.0.1", port_of(server))
    assert isinstance(writer.get_extra_info("socket"), socket.socket)
    writer.writelines([b"one\n", b"two\n"])
    await writer.drain()
    assert await reader.readline() == b"one\n"
    assert await reader.readline() == b"two\n"
    assert writer.can_write_eof()
    writer.write_eof()
    assert await reader.read() == b""  # the handler's loop ended at our EOF and it closed
    assert reader.at_eof()
    writer.close()
    assert writer.is_closing()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_start_server_with_a_plain_function_handler(loop: EventLoop) -> None:
    def greet(reader: StreamReader, writer: StreamWriter) -> None:
        writer.write(b"welcome\n")
        writer.close()

    server = await netkit.start_server(greet, "127.0.0.1", 0)
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    assert await reader.read() == b"welcome\n"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_a_failing_handler_is_reported_and_its_connection_aborted(loop: EventLoop, errors: Any) -> None:
    async def broken(reader: StreamReader, writer: StreamWriter) -> None:
        await reader.readline()
        raise KeyError("handler bug")

    server = await netkit.start_server(broken, "127.0.0.1", 0)
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    writer.write(b"trigger\n")
    assert await reader.read() == b""
    assert isinstance(errors.exceptions[0], KeyError)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_limit_bounds_the_reader_and_pauses_the_socket(loop: EventLoop) -> None:
    payload = pattern(4 * 1024 * 1024)

    async def send_all(reader: StreamReader, writer: StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()

    server = await netkit.start_server(send_all, "127.0.0.1", 0)
    limit = 64 * 1024
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server), limit=limit)
    transport = writer.transport
    while transport.is_reading():  # the server keeps sending; we do not read
        await netkit.sleep(0)
    # Paused above the limit, by at most one read's worth.
    assert limit < len(reader._buffer) <= limit + 256 * 1024
    for _ in range(10):
        await netkit.sleep(0)
    assert len(reader._buffer) <= limit + 256 * 1024  # it stays paused
    assert await reader.readexactly(len(payload)) == payload
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_an_echo_handler_that_drains_holds_back_a_client_that_never_reads(loop: EventLoop) -> None:
    """A handler that answers with write() and ``await drain()`` is bounded
    against a peer that sends without reading: while it waits in drain() it
    reads nothing, the reader fills to its limit and stops reading the
    socket, and TCP holds the peer back."""
    budget = 16 * 1024 * 1024  # far more than every buffer on the way
    read_size = 64 * 1024
    limit = 64 * 1024
    seen: dict[str, Any] = {}
    settled = netkit.Event()  # the server stopped reading, or the client wrote its budget
    stalled = netkit.Event()  # TCP stopped taking the client's bytes

    async def echo(reader: StreamReader, writer: StreamWriter) -> None:
        transport = writer.transport
        seen["reader"], seen["transport"] = reader, transport
        pause = transport.pause_reading

        def pause_and_tell() -> None:
            pause()
            settled.set()

        transport.pause_reading = pause_and_tell
        try:
            while data := await reader.read(read_size):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the test drops the client at the end

    async def flood(writer: StreamWriter) -> bool:
        high_water = writer.transport.get_write_buffer_limits()[1]
        chunk = pattern(64 * 1024)
        for _ in range(budget // len(chunk)):
            writer.write(chunk)
            if writer.transport.get_write_buffer_size() > high_water:
                stalled.set()
            await writer.drain()
        settled.set()
        return True

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    server = await netkit.start_server(echo, sock=listener, limit=limit)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.connect(("127.0.0.1", port_of(server)))
    reader, writer = await netkit.open_connection(sock=client)
    writer.transport.pause_reading()  # never reads the echoes
    flooding = loop.create_task(flood(writer))
    await settled.wait()
    assert not flooding.done(), "the client wrote its whole budget: the server never stopped reading"
    await stalled.wait()
    transport = seen["transport"]
    assert not transport.is_reading()
    # At most the high-water mark plus one echo, and the limit plus one read.
    assert transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1] + read_size
    assert len(seen["reader"]._buffer) <= limit + 256 * 1024
    flooding.cancel()
    writer.transport.abort()
    server.close()
    await server.wait_closed()


class PausedReader(Recorder):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()


async def test_several_coroutines_wait_in_drain_until_the_peer_reads(loop: EventLoop) -> None:
    handler_state: dict[str, Any] = {}
    started = loop.create_future()

    async def flood(reader: StreamReader, writer: StreamWriter) -> None:
        writer.write(pattern(16 * 1024 * 1024))
        drains = [loop.create_task(writer.drain()) for _ in range(3)]
        handler_state["drains"] = drains
        started.set_result(None)
        await netkit.gather(*drains)
        writer.close()

    server = await netkit.start_server(flood, "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: PausedReader(loop), "127.0.0.1", port_of(server))
    await started
    for _ in range(10):
        await netkit.sleep(0)
    assert not any(task.done() for task in handler_state["drains"])
    transport.resume_reading()
    await netkit.gather(*handler_state["drains"])
    await client.got_eof
    assert len(client.data) == 16 * 1024 * 1024
    await client.lost
    server.close()
    await server.wait_closed()


async def test_drain_raises_the_error_that_ended_the_connection(loop: EventLoop) -> None:
    outcome = loop.create_future()
    flooding = loop.create_future()

    async def flood(reader: StreamReader, writer: StreamWriter) -> None:
        writer.write(pattern(16 * 1024 * 1024))
        flooding.set_result(None)
        try:
            await writer.drain()
        except Exception as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            await writer.drain()  # and again: still the error, not a hang
        writer.close()
        with pytest.raises(OSError):
            await writer.wait_closed()

    server = await netkit.start_server(flood, "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: PausedReader(loop), "127.0.0.1", port_of(server))
    await flooding
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # RST
    exc = await outcome
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
    await client.lost
    server.close()
    await server.wait_closed()


async def test_async_with_closes_the_writer(loop: EventLoop) -> None:
    server = await netkit.start_server(echo_handler, "127.0.0.1", 0)
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    async with writer:
        writer.write(b"bye\n")
        assert await reader.readline() == b"bye\n"
    assert writer.is_closing()
    server.close()
    await server.wait_closed()
