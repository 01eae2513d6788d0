"""The chat server over real loopback sockets: the page, the WebSocket door,
the framed TCP door, and all three in one room."""

from __future__ import annotations

import json
import socket
import struct

import pytest

import netkit
from netkit import websocket
from netkit.chat import ChatLimits
from netkit.errors import HandshakeError
from netkit.chat.page import content_security_policy, page_html
from netkit.chat.server import ChatServer

from chat_helpers import FramedClient, WebSocketClient, http_get, run


def free_ports_server(**kwargs: object) -> ChatServer:
    return ChatServer("127.0.0.1", 0, 0, **kwargs)  # type: ignore[arg-type]


def texts(messages: list[dict[str, object]]) -> list[object]:
    return [m["text"] for m in messages if m["type"] == "message"]


# ------------------------------------------------------------------ HTTP door


def test_http_serves_the_page_health_and_404() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None
            status, fields, body = await http_get(server.http_address, "/")
            assert status == 200
            assert fields["content-type"] == "text/html; charset=utf-8"
            assert fields["content-security-policy"] == content_security_policy()
            assert body == page_html()
            assert int(fields["content-length"]) == len(body)

            status, fields, body = await http_get(server.http_address, "/?utm=x")
            assert status == 200 and body == page_html()

            status, fields, body = await http_get(server.http_address, "/", method="HEAD")
            assert status == 200 and body == b"" and int(fields["content-length"]) == len(page_html())

            status, _, body = await http_get(server.http_address, "/healthz")
            assert (status, body) == (200, b"ok\n")

            status, _, _ = await http_get(server.http_address, "/nothing-here")
            assert status == 404

            status, fields, _ = await http_get(server.http_address, "/", method="POST")
            assert status == 405 and fields["allow"] == "GET, HEAD"

    run(scenario())


# -------------------------------------------------------------- WebSocket door


def test_websocket_join_say_and_who() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None
            ann = await WebSocketClient.connect(server.http_address, "ann")
            bob = await WebSocketClient.connect(server.http_address, "bob")
            assert (await ann.receive())["nick"] == "bob"  # the joined notice
            await ann.send({"type": "say", "text": "hello bob"})
            for client in (ann, bob):
                message = await client.receive()
                assert (message["type"], message["nick"], message["text"]) == ("message", "ann", "hello bob")
            await bob.send({"type": "say", "text": "/who"})
            assert await bob.receive() == {"type": "who", "room": "lobby", "members": ["ann", "bob"]}
            await bob.close()
            left = await ann.receive()
            assert (left["type"], left["nick"], left["reason"]) == ("left", "bob", "quit")
            await ann.close()

    run(scenario())


def test_websocket_bad_messages_get_errors_and_the_connection_stays() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None
            ann = await WebSocketClient.connect(server.http_address, "ann")
            await ann.connection.send("{not json")
            assert (await ann.receive())["code"] == "invalid_json"
            await ann.send({"type": "teleport"})
            assert (await ann.receive())["code"] == "unknown_type"
            await ann.send({"type": "say", "text": "x" * 5000})
            assert (await ann.receive())["code"] == "too_long"
            await ann.send({"type": "say", "text": "still here"})
            assert (await ann.receive())["text"] == "still here"
            await ann.close()

    run(scenario())


def test_websocket_binary_message_is_told_the_chat_speaks_json_text() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None
            ann = await WebSocketClient.connect(server.http_address, "ann")
            await ann.connection.send(json.dumps({"type": "say", "text": "as bytes"}).encode())
            refusal = await ann.receive()
            assert refusal["code"] == "invalid_message"
            assert "JSON in text messages" in refusal["message"] and "binary" in refusal["message"]
            await ann.send({"type": "say", "text": "as text"})
            assert (await ann.receive())["text"] == "as text"
            await ann.close()

    run(scenario())


def test_websocket_server_full_closes_with_1013() -> None:
    async def scenario() -> None:
        async with free_ports_server(limits=ChatLimits(max_clients=1)) as server:
            assert server.http_address is not None
            ann = await WebSocketClient.connect(server.http_address, "ann")
            late = await WebSocketClient.connect(server.http_address)
            assert (await late.receive())["code"] == "server_full"
            await late.connection.wait_closed()
            assert late.connection.close_code == 1013
            await ann.close()

    run(scenario())


