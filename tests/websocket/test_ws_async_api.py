"""The async API (``WebSocket``) between a netkit client and a netkit server
over loopback: messages of every size, fragmented sends, pings, keepalive,
closing, and cancellation."""

from __future__ import annotations

import enum

import pytest

import netkit
from netkit import ConnectionClosedError, ConnectionClosedOK
from netkit.websocket import State, WebSocket, connect, serialize_frame, serve
from netkit.websocket.frames import BINARY, CONTINUATION, PING, PONG, TEXT

from ws_loop_helpers import RawClient, close_code_of, port_of, run, uri_of


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


# ------------------------------------------------------------------ messages

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def test_text_and_binary_of_every_size_come_back_intact() -> None:
    async def scenario() -> None:
        limit = 16 << 20
        async with await serve(echo, "127.0.0.1", 0, max_message_size=limit) as server:
            async with connect(uri_of(server), max_message_size=limit) as ws:
                for size in SIZES:
                    binary = bytes(range(256)) * (size // 256) + bytes(size % 256)
                    await ws.send(binary)
                    echoed = await ws.recv()
                    assert type(echoed) is bytes and echoed == binary, size
                    text = ("aé€😀" * (size // 10 + 1))[: max(size // 4, 0)] if size else ""
                    await ws.send(text)
                    echoed_text = await ws.recv()
                    assert type(echoed_text) is str and echoed_text == text, size

    run(scenario(), deadline=30)


def test_bytearray_and_memoryview_are_sent_as_binary() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send(bytearray(b"from a bytearray"))
                assert await ws.recv() == b"from a bytearray"
                await ws.send(memoryview(b"xx from a view xx")[3:-3])
                assert await ws.recv() == b"from a view"

    run(scenario())


def test_a_str_subclass_is_sent_as_text() -> None:
    class Kind(enum.StrEnum):
        HELLO = "hello"

    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send(Kind.HELLO)
                echoed = await ws.recv()
                assert type(echoed) is str and echoed == "hello"
                ws.protocol.send(Kind.HELLO)  # the callback API's send, too
                assert await ws.recv() == "hello"

    run(scenario())


def test_an_iterable_is_sent_as_one_fragmented_message() -> None:
    async def scenario() -> None:
        frames: list[tuple[int, bytes, bool]] = []
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            await ws.send(["fra", "gmen", "ted"])
            await ws.send(iter([b"\x00\x01", b"", b"\x02"]))
            await ws.send([])  # nothing at all: no message
            await ws.send(["whole"])
            await done.wait()

        async with await serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            while len(frames) < 7:
                frame = await raw.read_frame()
                assert frame is not None
                frames.append((frame.opcode, frame.payload, frame.fin))
            done.set()
            raw.close()
        assert frames == [
            (TEXT, b"fra", False),
            (CONTINUATION, b"gmen", False),
            (CONTINUATION, b"ted", True),
            (BINARY, b"\x00\x01", False),
            (CONTINUATION, b"", False),
            (CONTINUATION, b"\x02", True),
            (TEXT, b"whole", True),
        ]

    run(scenario())


def test_an_async_iterable_is_sent_as_one_message_as_its_pieces_come() -> None:
    async def scenario() -> None:
        async def pieces():
            for word in ("as", "ync ", "pieces"):
                yield word
                await netkit.sleep(0)

        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                await ws.send(pieces())
                assert await ws.recv() == "async pieces"
                await ws.send(ws_bytes for ws_bytes in [b"a", b"b"])
                assert await ws.recv() == b"ab"

    run(scenario())


def test_a_fragmented_message_mixing_text_and_bytes_is_refused() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(TypeError):
                    await ws.send(["text", b"bytes"])
                with pytest.raises(TypeError):
                    await ws.send(42)  # type: ignore[arg-type]
                # A dict is iterable, but sending its keys is never what was meant.
                with pytest.raises(TypeError, match="json.dumps"):
                    await ws.send({"type": "hello"})  # type: ignore[arg-type]
                await ws.send("still usable")
                assert await ws.recv() == "still usable"

    run(scenario())


def test_a_piece_of_the_wrong_type_midway_closes_rather_than_corrupts() -> None:
    async def scenario() -> None:
        seen: list[BaseException] = []
        ended = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                seen.append(exc)
            ended.set()

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(TypeError):
                    await ws.send(["one", "two", b"three"])
                await ended.wait()
        assert len(seen) == 1 and seen[0].code == 1011

    run(scenario())


# -------------------------------------------------------------------- closing


def test_recv_raises_connection_closed_ok_after_a_normal_close_and_async_for_ends() -> None:
    async def scenario() -> None:
        async def handler(ws: WebSocket) -> None:
            await ws.send("one")
            await ws.send("two")
            await ws.close(1000, "bye")

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                received = [message async for message in ws]
                assert received == ["one", "two"]
                with pytest.raises(ConnectionClosedOK) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (1000, "bye")
                await ws.wait_closed()
                assert ws.state is State.CLOSED
                assert (ws.close_code, ws.close_reason) == (1000, "bye")

    run(scenario())


def test_recv_raises_connection_closed_error_with_the_code_and_reason() -> None:
    async def scenario() -> None:
        async def handler(ws: WebSocket) -> None:
            await ws.close(4001, "custom reason")

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (4001, "custom reason")
                # async for ends only at a normal close; an error propagates.
                with pytest.raises(ConnectionClosedError):
                    async for _ in ws:
                        pass

    run(scenario())


def test_a_dropped_connection_is_an_error_with_code_1006() -> None:
    async def scenario() -> None:
        async def handler(ws: WebSocket) -> None:
            ws.protocol.abort()
            await ws.wait_closed()

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1006
                with pytest.raises(ConnectionClosedError):
                    await ws.send("too late")

    run(scenario())


def test_close_runs_the_closing_handshake_on_both_sides() -> None:
    async def scenario() -> None:
        server_side: list[WebSocket] = []
        ended = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            server_side.append(ws)
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            ended.set()

        async with await serve(handler, "127.0.0.1", 0) as server:
            ws = await connect(uri_of(server))
            assert ws.state is State.OPEN and ws.close_code is None
            await ws.close(1001, "going away")
            assert ws.state is State.CLOSED
            assert ws.close_code == 1001  # the server echoed our code
            await ended.wait()
            await server_side[0].wait_closed()
            assert server_side[0].close_code == 1001
            assert server_side[0].close_reason == "going away"
            await ws.close()  # a second close does nothing

    run(scenario())


def test_close_against_a_peer_that_never_answers_but_trickles_data_is_aborted_at_close_timeout() -> None:
    async def scenario() -> None:
        outcome: dict[str, object] = {}
        finished = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            await netkit.wait_for(ws.close(), 5)
            outcome.update(state=ws.state, code=ws.close_code)
            finished.set()

        async with await serve(handler, "127.0.0.1", 0, close_timeout=0.2, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))

            async def trickle() -> None:
                # Keep the connection busy with a byte of data now and then,
                # never with a close frame.
                raw.send_frame(BINARY, b"", fin=False)
                while not finished.is_set():
                    raw.send_frame(CONTINUATION, b".", fin=False)
                    await netkit.sleep(0.005)

            trickler = netkit.create_task(trickle())
            await finished.wait()
            trickler.cancel()
            raw.close()
        assert outcome == {"state": State.CLOSED, "code": 1006}

    run(scenario())


def test_close_completes_cleanly_while_unread_messages_have_paused_reading() -> None:
    async def scenario() -> None:
        outcome: dict[str, object] = {}
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            # Read nothing: the queue fills, and reading pauses.  (No ping
            # here: its pong may be stuck behind the unread messages.)
            while ws.protocol.transport.is_reading():
                await netkit.sleep(0.001)
            await ws.close()
            outcome.update(state=ws.state, code=ws.close_code)
            done.set()

        async with await serve(handler, "127.0.0.1", 0, max_queue=2, close_timeout=2) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedOK):
                    for _ in range(1000):
                        await ws.send(b"m" * 16384)
                await done.wait()
        # The peer's close frame was read behind the unread messages: no timeout, no abort.
        assert outcome == {"state": State.CLOSED, "code": 1000}

    run(scenario())


# ---------------------------------------------------------------------- pings


def test_ping_resolves_when_the_pong_arrives_and_records_the_latency() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                assert ws.latency is None
                round_trip = await ws.ping(b"payload")
                assert round_trip >= 0 and ws.latency == round_trip
                first, second = await netkit.gather(ws.ping(), ws.ping())
                assert first >= 0 and second >= 0

    run(scenario())


def test_ping_fails_with_connection_closed_when_the_connection_ends_first() -> None:
    async def scenario() -> None:
        outcome: list[BaseException] = []
        pinging = netkit.Event()
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            ping = netkit.create_task(ws.ping())
            pinging.set()
            try:
                await ping
            except ConnectionClosedError as exc:
                outcome.append(exc)
            done.set()

        async with await serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            # A client that answers no ping, then drops the connection.
            ws = await connect(uri_of(server), auto_pong=False, ping_interval=None)
            await pinging.wait()
            ws.protocol.abort()
            await done.wait()
        assert len(outcome) == 1 and outcome[0].code == 1006

    run(scenario())


def test_keepalive_closes_a_peer_that_stops_answering_pings() -> None:
    async def scenario() -> None:
        seen: list[BaseException] = []
        closed = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                seen.append(exc)
            closed.set()

        async with await serve(handler, "127.0.0.1", 0, ping_interval=0.05, ping_timeout=0.05) as server:
            raw = await RawClient.open(port_of(server))
            pings = 0
            last = None
            # The raw client reads but never answers: the server pings, then
            # gives up on it with 1011.
            while True:
                frame = await raw.read_frame()
                if frame is None:
                    break
                if frame.opcode == PING:
                    pings += 1
                last = frame
            await closed.wait()
            raw.close()
        assert pings >= 1
        assert last is not None and close_code_of(last) == 1011
        assert len(seen) == 1 and isinstance(seen[0], ConnectionClosedError)

    run(scenario())


def test_keepalive_keeps_an_answering_peer_open_and_measures_latency() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, ping_interval=0.02, ping_timeout=0.5) as server:
            async with connect(uri_of(server), ping_interval=0.02, ping_timeout=0.5) as ws:
                server_ws = next(iter(server.connections))
                while server_ws.latency is None or ws.latency is None:
                    await ws.send("keep going")
                    assert await ws.recv() == "keep going"
                assert ws.state is State.OPEN

    run(scenario())


