"""``python -m netkit`` run as a user runs it: every command as a subprocess.

Servers listen on port 0 and the test reads the port from their first line.
A failure a user can cause (a bad URI, nobody listening, a dropped
connection) must end with exactly one line on stderr and status 1; a usage
error with status 2.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nonreading_client import connect_small_window, flood, length_prefixed_frame, masked_binary_frame, websocket_handshake

ROOT = Path(__file__).resolve().parents[1]

# Bounds for a subprocess to answer on a busy machine; reaching one means the
# command hangs, which is itself the failure being tested for.
PROCESS_TIMEOUT = 30.0


def netkit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "netkit", *args]


def environment() -> dict[str, str]:
    """The subprocess imports this checkout's netkit, installed or not."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}", "PYTHONUNBUFFERED": "1"}


def run_netkit(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        netkit_command(*args), input=stdin, capture_output=True, text=True, timeout=PROCESS_TIMEOUT, env=environment()
    )


def read_line(process: subprocess.Popen[str]) -> str:
    """The next line of ``process``'s stdout, failing (not hanging) if none comes."""
    assert process.stdout is not None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(process.stdout.readline)
        try:
            line = pending.result(PROCESS_TIMEOUT)
        except concurrent.futures.TimeoutError:
            process.kill()  # unblocks the readline
            raise AssertionError(f"{process.args} printed nothing within {PROCESS_TIMEOUT:g} s") from None
    if not line:
        _, err = process.communicate(timeout=PROCESS_TIMEOUT)
        raise AssertionError(f"{process.args} exited with {process.returncode} before printing; stderr: {err}")
    return line


def one_error_line(result: subprocess.CompletedProcess[str], prefix: str) -> str:
    """Check a failure's shape (status 1, one line on stderr, nothing on stdout) and return the line."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    assert result.stdout == ""
    return lines[0]


@contextmanager
def spawn_netkit(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``netkit ARGS`` with pipes on stdin, stdout and stderr; killed on the way
    out if the test left it running."""
    process = subprocess.Popen(
        netkit_command(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    with process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


class RunningServer:
    def __init__(self, process: subprocess.Popen[str], banner: str, port: int) -> None:
        self.process = process
        self.banner = banner
        self.port = port
        self.expect_clean_exit = True


@contextmanager
def netkit_server(*args: str) -> Iterator[RunningServer]:
    """Start ``netkit echo ...`` on a free port; on exit stop it with SIGTERM
    and check that it stopped cleanly (unless the test killed it)."""
    with spawn_netkit(*args, "--port", "0") as process:
        banner = read_line(process)
        found = re.fullmatch(r"\w+ echo server listening on 127\.0\.0\.1:(\d+)\n", banner)
        assert found, banner
        server = RunningServer(process, banner, int(found.group(1)))
        yield server
        if server.expect_clean_exit:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=PROCESS_TIMEOUT)
            assert process.returncode == 0, err
            assert "Traceback" not in err, err


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port where connections are refused: bound (so nobody else takes it) but not listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


# ---------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["", "chat", "chat-client", "echo", "ws", "send"])
def test_help(command: str) -> None:
    result = run_netkit(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: netkit {command}".rstrip())
    if not command:
        for name in ("chat", "chat-client", "echo", "ws", "send"):
            assert re.search(rf"^\s+{name}\s", result.stdout, flags=re.MULTILINE), result.stdout


# ---------------------------------------------------------------------- echo


def test_echo_tcp_answers() -> None:
    with netkit_server("echo", "--tcp") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROCESS_TIMEOUT) as client:
            client.sendall(b"hello, ")
            client.sendall(b"netkit")
            assert recv_exactly(client, 13) == b"hello, netkit"


def test_echo_udp_answers() -> None:
    with netkit_server("echo", "--udp") as server:
        assert server.banner.startswith("udp echo")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(PROCESS_TIMEOUT)
            client.sendto(b"one datagram", ("127.0.0.1", server.port))
            data, sender = client.recvfrom(2048)
            assert (data, sender) == (b"one datagram", ("127.0.0.1", server.port))


def test_echo_framed_answers_frame_by_frame() -> None:
    with netkit_server("echo", "--framed") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROCESS_TIMEOUT) as client:
            # Two frames in one write: the echo must answer both, whole.
            client.sendall(struct.pack("!I", 3) + b"abc" + struct.pack("!I", 0))
            assert recv_exactly(client, 4 + 3 + 4) == struct.pack("!I", 3) + b"abc" + struct.pack("!I", 0)


