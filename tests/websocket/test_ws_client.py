"""``connect`` over loopback: the request it sends, refusals and what they
carry, redirects, ``open_timeout``, and the client's own limits and
keepalive."""

from __future__ import annotations

import pytest

import netkit
from netkit import ConnectionClosedError, HandshakeError, InvalidURI
from netkit.http import Response
from netkit.websocket import FrameParser, State, WebSocket, accept_key, connect, serialize_frame, serve
from netkit.websocket.frames import CLOSE

from ws_loop_helpers import port_of, run, uri_of


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
