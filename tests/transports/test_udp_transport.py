"""DatagramTransport over real UDP (and Unix datagram) sockets."""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Any

import pytest

import netkit
from netkit import EventLoop
from netkit.transports.datagram import DATAGRAM_OVERHEAD

from transport_helpers import has_ipv6_loopback, pattern

# The largest UDP payload over IPv4: 65,535 minus the IP (20) and UDP (8) headers.
MAX_IPV4_PAYLOAD = 65507


class DatagramRecorder(netkit.DatagramProtocol):
    """Records datagrams and errors; ``wait(n)`` waits for the n-th datagram."""

    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        self.transport: Any = None
        self.datagrams: list[tuple[bytes, Any]] = []
        self.errors: list[OSError] = []
        self.lost_calls: list[BaseException | None] = []
        self.pauses = 0
        self.resumes = 0
        self.made: netkit.Future[None] = loop.create_future()
        self.lost: netkit.Future[BaseException | None] = loop.create_future()
        self.error: netkit.Future[OSError] = loop.create_future()
        self._want = 0
        self._enough: netkit.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.made.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert isinstance(data, bytes)
        self.datagrams.append((data, addr))
        if self._enough is not None and len(self.datagrams) >= self._want and not self._enough.done():
            self._enough.set_result(None)

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)
        if not self.error.done():
            self.error.set_result(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_calls.append(exc)
        self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.pauses += 1

    def resume_writing(self) -> None:
        self.resumes += 1

    async def wait(self, count: int) -> list[tuple[bytes, Any]]:
        if len(self.datagrams) < count:
            self._want = count
            self._enough = self.loop.create_future()
            await self._enough
            self._enough = None
        return self.datagrams


class DatagramEcho(DatagramRecorder):
    def datagram_received(self, data: bytes, addr: Any) -> None:
        super().datagram_received(data, addr)
        self.transport.sendto(data, addr)


async def echo_endpoint(loop: EventLoop, host: str = "127.0.0.1") -> tuple[Any, DatagramEcho]:
    return await loop.create_datagram_endpoint(lambda: DatagramEcho(loop), local_addr=(host, 0))


async def test_echo_over_a_connected_client_endpoint_up_to_the_largest_datagram(loop: EventLoop) -> None:
    server_transport, server = await echo_endpoint(loop)
    server_addr = server_transport.get_extra_info("sockname")
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), remote_addr=server_addr)
    assert transport.get_extra_info("peername") == server_addr
    sizes = [0, 1, 1400, 9000, 32768, 65536 - 1024, MAX_IPV4_PAYLOAD]
    for index, size in enumerate(sizes):
        payload = pattern(size, seed=size)
        transport.sendto(payload)  # connected: no address needed
        datagrams = await client.wait(index + 1)
        data, addr = datagrams[index]
        assert data == payload, f"datagram of {size} bytes came back damaged"
        assert addr == server_addr
    client_addr = transport.get_extra_info("sockname")
    assert [addr for _, addr in server.datagrams] == [client_addr] * len(sizes)
    transport.close()
    server_transport.close()
    assert await client.lost is None
    assert await server.lost is None
    assert client.lost_calls == [None] and server.lost_calls == [None]


async def test_unconnected_endpoints_name_the_sender(loop: EventLoop) -> None:
    server_transport, server = await echo_endpoint(loop)
    server_addr = server_transport.get_extra_info("sockname")
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", 0))
    assert transport.get_extra_info("peername") is None
    for index in range(50):  # a burst: several arrive per readiness event
        transport.sendto(b"datagram %d" % index, server_addr)
    datagrams = await client.wait(50)
    assert sorted(data for data, _ in datagrams) == sorted(b"datagram %d" % i for i in range(50))
    assert {addr for _, addr in datagrams} == {server_addr}
    with pytest.raises(ValueError):
        transport.sendto(b"where to?")
    transport.close()
    server_transport.close()
    await client.lost
    await server.lost


async def test_a_connected_endpoint_refuses_other_addresses(loop: EventLoop) -> None:
    server_transport, server = await echo_endpoint(loop)
    server_addr = server_transport.get_extra_info("sockname")
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), remote_addr=server_addr)
    with pytest.raises(ValueError):
        transport.sendto(b"x", ("127.0.0.1", server_addr[1] + 1))
    transport.sendto(b"same peer", server_addr)  # naming the connected peer is fine
    await client.wait(1)
    transport.close()
    server_transport.close()
    await client.lost
    await server.lost


async def test_port_unreachable_on_a_connected_socket_reaches_error_received(loop: EventLoop) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()
    # Nobody listens on that UDP port now: the kernel answers with ICMP port unreachable.
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), remote_addr=nobody)
    transport.sendto(b"anyone there?")
    exc = await client.error
    assert isinstance(exc, ConnectionRefusedError)
    assert not transport.is_closing()  # an ICMP error does not close the endpoint
    transport.close()
    assert await client.lost is None