def test_echo_framed_closes_a_connection_over_max_size() -> None:
    with netkit_server("echo", "--framed", "--max-size", "10") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROCESS_TIMEOUT) as client:
            client.sendall(struct.pack("!I", 11))
            assert client.recv(1) == b""  # refused at the header, before any body


# What a client that never reads sends, per echo server: raw bytes, 64 KiB
# frames, WebSocket binary messages, and WebSocket pings (each answered by a
# pong that the server must write whether or not the client reads).
FLOODS = {
    "raw": b"x" * 65536,
    "framed": length_prefixed_frame(b"x" * 65532),
    "ws-messages": masked_binary_frame(b"x" * 65000),
    "ws-pings": (bytes([0x89, 0x80 | 125]) + b"\0" * 4 + b"p" * 125) * 512,  # RFC 6455 §5.5: 125 bytes at most
}


@pytest.mark.parametrize(
    ("mode", "unit"),
    [
        ("--tcp", "raw"),
        ("--framed", "framed"),
        ("--ws", "ws-messages"),
        ("--ws", "ws-pings"),
    ],
)
def test_echo_server_stops_reading_from_a_client_that_does_not_read(mode: str, unit: str) -> None:
    """A client that sends 64 MiB and reads nothing: the server must stop
    reading once its replies back up, not buffer them all."""
    with netkit_server("echo", mode) as server:
        with connect_small_window(server.port) as client:
            if mode == "--ws":
                websocket_handshake(client, f"127.0.0.1:{server.port}")
            result = flood(server.process.pid, client, FLOODS[unit])
        result.check_bounded()


def test_udp_echo_pauses_reading_while_its_sends_are_queued() -> None:
    """UDP has no window, but the transport's send queue has water marks: the
    echo stops taking datagrams while its answers wait in that queue."""
    from netkit.__main__ import _UDPEcho

    calls: list[str] = []

    class Transport:
        def pause_reading(self) -> None:
            calls.append("pause_reading")

        def resume_reading(self) -> None:
            calls.append("resume_reading")

    echo = _UDPEcho()
    echo.connection_made(Transport())
    echo.pause_writing()
    echo.resume_writing()
    assert calls == ["pause_reading", "resume_reading"]


def test_send_framed_round_trips_lines_through_echo_framed() -> None:
    with netkit_server("echo", "--framed") as server:
        result = run_netkit("send", "--framed", "127.0.0.1", str(server.port), stdin="one\ntwo words\n\nünïcode\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "one\ntwo words\n\nünïcode\n"
        assert result.stderr == ""


def test_ws_round_trips_lines_through_echo_ws() -> None:
    with netkit_server("echo", "--ws") as server:
        uri = f"ws://127.0.0.1:{server.port}/"
        with spawn_netkit("ws", uri, "--linger", "0") as client:
            assert client.stdin is not None
            # One line at a time: each echo is read before the next line goes out.
            for line in ("hello", "wörld ✓", '{"json": true}'):
                client.stdin.write(line + "\n")
                client.stdin.flush()
                assert read_line(client) == line + "\n"
            # End of input: every answer is in, so close with 1000 at once and exit.
            out, err = client.communicate(timeout=PROCESS_TIMEOUT)
        assert client.returncode == 0, err
        assert (out, err) == ("", f"connected to {uri}\n")


def test_ws_with_piped_input_waits_for_the_answers_before_closing() -> None:
    """All the input arrives at once and ends at once; the echoes must not be
    cut off by the close that follows the end of input."""
    with netkit_server("echo", "--ws") as server:
        lines = [f"line {number}" for number in range(20)]
        result = run_netkit("ws", f"ws://127.0.0.1:{server.port}/", "--linger", "2", stdin="".join(f"{line}\n" for line in lines))
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == lines


@pytest.mark.parametrize("command", ["ws", "send"])
def test_a_stdin_line_over_the_limit_is_one_line_and_status_1(command: str) -> None:
    """Input without a newline is not buffered without bound: past 1 MiB the
    command stops as at the end of input (the answers to earlier lines still
    arrive), closes its connection and says why."""
    mode = "--ws" if command == "ws" else "--framed"
    with netkit_server("echo", mode) as server:
        if command == "ws":
            args = ["ws", f"ws://127.0.0.1:{server.port}/", "--linger", "0.5"]
        else:
            args = ["send", "--framed", "127.0.0.1", str(server.port)]
        result = run_netkit(*args, stdin="short line\n" + "x" * (3 * 1024 * 1024))
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if not line.startswith("connected to")]
        assert errors == [f"netkit {command}: a line on stdin is longer than 1048576 bytes"], result.stderr
        assert result.stdout == "short line\n"


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_a_stdin_line_of_exactly_the_limit_is_sent_and_one_byte_more_is_not(ending: str) -> None:
    limit = 1024 * 1024
    with netkit_server("echo", "--framed") as server:
        args = ["send", "--framed", "127.0.0.1", str(server.port)]
        accepted = run_netkit(*args, stdin="y" * limit + ending)
        assert accepted.returncode == 0, accepted.stderr
        assert accepted.stdout == "y" * limit + "\n"
        refused = run_netkit(*args, stdin="y" * (limit + 1) + ending)
        assert refused.returncode == 1
        assert refused.stderr == "netkit send: a line on stdin is longer than 1048576 bytes\n"


