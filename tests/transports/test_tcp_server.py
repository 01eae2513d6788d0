"""Server: listening, address reuse, accept errors, closing, and no leaked fds."""

from __future__ import annotations

import errno
import gc
import os
import resource
import socket
from typing import Any

import pytest

import netkit
from netkit import EventLoop

from transport_helpers import Echo, Recorder, has_ipv6_loopback, port_of


async def test_port_zero_picks_a_free_port_readable_from_sockets(loop: EventLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    assert server.is_serving()
    (sock,) = server.sockets
    host, port = sock.getsockname()
    assert host == "127.0.0.1" and port > 0
    assert server.get_loop() is loop
    assert str(port) in repr(server)
    server.close()
    assert not server.is_serving()
    assert server.sockets == ()
    await server.wait_closed()


async def test_several_hosts_share_one_free_port(loop: EventLoop) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = await loop.create_server(Echo, ["127.0.0.1", "::1"], 0)
    families = sorted(sock.family for sock in server.sockets)
    assert families == sorted([socket.AF_INET, socket.AF_INET6])
    ports = {sock.getsockname()[1] for sock in server.sockets}
    assert len(ports) == 1
    for host in ("127.0.0.1", "::1"):
        reader, writer = await netkit.open_connection(host, port_of(server))
        writer.write(b"hi")
        assert await reader.readexactly(2) == b"hi"
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("host", [None, ""])
async def test_no_host_listens_on_every_family_with_one_port(
    loop: EventLoop, monkeypatch: pytest.MonkeyPatch, host: str | None
) -> None:
    # Tests bind loopback only, so the wildcard addresses getaddrinfo would
    # give are swapped for the loopback ones of both families.
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    asked: list[tuple[Any, ...]] = []

    def passive_addresses(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
        asked.append((host, flags))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", int(port), 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", passive_addresses)
    server = await loop.create_server(Echo, host, 0)
    assert asked == [(None, socket.AI_PASSIVE)]
    assert sorted(sock.family for sock in server.sockets) == sorted([socket.AF_INET, socket.AF_INET6])
    assert len({sock.getsockname()[1] for sock in server.sockets}) == 1
    v6 = next(sock for sock in server.sockets if sock.family == socket.AF_INET6)
    assert v6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)  # or the IPv4 bind would collide
    server.close()
    await server.wait_closed()


