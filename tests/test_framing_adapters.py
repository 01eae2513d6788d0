"""The framing adapters: FramedProtocol on a recording transport and on real
loopback sockets, and read_frame/write_frame over streams.

The socket and stream tests run twice: on netkit's loop with netkit's
streams, and on an asyncio loop with asyncio's.  The adapters only need the
shape of asyncio's transports and streams, which netkit's share, so passing
on asyncio too shows that a netkit protocol runs there unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import netkit
import netkit.testing
from netkit.framing import (
    DelimitedFramer,
    FramedProtocol,
    LengthPrefixFramer,
    read_frame,
    write_frame,
    write_frames,
)

TEST_BOUND = 10  # seconds; a hung socket test fails instead of hanging the run


@dataclass(frozen=True)
class Runtime:
    """The few coroutine-API names these tests use, from netkit or from asyncio."""

    name: str
    run: Callable[..., Any]
    wait_for: Callable[..., Any]
    gather: Callable[..., Any]
    sleep: Callable[..., Any]
    get_running_loop: Callable[[], Any]
    open_connection: Callable[..., Any]
    start_server: Callable[..., Any]
    stream_reader: Callable[[], Any]
    event: Callable[[], Any]

    def run_bounded(self, coro):
        """Run ``coro`` to completion on a new loop, failing it after TEST_BOUND seconds."""
        return self.run(self.wait_for(coro, TEST_BOUND))


NETKIT = Runtime(
    "netkit", netkit.run, netkit.wait_for, netkit.gather, netkit.sleep, netkit.get_running_loop,
    netkit.open_connection, netkit.start_server, netkit.StreamReader, netkit.Event,
)
ASYNCIO = Runtime(
    "asyncio", asyncio.run, asyncio.wait_for, asyncio.gather, asyncio.sleep, asyncio.get_running_loop,
    asyncio.open_connection, asyncio.start_server, asyncio.StreamReader, asyncio.Event,
)


@pytest.fixture(params=[NETKIT, ASYNCIO], ids=lambda runtime: runtime.name)
def runtime(request) -> Runtime:
    return request.param


class RecordingTransport:
    """A transport that records what is written to it, for deterministic tests."""

    def __init__(self, peer=("127.0.0.1", 40000)):
        self.peer = peer
        self.writes: list[object] = []
        self.closed = False

    def write(self, data):
        self.writes.append(bytes(data))

    def writelines(self, parts):
        self.writes.append(list(parts))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def get_extra_info(self, name, default=None):
        return self.peer if name == "peername" else default


class Recorder(FramedProtocol):
    """Records each batch and each frame; ``actions`` maps a frame to what to do on it."""

    def __init__(self, framer=None, actions=None):
        super().__init__(framer)
        self.batches: list[list[bytes]] = []
        self.frames: list[bytes] = []
        self.errors: list[BaseException] = []
        self.actions = actions or {}

    def frames_received(self, frames):
        self.batches.append(list(frames))
        super().frames_received(frames)

    def frame_received(self, frame):
        self.frames.append(frame)
        action = self.actions.get(frame)
        if action is not None:
            action(self)


def connected(protocol):
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def encode(*payloads, framer=None):
    return (framer or LengthPrefixFramer()).encode_many(payloads)


# -- FramedProtocol on a recording transport -------------------------------------------


def test_frames_of_one_read_arrive_as_one_batch_in_order():
    protocol, _ = connected(Recorder())
    assert isinstance(protocol, netkit.Protocol)
    data = encode(b"one", b"", b"three", b"four")
    protocol.data_received(data[:9])
    protocol.data_received(data[9:])
    assert protocol.frames == [b"one", b"", b"three", b"four"]
    assert protocol.batches == [[b"one"], [b"", b"three", b"four"]]
    assert protocol.eof_received() is None


def test_delivery_stops_when_a_handler_closes_the_transport():
    protocol, transport = connected(Recorder(actions={b"quit": lambda p: p.transport.close()}))
    protocol.data_received(encode(b"a", b"quit", b"never", b"delivered"))
    assert protocol.frames == [b"a", b"quit"]
    assert transport.closed


def test_data_received_from_inside_a_handler_is_queued_behind_the_batch():
    late = encode(b"late")

    def inject(protocol):
        protocol.data_received(late)

    protocol, _ = connected(Recorder(actions={b"inject": inject}))
    protocol.data_received(encode(b"a", b"inject", b"b"))
    assert protocol.frames == [b"a", b"inject", b"b", b"late"]
    assert protocol.batches == [[b"a", b"inject", b"b"], [b"late"]]
    protocol.data_received(encode(b"next"))
    assert protocol.frames[-1] == b"next"


def test_oversize_frame_delivers_earlier_frames_then_logs_once_and_closes(caplog):
    protocol, transport = connected(Recorder(LengthPrefixFramer(max_frame_size=100)))
    with caplog.at_level(logging.WARNING, logger="netkit"):
        protocol.data_received(encode(b"a", b"b") + (101).to_bytes(4, "big"))
        protocol.data_received(b"x" * 1000 + encode(b"ignored"))
    assert protocol.frames == [b"a", b"b"]
    assert transport.closed
    assert protocol.framer.buffered_size == 0
    [record] = [r for r in caplog.records if r.name == "netkit"]
    assert record.levelno == logging.WARNING
    assert "127.0.0.1" in record.getMessage() and "max_frame_size=100" in record.getMessage()


def test_the_warning_for_an_overlong_line_gives_that_lines_size(caplog):
    protocol, transport = connected(Recorder(DelimitedFramer(b"\n", max_frame_size=10)))
    with caplog.at_level(logging.WARNING, logger="netkit"):
        protocol.data_received(b"ok\n" + b"x" * 5)
        # The rest of the long line, its end, and a line after it, in one read.
        protocol.data_received(b"x" * 15 + b"\nnext\n")
    assert protocol.frames == [b"ok"]
    assert transport.closed
    [record] = [r for r in caplog.records if r.name == "netkit"]
    # The line's 20 bytes: not the 26 that arrived since it began, and not the limit.
    assert "frame of 20 bytes exceeds max_frame_size=10 (local)" in record.getMessage()


def test_framing_error_is_a_policy_hook():
    class Lenient(Recorder):
        def framing_error(self, exc):
            self.errors.append(exc)

    protocol, transport = connected(Lenient(LengthPrefixFramer("varint")))
    protocol.data_received(b"\x01A" + b"\xff" * 11)
    protocol.data_received(b"\x01B")
    assert protocol.frames == [b"A"]
    [error] = protocol.errors
    assert isinstance(error, netkit.ProtocolError) and not transport.closed


def test_a_framing_error_inside_a_handler_waits_for_the_batch():
    class Lenient(Recorder):
        def framing_error(self, exc):
            self.errors.append((exc, list(self.frames)))

    def inject_bad(protocol):
        protocol.data_received(encode(b"c") + b"\xff\xff\xff\xff")

    protocol, _ = connected(Lenient(actions={b"inject": inject_bad}))
    protocol.data_received(encode(b"a", b"inject", b"b"))
    [(error, seen)] = protocol.errors
    assert isinstance(error, netkit.FrameTooLarge)
    assert seen == [b"a", b"inject", b"b", b"c"]


def test_eof_inside_a_frame_is_a_framing_error(caplog):
    protocol, transport = connected(Recorder())
    protocol.data_received(encode(b"whole") + (10).to_bytes(4, "big") + b"half")
    with caplog.at_level(logging.WARNING, logger="netkit"):
        assert protocol.eof_received() is None
    assert transport.closed
    assert "4 bytes read on a total of 10" in caplog.text
    clean, transport = connected(Recorder())
    clean.data_received(encode(b"whole"))
    assert clean.eof_received() is None and not transport.closed


def test_an_exception_in_a_handler_propagates_and_leaves_the_protocol_sane():
    def boom(protocol):
        protocol.data_received(encode(b"queued"))
        raise RuntimeError("handler bug")

    protocol, _ = connected(Recorder(actions={b"boom": boom}))
    with pytest.raises(RuntimeError):
        protocol.data_received(encode(b"boom", b"dropped"))
    protocol.data_received(encode(b"after"))
    assert protocol.frames == [b"boom", b"after"]


def test_send_frame_copies_small_payloads_and_not_large_ones():
    protocol, transport = connected(FramedProtocol())
    protocol.send_frame(b"hi")
    large = bytes(1024 * 1024)
    protocol.send_frame(large)
    protocol.send_frames([b"a", b"bc"])
    small, (header, body), batch = transport.writes
    assert small == b"\0\0\0\x02hi"
    assert header == (1024 * 1024).to_bytes(4, "big") and body is large
    assert batch == b"\0\0\0\x01a\0\0\0\x02bc"


def test_framed_protocol_with_a_delimited_framer():
    framer = DelimitedFramer(b"\r\n", max_frame_size=8)
    protocol, transport = connected(Recorder(framer))
    protocol.data_received(b"HELLO\r")
    protocol.data_received(b"\nBYE\r\nTOO LONG A LINE")
    assert protocol.frames == [b"HELLO", b"BYE"]
    assert transport.closed
    protocol.send_frame(b"OK")
    assert transport.writes == [b"OK\r\n"]


# -- FramedProtocol: replies that pile up stop reading ---------------------------------
#
# On netkit.testing's RecordingTransport, the test says how full the write
# buffer is (pause_writing/resume_writing follow the water marks) and sees
# whether the protocol still reads.


def on_testing_transport(protocol):
    transport = netkit.testing.RecordingTransport(protocol)
    return protocol, transport


def test_replies_that_fill_the_write_buffer_stop_reading_until_it_drains():
    protocol, transport = on_testing_transport(EchoProtocol(batched=True))
    transport.feed(encode(b"one"))
    assert transport.written == encode(b"one")
    transport.set_write_buffer_size(64 * 1024 + 1)  # the peer is not reading its echoes
    transport.feed(encode(b"two", b"three"))
    # The echoes of that read are written, and the peer is read no more...
    assert transport.written == encode(b"one", b"two", b"three")
    assert not transport.is_reading()
    transport.feed(encode(b"four"))  # ...so this stays in the kernel, as far as we know
    assert transport.written == encode(b"one", b"two", b"three")
    # ...until the buffer drains.
    transport.set_write_buffer_size(0)
    assert transport.is_reading()
    assert transport.written == encode(b"one", b"two", b"three", b"four")


def test_replies_sent_one_by_one_that_cross_the_high_water_mark_stop_reading():
    class Filling(EchoProtocol):
        def frame_received(self, frame):
            super().frame_received(frame)
            transport.set_write_buffer_size(64 * 1024 + 1)  # that reply filled the buffer

    protocol, transport = on_testing_transport(Filling(batched=False))
    transport.feed(encode(b"a", b"b"))
    assert transport.written == encode(b"a", b"b")  # the rest of the batch is delivered
    assert not transport.is_reading()
    transport.set_write_buffer_size(0)
    assert transport.is_reading()


def test_a_full_buffer_of_the_protocols_own_sending_does_not_stop_reading():
    received = []

    class Uploader(FramedProtocol):
        def frame_received(self, frame):
            received.append(frame)  # no reply: these are answers to what it sends

    protocol, transport = on_testing_transport(Uploader())
    protocol.send_frame(b"x" * 1000)
    transport.set_write_buffer_size(64 * 1024 + 1)
    transport.feed(encode(b"ack"))
    assert received == [b"ack"]
    assert transport.is_reading()


def test_replies_pile_up_is_a_policy_hook():
    calls = []

    class Careless(EchoProtocol):
        def replies_pile_up(self):
            calls.append(self.transport.get_write_buffer_size())  # and keep reading

    protocol, transport = on_testing_transport(Careless(batched=True))
    transport.set_write_buffer_size(64 * 1024 + 1)
    transport.feed(encode(b"one"))
    transport.feed(encode(b"two"))
    assert calls == [64 * 1024 + 1]  # once until the buffer drains
    assert transport.is_reading()
    transport.set_write_buffer_size(0)
    assert transport.is_reading()
    transport.set_write_buffer_size(64 * 1024 + 2)
    transport.feed(encode(b"three"))
    assert calls == [64 * 1024 + 1, 64 * 1024 + 2]


class PauseWatch:
    """Records when a transport is told to stop reading, and how full its
    write buffer and how large the protocol's largest read were then."""

    def __init__(self, transport, event):
        self.transport = transport
        self.event = event
        self.write_buffer_at_pause = None
        pause = transport.pause_reading

        def pause_and_tell():
            pause()
            if self.write_buffer_at_pause is None:
                self.write_buffer_at_pause = transport.get_write_buffer_size()
            event.set()

        transport.pause_reading = pause_and_tell