def test_ws_reports_a_dropped_connection_in_one_line() -> None:
    with netkit_server("echo", "--ws") as server:
        uri = f"ws://127.0.0.1:{server.port}/"
        with spawn_netkit("ws", uri) as client:
            assert client.stdin is not None
            client.stdin.write("ping\n")
            client.stdin.flush()
            assert read_line(client) == "ping\n"
            server.expect_clean_exit = False
            server.process.kill()  # gone without a closing handshake
            server.process.wait(PROCESS_TIMEOUT)
            # stdin stays open: the client must notice the loss by itself.
            client.wait(PROCESS_TIMEOUT)
            err = client.stderr.read()  # type: ignore[union-attr]
        assert client.returncode == 1, err
        assert err.splitlines() == [
            f"connected to {uri}",
            f"netkit ws: connection to {uri} lost without a closing handshake (code 1006)",
        ]


# ---------------------------------------------------------------------- chat


def test_chat_serves_the_page_and_stops_cleanly_on_sigterm() -> None:
    with spawn_netkit("chat", "--http-port", "0", "--tcp-port", "0") as process:
        banner = [read_line(process) for _ in range(4)]
        assert banner[3] == "press Ctrl-C to stop\n", banner
        http_port = int(re.fullmatch(r"chat page: http://127\.0\.0\.1:(\d+)/\n", banner[0]).group(1))  # type: ignore[union-attr]
        assert banner[1] == f"websocket: ws://127.0.0.1:{http_port}/ws\n"
        tcp_port = int(re.match(r"terminal clients: 127\.0\.0\.1:(\d+) ", banner[2]).group(1))  # type: ignore[union-attr]

        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=PROCESS_TIMEOUT) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert b'id="messages"' in response.read()

        # The WebSocket door, through `netkit ws`: a join is answered with a welcome.
        with spawn_netkit("ws", f"ws://127.0.0.1:{http_port}/ws", "--linger", "0") as client:
            assert client.stdin is not None
            client.stdin.write(json.dumps({"type": "join", "nick": "cli"}) + "\n")
            client.stdin.flush()
            welcome = json.loads(read_line(client))
            assert (welcome["type"], welcome["nick"]) == ("welcome", "cli")
            _, client_err = client.communicate(timeout=PROCESS_TIMEOUT)
        assert client.returncode == 0, client_err

        # A path that is not the WebSocket's: the handshake is refused with the HTTP status.
        refused = run_netkit("ws", f"ws://127.0.0.1:{http_port}/nothing-here")
        line = one_error_line(refused, f"netkit ws: handshake with ws://127.0.0.1:{http_port}/nothing-here failed")
        assert "404" in line

        # The terminal door answers too.
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=PROCESS_TIMEOUT) as terminal:
            join = json.dumps({"type": "join", "nick": "term"}).encode()
            terminal.sendall(struct.pack("!I", len(join)) + join)
            (length,) = struct.unpack("!I", recv_exactly(terminal, 4))
            assert json.loads(recv_exactly(terminal, length))["type"] == "welcome"

            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=PROCESS_TIMEOUT)
            assert terminal.recv(1) == b""  # closed by the shutdown
    assert process.returncode == 0, err
    assert out.splitlines()[-1] == "chat server stopped"
    assert "event=shutdown clients=1" in err and "Traceback" not in err


