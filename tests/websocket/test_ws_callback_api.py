"""The callback API: ``WebSocketHandler`` subclasses and instances on the
server and the client, the order of their calls, non-blocking ``send``, and
the pause/resume notifications of backpressure."""

from __future__ import annotations

import pytest

import netkit
from netkit import ConnectionClosedError, ConnectionClosedOK, InvalidStateError
from netkit.testing import RecordingTransport
from netkit.websocket import (
    FrameParser,
    Options,
    Role,
    State,
    WebSocket,
    WebSocketHandler,
    WebSocketProtocol,
    connect,
    serialize_frame,
    serve,
)
from netkit.websocket.frames import BINARY, PING, PONG
from netkit.websocket.server import ServerProtocol, _server_state

from ws_loop_helpers import RawClient, opening_request, port_of, run, small_buffer_listener, uri_of


class Recorder(WebSocketHandler):
    """Writes down every call, and echoes messages unless told not to."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.calls: list[tuple[object, ...]] = []
        self.closed = netkit.Event()
        self.ponged = netkit.Event()

    def on_open(self, ws: WebSocketProtocol) -> None:
        self.calls.append(("open", ws.state))

    def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
        self.calls.append(("message", message))
        if self.echo:
            ws.send(message)

    def on_ping(self, ws: WebSocketProtocol, data: bytes) -> None:
        self.calls.append(("ping", data))

    def on_pong(self, ws: WebSocketProtocol, data: bytes) -> None:
        self.calls.append(("pong", data))
        self.ponged.set()

    def on_closing(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        self.calls.append(("closing", code, reason))

    def on_close(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
        self.calls.append(("close", code, reason, ws.state))
        self.closed.set()


def test_a_handler_class_gets_one_instance_per_connection_and_every_call_in_order() -> None:
    async def scenario() -> None:
        instances: list[Recorder] = []

        class Tracked(Recorder):
            def __init__(self) -> None:
                super().__init__()
                instances.append(self)

        async with await serve(Tracked, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            raw.send_frame(0x1, "hé".encode())
            raw.send_frame(BINARY, b"\x00\x01")
            raw.send_frame(PING, b"p")
            raw.send_frame(PONG, b"unsolicited")
            frames = [await raw.read_frame() for _ in range(3)]
            # The echoes in order; the pong may overtake them (control frames go first).
            echoed = [(f.opcode, f.payload) for f in frames if f is not None]
            assert [frame for frame in echoed if frame[0] != PONG] == [(0x1, "hé".encode()), (BINARY, b"\x00\x01")]
            assert (PONG, b"p") in echoed
            raw.send_close(1000, "done")
            await raw.read_until_close()
            raw.close()
            await instances[0].closed.wait()
            async with connect(uri_of(server)) as ws:
                await ws.send("second connection")
                assert await ws.recv() == "second connection"
        assert len(instances) == 2
        assert instances[0].calls == [
            ("open", State.OPEN),
            ("message", "hé"),
            ("message", b"\x00\x01"),
            ("ping", b"p"),
            ("pong", b"unsolicited"),
            ("closing", 1000, "done"),
            ("close", 1000, "done", State.CLOSED),
        ]

    run(scenario())


def test_a_handler_instance_is_shared_by_every_connection() -> None:
    async def scenario() -> None:
        class Counter(WebSocketHandler):
            def __init__(self) -> None:
                self.open: set[WebSocketProtocol] = set()
                self.total = 0

            def on_open(self, ws: WebSocketProtocol) -> None:
                self.open.add(ws)
                self.total += 1
                ws.send(f"you are number {self.total}")

            def on_close(self, ws: WebSocketProtocol, code: int, reason: str) -> None:
                self.open.discard(ws)

        counter = Counter()
        async with await serve(counter, "127.0.0.1", 0) as server:
            first = await connect(uri_of(server))
            second = await connect(uri_of(server))
            assert await first.recv() == "you are number 1"
            assert await second.recv() == "you are number 2"
            assert len(counter.open) == 2
            await first.close()
            await second.close()
        assert counter.open == set()

    run(scenario())


def test_send_never_blocks_and_pause_and_resume_writing_bracket_a_slow_reader() -> None:
    async def scenario() -> None:
        events: list[str] = []
        paused = netkit.Event()
        resumed = netkit.Event()
        chunk = b"z" * 65536

        class Producer(WebSocketHandler):
            def on_open(self, ws: WebSocketProtocol) -> None:
                self.sent = 0
                self.produce(ws)

            def produce(self, ws: WebSocketProtocol) -> None:
                # Send until told to stop: send() returns at once every time.
                while not ws.is_writing_paused() and self.sent < 64:
                    ws.send(chunk)
                    self.sent += 1

            def on_pause_writing(self, ws: WebSocketProtocol) -> None:
                events.append(f"pause after {self.sent}")
                paused.set()

            def on_resume_writing(self, ws: WebSocketProtocol) -> None:
                events.append("resume")
                resumed.set()
                self.produce(ws)

        sock = small_buffer_listener()
        async with await serve(Producer, sock=sock, write_limit=65536, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await paused.wait()
            connection = next(iter(server.connections))
            assert connection.is_writing_paused()
            assert connection.write_buffer_size <= 65536 + len(chunk) + 14
            assert "resume" not in events
            for _ in range(64):
                frame = await raw.read_frame()
                assert frame is not None and frame.payload == chunk
            await resumed.wait()
            raw.close()
        assert events[0].startswith("pause after ") and "resume" in events

    run(scenario())


def test_an_exception_in_a_handler_method_closes_that_connection_with_1011_only() -> None:
    async def scenario() -> None:
        reports: list[dict[str, object]] = []
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))

        class Fragile(WebSocketHandler):
            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                if message == "boom":
                    raise ZeroDivisionError("handler bug")
                ws.send(message)

        async with await serve(Fragile, "127.0.0.1", 0) as server:
            healthy = await connect(uri_of(server))
            doomed = await connect(uri_of(server))
            await doomed.send("boom")
            with pytest.raises(ConnectionClosedError) as caught:
                await doomed.recv()
            assert caught.value.code == 1011
            await healthy.send("fine")
            assert await healthy.recv() == "fine"
            await healthy.close()
        assert len(reports) == 1 and isinstance(reports[0]["exception"], ZeroDivisionError)

    run(scenario())


def test_an_echo_handler_during_server_shutdown_is_not_reported_as_failing() -> None:
    async def scenario() -> None:
        reports: list[dict[str, object]] = []
        netkit.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))

        class Echo(WebSocketHandler):
            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                ws.send(message)

        server = await serve(Echo, "127.0.0.1", 0)
        ws = await connect(uri_of(server))
        # Messages in flight when the server closes arrive after its close
        # frame went out, and the echo handler's send() then raises.
        for _ in range(20):
            ws.send_nowait("in flight")
        server.close()
        with pytest.raises(ConnectionClosedOK) as caught:
            while True:
                await ws.recv()
        assert caught.value.code == 1001
        await server.wait_closed()
        assert reports == []

    run(scenario())


def test_send_before_the_handshake_and_after_close_raise() -> None:
    async def scenario() -> None:
        outcome: list[BaseException] = []

        class Closer(WebSocketHandler):
            def on_open(self, ws: WebSocketProtocol) -> None:
                ws.close(4000, "bye")
                for send in (lambda: ws.send("x"), lambda: ws.ping(), lambda: ws.pong()):
                    try:
                        send()
                    except Exception as exc:  # noqa: BLE001
                        outcome.append(exc)

        async with await serve(Closer, "127.0.0.1", 0) as server:
            async with connect(uri_of(server)) as ws:
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
        assert len(outcome) == 3
        assert all(isinstance(exc, ConnectionClosedError) for exc in outcome)

        unopened = WebSocketProtocol(Role.CLIENT, Options())
        with pytest.raises(InvalidStateError):
            unopened.send("too early")

    run(scenario())


def test_a_client_with_a_callback_handler() -> None:
    async def scenario() -> None:
        async def echo(ws: WebSocket) -> None:
            async for message in ws:
                await ws.send(message)

        recorder = Recorder(echo=False)
        async with await serve(echo, "127.0.0.1", 0) as server:
            async with connect(uri_of(server), handler=recorder) as protocol:
                assert isinstance(protocol, WebSocketProtocol)
                assert recorder.calls == [("open", State.OPEN)]
                protocol.send("echo me")
                payload = protocol.ping(b"are you there")
                assert payload == b"are you there"
                await recorder.ponged.wait()
                assert protocol.latency is not None
            await recorder.closed.wait()
        assert recorder.calls[0] == ("open", State.OPEN)
        assert sorted(recorder.calls[1:3]) == [("message", "echo me"), ("pong", b"are you there")]
        assert recorder.calls[3:] == [("closing", 1000, ""), ("close", 1000, "", State.CLOSED)]

    run(scenario())


def test_closed_callbacks_run_once_the_connection_is_closed() -> None:
    async def scenario() -> None:
        closed: list[WebSocketProtocol] = []
        async with await serve(Recorder, "127.0.0.1", 0) as server:
            ws = await connect(uri_of(server))
            ws.protocol.add_closed_callback(closed.append)
            await ws.close()
            assert closed == [ws.protocol]
            ws.protocol.add_closed_callback(closed.append)  # already closed: at once
            assert closed == [ws.protocol, ws.protocol]

    run(scenario())


def test_answers_to_a_batch_of_messages_all_go_out_even_empty_ones() -> None:
    async def scenario() -> None:
        class Echo(WebSocketHandler):
            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                ws.send(message)

        async with await serve(Echo, "127.0.0.1", 0, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            # Three messages in one write, so they are handled as one batch.
            batch = [serialize_frame(BINARY, payload, mask=True) for payload in (b"first", b"", b"last")]
            raw.writer.write(b"".join(batch))
            echoed = [await raw.read_frame() for _ in range(3)]
            assert [frame.payload for frame in echoed if frame is not None] == [b"first", b"", b"last"]
            raw.close()

    run(scenario())


def test_a_handler_that_sends_until_paused_inside_on_message_gets_paused() -> None:
    async def scenario() -> None:
        sent: list[int] = []
        done = netkit.Event()
        bound = 5000  # 5 MB: far more than it takes to fill every buffer on the way

        class Greedy(WebSocketHandler):
            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                count = 0
                while not ws.is_writing_paused() and count < bound:
                    ws.send(b"x" * 1000)
                    count += 1
                sent.append(count)
                done.set()

        sock = small_buffer_listener()
        async with await serve(Greedy, sock=sock, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            raw.send_frame(BINARY, b"go")
            await done.wait()
            raw.close()
        # What it sent inside on_message was not held back out of sight of the
        # flow control it was watching: the loop saw the pause.
        assert 0 < sent[0] < bound

    run(scenario())


def test_a_burst_of_small_messages_arrives_whole_and_in_order() -> None:
    async def scenario() -> None:
        class Burst(WebSocketHandler):
            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                # Far more than one write's worth, from one call: the burst
                # goes out in slices of many frames.
                for index in range(3000):
                    ws.send(index.to_bytes(4, "big") * 16)

        async with await serve(Burst, "127.0.0.1", 0, ping_interval=None) as server:
            async with connect(uri_of(server), max_queue=4) as ws:
                await ws.send("go")
                for index in range(3000):
                    assert await ws.recv() == index.to_bytes(4, "big") * 16

    run(scenario())


# --------------------------------------------- when reading pauses, and why
#
# The connection runs on a RecordingTransport here: the test plays the peer
# byte by byte and says how full the send buffer is, so every decision to
# pause or resume reading can be checked exactly.

KIB = 1024


def opened_server(handler: WebSocketHandler, **options: object) -> tuple[ServerProtocol, RecordingTransport]:
    """A server connection past its opening handshake, on a RecordingTransport."""
    protocol = ServerProtocol(_server_state(handler, ping_interval=None, **options))
    transport = RecordingTransport(protocol)
    request, _ = opening_request()
    transport.feed(request)
    assert protocol.state is State.OPEN
    transport.clear()
    return protocol, transport


def frames_in(data: bytes) -> list[tuple[int, bytes]]:
    parser = FrameParser(expect_masked=False, max_message_size=None)
    return [(frame.opcode, frame.payload) for frame in parser.feed(bytes(data))]


def client_frame(opcode: int, payload: bytes) -> bytes:
    return serialize_frame(opcode, payload, mask=True)


class Echo(WebSocketHandler):
    def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
        ws.send(message)


def test_pings_while_our_own_sending_fills_the_buffer_get_one_pong_and_reading_goes_on() -> None:
    async def scenario() -> None:
        protocol, transport = opened_server(WebSocketHandler(), write_limit=16 * KIB)
        transport.set_write_buffer_size(17 * KIB)  # what the application sent fills it
        assert protocol.is_writing_paused()
        transport.feed(client_frame(PING, b"1"))
        # The pong waits for room; a lone ping is no reason to stop reading.
        assert frames_in(transport.written) == []
        assert transport.is_reading()
        # A second ping before the first pong could go out: RFC 6455 §5.5.3
        # lets the pong answer the latest only, and the peer is pinging
        # faster than it reads, so reading stops until the buffer drains.
        transport.feed(client_frame(PING, b"2"))
        assert frames_in(transport.written) == []
        assert not transport.is_reading()
        transport.feed(client_frame(PING, b"3"))  # held back by the transport, as the kernel would
        transport.set_write_buffer_size(0)
        assert not protocol.is_writing_paused()
        assert transport.is_reading()
        # Once drained: one pong for "2", then (reading again) one for "3".
        assert frames_in(transport.written) == [(PONG, b"2"), (PONG, b"3")]

    run(scenario())


def test_answers_that_fill_the_buffer_stop_reading_until_it_drains() -> None:
    async def scenario() -> None:
        protocol, transport = opened_server(Echo(), write_limit=16 * KIB)
        transport.feed(client_frame(BINARY, b"a" * 100))
        assert frames_in(transport.written) == [(BINARY, b"a" * 100)]
        assert transport.is_reading()
        transport.set_write_buffer_size(17 * KIB)  # the peer is not reading its echoes
        transport.clear()
        transport.feed(client_frame(BINARY, b"b" * 100))
        # The echo waits in the outbox, and the connection reads no more.
        assert frames_in(transport.written) == []
        assert protocol.write_buffer_size == 17 * KIB + 102
        assert not transport.is_reading()
        transport.set_write_buffer_size(0)
        assert frames_in(transport.written) == [(BINARY, b"b" * 100)]
        assert transport.is_reading()

    run(scenario())


def test_the_application_pause_holds_until_the_application_resumes() -> None:
    async def scenario() -> None:
        protocol, transport = opened_server(Echo(), write_limit=16 * KIB)
        protocol.pause_reading()
        assert not transport.is_reading()
        # Answers piling up, then draining, do not lift the application's pause.
        transport.set_write_buffer_size(17 * KIB)
        protocol.resume_reading()
        transport.feed(client_frame(BINARY, b"x"))
        assert not transport.is_reading()  # the echo waits: that pause holds now
        protocol.pause_reading()
        transport.set_write_buffer_size(0)
        assert not transport.is_reading()
        protocol.resume_reading()
        assert transport.is_reading()

    run(scenario())


def test_closing_reads_whatever_paused_reading() -> None:
    async def scenario() -> None:
        recorder = Recorder(echo=False)
        protocol, transport = opened_server(recorder, write_limit=16 * KIB)
        transport.set_write_buffer_size(17 * KIB)
        transport.feed(client_frame(PING, b"1") + client_frame(PING, b"2"))
        protocol.pause_reading()
        assert not transport.is_reading()
        transport.feed(client_frame(BINARY, b"before the close") + client_frame(0x8, (1000).to_bytes(2, "big")))
        protocol.close(1001, "going away")
        # The peer's close frame is behind what it sent: it is read now.
        assert ("closing", 1000, "") in recorder.calls
        assert ("message", b"before the close") in recorder.calls
        assert protocol.connection.close_was_clean

    run(scenario())


def test_what_an_async_application_sent_before_a_read_is_not_taken_for_answers_to_it() -> None:
    async def scenario() -> None:
        go = netkit.Event()
        done = netkit.Event()
        peers: list[RecordingTransport] = []

        async def handler(ws: WebSocket) -> None:
            await go.wait()
            # A message waits in the queue, so this send is batched: held
            # until the loop's next turn rather than written at once.
            await ws.send(b"own")
            # Before that turn, the buffer fills and the peer's next read comes.
            transport = peers[0]
            transport.set_write_buffer_size(17 * KIB)
            transport.feed(client_frame(BINARY, b"next"))
            done.set()
            await ws.wait_closed()

        protocol, transport = opened_server(handler, write_limit=16 * KIB)  # type: ignore[arg-type]
        peers.append(transport)
        transport.feed(client_frame(BINARY, b"queued"))
        go.set()
        await done.wait()
        # The batched send waits for room, and it is no reason to stop reading.
        assert protocol.write_buffer_size == 17 * KIB + len(b"own") + 2
        assert transport.is_reading()
        transport.set_write_buffer_size(0)
        assert frames_in(transport.written) == [(BINARY, b"own")]
        transport.abort()

    run(scenario())
