"""StreamTransport over real TCP loopback sockets: echo, flow control,
half-close, close/abort, errors."""

from __future__ import annotations

import array
import logging
import resource
import select
import socket
import struct
import threading
from typing import Any

import pytest

import netkit
from netkit import EventLoop
from netkit.transports.stream import DEFAULT_HIGH_WATER

from transport_helpers import Echo, Recorder, has_ipv6_loopback, pattern, port_of, raise_fd_limit

MiB = 1024 * 1024


async def echo_server(loop: EventLoop, host: str = "127.0.0.1") -> Any:
    return await loop.create_server(Echo, host, 0)


async def connect(loop: EventLoop, server: Any, **kwargs: Any) -> tuple[Any, Recorder]:
    host = server.sockets[0].getsockname()[0]
    return await loop.create_connection(lambda: Recorder(loop, **kwargs), host, port_of(server))


async def closed_server(server: Any) -> None:
    server.close()
    await server.wait_closed()


# ------------------------------------------------------------------- echo


@pytest.mark.parametrize("size", [1, 100, 65536, 1_000_001, 32 * MiB])
async def test_echo_of_every_size_arrives_intact(loop: EventLoop, size: int) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    payload = pattern(size, seed=size)
    transport.write(payload)
    transport.write_eof()  # the echo server closes once it has answered everything
    await client.got_eof
    assert len(client.data) == size
    assert client.data == payload
    assert await client.lost is None
    assert client.lost_calls == [None]
    await closed_server(server)


async def test_thousand_concurrent_clients_each_get_their_own_data(loop: EventLoop) -> None:
    clients = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_fd_limit(2 * clients + 256)
    try:
        # A backlog as large as the crowd: a full accept queue drops SYNs and
        # the kernel retries only after a second.
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=clients)
        port = port_of(server)

        async def one_client(index: int) -> bytes:
            reader, writer = await netkit.open_connection("127.0.0.1", port)
            payload = struct.pack("!I", index) + pattern(1000 + index % 3000, seed=index)
            half = len(payload) // 2
            writer.write(payload[:half])
            await writer.drain()
            writer.write(payload[half:])
            echoed = await reader.readexactly(len(payload))
            writer.close()
            await writer.wait_closed()
            assert echoed == payload, f"client {index} got someone else's bytes"
            return echoed

        results = await netkit.gather(*(one_client(i) for i in range(clients)))
        assert len(results) == clients
        assert {struct.unpack("!I", r[:4])[0] for r in results} == set(range(clients))
        await closed_server(server)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_ipv6_loopback_echo(loop: EventLoop) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = await echo_server(loop, "::1")
    assert server.sockets[0].family == socket.AF_INET6
    transport, client = await connect(loop, server)
    assert transport.get_extra_info("peername")[0] == "::1"
    transport.write(b"over IPv6")
    transport.write_eof()
    await client.got_eof
    assert client.data == b"over IPv6"
    await client.lost
    await closed_server(server)


# ---------------------------------------------------------- flow control


