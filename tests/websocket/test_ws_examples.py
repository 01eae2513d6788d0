"""The WebSocket examples run as a user would run them, and the Python
snippets of docs/websocket.md run as they are written."""

from __future__ import annotations

import pathlib
import re
import select
import signal
import subprocess
import sys

import pytest

import netkit
from netkit.websocket import connect

from nonreading_client import connect_small_window, flood, masked_binary_frame, websocket_handshake
from ws_loop_helpers import run

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "06-websocket"
DOC = ROOT / "docs" / "websocket.md"
LINE_TIMEOUT = 10.0


def read_line(stream, timeout: float = LINE_TIMEOUT) -> str:
    """One line from a child's pipe, failing instead of hanging."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the example printed nothing in time"
    return stream.readline()


def start_server(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = read_line(process.stdout)
    match = re.search(r"ws://\S+", line)
    assert match, line
    return process, match.group(0)


def stop_server(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=LINE_TIMEOUT)
    assert process.returncode == 0, err
    return out


@pytest.mark.parametrize("script", ["ws_echo_server.py", "ws_callback_echo.py"])
def test_the_echo_servers_echo_text_binary_and_large_messages(script: str) -> None:
    process, uri = start_server(script)
    try:

        async def talk() -> None:
            async with connect(uri, max_message_size=4 << 20) as ws:
                for message in ("hello", "", "ünïcode ✓", b"\x00\xff binary", b"\x5a" * (3 << 20)):
                    await ws.send(message)
                    assert await ws.recv() == message
                # Pipelined: many messages in flight, echoed in order.
                for index in range(200):
                    ws.send_nowait(f"message {index}")
                for index in range(200):
                    assert await ws.recv() == f"message {index}"

        run(talk())
    finally:
        out = stop_server(process)
    assert "server stopped" in out


def test_the_callback_echo_server_survives_a_client_that_does_not_read() -> None:
    process, uri = start_server("ws_callback_echo.py")
    try:

        async def flood_then_read() -> None:
            async with connect(uri, max_message_size=None) as ws:
                payload = b"\x01" * (1 << 20)
                sending = netkit.create_task(_send_many(ws, payload, 32))
                # Nothing is read until everything has been sent: the server
                # stops reading from us while its sends are paused, and our
                # sends wait in turn; then reading drains both ways.
                received = 0
                while received < 32:
                    assert await ws.recv() == payload
                    received += 1
                await sending

        run(flood_then_read(), deadline=30)
    finally:
        stop_server(process)


FLOODS = {
    "messages": masked_binary_frame(b"x" * 65000),
    # RFC 6455 §5.5: a control frame carries 125 bytes at most; each ping is
    # answered with a pong whether or not the client reads.
    "pings": (bytes([0x89, 0x80 | 125]) + b"\0" * 4 + b"p" * 125) * 512,
}


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ("ws_echo_server.py", "messages"),
        ("ws_echo_server.py", "pings"),
        ("ws_callback_echo.py", "messages"),
        ("ws_callback_echo.py", "pings"),
    ],
)
def test_the_echo_servers_hold_their_memory_against_a_client_that_does_not_read(script: str, kind: str) -> None:
    """A raw client sends 64 MiB and reads nothing back: the server must stop
    reading once its answers back up, not buffer them all."""
    process, uri = start_server(script)
    try:
        port = int(uri.rsplit(":", 1)[1].strip("/"))
        with connect_small_window(port) as client:
            websocket_handshake(client, f"127.0.0.1:{port}")
            result = flood(process.pid, client, FLOODS[kind])
    finally:
        stop_server(process)
    result.check_bounded()


async def _send_many(ws, payload: bytes, count: int) -> None:
    for _ in range(count):
        await ws.send(payload)


def test_the_client_sends_stdin_lines_and_prints_what_arrives() -> None:
    server, uri = start_server("ws_echo_server.py")
    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "ws_client.py"), uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "connected to" in read_line(client.stderr)
        for line in ("hello", "wörld, in UTF-8", "   spaces kept   "):
            client.stdin.write(line + "\n")
            client.stdin.flush()
            assert read_line(client.stdout) == line + "\n"
        client.stdin.close()  # end of input: the client closes with 1000
        client.wait(timeout=LINE_TIMEOUT)
        err = client.stderr.read()
        assert client.returncode == 0, err
        assert "connection closed: code 1000" in err
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
        stop_server(server)


def test_the_client_with_piped_input_prints_every_answer_before_closing() -> None:
    """All the input arrives at once and ends at once: the client must wait
    for the echoes instead of closing as soon as stdin ends."""
    server, uri = start_server("ws_echo_server.py")
    try:
        lines = [f"line {number}" for number in range(20)]
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "ws_client.py"), uri, "--linger", "2"],
            input="".join(line + "\n" for line in lines),
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT * 3,
        )
    finally:
        stop_server(server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines
    assert "connection closed: code 1000" in result.stderr


def test_the_client_exits_130_on_ctrl_c_without_a_traceback() -> None:
    server, uri = start_server("ws_echo_server.py")
    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "ws_client.py"), uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "connected to" in read_line(client.stderr)
        client.send_signal(signal.SIGINT)
        client.wait(timeout=LINE_TIMEOUT)  # stdin still open: only the signal ends it
        err = client.stderr.read()
    finally:
        if client.poll() is None:
            client.kill()
        client.communicate()
        stop_server(server)
    assert client.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.parametrize("script", ["ws_echo_server.py", "ws_callback_echo.py"])
def test_the_echo_servers_close_a_connection_without_a_handshake_at_open_timeout(script: str) -> None:
    import socket

    process, uri = start_server(script, "--open-timeout", "0.5")
    try:
        port = int(uri.rsplit(":", 1)[1].strip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=LINE_TIMEOUT * 3) as silent:
            assert silent.recv(1) == b""  # closed by the server, well before our own timeout
    finally:
        stop_server(process)


def test_the_client_gives_up_on_a_handshake_at_open_timeout() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        uri = f"ws://127.0.0.1:{silent.getsockname()[1]}/"
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "ws_client.py"), uri, "--open-timeout", "0.5"],
            input="",
            capture_output=True,
            text=True,
            timeout=LINE_TIMEOUT * 3,
        )
    assert result.returncode == 1
    assert result.stderr == f"could not connect to {uri}: no answer to the opening handshake within 0.5 s\n"


def test_the_examples_websocket_options_default_to_the_librarys() -> None:
    from netkit.websocket import Options

    defaults = Options()
    for script in ("ws_echo_server.py", "ws_callback_echo.py", "ws_client.py"):
        shown = " ".join(subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True, timeout=LINE_TIMEOUT).stdout.split())
        assert f"done within this time (default {defaults.open_timeout:g};" in shown, (script, shown)
        assert shown.count(f"(default {defaults.close_timeout:g};") >= 1, (script, shown)
    assert f"(default {defaults.max_message_size:,})" in shown  # the client's message limit is the library's


def test_the_client_takes_host_and_port_and_reports_a_refused_connection() -> None:
    server, uri = start_server("ws_echo_server.py")
    port = uri.rsplit(":", 1)[1].strip("/")
    stop_server(server)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "ws_client.py"), "--host", "127.0.0.1", "--port", port],
        input="",
        capture_output=True,
        text=True,
        timeout=LINE_TIMEOUT,
    )
    assert result.returncode == 1
    assert f"could not connect to ws://127.0.0.1:{port}/" in result.stderr


def test_the_autobahn_client_without_a_server_says_so_in_one_line() -> None:
    server, uri = start_server("ws_echo_server.py")
    port = uri.rsplit(":", 1)[1].strip("/")
    stop_server(server)  # the port is free again: nobody listens there
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "ws_autobahn_client.py"), port],
        capture_output=True,
        text=True,
        timeout=LINE_TIMEOUT,
    )
    assert result.returncode == 1
    assert result.stderr == f"cannot reach the test suite's server at ws://127.0.0.1:{port}: Connection refused\n"


def test_the_client_ends_when_the_server_goes_away() -> None:
    server, uri = start_server("ws_echo_server.py")
    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "ws_client.py"), uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "connected to" in read_line(client.stderr)
        stop_server(server)  # closes its connections with 1001, going away
        out, err = client.communicate(timeout=LINE_TIMEOUT)
        assert client.returncode == 0, err
        assert "connection closed: code 1001" in err
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()


# ---------------------------------------------------------------------- docs

SNIPPETS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL) if DOC.exists() else []


def test_the_page_has_runnable_snippets() -> None:
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_doc_snippet_runs(index: int) -> None:
    code = compile(SNIPPETS[index], f"{DOC.name} snippet {index + 1}", "exec")
    exec(code, {"__name__": f"websocket_doc_snippet_{index + 1}"})