def test_a_client_with_auto_pong_off_is_closed_by_the_server_keepalive() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, ping_interval=0.05, ping_timeout=0.05) as server:
            async with connect(uri_of(server), auto_pong=False, ping_interval=None) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                # The close frame went out (to an idle socket) before the abort.
                assert caught.value.code == 1011
                assert caught.value.reason == "keepalive ping timeout"
                await ws.wait_closed()
                assert ws.state is State.CLOSED

    run(scenario())


def test_a_raw_peer_gets_pong_answers_from_the_server() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            raw.send_frame(PING, b"are you there")
            frame = await raw.read_frame()
            assert frame is not None and (frame.opcode, frame.payload) == (PONG, b"are you there")
            raw.send_close(1000)
            close = await raw.read_until_close()
            assert close_code_of(close) == 1000
            assert await raw.read_eof() == b""
            raw.close()

    run(scenario())


# ---------------------------------------------------------------- cancellation


def test_cancelling_recv_loses_no_message() -> None:
    async def scenario() -> None:
        release = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            await release.wait()
            await ws.send("first")
            await ws.send("second")
            await ws.wait_closed()

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(TimeoutError):
                    await netkit.wait_for(ws.recv(), 0.01)
                receiving = netkit.create_task(ws.recv())
                await netkit.sleep(0)
                receiving.cancel()
                with pytest.raises(netkit.CancelledError):
                    await receiving
                release.set()
                assert await ws.recv() == "first"
                assert await ws.recv() == "second"

    run(scenario())