# --------------------------------------------------------------------- ports

# Which example talks to which (paths in examples/): every group has one default port.
EXAMPLE_GROUPS = {
    "echo": [
        "04-tcp-udp/tcp_echo_server.py",
        "04-tcp-udp/tcp_echo_client.py",
        "04-tcp-udp/streams_echo.py",
        "04-tcp-udp/udp_echo_server.py",
        "04-tcp-udp/udp_echo_client.py",
    ],
    "framed": ["05-framing/framed_echo_server.py", "05-framing/framed_echo_client.py"],
    "websocket": ["06-websocket/ws_echo_server.py", "06-websocket/ws_callback_echo.py", "06-websocket/ws_client.py"],
    "half-close": ["04-tcp-udp/half_close.py"],
    "chat": ["chat_client.py"],
}


def default_port_in_help(help_text: str) -> int:
    """The number after "default" in the help of ``--port``."""
    entry = re.search(r"^  --port PORT\b(.*?)(?=^  -|\Z)", help_text, flags=re.MULTILINE | re.DOTALL)
    assert entry, help_text
    found = re.search(r"default (\d+)", " ".join(entry.group(1).split()))
    assert found, entry.group(0)
    return int(found.group(1))


def test_every_server_and_its_clients_share_one_default_port() -> None:
    from netkit import _ports
    from netkit.__main__ import ECHO_PORTS, _parser
    from netkit.chat.server import DEFAULT_HTTP_PORT, DEFAULT_TCP_PORT

    scripts = [name for names in EXAMPLE_GROUPS.values() for name in names]
    helps = {name: subprocess.Popen([sys.executable, str(ROOT / "examples" / name), "--help"], stdout=subprocess.PIPE, text=True) for name in scripts}
    example_ports = {name: default_port_in_help(process.communicate(timeout=PROCESS_TIMEOUT)[0]) for name, process in helps.items()}
    expected = {
        "echo": _ports.ECHO_PORT,
        "framed": _ports.FRAMED_ECHO_PORT,
        "websocket": _ports.WEBSOCKET_ECHO_PORT,
        "half-close": _ports.HALF_CLOSE_PORT,
        "chat": DEFAULT_TCP_PORT,
    }
    assert {name: example_ports[name] for name in scripts} == {name: expected[group] for group, names in EXAMPLE_GROUPS.items() for name in names}

    parser = _parser()
    assert ECHO_PORTS == {"tcp": _ports.ECHO_PORT, "udp": _ports.ECHO_PORT, "framed": _ports.FRAMED_ECHO_PORT, "ws": _ports.WEBSOCKET_ECHO_PORT}
    assert parser.parse_args(["send", "--framed"]).port == _ports.FRAMED_ECHO_PORT
    assert parser.parse_args(["ws"]).uri == f"ws://127.0.0.1:{_ports.WEBSOCKET_ECHO_PORT}/"
    assert parser.parse_args(["chat-client", "--nick", "ann"]).port == DEFAULT_TCP_PORT

    # Servers on TCP that could run side by side never want the same port.
    tcp_ports = [_ports.ECHO_PORT, _ports.FRAMED_ECHO_PORT, _ports.WEBSOCKET_ECHO_PORT, _ports.HALF_CLOSE_PORT, DEFAULT_HTTP_PORT, DEFAULT_TCP_PORT]
    assert len(set(tcp_ports)) == len(tcp_ports)