def small_buffer_socket(listening: bool) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    if listening:
        sock.bind(("127.0.0.1", 0))
    return sock


def test_a_client_that_sends_and_never_reads_its_echoes_is_held_back(runtime):
    """A peer that floods an echo server and never reads: the server stops
    reading it, so TCP holds it back, and the server buffers at most its
    high-water mark plus the echoes of one read."""
    budget = 16 * 1024 * 1024  # far more than every buffer on the way
    batch = encode(*[bytes(1000)] * 64)
    watches = []
    outcome = {"finished": False, "written": 0}

    async def main():
        settled = runtime.event()  # the server paused reading, or the client wrote its budget
        stalled = runtime.event()  # TCP stopped taking the client's bytes

        class WatchedEcho(EchoProtocol):
            def connection_made(self, transport):
                super().connection_made(transport)
                watches.append(PauseWatch(transport, settled))

        async def flood(writer):
            high_water = writer.transport.get_write_buffer_limits()[1]
            while outcome["written"] < budget:
                writer.write(batch)
                outcome["written"] += len(batch)
                if writer.transport.get_write_buffer_size() > high_water:
                    stalled.set()
                await writer.drain()
            outcome["finished"] = True
            settled.set()

        loop = runtime.get_running_loop()
        server = await loop.create_server(lambda: WatchedEcho(batched=True), sock=small_buffer_socket(listening=True))
        client = small_buffer_socket(listening=False)
        client.connect(server.sockets[0].getsockname())
        reader, writer = await runtime.open_connection(sock=client)
        flooding = loop.create_task(flood(writer))
        try:
            await settled.wait()
            if not outcome["finished"]:
                await stalled.wait()
                outcome["server_reading"] = watches[0].transport.is_reading()
        finally:
            flooding.cancel()
            writer.transport.abort()
            server.close()
            await server.wait_closed()

    runtime.run_bounded(main())
    assert not outcome["finished"], "the client wrote its whole budget: the server never stopped reading"
    [watch] = watches
    # The echoes of the read that filled the buffer are there too (a read is
    # at most 256 KiB on either loop).
    assert watch.write_buffer_at_pause <= 64 * 1024 + 256 * 1024
    assert outcome["server_reading"] is False
    assert outcome["written"] < budget // 4