def test_websocket_flooder_is_warned_then_closed_with_1008() -> None:
    async def scenario() -> None:
        async with free_ports_server(limits=ChatLimits(rate=0.001, burst=2)) as server:
            assert server.http_address is not None
            flooder = await WebSocketClient.connect(server.http_address, "flooder")  # the join took a token
            await flooder.send({"type": "say", "text": "one"})
            await flooder.send({"type": "say", "text": "two"})
            await flooder.send({"type": "say", "text": "three"})
            seen = await flooder.receive_until(lambda m: m.get("code") == "rate_limited")
            assert texts(seen) == ["one"]
            await flooder.connection.wait_closed()
            assert flooder.connection.close_code == 1008

    run(scenario())


# ------------------------------------------------------------------ framed door


def test_framed_join_say_who_and_rooms() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.tcp_address is not None
            ann = await FramedClient.connect(server.tcp_address, "ann")
            bob = await FramedClient.connect(server.tcp_address, "bob")
            assert (await ann.receive())["type"] == "joined"
            ann.send({"type": "say", "text": "hi"})
            assert texts([await ann.receive()]) == ["hi"]
            assert texts([await bob.receive()]) == ["hi"]
            bob.send({"type": "say", "text": "/join python"})
            assert (await ann.receive())["type"] == "left"
            welcome = await bob.receive()
            assert (welcome["type"], welcome["room"], welcome["members"]) == ("welcome", "python", ["bob"])
            bob.send({"type": "who"})
            assert await bob.receive() == {"type": "who", "room": "python", "members": ["bob"]}
            await ann.close()
            await bob.close()

    run(scenario())


def test_framed_history_replay() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.tcp_address is not None
            ann = await FramedClient.connect(server.tcp_address, "ann")
            for number in range(3):
                ann.send({"type": "say", "text": f"m{number}"})
            await ann.receive_until(lambda m: m.get("text") == "m2")
            reader, writer = await netkit.open_connection(*server.tcp_address)
            bob = FramedClient(reader, writer)
            bob.send({"type": "join", "nick": "bob"})
            welcome = await bob.receive()
            assert welcome is not None and texts(welcome["history"]) == ["m0", "m1", "m2"]
            await ann.close()
            await bob.close()

    run(scenario())


def test_framed_bad_json_gets_an_error_and_the_connection_stays() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.tcp_address is not None
            ann = await FramedClient.connect(server.tcp_address, "ann")
            ann.send_raw(b"\xff not json")
            assert (await ann.receive())["code"] == "invalid_json"
            ann.send({"type": "say", "text": "fine"})
            assert texts([await ann.receive()]) == ["fine"]
            await ann.close()

    run(scenario())


def test_framed_oversized_frame_is_refused_and_closed() -> None:
    async def scenario() -> None:
        limits = ChatLimits(max_text_bytes=100)
        async with free_ports_server(limits=limits) as server:
            assert server.tcp_address is not None
            ann = await FramedClient.connect(server.tcp_address, "ann")
            # Only the header: the server must refuse before the body arrives.
            ann.writer.write(struct.pack("!I", limits.max_message_bytes + 1))
            remaining = await ann.receive_all()
            assert [m["code"] for m in remaining] == ["too_long"]
            # Worded for the client that sent it, not for the server's log.
            size, limit = limits.max_message_bytes + 1, limits.max_message_bytes
            assert remaining[0]["message"] == f"your message is {size} bytes; the limit is {limit}; closing the connection"
            await ann.close()

    run(scenario())


def test_framed_eof_after_messages_gets_every_answer_then_a_close() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.tcp_address is not None
            ann = await FramedClient.connect(server.tcp_address, "ann")
            ann.send({"type": "say", "text": "bye all"})
            ann.send({"type": "who"})
            ann.writer.write_eof()
            answers = await ann.receive_all()
            assert [m["type"] for m in answers] == ["message", "who"]
            await ann.close()

    run(scenario())


