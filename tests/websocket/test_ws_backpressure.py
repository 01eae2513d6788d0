"""Flow control both ways, control frames overtaking queued data, and
broadcast to many clients with one that never reads.

The peers that do not read are raw clients on sockets with small kernel
buffers (and servers listen on such sockets), so that TCP pushes back after
a few KiB instead of the megabytes loopback would otherwise absorb."""

from __future__ import annotations

import resource
import socket

import netkit
from netkit.websocket import (
    State,
    WebSocket,
    WebSocketHandler,
    WebSocketProtocol,
    accept_key,
    broadcast,
    connect,
    serialize_frame,
    serve,
)
from netkit.websocket.frames import BINARY, CLOSE, PING, PONG, TEXT

from ws_loop_helpers import RawClient, close_code_of, port_of, run, small_buffer_listener, uri_of

MiB = 1 << 20


# ------------------------------------------------------------------- sending


def test_send_waits_at_the_high_water_mark_of_a_client_that_does_not_read() -> None:
    async def scenario() -> None:
        write_limit = 64 * 1024
        size = 64 * 1024
        count = 100  # 6.4 MiB: far more than every buffer on the way together
        progress = {"sent": 0, "largest_after_send": 0, "at_pause": -1}
        paused = netkit.Event()
        finished = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            def on_pause_writing(protocol) -> None:
                if not paused.is_set():
                    progress["at_pause"] = protocol.write_buffer_size
                    paused.set()

            ws.on_pause_writing = on_pause_writing  # type: ignore[method-assign]
            for index in range(count):
                await ws.send(index.to_bytes(4, "big") * (size // 4))
                progress["sent"] += 1
                progress["largest_after_send"] = max(progress["largest_after_send"], ws.write_buffer_size)
            finished.set()
            await ws.wait_closed()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await paused.wait()
            # The handler is stuck in send(): the client reads nothing.
            assert not finished.is_set() and progress["sent"] < count
            connection = next(iter(server.connections))
            assert connection.is_writing_paused()
            assert progress["at_pause"] <= write_limit + size + 14
            assert connection.write_buffer_size <= write_limit + size + 14
            # Now the client reads: every message arrives whole and in order,
            # and the handler gets to the end.
            for index in range(count):
                frame = await raw.read_frame()
                assert frame is not None and frame.opcode == BINARY
                assert frame.payload == index.to_bytes(4, "big") * (size // 4)
            await finished.wait()
            raw.close()
        # After each send() returned, no more than write_limit was buffered.
        assert progress["largest_after_send"] <= write_limit

    run(scenario())


def test_broadcast_skips_a_client_that_never_reads_and_delays_no_other() -> None:
    async def scenario() -> None:
        clients = 200
        rounds = 40
        write_limit = 16 * 1024
        message = "m" * 2048
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = 4 * clients + 64
        if soft != resource.RLIM_INFINITY and soft < needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))

        server_side: list[WebSocket] = []
        all_joined = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            server_side.append(ws)
            if len(server_side) == clients:
                all_joined.set()
            await ws.wait_closed()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=1) as server:
            stalled = await RawClient.open(port_of(server), buffer_size=4096)
            stalled.stop_reading()
            readers = [await connect(uri_of(server), ping_interval=None) for _ in range(clients - 1)]
            await all_joined.wait()
            stalled_side = server_side[0]
            received = [0] * len(readers)
            round_done = netkit.Event()
            progress = {"this_round": 0}

            async def read(index: int) -> None:
                ws = readers[index]
                for expected in range(rounds):
                    assert await ws.recv() == f"{expected:04d}" + message
                    received[index] += 1
                    progress["this_round"] += 1
                    if progress["this_round"] == len(readers):
                        round_done.set()

            tasks = [netkit.create_task(read(index)) for index in range(len(readers))]
            skipped = 0
            largest_stalled_buffer = 0
            for number in range(rounds):
                progress["this_round"] = 0
                round_done.clear()
                skipped += broadcast(server_side, f"{number:04d}" + message)
                largest_stalled_buffer = max(largest_stalled_buffer, stalled_side.write_buffer_size)
                # Every reader gets this round's message while one client is stalled.
                await round_done.wait()
            await netkit.gather(*tasks)
            assert received == [rounds] * len(readers)
            # The stalled client was skipped rather than buffered for without bound.
            assert skipped > 0
            assert largest_stalled_buffer <= write_limit + len(message) + 8
            assert stalled_side.state is State.OPEN
            # What it was sent (every message it was not skipped for) is whole and in order.
            numbers = []
            while len(numbers) < rounds - skipped:
                frame = await stalled.read_frame()
                assert frame is not None and frame.opcode == TEXT
                text = frame.payload.decode()
                assert text[4:] == message
                numbers.append(int(text[:4]))
            assert numbers == sorted(set(numbers))
            stalled.close()
            for ws in readers:
                await ws.close()

    run(scenario(), deadline=30)