async def test_ipv6_datagrams(loop: EventLoop) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server_transport, server = await echo_endpoint(loop, "::1")
    server_addr = server_transport.get_extra_info("sockname")
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), remote_addr=server_addr[:2])
    transport.sendto(b"six")
    (data, addr), = await client.wait(1)
    assert data == b"six" and addr[0] == "::1"
    transport.close()
    server_transport.close()
    await client.lost
    await server.lost


async def test_pause_reading_stops_delivery(loop: EventLoop) -> None:
    server_transport, server = await echo_endpoint(loop)
    server_addr = server_transport.get_extra_info("sockname")
    transport, client = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), remote_addr=server_addr)
    transport.pause_reading()
    assert not transport.is_reading()
    transport.sendto(b"echo me")
    await server.wait(1)
    sock = transport.get_extra_info("socket")
    import select

    assert select.select([sock], [], [], 5.0)[0], "the echo never reached the socket"
    for _ in range(10):
        await netkit.sleep(0)
    assert client.datagrams == []
    transport.resume_reading()
    assert transport.is_reading()
    await client.wait(1)
    transport.close()
    server_transport.close()
    await client.lost
    await server.lost


class CloggedSocket(socket.socket):
    """A UDP socket whose sends fail with EAGAIN while ``clogged`` — the state
    of a kernel send buffer that is full, which loopback rarely reaches."""

    clogged = True

    def send(self, data: Any, *args: Any) -> int:
        if self.clogged:
            raise BlockingIOError(errno.EAGAIN, "clogged")
        return super().send(data, *args)

    def sendto(self, data: Any, *args: Any) -> int:
        if self.clogged:
            raise BlockingIOError(errno.EAGAIN, "clogged")
        return super().sendto(data, *args)


@pytest.mark.parametrize("connected", [False, True])
async def test_a_full_kernel_buffer_queues_datagrams_within_the_water_marks(loop: EventLoop, connected: bool) -> None:
    receiver_transport, receiver = await loop.create_datagram_endpoint(
        lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", 0)
    )
    receiver_addr = receiver_transport.get_extra_info("sockname")
    sock = CloggedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    if connected:
        sock.connect(receiver_addr)
    transport, sender = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), sock=sock)
    transport.set_write_buffer_limits(high=10_000, low=2_000)
    destination = None if connected else receiver_addr
    sent = []
    while not sender.pauses:
        datagram = b"%04d" % len(sent) + bytes(996)
        transport.sendto(datagram, destination)
        sent.append(datagram)
    # Queued, not lost; and the protocol was told to stop at the high-water
    # mark, each datagram counting its payload and its bookkeeping.
    assert len(sent) == 9
    assert transport.get_write_buffer_size() == 9 * (1000 + DATAGRAM_OVERHEAD)
    sock.clogged = False  # the kernel has room again
    await receiver.wait(len(sent))
    assert [data for data, _ in receiver.datagrams] == sent  # in order
    assert sender.resumes == 1
    assert transport.get_write_buffer_size() == 0
    transport.close()
    receiver_transport.close()
    await sender.lost
    await receiver.lost


async def test_the_send_queue_is_bounded_even_for_a_protocol_that_ignores_pause_writing(loop: EventLoop) -> None:
    sock = CloggedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, sender = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), sock=sock)
    high = transport.get_write_buffer_limits()[1]
    datagram = bytes(1000)
    for _ in range(10 * high // len(datagram)):
        transport.sendto(datagram, ("127.0.0.1", 9))
    assert sender.pauses == 1
    assert transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1] * 4
    assert sender.errors and all(isinstance(e, OSError) and e.errno == errno.ENOBUFS for e in sender.errors)
    transport.abort()
    assert transport.get_write_buffer_size() == 0
    assert await sender.lost is None


@pytest.mark.parametrize("payload", [b"", b"x"])
async def test_empty_and_tiny_datagrams_count_against_the_send_queue_limits(loop: EventLoop, payload: bytes) -> None:
    # Each queued datagram holds memory beyond its payload (the queue entry,
    # the bytes object): 100,000 empty ones must not slip past the limits as
    # "0 bytes" while megabytes pile up.
    sock = CloggedSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, sender = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), sock=sock)
    for _ in range(100_000):
        transport.sendto(payload, ("127.0.0.1", 9))
    high = transport.get_write_buffer_limits()[1]
    assert sender.pauses == 1
    # Every queued datagram is counted, and the count stays within the hard cap.
    assert transport.get_write_buffer_size() == len(transport._buffer) * (len(payload) + DATAGRAM_OVERHEAD)
    assert transport.get_write_buffer_size() <= 4 * high
    assert len(transport._buffer) <= 4 * high // DATAGRAM_OVERHEAD
    assert sender.errors and all(e.errno == errno.ENOBUFS for e in sender.errors)
    transport.abort()
    assert transport.get_write_buffer_size() == 0
    assert await sender.lost is None


