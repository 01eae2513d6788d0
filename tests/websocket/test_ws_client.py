"""``connect`` over loopback: the request it sends, refusals and what they
carry, redirects, ``open_timeout``, and the client's own limits and
keepalive."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any

import pytest

import netkit
from netkit import ConnectionClosedError, HandshakeError, HTTPError, InvalidURI
from netkit.http import Response
from netkit.websocket import FrameParser, State, WebSocket, accept_key, connect, serialize_frame, serve
from netkit.websocket.frames import CLOSE

from ws_loop_helpers import TEST_DEADLINE, RecordingHandler, port_of, run, uri_of


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def test_await_connect_and_async_with_connect() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            ws = await connect(uri_of(server))
            assert isinstance(ws, WebSocket) and ws.state is State.OPEN
            await ws.send("awaited")
            assert await ws.recv() == "awaited"
            await ws.close()
            assert ws.state is State.CLOSED
            async with connect(uri_of(server)) as ws:
                await ws.send("in a block")
                assert await ws.recv() == "in a block"
            # Leaving the block ran the closing handshake.
            assert ws.state is State.CLOSED and ws.close_code == 1000

    run(scenario())


def test_the_request_carries_origin_subprotocols_and_extra_headers() -> None:
    async def scenario() -> None:
        seen = {}

        async def handler(ws: WebSocket) -> None:
            headers = ws.request.headers
            seen.update(
                origin=headers.get("Origin"),
                protocols=headers.get("Sec-WebSocket-Protocol"),
                auth=headers.get("Authorization"),
                host=headers.get("Host"),
                target=ws.request.target,
            )

        async with await serve(handler, "127.0.0.1", 0) as server:
            port = port_of(server)
            async with connect(
                uri_of(server, "/path?q=1"),
                origin="https://app.example",
                subprotocols=["a", "b"],
                extra_headers={"Authorization": "Bearer t0ken"},
            ) as ws:
                await ws.wait_closed()
                assert ws.request.headers.get("Authorization") == "Bearer t0ken"
        assert seen == {
            "origin": "https://app.example",
            "protocols": "a, b",
            "auth": "Bearer t0ken",
            "host": f"127.0.0.1:{port}",
            "target": "/path?q=1",
        }

    run(scenario())


def test_a_refused_handshake_raises_handshake_error_with_status_headers_and_body() -> None:
    async def scenario() -> None:
        def process_request(request):
            return Response(401, headers=[("WWW-Authenticate", 'Bearer realm="ws"')], body=b"log in first\n")

        async with await serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server))
        error = caught.value
        assert error.status == 401
        assert ("WWW-Authenticate", 'Bearer realm="ws"') in error.headers
        assert error.body == b"log in first\n"
        assert "401" in str(error)

    run(scenario())


def test_a_response_that_is_not_a_websocket_handshake_is_refused() -> None:
    async def scenario() -> None:
        async def not_websocket(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            # A 101 without Sec-WebSocket-Accept.
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await netkit.start_server(not_websocket, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(HandshakeError) as caught:
            await connect(f"ws://127.0.0.1:{port}/")
        assert "Sec-WebSocket-Accept" in str(caught.value)
        server.close()
        await server.wait_closed()

    run(scenario())


def test_redirects_are_followed_only_when_asked_and_only_so_far() -> None:
    async def scenario() -> None:
        def process_request(request):
            target = request.target
            if target.startswith("/hop/"):
                remaining = int(target.rsplit("/", 1)[1])
                location = "/ws" if remaining == 0 else f"/hop/{remaining - 1}"
                return Response(302, headers=[("Location", location)])
            if target == "/absolute":
                return Response(301, headers=[("Location", f"http://127.0.0.1:{port}/ws")])
            return None

        async with await serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
            port = port_of(server)
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server, "/hop/0"))
            assert caught.value.status == 302
            assert ("Location", "/ws") in caught.value.headers
            async with connect(uri_of(server, "/hop/2"), max_redirects=3) as ws:
                assert ws.request.target == "/ws"
                await ws.send("arrived")
                assert await ws.recv() == "arrived"
            async with connect(uri_of(server, "/absolute"), max_redirects=1) as ws:
                assert ws.request.target == "/ws"
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server, "/hop/5"), max_redirects=2)
            assert "too many redirects (max_redirects=2)" in str(caught.value)

    run(scenario())


def test_open_timeout_against_a_server_that_never_answers() -> None:
    async def scenario() -> None:
        held: list[tuple[netkit.StreamReader, netkit.StreamWriter]] = []

        async def silent(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
            held.append((reader, writer))  # accept, say nothing

        server = await netkit.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.1)
        (reader, writer), = held
        # The client sent its request, then dropped the connection when it gave up.
        assert (await reader.read()).startswith(b"GET / HTTP/1.1\r\n")
        writer.close()
        server.close()
        await server.wait_closed()

    run(scenario())


def test_connection_refused_and_unsupported_uris() -> None:
    async def scenario() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        uri = uri_of(server)
        server.close()
        await server.wait_closed()
        with pytest.raises(OSError):
            await connect(uri)
        with pytest.raises(InvalidURI):
            await connect("wss://127.0.0.1:1/")
        with pytest.raises(InvalidURI):
            await connect("http://127.0.0.1/")
        with pytest.raises(TypeError):
            connect("ws://127.0.0.1/", max_mesage_size=1)

    run(scenario())


def test_the_client_enforces_its_own_max_message_size() -> None:
    async def scenario() -> None:
        async def big(ws: WebSocket) -> None:
            await ws.send("x" * 2000)
            await ws.wait_closed()

        async with await serve(big, "127.0.0.1", 0) as server:
            async with connect(uri_of(server), max_message_size=1000) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
        assert "message of 2000 bytes exceeds max_message_size=1000 (local)" in str(caught.value)

    run(scenario())


def test_client_keepalive_closes_a_server_that_stops_answering() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, auto_pong=False, ping_interval=None) as server:
            async with connect(uri_of(server), ping_interval=0.05, ping_timeout=0.05) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
                await ws.wait_closed()
                assert ws.state is State.CLOSED
                assert ws.protocol.connection.close_sent.code == 1011

    run(scenario())


def test_close_is_bounded_against_a_server_that_never_closes_tcp() -> None:
    async def scenario() -> None:
        held: list[netkit.StreamWriter] = []

        async def lingering(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
            # A server that answers the closing handshake but never closes TCP.
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
            )
            parser = FrameParser(expect_masked=True)
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for frame in parser.feed(data):
                    if frame.opcode == CLOSE:
                        writer.write(serialize_frame(CLOSE, frame.payload))
                        held.append(writer)

        server = await netkit.start_server(lingering, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/", close_timeout=0.2)
        await netkit.wait_for(ws.close(1000, "bye"), 5)
        # The closing handshake completed; the TCP close never came, and the
        # one deadline of the closing sequence ended the wait.
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()

    run(scenario())


# A hostile server: every answer it can give fails connect() with the
# documented error, and nothing reaches the loop's exception handler or the
# log as a traceback.


class RawServer:
    """A plain socket server on 127.0.0.1, in a thread outside the loop under
    test: it reads each request head and answers it with ``answer``, then,
    by ``end``, keeps the connection open until the client closes it
    (``"hold"``), half-closes it first (``"close"``) or resets it (``"reset"``)."""

    def __init__(self, answer: bytes, end: str = "hold", connections: int = 1) -> None:
        self.answer = answer
        self.end = end
        self.connections = connections
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TEST_DEADLINE)
        self.uri = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.listener:
            for _ in range(self.connections):
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                with conn:
                    try:
                        self._answer(conn)
                    except OSError:
                        pass  # the client gave up first

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(TEST_DEADLINE)
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        self.requests.append(head)
        conn.sendall(self.answer)
        if self.end == "reset":
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if self.end == "close":
            conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass  # until the client closes its end

    async def finished(self) -> None:
        """Wait, without blocking the loop, until every connection is over."""
        await netkit.to_thread(self.thread.join, TEST_DEADLINE)
        assert not self.thread.is_alive()


def connect_quietly(uri: str, **options: Any) -> Any:
    """Run ``connect(uri)`` on a fresh loop; return what it raised, with
    everything that reached the exception handler and the ``netkit`` log."""
    reported: list[dict[str, Any]] = []
    log = RecordingHandler()
    logger = logging.getLogger("netkit")
    logger.addHandler(log)

    async def scenario() -> BaseException:
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        try:
            ws = await connect(uri, **options)
        except BaseException as error:
            return error
        await ws.close()
        raise AssertionError("connect() succeeded")

    try:
        error = run(scenario())
    finally:
        logger.removeHandler(log)
    return error, reported, log.records


def check_quiet(reported: list[dict[str, Any]], records: list[logging.LogRecord]) -> None:
    assert reported == []
    assert [record.getMessage() for record in records if record.exc_info or record.levelno >= logging.WARNING] == []


def redirect(status: int, location: bytes) -> bytes:
    """A redirect to ``location``, with an empty body."""
    return b"HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status, location)


HEAD_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

HOSTILE_ANSWERS = {
    # name: (answer, how the server ends, the status of the HandshakeError)
    "a Content-Length of a superscript two": (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: \xb2\r\n\r\nlog in",
        "hold",
        401,
    ),
    "a Content-Length of 19 digits": (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\nlog in",
        "hold",
        401,
    ),
    "a Content-Length of 5000 digits": (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nlog in",
        "hold",
        401,
    ),
    "a refusal with a malformed chunked body": (
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nlog in\r\nzz\r\n",
        "hold",
        401,
    ),
    "a refusal with a chunk size of 17 hex digits": (
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n",
        "hold",
        401,
    ),
    "a refusal with a body, closed": (b"HTTP/1.0 403 Forbidden\r\n\r\nno entry", "close", 403),
    "a refusal with a body, reset": (
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nno entry",
        "reset",
        0,
    ),
    "a redirect to a malformed URI": (redirect(302, b"http://[::1/"), "hold", 302),
    "a redirect to another scheme": (redirect(302, b"ftp://127.0.0.1/"), "hold", 302),
    "a redirect to wss": (redirect(301, b"https://127.0.0.1/"), "hold", 301),
    "a redirect to port 99999": (redirect(307, b"//127.0.0.1:99999/"), "hold", 307),
    "a redirect to a port of non-ASCII digits": (redirect(308, b"//127.0.0.1:\xb2/"), "hold", 308),
    "a redirect to an empty Location": (redirect(302, b""), "hold", 302),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "hold", 0),
    "a status code of 000": (b"HTTP/1.1 000 Zero\r\n\r\n", "hold", 0),
    "a head over max_head_size": (HEAD_101 + b"X: y\r\n" * 2000 + b"\r\n", "hold", 0),
    "interim responses without end": (b"HTTP/1.1 103 Early Hints\r\n\r\n" * 6, "hold", 0),
    "a 101 without Sec-WebSocket-Accept": (HEAD_101 + b"\r\n", "hold", 101),
    "a head cut short by a close": (HEAD_101[:20], "close", 0),
    "a head cut short by a reset": (HEAD_101[:20], "reset", 0),
    "nothing before a close": (b"", "close", 0),
}


@pytest.mark.parametrize("name", HOSTILE_ANSWERS)
def test_connect_fails_with_a_handshake_error_whatever_the_server_answers(name):
    answer, end, status = HOSTILE_ANSWERS[name]
    server = RawServer(answer, end)
    error, reported, records = connect_quietly(server.uri, max_redirects=3)
    run(server.finished())
    assert isinstance(error, HandshakeError), repr(error)
    assert error.status == status, error
    check_quiet(reported, records)


def test_a_refusal_with_a_malformed_body_keeps_what_the_server_said():
    answer, end, _ = HOSTILE_ANSWERS["a refusal with a malformed chunked body"]
    server = RawServer(answer, end)
    error, _, _ = connect_quietly(server.uri)
    run(server.finished())
    assert "HTTP 401 Unauthorized" in str(error) and "malformed chunk size line" in str(error)
    assert error.body == b"log in" and ("Transfer-Encoding", "chunked") in error.headers
    assert isinstance(error.__cause__, HTTPError)


def test_a_reset_during_the_handshake_is_the_cause_of_the_handshake_error():
    server = RawServer(HEAD_101[:20], "reset")
    error, _, _ = connect_quietly(server.uri)
    run(server.finished())
    assert "lost during the opening handshake" in str(error)
    assert isinstance(error.__cause__, ConnectionResetError)


def test_an_unfollowable_redirect_keeps_the_redirect():
    server = RawServer(b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/\r\nContent-Length: 4\r\n\r\ngone", "hold")
    error, _, _ = connect_quietly(server.uri, max_redirects=1)
    run(server.finished())
    assert "redirected to 'ftp://127.0.0.1/', which cannot be followed" in str(error)
    assert ("Location", "ftp://127.0.0.1/") in error.headers and error.body == b"gone"
    assert isinstance(error.__cause__, InvalidURI)


def test_a_head_that_never_ends_is_cut_by_open_timeout_quietly():
    server = RawServer(HEAD_101[:20], "hold")
    error, reported, records = connect_quietly(server.uri, open_timeout=0.1)
    run(server.finished())
    assert isinstance(error, TimeoutError)
    check_quiet(reported, records)