def test_cancelling_recv_right_after_the_message_arrived_keeps_the_message() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                receiving = netkit.create_task(ws.recv())
                await netkit.sleep(0)
                deliver = ws.on_message

                def deliver_then_cancel(protocol, message):
                    # The race: the message is handed over, and the waiting
                    # task is cancelled before it had a chance to run.
                    deliver(protocol, message)
                    receiving.cancel()

                ws.on_message = deliver_then_cancel  # type: ignore[method-assign]
                await ws.send("hello")
                with pytest.raises(netkit.CancelledError):
                    await receiving
                ws.on_message = deliver  # type: ignore[method-assign]
                assert await ws.recv() == "hello"

    run(scenario())


def test_cancelling_send_leaves_the_connection_usable() -> None:
    async def scenario() -> None:
        received: list[bytes | str] = []
        done = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            async for message in ws:
                received.append(message)
                if message == "after":
                    done.set()

        big = b"\xab" * (4 << 20)
        async with await serve(handler, "127.0.0.1", 0, max_message_size=8 << 20) as server:
            async with connect(uri_of(server)) as ws:
                sending = netkit.create_task(ws.send(big))
                await netkit.sleep(0)
                if not sending.done():
                    sending.cancel()
                    with pytest.raises(netkit.CancelledError):
                        await sending
                await ws.send("after")
                await done.wait()
        # The message whose send was cancelled was queued whole: it arrives intact.
        assert received == [big, "after"]

    run(scenario())


