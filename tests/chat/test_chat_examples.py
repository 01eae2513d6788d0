"""examples/chat_server.py and examples/chat_client.py, run as a user runs them."""

from __future__ import annotations

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
from pathlib import Path

import pytest

import netkit
from netkit import websocket
from netkit.errors import ConnectionClosed, HandshakeError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Generous bounds for a subprocess to answer on a busy machine; reaching one
# means the example hangs, which is the failure being tested for.
PROCESS_TIMEOUT = 30


class RunningServer:
    def __init__(self, process: subprocess.Popen[str], http_port: int, tcp_port: int) -> None:
        self.process = process
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.banner = ""

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=PROCESS_TIMEOUT)
        return self.process.returncode, out, err


def start_chat_server(*options: str) -> RunningServer:
    """Run examples/chat_server.py on free ports with ``options``, once it
    has printed its banner (in ``banner``)."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "chat_server.py"), "--http-port", "0", "--tcp-port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("press Ctrl-C"):
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, f"the server exited early: {lines} {process.communicate()[1]}"
            lines.append(line)
        banner = "".join(lines)
        http_port = int(re.search(r"chat page: http://127\.0\.0\.1:(\d+)/", banner).group(1))  # type: ignore[union-attr]
        tcp_port = int(re.search(r"terminal clients: 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        assert f"ws://127.0.0.1:{http_port}/ws" in banner
    except BaseException:
        stop_process(process)
        raise
    server = RunningServer(process, http_port, tcp_port)
    server.banner = banner
    return server


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture
def chat_server() -> Iterator[RunningServer]:
    server = start_chat_server()
    try:
        yield server
    finally:
        stop_process(server.process)


def run_client(port: int, nick: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "chat_client.py"), "--port", str(port), "--nick", nick],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


def frame(message: dict[str, object]) -> bytes:
    payload = json.dumps(message).encode()
    return struct.pack("!I", len(payload)) + payload


def test_terminal_clients_chat_and_the_server_shuts_down_on_sigterm(chat_server: RunningServer) -> None:
    ann = run_client(chat_server.tcp_port, "ann", "hello from ann\n/who\n")
    assert ann.returncode == 0, ann.stderr
    lines = ann.stdout.splitlines()
    assert lines[0] == "* you are ann in #lobby; here: ann"
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] <ann> hello from ann", lines[1])
    assert lines[2] == "* in #lobby: ann"
    assert lines[-1] == "* disconnected"

    bob = run_client(chat_server.tcp_port, "bob", "/join Python\n/who\n/quit\nnever sent\n")
    assert bob.returncode == 0, bob.stderr
    lines = bob.stdout.splitlines()
    assert lines[0] == "* you are bob in #lobby; here: bob"
    assert lines[1].endswith("<ann> hello from ann")  # the history replay
    assert lines[2:5] == ["* you are bob in #python; here: bob", "* in #python: bob", "* disconnected"]

    with urllib.request.urlopen(f"http://127.0.0.1:{chat_server.http_port}/", timeout=PROCESS_TIMEOUT) as response:
        assert response.status == 200
        assert b'id="messages"' in response.read()

    status, out, err = chat_server.stop(signal.SIGTERM)
    assert status == 0, err
    assert out.splitlines()[-1] == "chat server stopped"
    assert "event=join nick=ann door=tcp" in err
    assert "event=move nick=bob door=tcp" in err and "to=python" in err
    assert "event=leave nick=bob" in err


def test_a_taken_nickname_exits_with_status_1(chat_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", chat_server.tcp_port)) as holder:
        holder.sendall(frame({"type": "join", "nick": "ann"}))
        header = holder.recv(4, socket.MSG_WAITALL)  # the welcome: ann is taken now
        assert len(header) == 4
        taken = run_client(chat_server.tcp_port, "ANN", "hello\n")
    assert taken.returncode == 1
    assert taken.stderr.endswith("(nick_taken)\n") and len(taken.stderr.splitlines()) == 1, taken.stderr
    status, _, _ = chat_server.stop(signal.SIGTERM)
    assert status == 0


def test_sigint_closes_connected_terminal_clients(chat_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", chat_server.tcp_port)) as client:
        client.sendall(frame({"type": "join", "nick": "ann"}))
        (length,) = struct.unpack("!I", client.recv(4, socket.MSG_WAITALL))
        assert json.loads(client.recv(length, socket.MSG_WAITALL))["type"] == "welcome"
        status, out, err = chat_server.stop(signal.SIGINT)
        client.settimeout(PROCESS_TIMEOUT)
        assert client.recv(1) == b""  # closed by the server
    assert status == 0, err
    assert "event=shutdown clients=1" in err


def test_client_without_a_server_fails_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused_port = probe.getsockname()[1]
    result = run_client(unused_port, "ann", "")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr


def test_client_needs_a_nick() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat_client.py"), "--port", "1"],
        input="",
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 2
    assert "required: --nick" in result.stderr


def test_the_banner_names_the_installed_terminal_client(chat_server: RunningServer) -> None:
    port = chat_server.tcp_port
    assert f"terminal clients: 127.0.0.1:{port} (python -m netkit chat-client --port {port})" in chat_server.banner
    status, _, _ = chat_server.stop(signal.SIGTERM)
    assert status == 0


def test_websocket_options_from_the_command_line() -> None:
    server = start_chat_server("--origin", "https://chat.example.com", "--max-message-size", "2000", "--close-timeout", "5")
    uri = f"ws://127.0.0.1:{server.http_port}/ws"

    async def scenario() -> None:
        with pytest.raises(HandshakeError) as refused:
            await websocket.connect(uri, origin="https://evil.example")
        assert refused.value.status == 403
        connection = await websocket.connect(uri, origin="https://chat.example.com")
        await connection.send(json.dumps({"type": "say", "text": "x" * 2000}))  # over 2000 bytes with the JSON around it
        with pytest.raises(ConnectionClosed):
            await connection.recv()
        assert connection.close_code == 1009  # RFC 6455 section 7.4.1: message too big

    try:
        netkit.run(netkit.wait_for(scenario(), PROCESS_TIMEOUT))
        status, _, err = server.stop(signal.SIGTERM)
        assert status == 0, err
        assert "event=origin_refused" in err
    finally:
        stop_process(server.process)


def test_client_is_not_stopped_by_stdin_that_is_not_utf8(chat_server: RunningServer) -> None:
    """Bytes that are not UTF-8 on stdin, read with strict decoding: the
    line goes out with replacement characters, and the client goes on."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat_client.py"), "--port", str(chat_server.tcp_port), "--nick", "ann"],
        input=b"caf\xe9\nafter\n",
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert any(line.endswith("<ann> caf\ufffd") for line in lines), lines
    assert any(line.endswith("<ann> after") for line in lines), lines


def test_client_exits_130_on_ctrl_c_without_a_traceback(chat_server: RunningServer) -> None:
    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "chat_client.py"), "--port", str(chat_server.tcp_port), "--nick", "ann"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert client.stdout.readline() == "* you are ann in #lobby; here: ann\n"  # type: ignore[union-attr]
        client.send_signal(signal.SIGINT)
        client.wait(PROCESS_TIMEOUT)
        err = client.stderr.read()  # type: ignore[union-attr]
    finally:
        if client.poll() is None:
            client.kill()
        client.communicate()
    assert client.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