COMMAND_BLOCKS = {
    "README.md": (ROOT / "README.md").read_text(encoding="utf-8").split("## Command line", 1)[1],
    "docs/index.md": (ROOT / "docs" / "index.md").read_text(encoding="utf-8"),
}


@pytest.mark.parametrize("page", COMMAND_BLOCKS)
def test_the_command_lines_a_page_shows_meet(page: str) -> None:
    """A client command shown next to a server command talks to that server."""
    from netkit.__main__ import ECHO_PORTS

    commands = [line.split("#")[0].split() for line in COMMAND_BLOCKS[page].splitlines() if "netkit " in line]
    listening: dict[str, set[int]] = {}
    for words in commands:
        if "echo" in words:
            mode = next((word[2:] for word in words if word[2:] in ECHO_PORTS), "tcp")
            port = int(words[words.index("--port") + 1]) if "--port" in words else ECHO_PORTS[mode]
            listening.setdefault(mode, set()).add(port)
    clients = 0
    for words in commands:
        if "send" in words:
            clients += 1
            assert int(words[-1]) in listening.get("framed", set()), (words, listening)
        if "ws" in words:
            clients += 1
            found = re.fullmatch(r"ws://127\.0\.0\.1:(\d+)/", words[-1])
            assert found and int(found.group(1)) in listening.get("ws", set()), (words, listening)
    assert clients >= 2


# -------------------------------------------------------------- idle timeout


@pytest.mark.parametrize("mode", ["--tcp", "--framed"])
def test_echo_closes_a_connection_idle_for_idle_timeout(mode: str) -> None:
    with netkit_server("echo", mode, "--idle-timeout", "0.5") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROCESS_TIMEOUT) as quiet:
            assert quiet.recv(1) == b""  # closed by the server, well before our own timeout


def test_idle_timeout_defaults_to_five_minutes_and_0_turns_it_off() -> None:
    from netkit.__main__ import _parser

    parser = _parser()
    assert parser.parse_args(["echo", "--tcp"]).idle_timeout == 300.0
    assert parser.parse_args(["echo", "--framed", "--idle-timeout", "0"]).idle_timeout is None


async def run_due_timers() -> None:
    """Let the loop run what is due: timers come due at the start of an
    iteration, after callbacks already waiting, so yield twice."""
    from netkit import sleep

    await sleep(0)
    await sleep(0)


def echo_protocols(idle_timeout: float | None) -> list[object]:
    from netkit.__main__ import _FramedEcho, _TCPEcho
    from netkit.framing import LengthPrefixFramer

    return [_TCPEcho(idle_timeout), _FramedEcho(LengthPrefixFramer(), idle_timeout)]


@pytest.mark.parametrize("kind", ["tcp", "framed"])
def test_idle_timeout_counts_from_the_last_data_received(manual_loop, kind: str) -> None:
    from netkit.testing import RecordingTransport

    async def scenario() -> None:
        echo = echo_protocols(10.0)[kind == "framed"]
        transport = RecordingTransport(echo, loop=manual_loop)
        for _ in range(3):  # data every 9 s keeps it open
            manual_loop.advance(9)
            await run_due_timers()
            transport.feed(b"\0\0\0\0")  # an empty frame, for the framed echo
            assert not transport.closed
        manual_loop.advance(9.5)
        await run_due_timers()
        assert not transport.closed  # 9.5 s of silence
        manual_loop.advance(0.5)
        await run_due_timers()
        assert transport.closed and not transport.aborted  # 10 s: closed, nothing left to flush

    manual_loop.run_until_complete(scenario())


def test_idle_timeout_aborts_a_connection_whose_peer_does_not_read(manual_loop) -> None:
    """Its echoes would never drain, so a graceful close would wait forever."""
    from netkit.testing import RecordingTransport

    async def scenario() -> None:
        echo = echo_protocols(10.0)[0]
        transport = RecordingTransport(echo, loop=manual_loop)
        transport.set_write_buffer_size(1 << 20)  # the peer stopped reading: echo pauses reading
        assert not transport.is_reading()
        manual_loop.advance(10)
        await run_due_timers()
        assert transport.aborted

    manual_loop.run_until_complete(scenario())