# -- FramedProtocol over real sockets --------------------------------------------------


class EchoProtocol(FramedProtocol):
    """Echoes each frame back whole: the batching way or one write per frame."""

    def __init__(self, batched: bool, framer=None):
        super().__init__(framer)
        self.batched = batched

    def frames_received(self, frames):
        if self.batched:
            self.send_frames(frames)
        else:
            super().frames_received(frames)

    def frame_received(self, frame):
        self.send_frame(frame)


async def send_in_random_chunks(runtime: Runtime, writer, data: bytes, rng: random.Random) -> None:
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 3, 5, 64, 1000, 8000])
        writer.write(data[pos : pos + step])
        pos += step
        await writer.drain()
        await runtime.sleep(0)  # let the server read, so pieces tend to arrive apart


async def echo_client(runtime: Runtime, port: int, seed: int, midway: Any) -> list[bytes]:
    """Send frames in random chunks, pausing halfway (in the middle of a frame)
    until the event ``midway`` is set; return what came back, up to the
    server's EOF."""
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.choice([0, 1, 7, 64, 255, 256, 3000, 70000])) for _ in range(12)]
    framer = LengthPrefixFramer()
    reader, writer = await runtime.open_connection("127.0.0.1", port)
    received: list[bytes] = []

    async def receive():
        while len(received) < len(payloads):
            frame = await read_frame(reader, framer)
            assert frame is not None, "server closed early"
            received.append(frame)

    async def send():
        wire = framer.encode_many(payloads)
        half = len(wire) // 2
        await send_in_random_chunks(runtime, writer, wire[:half], rng)
        await midway.wait()
        await send_in_random_chunks(runtime, writer, wire[half:], rng)

    try:
        await runtime.gather(send(), receive())
        writer.write_eof()
        assert await read_frame(reader, framer) is None  # the server closes after our EOF
    finally:
        writer.close()
        await writer.wait_closed()
    assert received == payloads
    return received