def test_slow_framed_client_is_dropped_and_the_room_goes_on() -> None:
    """A client that never reads: once its send buffer passes the limit it is
    skipped and disconnected, while the fast client keeps getting everything."""

    async def scenario() -> None:
        # No limit on senders, and history kept small so that the hub accepts
        # a small send buffer limit (see ChatLimits.min_send_buffer_limit).
        limits = ChatLimits(
            rate=1e9,
            burst=10**9,
            address_rate=1e9,
            address_burst=10**9,
            room_byte_rate=10**9,
            room_byte_burst=16 * 1024,
            history_size=1,
            max_clients=10,
            send_buffer_limit=64 * 1024,
        )
        async with free_ports_server(limits=limits) as server:
            assert server.tcp_address is not None
            slow = socket.create_connection(server.tcp_address)
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            payload = json.dumps({"type": "join", "nick": "slow"}).encode()
            slow.sendall(struct.pack("!I", len(payload)) + payload)
            fast = await FramedClient.connect(server.tcp_address, "fast")
            text = "x" * 4000
            # The kernel's socket buffers absorb a few megabytes first; after
            # that the server's own buffer grows and the limit trips.  In
            # lockstep (send one, read its echo) the fast client never lags.
            for _ in range(20_000):
                fast.send({"type": "say", "text": text})
                seen = await fast.receive_until(lambda m: m["type"] == "message")
                notices = [m for m in seen if m["type"] == "left"]
                if notices:
                    break
            assert notices == [
                {"type": "left", "room": "lobby", "nick": "slow", "reason": "too slow to keep up", "ts": notices[0]["ts"]}
            ]
            assert server.hub.stats.slow_dropped == 1
            fast.send({"type": "say", "text": "after"})
            assert texts(await fast.receive_until(lambda m: m.get("text") == "after")) == ["after"]
            slow.close()
            await fast.close()

    run(scenario())


# ------------------------------------------------------------- all doors at once


def test_three_doors_one_room_same_order_for_everyone() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None and server.tcp_address is not None
            web = await WebSocketClient.connect(server.http_address, "web")
            term = await FramedClient.connect(server.tcp_address, "term")
            await web.receive()  # term joined
            for number in range(5):
                await web.send({"type": "say", "text": f"web {number}"})
                term.send({"type": "say", "text": f"term {number}"})
            from_web = texts(await web.receive_until(lambda m: m.get("id") == 10))
            from_term = texts(await term.receive_until(lambda m: m.get("id") == 10))
            assert len(from_web) == 10
            assert from_web == from_term  # one order, whatever the door
            await web.close()
            await term.close()

    run(scenario())


def test_nickname_rules_hold_across_doors() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None and server.tcp_address is not None
            web = await WebSocketClient.connect(server.http_address, "Ann")
            term = await FramedClient.connect(server.tcp_address)
            refusals = []
            for message in (
                {"type": "say", "text": "before joining"},
                {"type": "join", "nick": "ann"},  # taken, whatever the case
                {"type": "join", "nick": "bad nick!"},
                {"type": "join", "nick": "x" * 25},
                {"type": "join", "nick": "-dash-first"},
            ):
                term.send(message)
                refusals.append((await term.receive())["code"])  # type: ignore[index]
            assert refusals == ["not_joined", "nick_taken", "invalid_nick", "invalid_nick", "invalid_nick"]

            term.send({"type": "join", "nick": "bob"})  # the connection stayed usable
            welcome = await term.receive()
            assert welcome is not None and (welcome["type"], welcome["members"]) == ("welcome", ["Ann", "bob"])
            term.send({"type": "join", "nick": "bob2"})
            assert (await term.receive())["code"] == "already_joined"  # type: ignore[index]

            await web.close()
            assert (await term.receive())["type"] == "left"  # type: ignore[index]
            again = await WebSocketClient.connect(server.http_address, "ANN")  # free again once she left
            await again.close()
            await term.close()

    run(scenario())