# ------------------------------------------------------- WebSocket options


def test_websocket_limits_and_timeouts_default_to_the_librarys() -> None:
    from netkit.__main__ import _parser
    from netkit.framing import DEFAULT_MAX_FRAME_SIZE
    from netkit.websocket import Options

    defaults = Options()
    parser = _parser()
    for args in (["echo", "--ws"], ["ws"]):
        parsed = parser.parse_args(args)
        assert (parsed.open_timeout, parsed.close_timeout) == (defaults.open_timeout, defaults.close_timeout), args
    assert parser.parse_args(["ws"]).max_size == defaults.max_message_size
    from netkit.__main__ import _max_size

    assert _max_size(parser.parse_args(["echo", "--ws"])) == defaults.max_message_size
    assert _max_size(parser.parse_args(["echo", "--framed"])) == DEFAULT_MAX_FRAME_SIZE
    assert parser.parse_args(["send", "--framed"]).max_size == DEFAULT_MAX_FRAME_SIZE
    assert parser.parse_args(["ws", "--open-timeout", "0"]).open_timeout is None  # 0: no limit
    shown = " ".join(run_netkit("ws", "--help").stdout.split())
    assert f"default {defaults.open_timeout:g}" in shown and f"default {defaults.max_message_size}" in shown, shown


def test_echo_ws_closes_a_connection_that_sends_no_handshake_within_open_timeout() -> None:
    with netkit_server("echo", "--ws", "--open-timeout", "0.5") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROCESS_TIMEOUT) as silent:
            assert silent.recv(1) == b""  # closed by the server, well before our timeout


def test_ws_gives_up_on_a_server_that_never_answers_the_handshake() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        uri = f"ws://127.0.0.1:{silent.getsockname()[1]}/"
        result = run_netkit("ws", uri, "--open-timeout", "0.5")
    line = one_error_line(result, "netkit ws: ")
    assert line == f"netkit ws: no answer to the opening handshake from {uri} within 0.5 s (--open-timeout)"


def test_echo_ws_takes_its_message_limit_from_max_size() -> None:
    with netkit_server("echo", "--ws", "--max-size", "10") as server:
        result = run_netkit("ws", f"ws://127.0.0.1:{server.port}/", "--linger", "0", stdin="short\nmore than ten bytes\n")
    assert result.stdout == "short\n"
    assert "closed with code 1009" in result.stderr, result.stderr


# -------------------------------------------------------------- chat-client


@pytest.fixture
def chat_server() -> Iterator[RunningServer]:
    """``netkit chat`` on free ports; the fixture's port is the terminal clients' one."""
    with spawn_netkit("chat", "--http-port", "0", "--tcp-port", "0") as process:
        banner = ""
        while not banner.endswith("press Ctrl-C to stop\n"):
            banner += read_line(process)
        found = re.search(r"terminal clients: 127\.0\.0\.1:(\d+)", banner)
        assert found, banner
        yield RunningServer(process, banner, int(found.group(1)))


