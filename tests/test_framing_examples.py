"""The framing examples, run as a user would run them."""

from __future__ import annotations

import contextlib
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading

from nonreading_client import connect_small_window, flood, length_prefixed_frame

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "05-framing"


def test_sticky_packets_example_shows_the_problem_and_the_fix():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "sticky_packets.py")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # Three sends, one recv, glued together.
    assert "one recv() on the other: b'helloworld!'" in out
    # One large send, many recvs (at most 64 KiB each, so at least 16).
    pieces = int(out.split("arrives in ")[1].split(" recv()")[0])
    assert pieces >= 16
    # Through the framer: exactly the four messages.
    assert "4 frames out: b'hello' b'world' b'!' <1,048,576 bytes>" in out
    assert "exactly as sent" in out


# -- the framed echo server and client --------------------------------------------------

SUBPROCESS_BOUND = 30  # seconds; a hung example fails the test instead of hanging the run


class RunningServer:
    """examples/05-framing/framed_echo_server.py started with ``--port 0``, and the port it printed."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process = process
        self.port = port

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, as a service manager would; returns (status, rest of stdout, stderr)."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=SUBPROCESS_BOUND)
        return self.process.returncode, out, err


@contextlib.contextmanager
def framed_echo_server(*options: str):
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "framed_echo_server.py"), "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # readline() below waits for the server; if it never prints, kill it so the read ends.
    watchdog = threading.Timer(SUBPROCESS_BOUND, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, f"unexpected first line {line!r}"
        yield RunningServer(process, int(match.group(1)))
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.communicate()


def run_client(port: int, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "framed_echo_client.py"), "--port", str(port), *options],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_BOUND,
    )


def test_framed_echo_client_gets_every_frame_back_then_the_server_stops_on_sigterm():
    with framed_echo_server() as server:
        result = run_client(server.port, "--count", "500", "--seed", "7")
        assert result.returncode == 0, result.stderr
        sent, checked = result.stdout.splitlines()
        assert sent.startswith("sent 500 frames")
        # The seed makes the writes cut frames apart and glue frames together.
        split = int(re.search(r"cut across writes: ([\d,]+) frames", sent).group(1).replace(",", ""))
        glued = int(re.search(r"writes carrying several frames: ([\d,]+)", sent).group(1).replace(",", ""))
        assert split > 0 and glued > 0
        assert checked.startswith("all 500 echoes intact and in order")
        status, out, err = server.stop()
    assert status == 0, err
    assert out.strip() == "server stopped"


def test_framed_echo_server_drops_an_oversize_frame_and_serves_the_others():
    with framed_echo_server("--max-frame-size", "100") as server:
        address = ("127.0.0.1", server.port)
        with socket.create_connection(address, timeout=SUBPROCESS_BOUND) as hostile, \
                socket.create_connection(address, timeout=SUBPROCESS_BOUND) as polite:
            frame = (100).to_bytes(4, "big") + b"x" * 100  # exactly at the limit: fine
            hostile.sendall(frame)
            assert receive_exactly(hostile, len(frame)) == frame
            hostile.sendall((101).to_bytes(4, "big"))  # one byte over: disconnected
            assert receive_until_closed(hostile) == b""
            polite.sendall(b"\0\0\0\x02hi\0\0\0\0")
            assert receive_exactly(polite, 10) == b"\0\0\0\x02hi\0\0\0\0"
        failed = run_client(server.port, "--count", "50", "--max-size", "1000", "--seed", "3")
        status, _, err = server.stop()
    assert failed.returncode == 1
    assert failed.stderr.startswith("FAILED after ") and "(seed 3)" in failed.stderr
    assert status == 0
    assert "frame of 101 bytes exceeds max_frame_size=100" in err


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def receive_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (a reset counts as closing)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_framed_echo_server_stops_reading_from_a_client_that_does_not_read_its_echoes():
    """The example's flow control, in process: while a client only sends, the
    server's unsent replies stay bounded and it stops reading; once the client
    reads, every echo arrives and the server reads again."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from framed_echo_server import FramedEcho
    finally:
        sys.path.remove(str(EXAMPLES))
    import netkit
    from netkit.framing import LengthPrefixFramer, read_frame

    class WatchedEcho(FramedEcho):
        def __init__(self):
            super().__init__()
            self.paused = netkit.Event()
            self.largest_backlog = 0

        def frames_received(self, frames):
            super().frames_received(frames)
            self.largest_backlog = max(self.largest_backlog, self.transport.get_write_buffer_size())

        def pause_writing(self):
            super().pause_writing()
            self.paused.set()

    servers: list[WatchedEcho] = []
    payload = bytes(range(256)) * 64  # 16 KiB

    async def main():
        loop = netkit.get_running_loop()
        accepted = netkit.Event()

        def factory():
            servers.append(WatchedEcho())
            accepted.set()
            return servers[-1]

        listener = await loop.create_server(factory, "127.0.0.1", 0)
        reader, writer = await netkit.open_connection("127.0.0.1", listener.sockets[0].getsockname()[1])
        framer = LengthPrefixFramer()
        sent = 0

        async def send_without_reading():
            nonlocal sent
            while True:
                writer.write(framer.encode(payload))
                sent += 1
                await writer.drain()

        sender = netkit.create_task(send_without_reading())
        await accepted.wait()
        await servers[0].paused.wait()
        server = servers[0]
        assert not server.transport.is_reading()
        sender.cancel()
        try:
            await sender
        except netkit.CancelledError:
            pass
        writer.write_eof()
        echoes = 0
        while (echo := await read_frame(reader, framer)) is not None:
            assert echo == payload
            echoes += 1
        writer.close()
        await writer.wait_closed()
        listener.close()
        await listener.wait_closed()
        return server, sent, echoes

    server, sent, echoes = netkit.run(netkit.wait_for(main(), SUBPROCESS_BOUND))
    assert echoes == sent  # paused, not dropped: everything came back once the client read
    # The replies waiting to be sent passed the transport's 64 KiB high-water
    # mark by at most one read's worth (256 KiB) before reading paused.
    assert 64 * 1024 < server.largest_backlog <= (64 + 256) * 1024 + len(payload)