def test_cancelling_a_fragmented_send_midway_closes_rather_than_corrupts() -> None:
    async def scenario() -> None:
        outcome: list[BaseException] = []
        ended = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                outcome.append(exc)
            ended.set()

        first_piece_sent = netkit.Event()
        never = netkit.Event()

        async def pieces():
            yield "first piece, "
            yield "second piece, "
            # Asked for a third piece: the first one is on the wire by now.
            first_piece_sent.set()
            await never.wait()
            yield "never sent"

        async with await serve(handler, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                sending = netkit.create_task(ws.send(pieces()))
                await first_piece_sent.wait()
                sending.cancel()
                with pytest.raises(netkit.CancelledError):
                    await sending
                await ended.wait()
                await ws.wait_closed()
        assert len(outcome) == 1 and outcome[0].code == 1011

    run(scenario())


def test_two_concurrent_recv_calls_are_refused() -> None:
    async def scenario() -> None:
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                first = netkit.create_task(ws.recv())
                await netkit.sleep(0)
                with pytest.raises(RuntimeError):
                    await ws.recv()
                await ws.send("for the first")
                assert await first == "for the first"

    run(scenario())


# ---------------------------------------------------------- what it exposes


def test_the_connection_exposes_its_handshake_and_addresses() -> None:
    async def scenario() -> None:
        seen: dict[str, object] = {}

        async def handler(ws: WebSocket) -> None:
            seen.update(
                path=ws.request.target,
                subprotocol=ws.subprotocol,
                status=ws.response.status,
                remote=ws.remote_address,
                state=ws.state,
            )
            await ws.send("ready")
            await ws.wait_closed()

        async with await serve(handler, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"]) as server:
            async with connect(uri_of(server, "/room?id=7"), subprotocols=["chat.v1", "chat.v2"]) as ws:
                assert await ws.recv() == "ready"
                assert ws.subprotocol == "chat.v2"  # the server's preference
                assert ws.response.status == 101
                assert ws.response.headers.get("Sec-WebSocket-Protocol") == "chat.v2"
                assert ws.request.target == "/room?id=7"
                assert ws.remote_address == ("127.0.0.1", port_of(server))
                assert "OPEN" in repr(ws)
        assert seen["path"] == "/room?id=7"
        assert seen["subprotocol"] == "chat.v2"
        assert seen["status"] == 101
        assert seen["state"] is State.OPEN
        remote = seen["remote"]
        assert isinstance(remote, tuple) and remote[0] == "127.0.0.1"

    run(scenario())


def test_an_answer_sent_while_more_messages_wait_goes_out_even_if_the_handler_then_waits() -> None:
    async def scenario() -> None:
        never = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            first = await ws.recv()
            await ws.send(f"got {first}")  # two more messages are queued by now
            await never.wait()

        async with await serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            raw.writer.write(b"".join(serialize_frame(TEXT, word, mask=True) for word in (b"a", b"b", b"c")))
            frame = await raw.read_frame()
            assert frame is not None and frame.payload == b"got a"
            raw.close()

    run(scenario())