async def hostile_client(runtime: Runtime, port: int, disconnected: Any) -> bytes:
    """Announce a 4 GiB frame and stream its body until disconnected, then set
    the event ``disconnected``; return what the server echoed before that."""
    try:
        reader, writer = await runtime.open_connection("127.0.0.1", port)
        framer = LengthPrefixFramer()
        write_frame(writer, framer, b"first")
        echoed = await read_frame(reader, framer)
        try:
            writer.write((2**32 - 1).to_bytes(4, "big"))
            chunk = bytes(64 * 1024)
            for _ in range(64):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        try:
            assert await reader.read() == b""
        except ConnectionError:
            pass  # a reset is a disconnection too
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
        return echoed
    finally:
        disconnected.set()  # even on failure, so that the other clients finish


@pytest.mark.parametrize("batched", [True, False], ids=["send_frames", "send_frame"])
def test_echo_over_sockets_with_100_clients_and_a_hostile_one(runtime, batched, caplog):
    protocols: list[EchoProtocol] = []

    def factory():
        protocol = EchoProtocol(batched)
        protocols.append(protocol)
        return protocol

    async def main():
        server = await runtime.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # The 100 clients send half their bytes, wait until the hostile client
        # is disconnected, then send the rest: the server must drop one
        # connection while the others are in the middle of a frame.
        hostile_gone = runtime.event()
        try:
            return await runtime.gather(
                hostile_client(runtime, port, hostile_gone),
                *(echo_client(runtime, port, seed, hostile_gone) for seed in range(100)),
            )
        finally:
            server.close()
            await server.wait_closed()

    with caplog.at_level(logging.WARNING, logger="netkit"):
        first, *echoed = runtime.run_bounded(main())
    assert first == b"first"
    assert len(echoed) == 100 and all(len(frames) == 12 for frames in echoed)
    [hostile] = [p for p in protocols if p.framer.error is not None]
    assert isinstance(hostile.framer.error, netkit.FrameTooLarge)
    assert hostile.framer.buffered_size == 0
    warnings = [r for r in caplog.records if r.name == "netkit"]
    assert len(warnings) == 1 and "max_frame_size=16777216" in warnings[0].getMessage()