def test_history_from_both_doors_is_replayed_to_a_websocket_newcomer() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None and server.tcp_address is not None
            web = await WebSocketClient.connect(server.http_address, "web")
            term = await FramedClient.connect(server.tcp_address, "term")
            await web.send({"type": "say", "text": "from the browser door"})
            await term.receive_until(lambda m: m.get("type") == "message")
            term.send({"type": "say", "text": "from the terminal door"})
            await term.receive_until(lambda m: m.get("type") == "message")
            late = await WebSocketClient.connect(server.http_address)
            await late.send({"type": "join", "nick": "late"})
            welcome = await late.receive()
            assert [(m["nick"], m["text"]) for m in welcome["history"]] == [
                ("web", "from the browser door"),
                ("term", "from the terminal door"),
            ]
            for client in (web, term, late):
                await client.close()

    run(scenario())


# ------------------------------------------------------------------- shutdown


def test_stop_closes_websockets_with_1001_and_framed_clients() -> None:
    async def scenario() -> None:
        server = free_ports_server()
        await server.start()
        assert server.http_address is not None and server.tcp_address is not None
        web = await WebSocketClient.connect(server.http_address, "web")
        term = await FramedClient.connect(server.tcp_address, "term")
        await web.receive()  # term joined
        await server.stop()
        await web.connection.wait_closed()
        assert web.connection.close_code == 1001
        assert await term.receive_all() == []
        await term.close()
        assert server.http_address is None and server.tcp_address is None

    run(scenario())


# -------------------------------------------------------------------- origins


async def handshake_status(address: tuple[str, int], origins: list[str]) -> int:
    """The status of a WebSocket opening request to /ws with these Origin fields."""
    host, port = address
    origin_lines = "".join(f"Origin: {origin}\r\n" for origin in origins)
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin_lines}\r\n"
    )
    reader, writer = await netkit.open_connection(*address)
    writer.write(request.encode("ascii"))
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


def test_by_default_only_the_chats_own_page_may_open_the_websocket() -> None:
    async def scenario() -> None:
        async with free_ports_server() as server:
            assert server.http_address is not None
            host, port = server.http_address
            assert await handshake_status(server.http_address, ["https://evil.example"]) == 403
            assert await handshake_status(server.http_address, [f"http://{host}:{port}"]) == 101
            assert await handshake_status(server.http_address, []) == 101

    run(scenario())


def test_websocket_refuses_pages_from_other_origins_with_403() -> None:
    async def scenario() -> None:
        async with free_ports_server(origins=["https://chat.example.com"]) as server:
            assert server.http_address is not None
            host, port = server.http_address
            uri = f"ws://{host}:{port}/ws"
            with pytest.raises(HandshakeError) as refused:
                await websocket.connect(uri, origin="https://evil.example")
            assert refused.value.status == 403
            for origin in ("https://chat.example.com:444", "http://chat.example.com", f"http://{host}:{port + 1}", "null"):
                assert await handshake_status(server.http_address, [origin]) == 403, origin
            # Two Origin fields cannot both be believed.
            assert await handshake_status(server.http_address, [f"http://{host}:{port}", "https://evil.example"]) == 403
            assert server.hub.client_count == 0

    run(scenario())


def test_websocket_accepts_its_own_page_listed_origins_and_clients_without_origin() -> None:
    async def scenario() -> None:
        async with free_ports_server(origins=["https://chat.example.com"]) as server:
            assert server.http_address is not None
            host, port = server.http_address
            uri = f"ws://{host}:{port}/ws"
            for origin in (f"http://{host}:{port}", f"HTTP://{host}:{port}", "https://chat.example.com", "https://chat.example.com:443", None):
                connection = await websocket.connect(uri, origin=origin)
                await connection.send(json.dumps({"type": "ping"}))
                assert json.loads(await connection.recv()) == {"type": "pong"}, origin
                await connection.close()

    run(scenario())


def test_websocket_any_origin_when_told() -> None:
    async def scenario() -> None:
        async with free_ports_server(origins=["*"]) as server:
            assert server.http_address is not None
            host, port = server.http_address
            connection = await websocket.connect(f"ws://{host}:{port}/ws", origin="https://anywhere.example")
            await connection.close()

    run(scenario())


def test_the_server_is_importable_from_the_package() -> None:
    import netkit.chat
    import netkit.chat.server

    assert netkit.chat.ChatServer is netkit.chat.server.ChatServer
    assert netkit.chat.run_chat_server is netkit.chat.server.run_chat_server
    assert {"ChatServer", "run_chat_server"} <= set(netkit.chat.__all__)