def run_chat_client(port: int, nick: str, stdin: str | bytes) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    result = subprocess.run(
        netkit_command("chat-client", "--port", str(port), "--nick", nick),
        input=data,
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
        env=environment(),
    )
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def wait_with_stdin_open(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for ``process`` to exit by itself (its stdin left open, so that it
    does not see the end of input), then collect its output."""
    process.wait(PROCESS_TIMEOUT)
    return process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]


def said(stdout: str, nick: str) -> list[str]:
    """The texts of ``nick``'s chat messages in a client's transcript."""
    return [found.group(1) for line in stdout.splitlines() if (found := re.fullmatch(rf"\[\d\d:\d\d:\d\d\] <{nick}> (.*)", line))]


def test_chat_client_chats_and_exits_0_when_the_user_quits(chat_server: RunningServer) -> None:
    result = run_chat_client(chat_server.port, "ann", "hello from ann\n/who\n/quit\nnever sent\n")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "* you are ann in #lobby; here: ann"
    assert said(result.stdout, "ann") == ["hello from ann"]
    assert "* in #lobby: ann" in lines
    assert lines[-1] == "* disconnected"


def test_chat_client_paces_pasted_lines_to_the_servers_rate_limit(chat_server: RunningServer) -> None:
    """Twelve lines at once (with the join, more than the server's burst of
    ten): the client spaces them out instead of being disconnected for
    flooding."""
    pasted = [f"pasted line {number}" for number in range(12)]
    result = run_chat_client(chat_server.port, "ann", "".join(line + "\n" for line in pasted))
    assert (result.returncode, result.stderr) == (0, "")
    assert said(result.stdout, "ann") == pasted
    assert "rate_limited" not in result.stdout


def test_chat_client_sends_a_line_that_is_not_utf8_with_replacement_characters(chat_server: RunningServer) -> None:
    result = run_chat_client(chat_server.port, "ann", b"caf\xe9 au lait\n\xff\xfe\nafter\n")
    assert (result.returncode, result.stderr) == (0, "")
    assert said(result.stdout, "ann") == ["caf\ufffd au lait", "\ufffd\ufffd", "after"]
    assert result.stdout.count("! that line was not valid UTF-8") == 2


def test_chat_client_exits_130_on_ctrl_c_without_a_traceback(chat_server: RunningServer) -> None:
    with spawn_netkit("chat-client", "--port", str(chat_server.port), "--nick", "ann") as client:
        assert read_line(client) == "* you are ann in #lobby; here: ann\n"
        client.send_signal(signal.SIGINT)
        out, err = wait_with_stdin_open(client)
    assert client.returncode == 130, err
    assert err == ""


def test_chat_client_exits_1_with_a_reason_when_the_server_goes_away(chat_server: RunningServer) -> None:
    with spawn_netkit("chat-client", "--port", str(chat_server.port), "--nick", "ann") as client:
        assert read_line(client) == "* you are ann in #lobby; here: ann\n"
        chat_server.process.send_signal(signal.SIGTERM)
        out, err = wait_with_stdin_open(client)  # the client must notice by itself
    assert client.returncode == 1, err
    assert err == f"netkit chat-client: the server at 127.0.0.1:{chat_server.port} closed the connection\n"
    assert out.endswith("* disconnected\n")


def test_chat_client_exits_1_with_a_reason_when_its_nickname_is_taken(chat_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", chat_server.port), timeout=PROCESS_TIMEOUT) as holder:
        join = json.dumps({"type": "join", "nick": "ann"}).encode()
        holder.sendall(struct.pack("!I", len(join)) + join)
        recv_exactly(holder, 4)  # the welcome: ann is taken now
        result = run_chat_client(chat_server.port, "ANN", "hello\n")
    assert result.returncode == 1
    line = one_error_line(result, "netkit chat-client: could not join as ANN: ")
    assert line.endswith("(nick_taken)")


@contextmanager
def scripted_chat_server(*replies: object) -> Iterator[int]:
    """A stand-in chat server for one client: it reads the join, sends
    ``replies`` (objects as JSON, bytes as they are) in frames, then closes."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(PROCESS_TIMEOUT)

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                (length,) = struct.unpack("!I", recv_exactly(connection, 4))
                assert json.loads(recv_exactly(connection, length))["type"] == "join"
                for reply in replies:
                    payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                    connection.sendall(struct.pack("!I", len(payload)) + payload)

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            served = pool.submit(serve)
            yield listener.getsockname()[1]
            served.result(PROCESS_TIMEOUT)


WELCOME = {"type": "welcome", "nick": "ann", "room": "lobby", "members": ["ann"], "history": [], "max_text_bytes": 4096}


def test_chat_client_exits_1_with_the_servers_reason_when_it_is_disconnected() -> None:
    kicked = {"type": "error", "code": "rate_limited", "message": "disconnected for flooding"}
    with scripted_chat_server(WELCOME, kicked) as port:
        with spawn_netkit("chat-client", "--port", str(port), "--nick", "ann") as client:
            out, err = wait_with_stdin_open(client)
    assert client.returncode == 1, err
    assert err == "netkit chat-client: disconnected by the server: disconnected for flooding (rate_limited)\n"


def test_chat_client_skips_what_a_server_should_not_have_sent() -> None:
    strange = [
        b"not json",
        {"type": "message"},  # no fields
        {"type": "message", "id": 1, "room": "lobby", "nick": "bob", "text": "hi", "ts": 1e300},
        {"type": "welcome", "history": 7},
        {"type": "who", "room": "lobby", "members": None},
        {"type": "message", "id": 2, "room": "lobby", "nick": "bob", "text": "\x1b[2Jstill here", "ts": 0},
    ]
    with scripted_chat_server(WELCOME, *strange) as port:
        with spawn_netkit("chat-client", "--port", str(port), "--nick", "ann") as client:
            out, err = wait_with_stdin_open(client)
    assert client.returncode == 1, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert out.count("; ignored") == 5, out
    assert said(out, "bob") == ["\\x1b[2Jstill here"]  # the escape sequence shown, not run


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://127.0.0.1/", "is not a WebSocket URI"),
        ("ws://", "has no host"),
        ("ws://[::1", "is not a valid URI"),
        ("ws://127.0.0.1:99999/", "is not a valid URI"),
        ("wss://127.0.0.1/", "needs TLS"),
    ],
)
def test_ws_bad_uri_is_one_line_and_status_1(uri: str, says: str) -> None:
    line = one_error_line(run_netkit("ws", uri), "netkit ws: ")
    assert says in line, line