async def test_reuse_address_is_on_by_default(loop: EventLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    server.close()
    await server.wait_closed()
    server = await loop.create_server(Echo, "127.0.0.1", 0, reuse_address=False)
    assert not server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    server.close()
    await server.wait_closed()


class CloseFirst(Recorder):
    """Closes as soon as it is connected: this side's socket ends in TIME_WAIT."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.write(b"bye")
        transport.close()


async def test_a_restarted_server_binds_while_old_connections_sit_in_time_wait(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(CloseFirst(loop)) or peers[-1], "127.0.0.1", 0)
    port = port_of(server)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
    await client.got_eof  # the server closed first ...
    await client.lost  # ... and we answered its FIN: its side is now in TIME_WAIT
    await peers[0].lost
    server.close()
    await server.wait_closed()
    # Without SO_REUSEADDR the port is still taken by the TIME_WAIT connection.
    with pytest.raises(OSError) as info:
        await loop.create_server(Echo, "127.0.0.1", port, reuse_address=False)
    assert info.value.errno == errno.EADDRINUSE
    assert str(port) in str(info.value)
    restarted = await loop.create_server(Echo, "127.0.0.1", port)
    assert port_of(restarted) == port
    restarted.close()
    await restarted.wait_closed()


async def test_reuse_port_lets_two_servers_share_a_port(loop: EventLoop) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT on this platform")
    first = await loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
    assert first.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    second = await loop.create_server(Echo, "127.0.0.1", port_of(first), reuse_port=True)
    assert port_of(second) == port_of(first)
    for server in (first, second):
        server.close()
        await server.wait_closed()


async def test_start_serving_false_listens_only_when_asked(loop: EventLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
    assert not server.is_serving()
    await server.start_serving()
    assert server.is_serving()
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_a_server_from_an_existing_socket(loop: EventLoop) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    with pytest.raises(ValueError):
        await loop.create_server(Echo, "127.0.0.1", 0, sock=sock)
    server = await loop.create_server(Echo, sock=sock)
    assert server.sockets == (sock,)
    reader, writer = await netkit.open_connection("127.0.0.1", sock.getsockname()[1])
    writer.write(b"ok")
    assert await reader.readexactly(2) == b"ok"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    assert sock.fileno() == -1  # the server owned it and closed it


async def test_async_with_closes_and_waits_for_connections(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    async with await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0) as server:
        transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
        while not peers:
            await netkit.sleep(0)
        await peers[0].made
        assert server.connection_count() == 1
        # wait_closed (in __aexit__) must wait for this connection to end.
        loop.call_soon(transport.close)
    assert server.connection_count() == 0
    assert peers[0].lost.done()
    await client.lost


async def test_close_clients_and_abort_clients(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    clients = [await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server)) for _ in range(4)]
    while len(peers) < 4:
        await netkit.sleep(0)
    for peer in peers:
        await peer.made
    server.close()
    assert server.connection_count() == 4  # close() leaves connections alone
    server.close_clients()
    await netkit.gather(*(peer.lost for peer in peers))
    await netkit.gather(*(client.lost for _, client in clients))
    await server.wait_closed()
    assert all(peer.lost_calls == [None] for peer in peers)

    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
    while len(peers) < 5:
        await netkit.sleep(0)
    await peers[4].made
    server.abort_clients()
    await peers[4].lost
    await client.lost
    server.close()
    await server.wait_closed()


async def test_serve_forever_runs_until_cancelled_then_closes(loop: EventLoop) -> None:
    server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
    task = loop.create_task(server.serve_forever())
    await netkit.sleep(0)
    assert server.is_serving()
    with pytest.raises(RuntimeError):
        await server.serve_forever()
    reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    writer.close()
    await writer.wait_closed()
    task.cancel()
    with pytest.raises(netkit.CancelledError):
        await task
    assert not server.is_serving()
    assert server.sockets == ()


async def test_a_factory_may_close_the_server_mid_burst(loop: EventLoop) -> None:
    # A one-shot server: the first connection stops the listening.
    peers: list[Recorder] = []
    server: Any = None

    def factory() -> Recorder:
        server.close()
        peers.append(Recorder(loop))
        return peers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = port_of(server)
    # Two connections queue up before the loop accepts either.
    first = socket.create_connection(("127.0.0.1", port))
    second = socket.create_connection(("127.0.0.1", port))
    try:
        await _wait_for(peers, 1)
        await peers[0].made
        for _ in range(5):
            await netkit.sleep(0)
        assert len(peers) == 1  # the second was never accepted
    finally:
        first.close()
        second.close()
    await peers[0].lost
    await server.wait_closed()


async def _wait_for(items: list[Any], count: int) -> None:
    while len(items) < count:
        await netkit.sleep(0)


async def test_cancelling_serve_forever_does_not_wait_for_open_connections(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
    task = loop.create_task(server.serve_forever())
    await _wait_for(peers, 1)
    await peers[0].made
    await netkit.sleep(0)  # let serve_forever start
    task.cancel()
    with pytest.raises(netkit.CancelledError):
        await netkit.wait_for(task, 5)  # an idle client must not hold up the cancel
    assert not server.is_serving() and server.sockets == ()
    assert server.connection_count() == 1  # the connection is the caller's to end
    server.close_clients()
    await server.wait_closed()
    await client.lost


# ------------------------------------------------------- accept failures


class FailingFactory:
    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        self.calls = 0
        self.made: list[Recorder] = []

    def __call__(self) -> Recorder:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("factory bug")
        self.made.append(Recorder(self.loop))
        return self.made[-1]


async def test_a_failing_protocol_factory_drops_one_connection_only(loop: EventLoop, errors: Any) -> None:
    factory = FailingFactory(loop)
    server = await loop.create_server(factory, "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
    await client.lost  # dropped by the server
    assert isinstance(errors.exceptions[0], RuntimeError)
    assert "factory" in errors.messages[0]
    transport2, client2 = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
    while not factory.made:
        await netkit.sleep(0)
    await factory.made[0].made
    transport2.close()
    await client2.lost
    server.close()
    await server.wait_closed()


async def test_a_connection_closed_before_connection_made_never_sees_connection_lost(loop: EventLoop) -> None:
    peers: list[Recorder] = []
    server: Any = None

    def factory() -> Recorder:
        # Runs before the transport exists: this call_soon runs before the
        # transport's own first callback, so the connection is aborted before
        # connection_made could be called.
        loop.call_soon(server.abort_clients)
        peers.append(Recorder(loop))
        return peers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    transport, client = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port_of(server))
    await client.lost
    server.close()
    await server.wait_closed()
    for _ in range(3):
        await netkit.sleep(0)
    assert peers[0].events == []  # neither connection_made nor connection_lost


async def test_running_out_of_file_descriptors_pauses_accepting_then_resumes(loop: EventLoop, errors: Any) -> None:
    reported = netkit.Event()
    log_handler = loop.get_exception_handler()

    def handler(event_loop: EventLoop, context: dict[str, Any]) -> None:
        log_handler(event_loop, context)
        reported.set()

    loop.set_exception_handler(handler)
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = port_of(server)
    # Client sockets made before the limit is lowered: connecting needs no new fd.
    clients = [socket.socket() for _ in range(3)]
    for sock in clients:
        sock.setblocking(False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    try:
        # No new descriptor can be created now: accept() must fail with EMFILE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        for sock in clients:
            assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
        await reported.wait()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    exc = errors.exceptions[0]
    assert isinstance(exc, OSError) and exc.errno == errno.EMFILE
    assert "accept" in errors.messages[0]
    assert server.is_serving()
    # Descriptors are available again: the server resumes and serves everyone.
    for index, sock in enumerate(clients):
        sock.setblocking(True)
        sock.settimeout(5)
        message = f"client {index}".encode()
        sock.sendall(message)
    for index, sock in enumerate(clients):
        message = f"client {index}".encode()
        echoed = await loop.run_in_executor(None, _recv_exactly, sock, len(message))
        assert echoed == message
        sock.close()
    server.close()
    server.abort_clients()
    await server.wait_closed()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


# ------------------------------------------------------------- no leaks


def test_closing_servers_connections_and_the_loop_leaves_no_open_fds() -> None:
    gc.collect()
    before = set(os.listdir("/proc/self/fd"))

    async def main() -> None:
        loop = netkit.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        unix_dir = f"/tmp/netkit-fd-test-{os.getpid()}"
        os.makedirs(unix_dir, exist_ok=True)
        unix_server = await loop.create_unix_server(Echo, f"{unix_dir}/s")
        streams = [await netkit.open_connection("127.0.0.1", port_of(server)) for _ in range(5)]
        unix_streams = [await netkit.open_unix_connection(f"{unix_dir}/s") for _ in range(3)]
        udp, _ = await loop.create_datagram_endpoint(netkit.DatagramProtocol, local_addr=("127.0.0.1", 0))
        for reader, writer in streams + unix_streams:
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
        # Half of the clients leave on their own; the servers drop the rest.
        for reader, writer in streams[:3]:
            writer.close()
            await writer.wait_closed()
        for one in (server, unix_server):
            one.close()
            one.close_clients()
            await one.wait_closed()
        for reader, writer in streams[3:] + unix_streams:
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
        udp.close()
        os.rmdir(unix_dir)

    netkit.run(main())
    gc.collect()
    after = set(os.listdir("/proc/self/fd"))
    assert after == before