async def test_sendto_after_close_is_a_warned_no_op(loop: EventLoop, caplog: pytest.LogCaptureFixture) -> None:
    transport, endpoint = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", 0))
    transport.close()
    assert transport.is_closing()
    with caplog.at_level(logging.WARNING, logger="netkit"):
        transport.sendto(b"late", ("127.0.0.1", 9))
    assert await endpoint.lost is None
    transport.sendto(b"later", ("127.0.0.1", 9))
    assert endpoint.lost_calls == [None]
    assert any("closed" in r.getMessage() for r in caplog.records if r.name == "netkit")


async def test_socket_options(loop: EventLoop) -> None:
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", 0), allow_broadcast=True
    )
    sock = transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
    if hasattr(socket, "SO_REUSEPORT"):
        first, p1 = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", 0), reuse_port=True)
        port = first.get_extra_info("sockname")[1]
        second, p2 = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=("127.0.0.1", port), reuse_port=True)
        assert second.get_extra_info("sockname")[1] == port
        first.close()
        second.close()
        await p1.lost
        await p2.lost
    transport.close()
    await endpoint.lost


async def test_a_failing_protocol_factory_leaks_no_socket(loop: EventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[socket.socket] = []

    class TrackedSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    def factory() -> netkit.DatagramProtocol:
        raise RuntimeError("factory bug")

    monkeypatch.setattr(socket, "socket", TrackedSocket)
    with pytest.raises(RuntimeError):
        await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    assert created, "no socket was opened"
    # Closed at once, not left for the garbage collector to find.
    assert all(sock.fileno() == -1 for sock in created)


async def test_a_live_unix_datagram_socket_is_never_replaced(loop: EventLoop, tmp_path: Any) -> None:
    path = str(tmp_path / "live.sock")
    live, _ = await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=path, family=socket.AF_UNIX)
    with pytest.raises(OSError) as info:
        await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=path, family=socket.AF_UNIX)
    assert info.value.errno == errno.EADDRINUSE
    # Nor is a stream server's socket, nor does a stream server take a datagram one.
    stream_path = str(tmp_path / "stream.sock")
    stream_server = await loop.create_unix_server(netkit.Protocol, stream_path)
    with pytest.raises(OSError) as info:
        await loop.create_datagram_endpoint(lambda: DatagramRecorder(loop), local_addr=stream_path, family=socket.AF_UNIX)
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as info:
        await loop.create_unix_server(netkit.Protocol, path)
    assert info.value.errno == errno.EADDRINUSE
    # The first endpoint still receives.
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.sendto(b"still mine", path)
    sender.close()
    live_protocol = live.get_protocol()
    (data, _), = await live_protocol.wait(1)
    assert data == b"still mine"
    live.close()
    stream_server.close()
    await stream_server.wait_closed()


def test_a_regular_file_is_not_replaced_by_a_unix_datagram_endpoint(tmp_path: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")

    async def bind() -> None:
        await netkit.get_running_loop().create_datagram_endpoint(
            lambda: DatagramRecorder(netkit.get_running_loop()), local_addr=str(path), family=socket.AF_UNIX
        )

    with pytest.raises(OSError) as info:
        netkit.run(bind())
    assert info.value.errno == errno.EEXIST
    assert path.read_text() == "keep me"


async def test_unix_datagram_endpoints(loop: EventLoop, tmp_path: Any) -> None:
    server_path = str(tmp_path / "server.sock")
    client_path = str(tmp_path / "client.sock")
    server_transport, server = await loop.create_datagram_endpoint(
        lambda: DatagramEcho(loop), local_addr=server_path, family=socket.AF_UNIX
    )
    transport, client = await loop.create_datagram_endpoint(
        lambda: DatagramRecorder(loop), local_addr=client_path, remote_addr=server_path, family=socket.AF_UNIX
    )
    transport.sendto(b"over a Unix socket")
    (data, addr), = await client.wait(1)
    assert data == b"over a Unix socket" and addr == server_path
    transport.close()
    server_transport.close()
    await client.lost
    await server.lost
    # A stale socket file from an endpoint that went away is replaced.
    again, server2 = await loop.create_datagram_endpoint(
        lambda: DatagramRecorder(loop), local_addr=server_path, family=socket.AF_UNIX
    )
    again.close()
    await server2.lost
    for path in (server_path, client_path):
        if os.path.exists(path):
            os.remove(path)