# ----------------------------------------------------------------- receiving


def test_an_application_that_does_not_recv_stops_reading_at_max_queue() -> None:
    async def scenario() -> None:
        max_queue = 4
        size = 16 * 1024
        count = 200  # 3.2 MiB: more than every buffer on the way together
        reading_paused = netkit.Event()
        go = netkit.Event()
        server_side: list[WebSocket] = []
        received: list[bytes] = []
        all_received = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            server_side.append(ws)
            transport = ws.protocol.transport
            pause = transport.pause_reading

            def pause_and_tell() -> None:
                pause()
                reading_paused.set()

            transport.pause_reading = pause_and_tell
            await go.wait()
            for _ in range(count):
                received.append(await ws.recv())  # type: ignore[arg-type]
            all_received.set()

        async def send_all(raw: RawClient) -> None:
            for index in range(count):
                raw.send_frame(BINARY, index.to_bytes(4, "big") * (size // 4))
                await raw.writer.drain()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, max_queue=max_queue, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            sender = netkit.create_task(send_all(raw))
            await reading_paused.wait()
            ws = server_side[0]
            # At most max_queue messages wait for recv(); the transport stopped
            # reading, so TCP holds the client back: its sends cannot finish.
            assert len(ws._messages) == max_queue
            assert not ws.protocol.transport.is_reading()
            assert not sender.done()
            go.set()
            await sender
            await all_received.wait()
            raw.close()
        assert received == [index.to_bytes(4, "big") * (size // 4) for index in range(count)]

    run(scenario())


def test_a_read_that_fills_the_queue_does_not_pause_an_application_that_keeps_up() -> None:
    """Pipelined clients often send max_queue messages that arrive in one read.
    An application that answers them all before the loop reads again must not
    pay for a pause and a resume (two system calls) per read."""

    async def scenario() -> None:
        max_queue = 8
        rounds = 20
        pauses: list[int] = []

        async def handler(ws: WebSocket) -> None:
            transport = ws.protocol.transport
            pause = transport.pause_reading

            def counted_pause() -> None:
                pauses.append(len(ws._messages))
                pause()

            transport.pause_reading = counted_pause
            async for message in ws:
                await ws.send(message)

        async with await serve(handler, "127.0.0.1", 0, max_queue=max_queue, ping_interval=None) as server:
            raw = await RawClient.open(port_of(server))
            for round_number in range(rounds):
                batch = [serialize_frame(BINARY, bytes([round_number, index]), mask=True) for index in range(max_queue)]
                raw.writer.write(b"".join(batch))  # one write: most likely one read on the server
                for index in range(max_queue):
                    frame = await raw.read_frame()
                    assert frame is not None and frame.payload == bytes([round_number, index])
            raw.close()
        assert pauses == []

    run(scenario())


# ------------------------------------------------------- control frames first


def test_ping_and_pong_overtake_megabytes_of_queued_data_without_splitting_a_frame() -> None:
    async def scenario() -> None:
        messages = 8
        queued = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            for index in range(messages):
                ws.send_nowait(bytes([index]) * MiB)
            # Megabytes wait in user space (the client reads nothing yet).
            assert ws.write_buffer_size > 4 * MiB
            if hasattr(socket, "TCP_NOTSENT_LOWAT"):
                # ...and little in the kernel, where nothing can overtake it.
                sock = ws.protocol.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == 16 * 1024
            ws.protocol.ping(b"server ping")
            queued.set()
            await ws.wait_closed()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, max_message_size=None, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await queued.wait()
            # The client's own ping is answered ahead of the queued data too.
            raw.send_frame(PING, b"client ping")
            order: list[tuple[int, bytes]] = []
            while sum(1 for opcode, _ in order if opcode == BINARY) < messages:
                frame = await raw.read_frame()  # fails on a corrupted stream
                assert frame is not None
                order.append((frame.opcode, frame.payload if frame.opcode != BINARY else frame.payload[:1]))
            raw.close()
        data_positions = [i for i, (opcode, _) in enumerate(order) if opcode == BINARY]
        ping_position = order.index((PING, b"server ping"))
        pong_position = order.index((PONG, b"client ping"))
        # Each control frame waited at most for the data frame in progress.
        assert ping_position <= 1
        assert pong_position <= 2
        assert len(data_positions) == messages
        assert [payload for opcode, payload in order if opcode == BINARY] == [bytes([i]) for i in range(messages)]

    run(scenario())


def test_a_failed_connection_sends_its_close_frame_after_the_frame_in_progress_only() -> None:
    async def scenario() -> None:
        queued = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            for index in range(8):
                ws.send_nowait(bytes([index]) * MiB)
            queued.set()
            await ws.wait_closed()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, max_message_size=None, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await queued.wait()
            # An unmasked frame from a client breaks the protocol (RFC 6455 §5.1).
            raw.writer.write(b"\x81\x02hi")
            data_frames = 0
            while True:
                frame = await raw.read_frame()
                assert frame is not None
                if frame.opcode == CLOSE:
                    break
                data_frames += 1
            raw.close()
        assert close_code_of(frame) == 1002
        # The megabytes not yet started were dropped, not sent first.
        assert data_frames <= 1

    run(scenario())


# ------------------------------------------------ peers that send, never read
#
# A peer that keeps sending while it reads nothing makes every answer (a pong
# to each ping, an echo to each message) wait in our send buffer.  Once that
# buffer is over write_limit the connection stops reading, so TCP pushes back
# on the peer instead of our memory growing with what it sends.

PING_BATCH_SIZE = 500  # pings per write of the flooding peer (about 65 KB)
FLOOD_BUDGET = 8 * MiB  # the most a flooding peer writes: far more than every buffer on the way


class ReadCounter:
    """Counts what a transport hands its protocol: all the bytes, and the largest read."""

    def __init__(self, transport) -> None:
        self.total = 0
        self.largest = 0
        deliver = transport._data_received

        def counting(data: bytes) -> None:
            self.total += len(data)
            self.largest = max(self.largest, len(data))
            deliver(data)

        transport._data_received = counting


class Flood:
    """A peer that writes ``batch`` again and again and never reads, up to
    ``budget`` bytes.  ``stalled`` is set once TCP stops taking its bytes
    (its writer's buffer passes the high-water mark); ``settled``, shared
    with the test, once it stalled or wrote its whole budget."""

    def __init__(self, writer: netkit.StreamWriter, batch: bytes, settled: netkit.Event, budget: int = FLOOD_BUDGET) -> None:
        self.writer = writer
        self.batch = batch
        self.budget = budget
        self.finished = False  # the whole budget was written
        self.stalled = netkit.Event()
        self.settled = settled
        self.task = netkit.create_task(self._write())

    async def _write(self) -> None:
        writer = self.writer
        high_water = writer.transport.get_write_buffer_limits()[1]
        written = 0
        while written < self.budget:
            writer.write(self.batch)
            written += len(self.batch)
            if writer.transport.get_write_buffer_size() > high_water:
                self.stalled.set()
            await writer.drain()
        self.finished = True
        self.settled.set()


def watch_pause(transport, settled: netkit.Event) -> None:
    """Set ``settled`` when ``transport`` is told to stop reading."""
    pause = transport.pause_reading

    def pause_and_tell() -> None:
        pause()
        settled.set()

    transport.pause_reading = pause_and_tell


def masked_pings(count: int = PING_BATCH_SIZE) -> bytes:
    return b"".join(serialize_frame(PING, bytes(125), mask=True) for _ in range(count))


async def assert_flood_stops_reading(protocol, reads: ReadCounter, flood: Flood, write_limit: int) -> None:
    """``protocol`` stops reading the flooding peer while its send buffer holds
    at most write_limit plus the answers to one read, and reads nothing more
    while the peer goes on writing until TCP stalls it."""
    await flood.settled.wait()
    assert not flood.finished, "the flooding peer wrote its whole budget: nothing stopped reading it"
    consumed = reads.total
    await flood.stalled.wait()
    assert not protocol.transport.is_reading()
    assert reads.total == consumed
    assert protocol.write_buffer_size <= write_limit + reads.largest
    # What was read is what it took to fill the buffers on the way: a small
    # part of what the peer meant to write.
    assert consumed < flood.budget // 8
    flood.task.cancel()


def test_a_ping_flood_from_a_client_that_never_reads_stops_the_async_server_reading() -> None:
    async def scenario() -> None:
        write_limit = 16 * 1024
        seen: dict[str, object] = {}
        opened = netkit.Event()

        async def echo(ws: WebSocket) -> None:
            seen["protocol"] = ws.protocol
            seen["reads"] = ReadCounter(ws.protocol.transport)
            opened.set()
            async for message in ws:
                await ws.send(message)

        sock = small_buffer_listener()
        async with await serve(echo, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await opened.wait()
            settled = netkit.Event()
            watch_pause(seen["protocol"].transport, settled)
            flood = Flood(raw.writer, masked_pings(), settled)
            await assert_flood_stops_reading(seen["protocol"], seen["reads"], flood, write_limit)
            raw.close()

    run(scenario())


def test_a_ping_flood_from_a_client_that_never_reads_stops_a_callback_server_reading() -> None:
    async def scenario() -> None:
        write_limit = 16 * 1024
        seen: dict[str, object] = {}
        opened = netkit.Event()

        class Quiet(WebSocketHandler):
            def on_open(self, ws: WebSocketProtocol) -> None:
                seen["protocol"] = ws
                seen["reads"] = ReadCounter(ws.transport)
                opened.set()

        sock = small_buffer_listener()
        async with await serve(Quiet, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await opened.wait()
            settled = netkit.Event()
            watch_pause(seen["protocol"].transport, settled)
            flood = Flood(raw.writer, masked_pings(), settled)
            await assert_flood_stops_reading(seen["protocol"], seen["reads"], flood, write_limit)
            raw.close()

    run(scenario())


def test_a_callback_echo_that_ignores_pause_writing_stops_reading_a_client_that_never_reads() -> None:
    async def scenario() -> None:
        write_limit = 16 * 1024
        seen: dict[str, object] = {}
        opened = netkit.Event()

        class CarelessEcho(WebSocketHandler):
            """Echoes every message, never looking at on_pause_writing."""

            def on_open(self, ws: WebSocketProtocol) -> None:
                seen["protocol"] = ws
                seen["reads"] = ReadCounter(ws.transport)
                opened.set()

            def on_message(self, ws: WebSocketProtocol, message: str | bytes) -> None:
                ws.send(message)

        messages = b"".join(serialize_frame(BINARY, bytes(1024), mask=True) for _ in range(64))
        sock = small_buffer_listener()
        async with await serve(CarelessEcho, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=1) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await opened.wait()
            settled = netkit.Event()
            watch_pause(seen["protocol"].transport, settled)
            flood = Flood(raw.writer, messages, settled)
            await assert_flood_stops_reading(seen["protocol"], seen["reads"], flood, write_limit)
            raw.close()

    run(scenario())


def small_buffer_connections(size: int = 4096) -> None:
    """Make the running loop's ``create_connection`` (which ``connect`` uses)
    open sockets with small kernel buffers, like ``small_buffer_listener``."""
    loop = netkit.get_running_loop()
    create_connection = loop.create_connection

    async def create_small_connection(factory, host=None, port=None, **options):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        sock.connect((host, port))  # loopback: immediate
        return await create_connection(factory, sock=sock, **options)

    loop.create_connection = create_small_connection  # type: ignore[method-assign]


def test_a_client_facing_a_server_that_floods_pings_and_never_reads_stops_reading() -> None:
    async def scenario() -> None:
        write_limit = 16 * 1024
        settled = netkit.Event()
        go = netkit.Event()
        floods: list[Flood] = []

        async def hostile(reader: netkit.StreamReader, writer: netkit.StreamWriter) -> None:
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
            writer.transport.pause_reading()  # it never reads the pongs
            await go.wait()
            pings = b"".join(serialize_frame(PING, bytes(125)) for _ in range(PING_BATCH_SIZE))
            floods.append(Flood(writer, pings, settled))
            await floods[0].task

        small_buffer_connections()
        server = await netkit.start_server(hostile, sock=small_buffer_listener())
        port = server.sockets[0].getsockname()[1]
        ws = await connect(f"ws://127.0.0.1:{port}/", write_limit=write_limit, ping_interval=None, close_timeout=1)
        try:
            reads = ReadCounter(ws.protocol.transport)
            watch_pause(ws.protocol.transport, settled)
            go.set()
            await settled.wait()
            await assert_flood_stops_reading(ws.protocol, reads, floods[0], write_limit)
        finally:
            ws.protocol.abort()
            server.close()
            await server.wait_closed()

    run(scenario())


def test_a_client_that_sends_while_it_receives_does_not_deadlock_an_echo_server() -> None:
    """Both ends fill their send buffers at once: the client uploads faster
    than the server echoes, and reads the echoes as they come.  A connection
    that stopped reading whenever its send buffer was full would wait for
    the other for ever; only answers piling up pause reading."""

    async def scenario() -> None:
        count = 64
        size = 64 * 1024  # 4 MiB each way: far more than every buffer on the way

        async def echo(ws: WebSocket) -> None:
            async for message in ws:
                await ws.send(message)

        def message(index: int) -> bytes:
            return index.to_bytes(4, "big") * (size // 4)

        small_buffer_connections()
        sock = small_buffer_listener()
        async with await serve(echo, sock=sock, max_queue=4, ping_interval=None, close_timeout=1) as server:
            async with connect(uri_of(server), ping_interval=None, close_timeout=1) as ws:

                async def upload() -> None:
                    for index in range(count):
                        await ws.send(message(index))

                uploader = netkit.create_task(upload())
                for index in range(count):
                    assert await ws.recv() == message(index)
                await uploader

    run(scenario())


def test_the_closing_handshake_completes_after_a_flood_stopped_reading() -> None:
    async def scenario() -> None:
        write_limit = 16 * 1024
        seen: dict[str, object] = {}
        opened = netkit.Event()
        closed = netkit.Event()

        async def handler(ws: WebSocket) -> None:
            seen["protocol"] = ws.protocol
            seen["reads"] = ReadCounter(ws.protocol.transport)
            opened.set()
            await ws.wait_closed()
            seen["code"] = ws.close_code
            closed.set()

        sock = small_buffer_listener()
        async with await serve(handler, sock=sock, write_limit=write_limit, ping_interval=None, close_timeout=5) as server:
            raw = await RawClient.open(port_of(server), buffer_size=4096)
            raw.stop_reading()
            await opened.wait()
            settled = netkit.Event()
            watch_pause(seen["protocol"].transport, settled)
            flood = Flood(raw.writer, masked_pings(), settled)
            await assert_flood_stops_reading(seen["protocol"], seen["reads"], flood, write_limit)
            # The server closes: it reads again, through the pings, to the
            # client's close frame (written behind them), and answers nothing.
            seen["protocol"].close(1001, "going away")
            raw.send_close(1000)
            frame = await raw.read_until_close()
            assert close_code_of(frame) == 1001
            raw.writer.write_eof()  # the server waits for this FIN before it closes TCP
            await closed.wait()
            raw.close()
        # The client's close frame was read: the handshake completed, no timeout.
        assert seen["code"] == 1000

    run(scenario())
