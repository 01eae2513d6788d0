"""Unix stream sockets: servers, connections, stale socket files, cleanup."""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
from typing import Any, Iterator

import pytest

import netkit
from netkit import EventLoop

from transport_helpers import Echo, Recorder, pattern


@pytest.fixture
def path(tmp_path: Any) -> Iterator[str]:
    # Unix socket paths are limited to ~107 bytes: pytest's tmp_path may be longer.
    directory = f"/tmp/netkit-unix-{os.getpid()}-{id(tmp_path) & 0xFFFF}"
    os.makedirs(directory, exist_ok=True)
    yield f"{directory}/server.sock"
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    os.rmdir(directory)


async def test_echo_and_half_close_over_a_unix_socket(loop: EventLoop, path: str) -> None:
    server = await loop.create_unix_server(Echo, path)
    assert server.sockets[0].family == socket.AF_UNIX
    transport, client = await loop.create_unix_connection(lambda: Recorder(loop), path)
    assert transport.get_extra_info("peername") == path
    payload = pattern(4 * 1024 * 1024)
    transport.write(payload)
    assert transport.can_write_eof()
    transport.write_eof()
    await client.got_eof
    assert client.data == payload
    assert await client.lost is None
    server.close()
    await server.wait_closed()
    assert not os.path.exists(path)  # removed by close()


async def test_a_stale_socket_file_from_a_crashed_server_is_replaced(loop: EventLoop, path: str) -> None:
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(path)
    crashed.listen()
    crashed.close()  # a crash leaves the file behind, with nobody listening
    assert os.path.exists(path)
    server = await loop.create_unix_server(Echo, path)
    reader, writer = await netkit.open_unix_connection(path)
    writer.write(b"alive")
    assert await reader.readexactly(5) == b"alive"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_a_live_server_socket_is_never_stolen(loop: EventLoop, path: str) -> None:
    server = await loop.create_unix_server(Echo, path)
    with pytest.raises(OSError) as info:
        await loop.create_unix_server(Echo, path)
    assert info.value.errno == errno.EADDRINUSE
    reader, writer = await netkit.open_unix_connection(path)  # the first still serves
    writer.write(b"still here")
    assert await reader.readexactly(10) == b"still here"
    writer.close()
    await writer.wait_closed()
    server.close()
    server.close_clients()  # the probe's connection too
    await server.wait_closed()


def test_a_live_server_with_a_full_queue_is_detected_without_blocking(path: str) -> None:
    busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    busy.bind(path)
    busy.listen(0)  # never accepts
    waiting: list[socket.socket] = []
    try:
        while True:  # fill the accept queue
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            waiting.append(client)
            try:
                client.connect(path)
            except BlockingIOError:
                break
        outcome: list[BaseException] = []

        def try_to_listen() -> None:
            try:
                netkit.run(_listen_once(path))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=try_to_listen, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "create_unix_server blocked on a busy server's socket"
        assert len(outcome) == 1 and isinstance(outcome[0], OSError) and outcome[0].errno == errno.EADDRINUSE
    finally:
        for client in waiting:
            client.close()
        busy.close()


async def _listen_once(path: str) -> None:
    server = await netkit.get_running_loop().create_unix_server(Echo, path)
    server.close()


async def test_connecting_to_a_server_with_a_full_queue_waits_for_room(loop: EventLoop, path: str) -> None:
    busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    busy.bind(path)
    busy.listen(0)
    waiting: list[socket.socket] = []
    try:
        while True:  # fill the accept queue
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            waiting.append(client)
            try:
                client.connect(path)
            except BlockingIOError:
                waiting.pop().close()
                break
        task = loop.create_task(netkit.open_unix_connection(path))
        for _ in range(20):
            await netkit.sleep(0)
        assert not task.done(), "connected (or failed) while the server had no room"
        busy.settimeout(5)  # a bounded accept, should the count be off
        accepted, _ = busy.accept()  # room for one more
        reader, writer = await task
        assert writer.get_extra_info("peername") == path  # really connected
        for _ in waiting[1:]:  # the queue: the other waiting clients, then ours
            busy.accept()[0].close()
        mine, _ = busy.accept()
        writer.write(b"made it")
        await writer.drain()
        mine.settimeout(5)
        assert mine.recv(100) == b"made it"
        mine.close()
        accepted.close()
        writer.close()
        await writer.wait_closed()
    finally:
        for client in waiting:
            client.close()
        busy.close()


async def test_a_file_that_is_not_a_socket_is_left_alone(loop: EventLoop, path: str) -> None:
    with open(path, "w") as file:
        file.write("precious")
    with pytest.raises(OSError) as info:
        await loop.create_unix_server(Echo, path)
    assert info.value.errno == errno.EEXIST
    with open(path) as file:
        assert file.read() == "precious"


async def test_cleanup_socket_false_keeps_the_file(loop: EventLoop, path: str) -> None:
    server = await loop.create_unix_server(Echo, path, cleanup_socket=False)
    server.close()
    await server.wait_closed()
    assert os.path.exists(path)


async def test_connecting_to_a_path_nobody_listens_on(loop: EventLoop, path: str) -> None:
    with pytest.raises(FileNotFoundError):
        await loop.create_unix_connection(lambda: Recorder(loop), path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        await loop.create_unix_connection(lambda: Recorder(loop), path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
async def test_abstract_namespace_socket(loop: EventLoop) -> None:
    name = f"\0netkit-test-{os.getpid()}"
    server = await loop.create_unix_server(Echo, name)
    reader, writer = await netkit.open_unix_connection(name)
    writer.write(b"abstract")
    assert await reader.readexactly(8) == b"abstract"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_unix_streams_api(loop: EventLoop, path: str) -> None:
    async def handle(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()

    server = await netkit.start_unix_server(handle, path)
    reader, writer = await netkit.open_unix_connection(path)
    writer.write(b"shout this\n")
    assert await reader.readline() == b"SHOUT THIS\n"
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