def test_framed_echo_server_holds_its_memory_against_a_client_that_does_not_read():
    """The same, from outside: 64 MiB of frames sent, no echo read; the
    server stops reading instead of buffering the echoes."""
    with framed_echo_server() as server:
        with connect_small_window(server.port) as client:
            result = flood(server.process.pid, client, length_prefixed_frame(b"x" * 65532))
        status, _, err = server.stop()
    result.check_bounded()
    assert status == 0, err


def test_framed_echo_client_exits_130_on_ctrl_c_without_a_traceback():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent.settimeout(SUBPROCESS_BOUND)
        client = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "framed_echo_client.py"), "--port", str(silent.getsockname()[1])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection, _ = silent.accept()
            with connection:
                client.send_signal(signal.SIGINT)
                _, err = client.communicate(timeout=SUBPROCESS_BOUND)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
    assert client.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_framed_echo_client_counts_in_the_singular_too():
    with framed_echo_server() as server:
        result = run_client(server.port, "--count", "1", "--seed", "1")
        server.stop()
    assert result.returncode == 0, result.stderr
    sent, checked = result.stdout.splitlines()
    assert sent.startswith("sent 1 frame ("), sent
    assert checked.startswith("the echo came back intact in "), checked


def test_framed_echo_client_gives_up_at_its_timeout_on_a_server_that_stopped_reading():
    """The timeout ends the run even with frames still waiting to be sent:
    the client drops the connection instead of waiting to flush them."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never reads
        result = run_client(silent.getsockname()[1], "--timeout", "1", "--seed", "5")
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED after 0 of 1,000 echoes (seed 5): TimeoutError"), result.stderr
