"""A peer that goes away is a disconnect, not a bug.

Every system call on a connected socket can fail because the peer reset the
connection or the network dropped it: ``shutdown`` and ``getpeername`` with
``ENOTCONN`` after a reset, ``send``/``sendmsg`` with ``EPIPE``, ``recv`` with
``ETIMEDOUT`` or ``EHOSTUNREACH``, ``accept`` with a connection that died in
the queue.  Each must reach the protocol as ``connection_lost(exc)`` and
nothing else: no report to the exception handler, no traceback in the log.
Errors that only a bug can cause (``EBADF``, ``EINVAL``) still reach the
exception handler.

The real conditions are provoked over loopback where the timing can be
forced; the others are injected with a socket whose calls fail on demand.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import struct
from typing import Any

import pytest

import netkit
from netkit import EventLoop

from transport_helpers import Recorder, port_of

# errno values a peer or the network can cause on an established connection.
DISCONNECT_ERRNOS = [
    errno.ENOTCONN,
    errno.ECONNRESET,
    errno.EPIPE,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
]

# errno values only a bug (netkit's or its user's) can cause.
BUG_ERRNOS = [errno.EBADF, errno.EINVAL, errno.ENOTSOCK]


def _reset_on_close(sock: socket.socket) -> None:
    # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _wait_readable(sock: socket.socket) -> None:
    # Bounded wait for the kernel to have news for this socket (data, FIN or RST).
    readable, _, _ = select.select([sock], [], [], 5.0)
    assert readable, "nothing reached the socket"


def _netkit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "netkit"]


def assert_quiet_disconnect(errors: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing reached the exception handler, nothing above debug level was
    logged, and no log record carries a traceback."""
    assert errors.contexts == [], errors.messages
    for record in _netkit_records(caplog):
        assert record.levelno <= logging.DEBUG, record.getMessage()
        assert not record.exc_info, record.getMessage()


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair over loopback: (ours, the peer's)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ours = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
    return ours, peer


# ---------------------------------------------------- real resets over loopback


async def test_write_eof_after_the_peer_reset_is_a_disconnect(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    ours, peer = tcp_pair()
    transport, protocol = await loop.create_connection(lambda: Recorder(loop), sock=ours)
    transport.pause_reading()  # so that the reset is met by shutdown(), not by recv()
    _reset_on_close(peer)
    peer.close()
    _wait_readable(ours)  # the RST has arrived
    transport.write_eof()  # shutdown(SHUT_WR) on a reset connection: ENOTCONN
    exc = await protocol.lost
    assert isinstance(exc, OSError) and exc.errno == errno.ENOTCONN
    assert protocol.lost_calls == [exc]
    assert transport.is_closing()
    assert_quiet_disconnect(errors, caplog)


async def test_write_after_the_peer_reset_is_a_disconnect(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    ours, peer = tcp_pair()
    transport, protocol = await loop.create_connection(lambda: Recorder(loop), sock=ours)
    transport.pause_reading()
    _reset_on_close(peer)
    peer.close()
    _wait_readable(ours)
    transport.writelines([b"too ", b"late"])  # sendmsg() on a reset connection
    exc = await protocol.lost
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
    assert protocol.lost_calls == [exc]
    assert_quiet_disconnect(errors, caplog)


class WriteThenHalfClose(Recorder):
    """A server that answers at once and half-closes, as an HTTP/1.0 server or
    a WebSocket server finishing its closing handshake does."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.write(b"bye")
        transport.write_eof()


def _connect_and_reset(port: int, count: int) -> None:
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        _reset_on_close(client)
        client.close()


async def test_clients_that_reset_right_after_connecting_never_reach_the_exception_handler(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    cycles = 200
    peers: list[Recorder] = []
    all_accepted = netkit.Event()

    def factory() -> Recorder:
        peers.append(WriteThenHalfClose(loop, keep_open=True))
        if len(peers) == cycles:
            all_accepted.set()
        return peers[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    # A thread connects and resets while the loop accepts, writes and shuts
    # down: the RST lands before, between or after those calls.
    await netkit.to_thread(_connect_and_reset, port_of(server), cycles)
    await all_accepted.wait()
    for peer in peers:
        await peer.lost
        assert len(peer.lost_calls) == 1
    assert_quiet_disconnect(errors, caplog)
    server.close()
    await server.wait_closed()


async def test_a_connection_reset_before_the_accept_is_a_disconnect(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0, start_serving=False)
    server.start_serving_now()  # listening, but the loop has not run the accept yet
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    _reset_on_close(client)
    client.close()
    while not peers:
        await netkit.sleep(0)
    exc = await peers[0].lost
    assert isinstance(exc, ConnectionResetError)
    assert peers[0].transport.get_extra_info("peername") is not None
    assert_quiet_disconnect(errors, caplog)
    server.close()
    await server.wait_closed()


# --------------------------------------------------------- injected failures


class FaultySocket(socket.socket):
    """A socket whose calls fail on demand: ``faults[name]`` is a list of
    exceptions that the next calls of method ``name`` raise, one per call."""

    faults: dict[str, list[BaseException]]

    def _next_fault(self, name: str) -> None:
        pending = self.faults.get(name)
        if pending:
            raise pending.pop(0)

    def recv_into(self, *args: Any) -> int:
        self._next_fault("recv_into")
        return super().recv_into(*args)

    def send(self, *args: Any) -> int:
        self._next_fault("send")
        return super().send(*args)

    def sendmsg(self, *args: Any) -> int:
        self._next_fault("sendmsg")
        return super().sendmsg(*args)

    def shutdown(self, how: int) -> None:
        self._next_fault("shutdown")
        super().shutdown(how)

    def setsockopt(self, *args: Any) -> None:
        self._next_fault("setsockopt")
        super().setsockopt(*args)

    def getpeername(self) -> Any:
        self._next_fault("getpeername")
        return super().getpeername()

    def accept(self) -> tuple[socket.socket, Any]:
        self._next_fault("accept")
        return super().accept()


def faulty(sock: socket.socket, **faults: list[BaseException]) -> FaultySocket:
    """``sock`` (detached) as a ``FaultySocket`` with ``faults``."""
    result = FaultySocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    result.faults = dict(faults)
    return result


def _provoke_read(transport: Any, peer: socket.socket) -> None:
    peer.send(b"wake up")  # the transport's next recv_into() fails


def _provoke_write(transport: Any, peer: socket.socket) -> None:
    transport.write(b"hello")  # send() fails at once


def _provoke_writelines(transport: Any, peer: socket.socket) -> None:
    transport.writelines([b"hel", b"lo"])  # sendmsg() fails at once


def _provoke_buffered_write(transport: Any, peer: socket.socket) -> None:
    transport.write(b"hello")  # the first send() would block; the retry fails


def _provoke_write_eof(transport: Any, peer: socket.socket) -> None:
    transport.write_eof()  # shutdown(SHUT_WR) fails


# (the call that fails, its failures before the one under test, how to provoke it)
OPERATIONS = {
    "recv": ("recv_into", [], _provoke_read),
    "send": ("send", [], _provoke_write),
    "sendmsg": ("sendmsg", [], _provoke_writelines),
    "send-when-writable": ("send", [BlockingIOError(errno.EAGAIN, "would block")], _provoke_buffered_write),
    "shutdown": ("shutdown", [], _provoke_write_eof),
}


async def _fail_one_call(loop: EventLoop, operation: str, exc: OSError) -> tuple[Any, Recorder]:
    method, before, provoke = OPERATIONS[operation]
    ours, peer = tcp_pair()
    sock = faulty(ours, **{method: [*before, exc]})
    transport, protocol = await loop.create_connection(lambda: Recorder(loop), sock=sock)
    try:
        provoke(transport, peer)
        await protocol.lost
    finally:
        peer.close()
    return transport, protocol


@pytest.mark.parametrize("code", DISCONNECT_ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_a_disconnect_error_from_any_call_is_connection_lost_only(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture, operation: str, code: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    exc = OSError(code, "injected")
    transport, protocol = await _fail_one_call(loop, operation, exc)
    assert protocol.lost_calls == [exc]
    assert transport.is_closing()
    assert_quiet_disconnect(errors, caplog)


@pytest.mark.parametrize("code", BUG_ERRNOS, ids=errno.errorcode.get)
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_an_error_only_a_bug_causes_still_reaches_the_exception_handler(
    loop: EventLoop, errors: Any, operation: str, code: int
) -> None:
    exc = OSError(code, "injected")
    transport, protocol = await _fail_one_call(loop, operation, exc)
    assert protocol.lost_calls == [exc]
    assert errors.exceptions == [exc]


async def test_an_accepted_socket_that_refuses_tcp_nodelay_after_a_reset_is_served(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some systems (macOS) fail setsockopt(TCP_NODELAY) with EINVAL on a
    # connection reset before the accept: the reset is the news, not the option.
    caplog.set_level(logging.DEBUG, logger="netkit")
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    real_accept = socket.socket.accept

    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        conn, addr = real_accept(self)
        return faulty(conn, setsockopt=[OSError(errno.EINVAL, "injected")]), addr

    monkeypatch.setattr(socket.socket, "accept", accept)
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    _reset_on_close(client)
    client.close()
    while not peers:
        await netkit.sleep(0)
    exc = await peers[0].lost
    assert isinstance(exc, ConnectionResetError)
    assert_quiet_disconnect(errors, caplog)
    server.close()
    await server.wait_closed()


async def test_a_transport_that_cannot_be_set_up_drops_its_connection_and_serves_the_next(
    loop: EventLoop, errors: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    real_accept = socket.socket.accept
    accepted: list[socket.socket] = []

    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        conn, addr = real_accept(self)
        if not accepted:  # the first connection's socket is broken beyond repair
            conn = faulty(conn, setsockopt=[OSError(errno.EBADF, "injected")])
        accepted.append(conn)
        return conn, addr

    monkeypatch.setattr(socket.socket, "accept", accept)
    first = socket.create_connection(("127.0.0.1", port_of(server)))
    second = socket.create_connection(("127.0.0.1", port_of(server)))
    try:
        while len(accepted) < 2 or not peers:
            await netkit.sleep(0)
        await peers[-1].made
        assert accepted[0].fileno() == -1  # closed at once, not left to the garbage collector
        assert [type(exc) for exc in errors.exceptions] == [OSError]
        assert errors.exceptions[0].errno == errno.EBADF
        assert server.is_serving()
    finally:
        first.close()
        second.close()
    await peers[-1].lost
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    "code",
    # Linux accept(2): errors already pending on the new connection are
    # returned by accept() and "should be treated like EAGAIN".
    [errno.ECONNABORTED, errno.EPROTO, errno.ENETDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN],
    ids=errno.errorcode.get,
)
async def test_accept_skips_a_connection_that_died_in_the_queue(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="netkit")
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    real_accept = socket.socket.accept
    failures = [OSError(code, "injected")]

    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        if failures:
            raise failures.pop()
        return real_accept(self)

    monkeypatch.setattr(socket.socket, "accept", accept)
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    try:
        while not peers:
            await netkit.sleep(0)
        await peers[0].made
    finally:
        client.close()
    await peers[0].lost
    assert_quiet_disconnect(errors, caplog)
    server.close()
    await server.wait_closed()


async def test_accept_failing_with_a_bug_errno_reaches_the_exception_handler(
    loop: EventLoop, errors: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers: list[Recorder] = []
    server = await loop.create_server(lambda: peers.append(Recorder(loop)) or peers[-1], "127.0.0.1", 0)
    reported = netkit.Event()
    log = loop.get_exception_handler()

    def handler(event_loop: EventLoop, context: dict[str, Any]) -> None:
        log(event_loop, context)
        reported.set()

    loop.set_exception_handler(handler)

    real_accept = socket.socket.accept
    failures = [OSError(errno.EINVAL, "injected")]

    def accept(self: socket.socket) -> tuple[socket.socket, Any]:
        if failures:
            raise failures.pop()
        return real_accept(self)

    monkeypatch.setattr(socket.socket, "accept", accept)
    client = socket.create_connection(("127.0.0.1", port_of(server)))
    try:
        await reported.wait()
        while not peers:  # the listener survived: the connection is accepted next
            await netkit.sleep(0)
        await peers[0].made
    finally:
        client.close()
    await peers[0].lost
    assert [exc.errno for exc in errors.exceptions] == [errno.EINVAL]
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------- datagrams


class DatagramErrors(netkit.DatagramProtocol):
    def __init__(self, loop: EventLoop) -> None:
        self.errors: list[OSError] = []
        self.error: netkit.Future[OSError] = loop.create_future()

    def error_received(self, exc: OSError) -> None:
        self.errors.append(exc)
        if not self.error.done():
            self.error.set_result(exc)


async def test_port_unreachable_on_a_datagram_socket_is_news_for_the_protocol_only(
    loop: EventLoop, errors: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # UDP has no connection to lose: the ICMP error reaches error_received,
    # and the endpoint stays open.
    caplog.set_level(logging.DEBUG, logger="netkit")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()
    transport, protocol = await loop.create_datagram_endpoint(lambda: DatagramErrors(loop), remote_addr=nobody)
    transport.sendto(b"anyone there?")
    exc = await protocol.error
    assert isinstance(exc, ConnectionRefusedError)
    transport.sendto(b"still sending")  # the endpoint is usable
    assert not transport.is_closing()
    transport.close()
    assert_quiet_disconnect(errors, caplog)