# -- read_frame and write_frame ----------------------------------------------------------


def test_read_frame_returns_frames_in_order_then_none_at_a_clean_eof(runtime):
    async def main():
        reader = runtime.stream_reader()
        framer = LengthPrefixFramer("varint")
        reader.feed_data(framer.encode_many([b"a", b"", b"c" * 300]))
        reader.feed_data(framer.encode(b"d")[:1])
        frames = [await read_frame(reader, framer) for _ in range(3)]
        reader.feed_data(framer.encode(b"d")[1:])
        reader.feed_eof()
        frames.append(await read_frame(reader, framer))
        return frames, await read_frame(reader, framer), await read_frame(reader, framer)

    frames, end, again = runtime.run_bounded(main())
    assert frames == [b"a", b"", b"c" * 300, b"d"]
    assert end is None and again is None


@pytest.mark.parametrize("tail,expected", [(b"\0\0", 4), (b"\0\0\0\x09body", 9)])
def test_read_frame_raises_incomplete_read_error_at_eof_inside_a_frame(runtime, tail, expected):
    async def main():
        reader = runtime.stream_reader()
        framer = LengthPrefixFramer()
        reader.feed_data(framer.encode(b"ok") + tail)
        reader.feed_eof()
        assert await read_frame(reader, framer) == b"ok"
        await read_frame(reader, framer)

    with pytest.raises(netkit.IncompleteReadError) as caught:
        runtime.run_bounded(main())
    assert caught.value.expected == expected