class Producer(netkit.Protocol):
    """Writes a repeating pattern in 16 KiB chunks while the transport lets it.

    Before the first ``pause_writing`` it writes without an end (the peer does
    not read, so the kernel's buffers must fill); after that it writes
    ``after_pause`` more bytes, then half-closes.
    """

    CHUNK = 16 * 1024
    BLOCK = pattern(1024 * 1024, seed=99)  # a multiple of CHUNK

    def __init__(self, loop: EventLoop, after_pause: int, use_writelines: bool = False) -> None:
        self.loop = loop
        self.after_pause = after_pause
        self.use_writelines = use_writelines
        self.sent = 0
        self.paused = False
        self.target: int | None = None
        self.buffer_at_pause: int | None = None
        self.writes_while_paused = 0
        self.first_pause: netkit.Future[int] = loop.create_future()
        self.done: netkit.Future[int] = loop.create_future()
        self.lost: netkit.Future[BaseException | None] = loop.create_future()
        self.lost_calls = 0
        self.pauses = 0
        self.resumes = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pump()

    def chunk(self) -> bytes:
        offset = self.sent % len(self.BLOCK)
        return self.BLOCK[offset : offset + self.CHUNK]

    def pump(self) -> None:
        while not self.paused:
            if self.target is not None and self.sent >= self.target:
                self.transport.write_eof()
                self.done.set_result(self.sent)
                return
            assert self.sent < 512 * MiB, "the transport never paused the writer"
            data = self.chunk()
            self.sent += len(data)
            if self.use_writelines:
                self.transport.writelines([data[:100], memoryview(data)[100:5000], bytearray(data[5000:])])
            else:
                self.transport.write(data)

    def pause_writing(self) -> None:
        assert not self.paused, "pause_writing twice without resume_writing"
        self.paused = True
        self.pauses += 1
        if not self.first_pause.done():
            self.buffer_at_pause = self.transport.get_write_buffer_size()
            self.target = self.sent + self.after_pause
            self.first_pause.set_result(self.sent)

    def resume_writing(self) -> None:
        assert self.paused, "resume_writing without pause_writing"
        high = self.transport.get_write_buffer_limits()[0]
        assert self.transport.get_write_buffer_size() <= high
        self.paused = False
        self.resumes += 1
        self.loop.call_soon(self.pump)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)


class PausedReader(Recorder):
    """A client that does not read until told to."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()


@pytest.mark.parametrize("use_writelines", [False, True], ids=["write", "writelines"])
async def test_slow_reader_pauses_the_writer_at_the_high_water_mark(loop: EventLoop, use_writelines: bool) -> None:
    producers: list[Producer] = []

    def factory() -> Producer:
        producers.append(Producer(loop, after_pause=4 * MiB, use_writelines=use_writelines))
        return producers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: PausedReader(loop), "127.0.0.1", port_of(server))
    await netkit.wait_for(_first_producer(producers), 5)
    producer = producers[0]
    sent_at_pause = await producer.first_pause
    # The buffer stopped at the high-water mark: one chunk past it at most,
    # whichever entry point (write or writelines) filled it.
    assert DEFAULT_HIGH_WATER < producer.buffer_at_pause <= DEFAULT_HIGH_WATER + Producer.CHUNK
    assert producer.transport.get_write_buffer_size() <= DEFAULT_HIGH_WATER + Producer.CHUNK
    assert client.data == b"", "a paused reader received data"
    assert sent_at_pause > DEFAULT_HIGH_WATER
    transport.resume_reading()
    total = await producer.done
    await client.got_eof
    expected = (Producer.BLOCK * (total // len(Producer.BLOCK) + 1))[:total]
    assert len(client.data) == total
    assert client.data == expected
    assert producer.resumes >= 1
    assert producer.pauses == producer.resumes  # every pause was followed by a resume
    assert await client.lost is None
    assert await producer.lost is None
    assert producer.lost_calls == 1
    await closed_server(server)


async def _first_producer(producers: list[Producer]) -> None:
    while not producers:
        await netkit.sleep(0)


def _wait_readable(sock: socket.socket) -> None:
    # Bounded wait for the kernel to have bytes for this socket: an event, not a guess.
    readable, _, _ = select.select([sock], [], [], 5.0)
    assert readable, "the peer's bytes never reached the socket"


async def test_pause_reading_really_stops_delivery(loop: EventLoop) -> None:
    server_side: list[Recorder] = []
    server = await loop.create_server(lambda: server_side.append(Recorder(loop)) or server_side[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    while not server_side:
        await netkit.sleep(0)
    peer = server_side[0]
    await peer.made
    peer.transport.write(b"first")
    await client.wait_bytes(5)
    assert transport.is_reading()
    transport.pause_reading()
    assert not transport.is_reading()
    peer.transport.write(b"second")
    _wait_readable(transport.get_extra_info("socket"))
    for _ in range(20):  # twenty loop iterations with the socket readable
        await netkit.sleep(0)
    assert client.data == b"first", "data arrived while reading was paused"
    transport.resume_reading()
    assert transport.is_reading()
    await client.wait_bytes(11)
    assert client.data == b"firstsecond"
    transport.close()
    await client.lost
    await peer.lost
    await closed_server(server)


async def test_pause_reading_inside_connection_made_holds_back_the_first_bytes(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: PausedReader(loop), "127.0.0.1", port_of(server))
    assert not transport.is_reading()
    await _eventually(peers, "made")
    peers[0].transport.write(b"ping")
    _wait_readable(transport.get_extra_info("socket"))
    for _ in range(10):
        await netkit.sleep(0)
    assert client.data == b""
    transport.resume_reading()
    await client.wait_bytes(4)
    transport.close()
    await client.lost
    await peers[0].lost
    await closed_server(server)


# ------------------------------------------------------------ half-close


class Answerer(Recorder):
    """Reads a whole request up to the peer's EOF, then sends the answer and closes."""

    def __init__(self, loop: EventLoop, answer: bytes) -> None:
        super().__init__(loop, keep_open=True)
        self.answer = answer

    def eof_received(self) -> bool:
        super().eof_received()
        assert self.transport.is_closing() is False
        self.transport.write(self.answer)
        self.transport.close()
        return True