def test_ws_refused_connection_is_one_line_and_status_1(refusing_port: int) -> None:
    uri = f"ws://127.0.0.1:{refusing_port}/"
    line = one_error_line(run_netkit("ws", uri), "netkit ws: ")
    assert line == f"netkit ws: cannot connect to {uri}: Connection refused"


def test_send_refused_connection_is_one_line_and_status_1(refusing_port: int) -> None:
    line = one_error_line(run_netkit("send", "--framed", "127.0.0.1", str(refusing_port)), "netkit send: ")
    assert line == f"netkit send: cannot connect to 127.0.0.1:{refusing_port}: Connection refused"


@pytest.mark.parametrize("mode", ["--tcp", "--udp", "--framed", "--ws"])
def test_listening_on_a_taken_port_is_one_line_naming_the_address(mode: str) -> None:
    kind = socket.SOCK_DGRAM if mode == "--udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        line = one_error_line(run_netkit("echo", mode, "--port", str(port)), "netkit echo: ")
    assert line == f"netkit echo: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize("mode", ["--tcp", "--udp"])
def test_listening_on_an_unknown_host_is_one_line_naming_it(mode: str) -> None:
    line = one_error_line(run_netkit("echo", mode, "--host", "no-such-host.invalid", "--port", "0"), "netkit echo: ")
    assert line.startswith("netkit echo: cannot listen on no-such-host.invalid:0: "), line


def test_version_is_the_projects() -> None:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as file:
        version = tomllib.load(file)["project"]["version"]
    result = run_netkit("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"netkit {version}\n", "")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["echo", "--tcp", "--udp"],
        ["echo", "--port", "65536"],
        ["echo", "--port", "nine"],
        ["echo", "--max-size", "0"],
        ["ws", "ws://127.0.0.1:1/", "ws://127.0.0.1:2/"],
        ["ws", "ws://127.0.0.1:1/", "--max-size", "-1"],
        ["ws", "ws://127.0.0.1:1/", "--linger", "soon"],
        ["ws", "ws://127.0.0.1:1/", "--open-timeout", "-1"],
        ["echo", "--ws", "--close-timeout", "soon"],
        ["ws", "ws://127.0.0.1:1/", "--header", "bad"],
        ["ws", "ws://127.0.0.1:1/", "--header", "Bad Name: value"],
        ["ws", "ws://127.0.0.1:1/", "--header", "X-Split: one\r\nInjected: two"],
        ["send", "127.0.0.1", "9000"],
        ["send", "--framed", "127.0.0.1", "0"],
        ["chat", "--http-port", "-1"],
        ["chat", "--max-clients", "0"],
        ["chat-client"],
        ["chat-client", "--nick", "ann", "--port", "0"],
    ],
    ids=lambda args: " ".join(args) or "no command",
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_netkit(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.startswith("usage: netkit") and "error:" in result.stderr
    assert "Traceback" not in result.stderr