def test_read_frame_refuses_an_oversize_header_without_waiting_for_the_body(runtime):
    async def main():
        reader = runtime.stream_reader()
        framer = LengthPrefixFramer(max_frame_size=1000)
        # Good frames, then a header announcing more than the limit, and no
        # body at all: read_frame must not wait for one.
        reader.feed_data(framer.encode_many([b"a", b"b"]) + (1001).to_bytes(4, "big"))
        got = [await read_frame(reader, framer), await read_frame(reader, framer)]
        for _ in range(2):
            with pytest.raises(netkit.FrameTooLarge):
                await read_frame(reader, framer)
        return got

    assert runtime.run_bounded(main()) == [b"a", b"b"]


def test_write_frame_copies_small_payloads_and_not_large_ones():
    writer = RecordingTransport()
    framer = LengthPrefixFramer("!H")
    large = bytes(60000)
    write_frame(writer, framer, b"x")
    write_frame(writer, framer, large)
    write_frames(writer, framer, [b"y", b"zz"])
    small, (header, body), batch = writer.writes
    assert small == b"\0\x01x" and header == (60000).to_bytes(2, "big") and body is large
    assert batch == b"\0\x01y\0\x02zz"


@pytest.mark.parametrize("framer_factory", [LengthPrefixFramer, lambda: DelimitedFramer(b"\r\n")],
                         ids=["length-prefix", "delimited"])
def test_streams_echo_over_sockets(runtime, framer_factory):
    async def handle(reader, writer):
        framer = framer_factory()
        while (frame := await read_frame(reader, framer)) is not None:
            write_frame(writer, framer, frame[::-1])
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await runtime.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await runtime.open_connection("127.0.0.1", port)
        framer = framer_factory()
        payloads = [b"hello", b"", b"world" * 5000, b"!"]
        write_frames(writer, framer, payloads)
        await writer.drain()
        replies = [await read_frame(reader, framer) for _ in payloads]
        writer.write_eof()
        end = await read_frame(reader, framer)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return payloads, replies, end

    payloads, replies, end = runtime.run_bounded(main())
    assert replies == [p[::-1] for p in payloads] and end is None


# What a server sends before closing, for the EOF tests: whole frames, then
# possibly the start of one more.
WHOLE_FRAMES = [b"first", b"", b"x" * 100_000]


@pytest.mark.parametrize(
    "tail,expected,partial",
    [
        (b"", None, None),  # closes between frames: a clean end
        (b"\0\0", 4, b"\0\0"),  # closes inside a header
        (b"\0\0\0\x0abody", 10, b"body"),  # closes inside a body
    ],
    ids=["between-frames", "mid-header", "mid-body"],
)
def test_read_frame_over_sockets_tells_a_clean_eof_from_a_cut_frame(runtime, tail, expected, partial):
    async def handle(reader, writer):
        write_frames(writer, LengthPrefixFramer(), WHOLE_FRAMES)
        writer.write(tail)
        await writer.drain()
        writer.close()  # what was written is flushed first
        await writer.wait_closed()

    async def main():
        server = await runtime.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await runtime.open_connection("127.0.0.1", port)
        framer = LengthPrefixFramer()
        try:
            frames = [await read_frame(reader, framer) for _ in WHOLE_FRAMES]
            try:
                outcome: object = await read_frame(reader, framer)
            except netkit.IncompleteReadError as exc:
                outcome = exc
        finally:
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
        return frames, outcome

    frames, outcome = runtime.run_bounded(main())
    assert frames == WHOLE_FRAMES
    if expected is None:
        assert outcome is None
    else:
        assert isinstance(outcome, netkit.IncompleteReadError)
        assert (outcome.expected, outcome.partial) == (expected, partial)