async def test_client_half_close_still_reads_the_whole_answer(loop: EventLoop) -> None:
    request = pattern(16 * MiB, seed=1)
    answer = pattern(5 * MiB, seed=2)
    servers: list[Answerer] = []
    server = await loop.create_server(lambda: servers.append(Answerer(loop, answer)) or servers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    transport.write(request)
    assert transport.get_write_buffer_size() > 0  # write_eof must flush this first
    assert transport.can_write_eof()
    transport.write_eof()
    with pytest.raises(RuntimeError):
        transport.write(b"after write_eof")
    assert not transport.is_closing()
    await client.got_eof
    assert client.data == answer
    peer = servers[0]
    assert peer.data == request
    data_events = [e for e in peer.events if e in ("made", "data", "eof", "lost")]
    assert data_events == ["made", "data", "eof", "lost"]
    assert await client.lost is None
    assert await peer.lost is None
    assert client.lost_calls == [None] and peer.lost_calls == [None]
    await closed_server(server)


class Greeter(Recorder):
    """Sends a greeting and half-closes at once; keeps reading the answer."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.write(b"hello, then EOF")
        transport.write_eof()


class ReplyAfterEof(Recorder):
    """On the peer's EOF, answers what it read and closes."""

    def eof_received(self) -> bool:
        super().eof_received()
        self.transport.write(b"reply to: " + bytes(self.data))
        self.transport.close()
        return True


async def test_server_half_close_lets_the_client_answer(loop: EventLoop) -> None:
    greeters: list[Greeter] = []
    server = await loop.create_server(lambda: greeters.append(Greeter(loop, keep_open=True)) or greeters[-1], "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: ReplyAfterEof(loop), "127.0.0.1", port_of(server))
    await client.got_eof
    assert client.data == b"hello, then EOF"
    greeter = greeters[0]
    await greeter.got_eof
    assert greeter.data == b"reply to: hello, then EOF"
    # Both directions are shut: the greeter's transport closed itself.
    assert await greeter.lost is None
    assert await client.lost is None
    assert greeter.lost_calls == [None] and client.lost_calls == [None]
    await closed_server(server)


async def test_eof_received_returning_false_closes_the_transport(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop, keep_open=False)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server, keep_open=True)
    transport.write(b"bye")
    transport.write_eof()
    peer_lost = await _eventually(peers, "lost")
    assert peer_lost is None
    assert peers[0].data == b"bye"
    await client.got_eof  # the peer's close reached us as EOF
    assert await client.lost is None  # and with both sides shut we closed too
    await closed_server(server)


async def _eventually(recorders: list[Recorder], attribute: str) -> Any:
    while not recorders:
        await netkit.sleep(0)
    return await getattr(recorders[0], attribute)


# ------------------------------------------------------- close and abort


async def test_close_flushes_the_write_buffer_first(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    payload = pattern(16 * MiB, seed=3)
    transport.write(payload)
    assert transport.get_write_buffer_size() > 0
    transport.close()
    assert transport.is_closing()
    assert await client.lost is None
    assert transport.get_write_buffer_size() == 0
    await _eventually(peers, "got_eof")
    assert peers[0].data == payload
    await peers[0].lost
    await closed_server(server)


async def test_abort_drops_the_buffer_and_closes_at_once(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    transport.write(pattern(16 * MiB))
    assert transport.get_write_buffer_size() > 0
    transport.abort()
    assert transport.get_write_buffer_size() == 0
    assert transport.is_closing()
    assert await client.lost is None
    await _eventually(peers, "lost")
    assert len(peers[0].data) < 16 * MiB
    assert client.lost_calls == [None]
    await closed_server(server)


async def test_write_after_close_is_a_warned_no_op(loop: EventLoop, caplog: pytest.LogCaptureFixture) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    transport.close()
    with caplog.at_level(logging.WARNING, logger="netkit"):
        transport.write(b"too late")
        transport.writelines([b"also", b"late"])
        transport.write(b"once more")
    assert await client.lost is None
    transport.write(b"after connection_lost")
    transport.close()
    transport.abort()
    assert client.lost_calls == [None]
    warnings = [r for r in caplog.records if r.name == "netkit" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning per transport, not one per call
    assert "closing or closed" in warnings[0].getMessage()
    await closed_server(server)


async def test_connection_lost_is_called_once_whatever_closes_it(loop: EventLoop) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    transport.write(pattern(8 * MiB))
    transport.close()
    transport.abort()
    transport.close()
    await client.lost
    for _ in range(5):
        await netkit.sleep(0)
    assert client.lost_calls == [None]
    await closed_server(server)


# ------------------------------------------------------------ peer errors


def _reset_on_close(sock: socket.socket) -> None:
    # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_peer_reset_mid_write_reports_the_error_once(loop: EventLoop) -> None:
    producers: list[Producer] = []
    server = await loop.create_server(lambda: producers.append(Producer(loop, after_pause=MiB)) or producers[-1], "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: PausedReader(loop), "127.0.0.1", port_of(server))
    await netkit.wait_for(_first_producer(producers), 5)
    producer = producers[0]
    await producer.first_pause  # the server has bytes buffered: it is mid-write
    assert producer.transport.get_write_buffer_size() > 0
    _reset_on_close(transport.get_extra_info("socket"))
    transport.abort()
    exc = await producer.lost
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
    for _ in range(5):
        await netkit.sleep(0)
    assert producer.lost_calls == 1
    assert producer.transport.get_write_buffer_size() == 0
    assert producer.transport.is_closing()
    await client.lost
    await closed_server(server)


async def test_peer_reset_while_reading_reports_connection_reset(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    raw = socket.create_connection(("127.0.0.1", port_of(server)))
    try:
        await _eventually(peers, "made")
        _reset_on_close(raw)
    finally:
        raw.close()
    exc = await peers[0].lost
    assert isinstance(exc, ConnectionResetError)
    assert peers[0].lost_calls == [exc]
    await closed_server(server)


async def test_connecting_to_a_closed_port_is_refused(loop: EventLoop) -> None:
    # A socket bound but not listening: nobody can take the port meanwhile.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert str(port) in str(info.value)


async def test_connect_errors_name_every_address_tried(loop: EventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.2", 0))
        addresses = [first.getsockname(), second.getsockname()]
        calls: list[int] = []

        def fake_getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
            calls.append(threading.get_ident())
            assert host == "two.addresses.test"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address) for address in addresses]

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(lambda: Recorder(loop), "two.addresses.test", 80)
    message = str(info.value)
    assert repr(addresses[0]) in message and repr(addresses[1]) in message
    assert calls and calls[0] != threading.get_ident(), "getaddrinfo ran on the loop's thread"


async def test_connect_tries_the_next_address_after_a_failure(loop: EventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await echo_server(loop)
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        infos = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", dead.getsockname()),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_of(server))),
        ]
        monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: infos)
        for delay in (None, 0.25):
            transport, client = await loop.create_connection(
                lambda: Recorder(loop), "somewhere.test", 1, happy_eyeballs_delay=delay
            )
            assert transport.get_extra_info("peername") == ("127.0.0.1", port_of(server))
            transport.close()
            await client.lost
    await closed_server(server)


async def test_connect_from_a_local_address_or_with_a_ready_socket(loop: EventLoop) -> None:
    server = await echo_server(loop)
    transport, client = await loop.create_connection(
        lambda: Recorder(loop), "127.0.0.1", port_of(server), local_addr=("127.0.0.1", 0)
    )
    assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
    transport.close()
    await client.lost

    sock = socket.create_connection(("127.0.0.1", port_of(server)))
    with pytest.raises(ValueError):
        await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", 1, sock=sock)
    transport, client = await loop.create_connection(lambda: Recorder(loop), sock=sock)
    assert transport.get_extra_info("socket") is sock
    transport.write(b"ready-made")
    assert await client.wait_bytes(10) == b"ready-made"
    transport.close()
    await client.lost
    assert sock.fileno() == -1
    await closed_server(server)


async def test_happy_eyeballs_starts_the_next_address_while_one_hangs(
    loop: EventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netkit.transports import create

    server = await echo_server(loop)
    black_hole = ("192.0.2.1", 80)  # TEST-NET-1: stands for an address that never answers
    good = ("127.0.0.1", port_of(server))
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", black_hole), (socket.AF_INET, socket.SOCK_STREAM, 6, "", good)]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: infos)
    real_connect_one = create._connect_one
    hanging: list[netkit.Future[None]] = []

    async def connect_one(event_loop: EventLoop, info: Any, local_addr: Any) -> socket.socket:
        if info[4] == black_hole:
            hanging.append(loop.create_future())
            await hanging[-1]  # never completes: only a cancel ends it
        return await real_connect_one(event_loop, info, local_addr)

    monkeypatch.setattr(create, "_connect_one", connect_one)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "dual.test", 80, happy_eyeballs_delay=0.05)
    assert transport.get_extra_info("peername") == good
    for _ in range(3):
        await netkit.sleep(0)
    assert hanging and hanging[0].cancelled()  # the losing attempt was called off
    transport.close()
    await client.lost
    await closed_server(server)


# ------------------------------------------------------------------ writes


async def test_writelines_sends_every_buffer_in_order(loop: EventLoop) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    parts = [b"alpha ", bytearray(b"beta "), memoryview(b"gamma "), b"", pattern(300_000)]
    transport.writelines(parts)
    transport.writelines(iter([b"!", b"?"]))
    expected = b"".join(bytes(p) for p in parts) + b"!?"
    await client.wait_bytes(len(expected))
    assert client.data == expected
    transport.close()
    await client.lost
    await closed_server(server)


async def test_a_mutable_buffer_may_be_reused_after_write(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(PausedReader(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    buffer = bytearray(pattern(8 * MiB, seed=5))
    original = bytes(buffer)
    transport.write(buffer)
    assert transport.get_write_buffer_size() > 0  # part of it had to be kept
    transport.write(buffer)  # queued behind the first: must be copied too
    buffer[:] = bytes(len(buffer))  # the caller reuses its buffer
    await _eventually(peers, "made")
    peers[0].transport.resume_reading()
    transport.write_eof()
    await _eventually(peers, "got_eof")
    assert peers[0].data == original + original
    transport.close()
    await client.lost
    await closed_server(server)


@pytest.mark.parametrize("items, writes", [(10, 1), (10, 2), (4 * MiB, 1), (4 * MiB, 2)])
async def test_write_of_a_wide_memoryview_counts_bytes_not_items(loop: EventLoop, items: int, writes: int) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    values = array.array("I", range(items))
    for _ in range(writes):
        transport.write(memoryview(values))  # the second may be queued behind the first
    expected = values.tobytes() * writes
    await client.wait_bytes(len(expected))
    assert client.data == expected
    transport.close()
    assert await client.lost is None
    await closed_server(server)


@pytest.mark.parametrize("use_writelines", [False, True], ids=["write", "writelines"])
async def test_tiny_writes_behind_a_full_socket_do_not_cost_an_entry_each(loop: EventLoop, use_writelines: bool) -> None:
    # The write buffer counts bytes; one-byte writes queued one entry each
    # would hold some 40 bytes of bookkeeping per byte counted.
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(PausedReader(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    bulk = pattern(16 * MiB)
    transport.write(bulk)  # more than the kernel's buffers hold: the rest waits
    assert transport.get_write_buffer_size() > 0
    tiny = [bytes([i % 251]) for i in range(100_000)]
    if use_writelines:
        for start in range(0, len(tiny), 10):
            transport.writelines(tiny[start : start + 10])
    else:
        for one in tiny:
            transport.write(one)
    # The small chunks were merged: a few hundred entries at most, not 100,000.
    assert len(transport._buffer) <= 100_000 // 512 + 64 + 1
    await _eventually(peers, "made")
    peers[0].transport.resume_reading()
    transport.write_eof()
    await _eventually(peers, "got_eof")
    assert peers[0].data == bulk + b"".join(tiny)
    transport.close()
    await client.lost
    await closed_server(server)


async def test_write_buffer_limits(loop: EventLoop) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    assert transport.get_write_buffer_limits() == (DEFAULT_HIGH_WATER // 4, DEFAULT_HIGH_WATER)
    transport.set_write_buffer_limits(high=1000)
    assert transport.get_write_buffer_limits() == (250, 1000)
    transport.set_write_buffer_limits(high=1000, low=10)
    assert transport.get_write_buffer_limits() == (10, 1000)
    transport.set_write_buffer_limits(low=100)
    assert transport.get_write_buffer_limits() == (100, 400)
    with pytest.raises(ValueError):
        transport.set_write_buffer_limits(high=10, low=20)
    with pytest.raises(ValueError):
        transport.set_write_buffer_limits(high=-1)
    assert transport.get_write_buffer_size() == 0
    transport.close()
    await client.lost
    await closed_server(server)


async def test_lowering_the_high_water_mark_below_the_buffer_pauses_at_once(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(PausedReader(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    transport.set_write_buffer_limits(high=64 * MiB)
    transport.write(pattern(16 * MiB))
    buffered = transport.get_write_buffer_size()
    assert 0 < buffered < 64 * MiB and client.pauses == 0
    transport.set_write_buffer_limits(high=buffered - 1)
    assert client.pauses == 1
    await _eventually(peers, "made")
    peers[0].transport.resume_reading()
    transport.close()
    await client.lost
    assert client.resumes == 1
    await closed_server(server)


# ------------------------------------------------------------ information


async def test_extra_info_names_both_ends_and_the_socket(loop: EventLoop) -> None:
    server = await echo_server(loop)
    transport, client = await connect(loop, server)
    sock = transport.get_extra_info("socket")
    assert isinstance(sock, socket.socket)
    assert transport.get_extra_info("peername") == ("127.0.0.1", port_of(server))
    assert transport.get_extra_info("sockname") == sock.getsockname()
    assert transport.get_extra_info("no such thing", "default") == "default"
    assert transport.get_protocol() is client
    assert "open" in repr(transport)
    transport.close()
    await client.lost
    # The peer's address outlives the socket; the local one needs the socket.
    assert transport.get_extra_info("peername") == ("127.0.0.1", port_of(server))
    assert transport.get_extra_info("sockname", "closed") == "closed"
    assert transport.get_extra_info("socket") is None
    await closed_server(server)


async def test_the_server_side_knows_its_peer_even_after_a_reset(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    client_address = transport.get_extra_info("sockname")
    await _eventually(peers, "made")
    _reset_on_close(transport.get_extra_info("socket"))
    transport.abort()
    assert isinstance(await peers[0].lost, ConnectionResetError)
    assert peers[0].transport.get_extra_info("peername") == client_address
    assert str(client_address[1]) in repr(peers[0].transport)
    await client.lost
    await closed_server(server)


async def test_extras_given_by_the_creator_are_returned(loop: EventLoop) -> None:
    from netkit.transports.stream import StreamTransport

    left, right = socket.socketpair()
    protocol = Recorder(loop)
    transport = StreamTransport(loop, left, protocol, extra={"peername": "the other end", "cert": {"cn": "x"}})
    await protocol.made
    assert transport.get_extra_info("peername") == "the other end"
    assert transport.get_extra_info("cert") == {"cn": "x"}
    assert transport.get_extra_info("sockname") == left.getsockname()
    transport.close()
    await protocol.lost
    right.close()


# ----------------------------------------------------- protocol failures


class Exploding(Recorder):
    def data_received(self, data: bytes) -> None:
        raise ValueError("a bug in the protocol")


async def test_a_failing_protocol_is_reported_and_its_connection_dropped(loop: EventLoop, errors: Any) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Exploding(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    transport.write(b"boom")
    exc = await _eventually(peers, "lost")
    assert isinstance(exc, ValueError)
    assert any("data_received" in message for message in errors.messages)
    await client.lost  # the peer saw the connection go
    # The server still serves others.
    transport2, client2 = await connect(loop, server)
    transport2.close()
    await client2.lost
    await closed_server(server)


async def test_bulk_reads_then_small_ones_then_eof_arrive_intact(loop: EventLoop) -> None:
    # Large reads switch the transport to sizing reads with FIONREAD; a slower
    # flow switches it back; the EOF must be seen on either path.
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(PausedReader(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await connect(loop, server)
    bulk = pattern(8 * MiB, seed=8)
    transport.write(bulk)
    await _eventually(peers, "made")
    peer = peers[0]
    sized_reads = []
    recv_queued = peer.transport._recv_queued

    def counting() -> bytes:
        sized_reads.append(None)
        return recv_queued()

    peer.transport._recv_queued = counting
    peer.transport.resume_reading()  # several hundred KiB are queued: a large first read
    await peer.wait_bytes(len(bulk))
    assert sized_reads, "the bulk path was not taken"
    for index in range(20):
        transport.write(b"small %d;" % index)
        await peer.wait_bytes(len(bulk) + len(b"".join(b"small %d;" % i for i in range(index + 1))))
    assert not peer.transport._large_reads
    transport.write(bulk)
    transport.write_eof()
    await peer.got_eof
    assert peer.data == bulk + b"".join(b"small %d;" % i for i in range(20)) + bulk
    transport.close()
    await client.lost
    await peer.lost
    await closed_server(server)


# --------------------------------------------------------- asyncio interop


def test_a_netkit_protocol_runs_on_an_asyncio_loop() -> None:
    import asyncio

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)  # netkit's Echo, asyncio's loop
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"same interface")
        writer.write_eof()
        echoed = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return echoed

    assert asyncio.run(main()) == b"same interface"


async def test_an_asyncio_protocol_runs_on_a_netkit_loop(loop: EventLoop) -> None:
    import asyncio

    class AsyncioEcho(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    server = await loop.create_server(AsyncioEcho, "127.0.0.1", 0)
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    writer.write(b"both ways")
    assert await reader.readexactly(9) == b"both ways"
    writer.close()
    await writer.wait_closed()
    server.close()
    server.close_clients()
    await server.wait_closed()
