"""``serve`` and its options over loopback: handlers and their outcome, the
HTTP phase (``process_request``, origins, refusals, ``open_timeout``),
``max_connections``, limits, shutting down, Unix sockets, and file
descriptors."""

from __future__ import annotations

import logging
import os
import socket
import sys

import pytest

import netkit
from netkit import ConnectionClosedError, ConnectionClosedOK, HandshakeError
from netkit.http import Response
from netkit.websocket import State, WebSocket, WebSocketHandler, connect, serialize_frame, serve, unix_connect, unix_serve
from netkit.websocket.frames import BINARY, CLOSE, PING, RSV1, TEXT

from ws_loop_helpers import (
    RawClient,
    RecordingHandler,
    close_code_of,
    opening_request,
    port_of,
    run,
    small_buffer_listener,
    uri_of,
)


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def http_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and return everything until the server closes."""
    reader, writer = await netkit.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        return await reader.read()
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# ------------------------------------------------------------------- handlers


def test_a_handler_that_returns_closes_the_connection_with_1000() -> None:
    async def scenario() -> None:
        async def handler(ws: WebSocket) -> None:
            await ws.send("hello")

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                assert await ws.recv() == "hello"
                with pytest.raises(ConnectionClosedOK) as caught:
                    await ws.recv()
                assert caught.value.code == 1000

    run(scenario())


def test_a_handler_that_raises_closes_with_1011_logs_the_traceback_and_the_server_goes_on() -> None:
    async def scenario() -> None:
        reports: list[dict[str, object]] = []
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))

        async def handler(ws: WebSocket) -> None:
            message = await ws.recv()
            if message == "crash":
                raise ValueError("the handler broke")
            await ws.send(f"fine: {message}")

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send("crash")
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1011
                assert "broke" not in caught.value.reason  # nothing of the error leaks to the peer
            assert len(reports) == 1
            exception = reports[0]["exception"]
            assert isinstance(exception, ValueError) and exception.__traceback__ is not None
            assert "1011" in str(reports[0]["message"])
            async with connect(uri_of(server)) as ws:
                await ws.send("still there?")
                assert await ws.recv() == "fine: still there?"

    run(scenario())


def test_the_default_exception_handler_logs_the_handler_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async def handler(ws: WebSocket) -> None:
            raise KeyError("missing")

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()

    with caplog.at_level(logging.ERROR, logger="netkit"):
        run(scenario())
    records = [record for record in caplog.records if record.exc_info and record.exc_info[0] is KeyError]
    assert len(records) == 1
    assert "Traceback" in caplog.text and "missing" in caplog.text


def test_a_handler_that_ignores_a_closed_connection_is_not_reported() -> None:
    async def scenario() -> None:
        reports: list[dict[str, object]] = []
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            try:
                await ws.recv()
            finally:
                done.set()

        async with await serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(uri_of(server))
            await ws.close()
            await done.wait()
        assert reports == []

    run(scenario())


# ----------------------------------------------------------------- HTTP phase


def test_process_request_serves_pages_on_the_same_port_and_lets_websockets_through() -> None:
    async def scenario() -> None:
        def process_request(request):
            if request.target == "/":
                return Response(200, headers=[("Content-Type", "text/html")], body=b"<h1>hello</h1>")
            if request.target == "/healthz":
                return Response(200, body=b"ok\n")
            if request.target != "/ws":
                return Response(404, body=b"not found\n")
            return None  # go on with the WebSocket handshake

        async with await serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
            port = port_of(server)
            page = await http_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = page.partition(b"\r\n\r\n")
            assert status_of(page) == 200 and body == b"<h1>hello</h1>"
            assert b"Content-Length: 14" in head and b"Connection: close" in head
            health = await http_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(health) == 200 and health.endswith(b"\r\n\r\nok\n")
            missing = await http_exchange(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(missing) == 404
            async with connect(uri_of(server, "/ws")) as ws:
                await ws.send("upgraded")
                assert await ws.recv() == "upgraded"
            # A client that asks to upgrade where a page is gets the page, as an error.
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server, "/healthz"))
            assert caught.value.status == 200 and caught.value.body == b"ok\n"

    run(scenario())


def test_a_process_request_that_raises_answers_500_and_is_reported() -> None:
    async def scenario() -> None:
        reports: list[dict[str, object]] = []
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))

        def process_request(request):
            raise RuntimeError("hook bug")

        async with await serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
            answer = await http_exchange(port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(answer) == 500
            assert b"hook bug" not in answer
        assert len(reports) == 1 and isinstance(reports[0]["exception"], RuntimeError)

    run(scenario())


def test_requests_that_are_not_websocket_handshakes_get_complete_http_errors() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            port = port_of(server)
            plain = await http_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(plain) == 426 and b"Upgrade: websocket" in plain
            post = await http_exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert status_of(post) == 405
            garbage = await http_exchange(port, b"\x16\x03\x01 not http at all\r\n\r\n")
            assert status_of(garbage) == 400
            long_line = await http_exchange(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")
            assert status_of(long_line) == 414
            request, _ = opening_request(extra="Sec-WebSocket-Version: 8\r\n")
            wrong_version = await http_exchange(port, request.replace(b"Sec-WebSocket-Version: 13\r\n", b"", 1))
            assert status_of(wrong_version) == 426 and b"Sec-WebSocket-Version: 13" in wrong_version

    run(scenario())


def test_origins_refuse_what_is_not_allowed_with_403() -> None:
    async def scenario() -> None:
        allowed = ["https://app.example", None]
        async with await serve(echo, "127.0.0.1", 0, origins=allowed) as server:
            async with connect(uri_of(server), origin="https://app.example") as ws:
                await ws.send("welcome")
                assert await ws.recv() == "welcome"
            async with connect(uri_of(server)) as ws:  # no Origin: a non-browser client
                await ws.send("also welcome")
                assert await ws.recv() == "also welcome"
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server), origin="https://evil.example")
            assert caught.value.status == 403
            assert b"origin" in caught.value.body and b"evil" not in caught.value.body

        async with await serve(echo, "127.0.0.1", 0, origins=lambda origin: bool(origin and origin.endswith(".example"))) as server:
            async with connect(uri_of(server), origin="https://any.example"):
                pass
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server))
            assert caught.value.status == 403

    run(scenario())


def test_extra_headers_and_the_chosen_subprotocol_are_in_the_response() -> None:
    async def scenario() -> None:
        async with await serve(
            echo, "127.0.0.1", 0, subprotocols=["v2"], extra_headers=[("X-Server", "netkit test")]
        ) as server:
            async with connect(uri_of(server), subprotocols=["v1", "v2"]) as ws:
                assert ws.response.headers.get("X-Server") == "netkit test"
                assert ws.subprotocol == "v2"
            async with connect(uri_of(server), subprotocols=["v1"]) as ws:
                assert ws.subprotocol is None  # no overlap: the server chooses none

    run(scenario())


def test_open_timeout_drops_a_client_that_connects_and_sends_nothing() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
            reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
            try:
                assert await reader.read() == b""  # dropped without a word
            except ConnectionResetError:
                pass
            writer.close()

    run(scenario())


def test_open_timeout_drops_a_client_that_trickles_its_request() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
            reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
            request, _ = opening_request()
            dropped = netkit.create_task(reader.read())
            for byte in request[:-2]:  # never the final blank line
                if dropped.done():
                    break
                writer.write(bytes([byte]))
                await netkit.sleep(0.002)
            try:
                assert await dropped == b""
            except ConnectionResetError:
                pass
            writer.close()

    run(scenario())


def test_open_timeout_also_bounds_an_answer_the_client_does_not_read() -> None:
    async def scenario() -> None:
        page = b"x" * (8 << 20)

        def process_request(request):
            return Response(200, body=page)

        sock = small_buffer_listener()
        async with await serve(echo, sock=sock, process_request=process_request, open_timeout=0.2) as server:
            raw_sock = socket.socket()
            raw_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw_sock.connect(("127.0.0.1", port_of(server)))
            reader, writer = await netkit.open_connection(sock=raw_sock)
            writer.transport.pause_reading()  # asks for a big page, never reads it
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            while not server._state.protocols:
                await netkit.sleep(0)  # until the server has accepted it
            dropped = netkit.Event()
            next(iter(server._state.protocols)).add_closed_callback(lambda protocol: dropped.set())
            # The server does not hold the connection (and 8 MiB) for ever.
            await dropped.wait()
        writer.close()

    run(scenario())


def test_open_timeout_does_not_touch_an_open_connection() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, open_timeout=0.05) as server:
            async with connect(uri_of(server)) as ws:
                # Well past open_timeout, several times over.
                for _ in range(3):
                    await netkit.sleep(0.05)
                    await ws.send("still open")
                    assert await ws.recv() == "still open"

    run(scenario())


def test_max_connections_answers_503_to_the_excess_until_a_place_frees() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, max_connections=2) as server:
            first = await connect(uri_of(server))
            second = await connect(uri_of(server))
            with pytest.raises(HandshakeError) as caught:
                await connect(uri_of(server))
            assert caught.value.status == 503
            assert ("Retry-After", "1") in caught.value.headers
            assert b"max_connections=2" in caught.value.body
            await first.close()
            third = await connect(uri_of(server))
            await third.send("in")
            assert await third.recv() == "in"
            await second.close()
            await third.close()

    run(scenario())


# --------------------------------------------------------------------- limits


def test_a_message_over_max_message_size_names_the_limit_side_and_values() -> None:
    async def scenario() -> None:
        records = RecordingHandler()
        logging.getLogger("netkit.websocket").addHandler(records)
        seen: list[BaseException] = []
        ended = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                seen.append(exc)
            ended.set()

        try:
            async with await serve(handler, "127.0.0.1", 0) as server:
                async with connect(uri_of(server), max_message_size=None) as ws:
                    await ws.send(b"\x00" * (2 * 1024 * 1024))
                    with pytest.raises(ConnectionClosedError) as caught:
                        await ws.recv()
                    await ended.wait()
        finally:
            logging.getLogger("netkit.websocket").removeHandler(records)
        expected = "message of 2097152 bytes exceeds max_message_size=1048576 (local)"
        # The server's application and its log say which limit, which side, which values.
        assert len(seen) == 1 and expected in str(seen[0])
        assert any(expected in message for message in records.messages())
        # The peer gets 1009 and a reason that names our limit, nothing of its own data.
        assert caught.value.code == 1009
        assert caught.value.reason == "max_message_size=1048576 exceeded"

    run(scenario())


@pytest.mark.parametrize("api", ["async", "callback"])
@pytest.mark.parametrize("arrival", ["one read", "fragment by fragment", "byte by byte"])
def test_the_warning_for_a_fragmented_message_over_the_limit_gives_the_message_size(api: str, arrival: str) -> None:
    """Not the size of the fragment that went over, nor the limit: the size
    of the message so far, all fragments together."""

    async def scenario() -> None:
        records = RecordingHandler()
        logging.getLogger("netkit.websocket").addHandler(records)
        handler = echo if api == "async" else WebSocketHandler
        fragments = [
            serialize_frame(TEXT, b"a" * 600, fin=False, mask=True),
            serialize_frame(0x0, b"b" * 300, fin=False, mask=True),
            serialize_frame(0x0, b"c" * 300, fin=True, mask=True),
        ]
        wire = b"".join(fragments)
        try:
            async with await serve(handler, "127.0.0.1", 0, max_message_size=1000, ping_interval=None) as server:
                raw = await RawClient.open(port_of(server))
                if arrival == "one read":
                    pieces = [wire]
                elif arrival == "fragment by fragment":
                    pieces = fragments
                else:
                    pieces = [wire[i : i + 1] for i in range(len(wire))]
                for piece in pieces:
                    raw.writer.write(piece)
                    await raw.writer.drain()
                frame = await raw.read_until_close()
                raw.close()
        finally:
            logging.getLogger("netkit.websocket").removeHandler(records)
        assert close_code_of(frame) == 1009
        assert frame.payload[2:] == b"max_message_size=1000 exceeded"
        # 600 + 300 fit; the third fragment makes it 1200.
        expected = "message of 1200 bytes exceeds max_message_size=1000 (local)"
        [warning] = [message for message in records.messages() if "exceeds" in message]
        assert warning.endswith(f": {expected}")

    run(scenario())


def test_close_reasons_never_echo_what_the_peer_sent() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            # Invalid UTF-8 that a naive server might quote back.
            raw.send_frame(0x1, b"<script>\xff\xfe</script>")
            close = await raw.read_until_close()
            raw.close()
        assert close_code_of(close) == 1007
        assert b"script" not in close.payload

    run(scenario())


# ---------------------------------------------------------------- shutting down


def test_closing_the_server_closes_open_connections_with_1001() -> None:
    async def scenario() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        uri = uri_of(server)
        ws = await connect(uri)
        assert len(server.connections) == 1 and server.is_serving()
        server.close()
        with pytest.raises(ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1001
        await server.wait_closed()
        assert not server.is_serving()
        with pytest.raises(OSError):
            await connect(uri)

    run(scenario())


def test_cancelling_serve_forever_closes_the_connections_and_returns() -> None:
    async def scenario() -> None:
        server = await serve(echo, "127.0.0.1", 0, start_serving=False)
        serving = netkit.create_task(server.serve_forever())
        await netkit.sleep(0)
        ws = await connect(uri_of(server))
        await ws.send("served")
        assert await ws.recv() == "served"
        serving.cancel()
        with pytest.raises(ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1001
        with pytest.raises(netkit.CancelledError):
            await serving
        await ws.wait_closed()
        assert ws.state is State.CLOSED

        # Closed from elsewhere, serve_forever() returns.
        server = await serve(echo, "127.0.0.1", 0)
        serving = netkit.create_task(server.serve_forever())
        ws = await connect(uri_of(server))
        server.close()
        await serving
        assert ws.state is State.CLOSED

    run(scenario())


def test_closing_the_server_drops_connections_still_in_the_handshake() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            reader, writer = await netkit.open_connection("127.0.0.1", port_of(server))
            writer.write(b"GET / HTTP/1.1\r\n")  # half a request
            while not server._state.protocols:
                await netkit.sleep(0)
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass
        writer.close()

    run(scenario())


# ------------------------------------------------------- where it listens


def test_serving_on_an_existing_socket() -> None:
    async def scenario() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        async with await serve(echo, sock=sock) as server:
            assert server.sockets[0].getsockname() == sock.getsockname()
            async with connect(uri_of(server)) as ws:
                await ws.send(b"on my socket")
                assert await ws.recv() == b"on my socket"

    run(scenario())


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_unix_serve_and_unix_connect(tmp_path) -> None:
    async def scenario() -> None:
        path = str(tmp_path / "ws.sock")

        async def handler(ws: WebSocket) -> None:
            await ws.send(f"hello {ws.request.target}")
            await echo(ws)

        async with await unix_serve(handler, path, max_message_size=1000):
            async with unix_connect(path, "ws://localhost/unix") as ws:
                assert await ws.recv() == "hello /unix"
                await ws.send("over a unix socket")
                assert await ws.recv() == "over a unix socket"
                await ws.send(b"x" * 1001)
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1009
        assert not os.path.exists(path)

    run(scenario())


def test_unix_serve_refuses_unknown_options(tmp_path) -> None:
    async def scenario() -> None:
        with pytest.raises(TypeError):
            await unix_serve(echo, str(tmp_path / "x.sock"), max_mesage_size=10)

    run(scenario())


# ------------------------------------------------------------------ resources


def test_a_thousand_connect_close_cycles_leak_no_file_descriptor() -> None:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def scenario() -> None:
        # One server and connection first, so that whatever is created lazily
        # (the resolver's thread pool, say) exists before counting.
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send("warm up")
                await ws.recv()
        before = open_fds()
        async with await serve(echo, "127.0.0.1", 0, origins=lambda origin: origin != "refused") as server:
            uri = uri_of(server)
            for index in range(1000):
                ws = await connect(uri)
                if index % 100 == 0:
                    await ws.send(b"cycle")
                    assert await ws.recv() == b"cycle"
                await ws.close()
            # A refused handshake and a dropped connection, too.
            with pytest.raises(HandshakeError):
                await connect(uri, origin="refused")
            raw = await RawClient.open(port_of(server))
            raw.send_frame(BINARY, b"raw")
            raw.close()
        # The server waited for every one of its connections to end.
        assert open_fds() == before

    run(scenario(), deadline=30)


def test_close_is_bounded_against_a_client_that_answers_but_never_closes_tcp() -> None:
    async def scenario() -> None:
        outcome: dict[str, object] = {}
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            await netkit.wait_for(ws.close(1000, "bye"), 5)
            outcome.update(state=ws.state, code=ws.close_code)
            done.set()

        async with await serve(handler, "127.0.0.1", 0, close_timeout=0.2, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            close = await raw.read_until_close()
            assert close_code_of(close) == 1000
            raw.send_close(1000)  # answers, then keeps the TCP connection open
            await done.wait()
            raw.close()
        assert outcome == {"state": State.CLOSED, "code": 1000}

    run(scenario())


# ------------------------------------------- a violation right after messages


class _CallbackEcho(WebSocketHandler):
    def on_message(self, ws, message):
        ws.send(message)


@pytest.mark.parametrize("api", ["async", "callback"])
def test_messages_just_before_a_protocol_violation_are_answered_before_the_close(api: str) -> None:
    """Autobahn's strict behaviour (its cases 3.2-3.4, 4.x, 5.15): a message,
    then a frame with a reserved bit, then a ping, all in one TCP segment.
    The echo goes out, then the close frame with 1002; the ping after the
    violation is never read, so no pong."""

    async def scenario() -> None:
        handler = echo if api == "async" else _CallbackEcho()
        async with await serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            raw.writer.write(
                serialize_frame(TEXT, b"Hello, world!", mask=True)
                + serialize_frame(TEXT, b"bad", rsv=RSV1, mask=True)
                + serialize_frame(PING, b"ping", mask=True)
            )
            echoed = await raw.read_frame()
            assert echoed is not None and (echoed.opcode, echoed.payload) == (TEXT, b"Hello, world!")
            closing = await raw.read_frame()
            assert closing is not None and close_code_of(closing) == 1002
            assert await raw.read_frame() is None  # then the server closes TCP
            raw.close()

    run(scenario())


def _message_and_violation(message: bytes) -> bytes:
    return serialize_frame(TEXT, message, mask=True) + serialize_frame(TEXT, b"bad", rsv=RSV1, mask=True)


async def _frames_until_eof(raw: RawClient) -> list[tuple[int, int, int | None]]:
    """(opcode, payload size, close code) of every frame until the server closes TCP."""
    frames = []
    while (frame := await netkit.wait_for(raw.read_frame(), 10)) is not None:
        frames.append((frame.opcode, len(frame.payload), close_code_of(frame) if frame.opcode == CLOSE else None))
    return frames


def test_a_handler_that_raises_before_a_violation_does_not_leave_it_held() -> None:
    """on_message raises (1011 goes out) and a violation followed the message:
    the server must still close TCP at once, not wait out close_timeout."""

    class Raises(WebSocketHandler):
        def on_message(self, ws, message):
            raise RuntimeError("handler bug")

    async def scenario() -> None:
        async with await serve(Raises(), "127.0.0.1", 0, ping_interval=None, close_timeout=60) as server:
            raw = await RawClient.open(port_of(server))
            raw.writer.write(_message_and_violation(b"hi"))
            # Bounded by wait_for: a server waiting out its 60 s close_timeout fails here.
            assert await _frames_until_eof(raw) == [(CLOSE, 2 + len("internal error"), 1011)]
            raw.close()

    run(scenario())


@pytest.mark.parametrize("violation_arrives", ["with the message", "later"])
def test_a_violation_does_not_drop_a_close_frame_the_application_queued(violation_arrives: str) -> None:
    """The application answers with 2 MiB and closes while the client does not
    read: its close frame waits in the outbox behind the data.  A protocol
    violation then must not throw that close frame away."""
    big = b"x" * (2 * 1024 * 1024)

    class SendsAndCloses(WebSocketHandler):
        def on_message(self, ws, message):
            if message == "go":
                ws.send(big)
                ws.close(1000, "bye")

    async def scenario() -> None:
        async with await serve(SendsAndCloses(), "127.0.0.1", 0, ping_interval=None, close_timeout=5) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            if violation_arrives == "with the message":
                raw.writer.write(_message_and_violation(b"go"))
            else:
                raw.writer.write(serialize_frame(TEXT, b"go", mask=True))
                await netkit.sleep(0.2)
                raw.writer.write(serialize_frame(TEXT, b"bad", rsv=RSV1, mask=True))
            await netkit.sleep(0.2)
            assert await _frames_until_eof(raw) == [(BINARY, len(big), None), (CLOSE, 5, 1000)]
            raw.close()

    run(scenario())


def test_an_on_closing_that_raises_after_a_held_violation_writes_nothing_more(caplog) -> None:
    class Fragile(WebSocketHandler):
        def on_message(self, ws, message):
            ws.send(message)

        def on_closing(self, ws, code, reason):
            raise ValueError("on_closing bug")

    async def scenario() -> None:
        async with await serve(Fragile(), "127.0.0.1", 0, ping_interval=None, close_timeout=5) as server:
            raw = await RawClient.open(port_of(server))
            raw.writer.write(_message_and_violation(b"hi"))
            frames = await _frames_until_eof(raw)
            assert frames[0] == (TEXT, 2, None)
            raw.close()

    with caplog.at_level(logging.WARNING, logger="netkit"):
        run(scenario())
    assert not [record for record in caplog.records if "closing or closed transport" in record.getMessage()]
    assert any("on_closing" in record.getMessage() for record in caplog.records)
