"""The transport examples, run as programs and talked to over loopback."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
from typing import Iterator

import pytest

from nonreading_client import connect_small_window, flood

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
LISTENING = re.compile(r"listening on \[?([^\]\s]+?)\]?:(\d+)(?:\s|$)")
TIMEOUT = 15.0


def run_example(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an example to completion (bounded in time)."""
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *args], capture_output=True, text=True, timeout=TIMEOUT
    )


class RunningServer:
    """A server example running as a subprocess, with the port it printed."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLES, script), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
        if not ready:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"{script} printed nothing within {TIMEOUT} s")
        self.first_line = self.process.stdout.readline()
        match = LISTENING.search(self.first_line)
        if match is None:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"{script} did not say where it listens: {self.first_line!r} {err!r}")
        self.host = match.group(1)
        self.port = int(match.group(2))

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``sig`` and wait for a clean exit; returns (status, stdout, stderr)."""
        self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"the server did not stop on signal {sig}: {err}") from None
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for server in started:
        server.kill()


def start(servers: list[RunningServer], script: str, *args: str) -> RunningServer:
    server = RunningServer(script, *args)
    servers.append(server)
    return server


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_tcp_echo_server_and_client(servers: list[RunningServer], sig: int) -> None:
    server = start(servers, "04-tcp-udp/tcp_echo_server.py")
    assert server.host == "127.0.0.1" and server.port > 0
    client = run_example("04-tcp-udp/tcp_echo_client.py", "--port", str(server.port), "--message", "ping pong", "--count", "5")
    assert client.returncode == 0, client.stderr
    assert "5 echoes of 9 bytes, all intact" in client.stdout
    status, out, err = server.stop(sig)
    assert status == 0, err
    assert "server stopped" in out
    assert "Traceback" not in err


def test_tcp_echo_streams_server_and_client(servers: list[RunningServer]) -> None:
    server = start(servers, "04-tcp-udp/streams_echo.py")
    client = run_example("04-tcp-udp/streams_echo.py", "--client", "--port", str(server.port), "--count", "3")
    assert client.returncode == 0, client.stderr
    assert "3 echoes" in client.stdout
    # The two APIs interoperate: the callback client against the streams server.
    client = run_example("04-tcp-udp/tcp_echo_client.py", "--port", str(server.port), "--message", "x" * 100_000)
    assert client.returncode == 0, client.stderr
    status, out, err = server.stop()
    assert status == 0, err
    assert "server stopped" in out


@pytest.mark.parametrize("script", ["04-tcp-udp/tcp_echo_server.py", "04-tcp-udp/streams_echo.py"])
def test_tcp_echo_servers_stop_reading_from_a_client_that_does_not_read(servers: list[RunningServer], script: str) -> None:
    """64 MiB sent, none of the echoes read: the server must stop reading
    once its replies back up, not buffer them all."""
    server = start(servers, script)
    with connect_small_window(server.port) as client:
        result = flood(server.process.pid, client, b"x" * 65536)
    result.check_bounded()
    status, _, err = server.stop()
    assert status == 0, err


def test_udp_echo_server_pauses_reading_while_its_sends_are_queued() -> None:
    """UDP has no window, but the transport's send queue has water marks: the
    echo stops taking datagrams while its answers wait in that queue."""
    folder = os.path.join(EXAMPLES, "04-tcp-udp")
    sys.path.insert(0, folder)
    try:
        from udp_echo_server import UDPEcho
    finally:
        sys.path.remove(folder)

    calls: list[str] = []

    class Transport:
        def pause_reading(self) -> None:
            calls.append("pause_reading")

        def resume_reading(self) -> None:
            calls.append("resume_reading")

    echo = UDPEcho()
    echo.connection_made(Transport())  # type: ignore[arg-type]
    echo.pause_writing()
    echo.resume_writing()
    assert calls == ["pause_reading", "resume_reading"]


def test_tcp_clients_report_a_refused_connection() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = str(placeholder.getsockname()[1])
        for script, extra in (("04-tcp-udp/tcp_echo_client.py", ()), ("04-tcp-udp/streams_echo.py", ("--client",))):
            client = run_example(script, "--port", port, *extra)
            assert client.returncode == 1
            assert "refused" in client.stderr.lower()
            assert "Traceback" not in client.stderr


@pytest.mark.parametrize(
    "script, args",
    [
        ("04-tcp-udp/tcp_echo_client.py", ()),
        ("04-tcp-udp/streams_echo.py", ("--client",)),
        ("04-tcp-udp/half_close.py", ("--connect",)),
        ("04-tcp-udp/udp_echo_client.py", ("--timeout", "30")),
    ],
    ids=["tcp_echo_client", "streams_echo", "half_close", "udp_echo_client"],
)
def test_clients_exit_130_on_ctrl_c_without_a_traceback(script: str, args: tuple[str, ...]) -> None:
    """A client waiting on a server that never answers, interrupted: it
    ends with the shell's status for Ctrl-C and says nothing more."""
    udp = os.path.basename(script).startswith("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.settimeout(TIMEOUT)
        if not udp:
            silent.listen()
        port = str(silent.getsockname()[1])
        client = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLES, script), "--port", port, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if udp:
                silent.recvfrom(65536)  # its first datagram: it is waiting for the echo
                connection = None
            else:
                connection, _ = silent.accept()  # connected: it is waiting for an answer
            client.send_signal(signal.SIGINT)
            _, err = client.communicate(timeout=TIMEOUT)
            if connection is not None:
                connection.close()
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
    assert client.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_clients_count_in_the_singular_too(servers: list[RunningServer]) -> None:
    server = start(servers, "04-tcp-udp/tcp_echo_server.py")
    callback = run_example("04-tcp-udp/tcp_echo_client.py", "--port", str(server.port), "--message", "x")
    assert callback.stdout.splitlines()[-1] == "1 echo of 1 byte, intact", callback.stdout
    streams = run_example("04-tcp-udp/streams_echo.py", "--client", "--port", str(server.port), "--message", "x")
    assert streams.stdout.splitlines()[-1] == "1 echo of 1 byte, intact", streams.stdout
    udp = start(servers, "04-tcp-udp/udp_echo_server.py")
    datagram = run_example("04-tcp-udp/udp_echo_client.py", "--port", str(udp.port))
    assert datagram.stdout.splitlines()[-1] == "1 datagram echoed intact", datagram.stdout
    half_close = run_example("04-tcp-udp/half_close.py", "--lines", "1")
    assert "client: the server counted 27 bytes, 1 line, 5 words" in half_close.stdout.splitlines()


SERVERS = [
    ("04-tcp-udp/tcp_echo_server.py", socket.SOCK_STREAM, ()),
    ("04-tcp-udp/streams_echo.py", socket.SOCK_STREAM, ()),
    ("04-tcp-udp/udp_echo_server.py", socket.SOCK_DGRAM, ()),
    ("05-framing/framed_echo_server.py", socket.SOCK_STREAM, ()),
    ("04-tcp-udp/half_close.py", socket.SOCK_STREAM, ("--serve",)),
    ("06-websocket/ws_echo_server.py", socket.SOCK_STREAM, ()),
    ("06-websocket/ws_callback_echo.py", socket.SOCK_STREAM, ()),
]


@pytest.mark.parametrize("script, kind, args", SERVERS, ids=[script for script, _, _ in SERVERS])
def test_example_servers_report_a_taken_port_in_one_line(script: str, kind: int, args: tuple[str, ...]) -> None:
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        result = run_example(script, "--port", str(port), *args)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"cannot listen on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize("script", ["04-tcp-udp/tcp_echo_server.py", "04-tcp-udp/streams_echo.py", "05-framing/framed_echo_server.py"])
def test_echo_servers_close_a_connection_idle_for_idle_timeout(servers: list[RunningServer], script: str) -> None:
    server = start(servers, script, "--idle-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as quiet:
        assert quiet.recv(1) == b""  # closed by the server, well before our own timeout
    status, _, err = server.stop()
    assert status == 0, err


def test_udp_echo_server_and_client(servers: list[RunningServer]) -> None:
    server = start(servers, "04-tcp-udp/udp_echo_server.py")
    client = run_example("04-tcp-udp/udp_echo_client.py", "--port", str(server.port), "--count", "20", "--message", "datagram")
    assert client.returncode == 0, client.stderr
    assert "20 datagrams echoed intact" in client.stdout
    status, out, err = server.stop()
    assert status == 0, err
    assert "server stopped" in out


def test_udp_echo_client_hears_port_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    client = run_example("04-tcp-udp/udp_echo_client.py", "--port", port, "--timeout", "5")
    assert client.returncode == 1
    assert "refused" in client.stderr.lower()


def test_half_close_demo_reads_the_whole_answer_after_eof() -> None:
    result = run_example("04-tcp-udp/half_close.py", "--port", "0", "--lines", "20000")
    assert result.returncode == 0, result.stderr
    assert "then shut down the write side" in result.stdout
    assert "20,000 lines" in result.stdout
    assert "server stopped" in result.stdout


def test_half_close_server_refuses_a_request_over_its_limit(servers: list[RunningServer]) -> None:
    """The request is collected until the client's FIN, so its size is
    bounded: a client that sends without end is cut off at the limit
    instead of growing the server."""
    server = start(servers, "04-tcp-udp/half_close.py", "--serve", "--max-request-size", "100000")
    with connect_small_window(server.port) as client:
        result = flood(server.process.pid, client, b"line of a request that never ends\n" * 2000)
    result.check_bounded()
    status, _, err = server.stop()
    assert status == 0, err
    assert "request over 100000 bytes" in err


def test_half_close_server_answers_a_request_at_its_limit(servers: list[RunningServer]) -> None:
    server = start(servers, "04-tcp-udp/half_close.py", "--serve", "--max-request-size", str(1000 * 27))
    client = run_example("04-tcp-udp/half_close.py", "--connect", "--port", str(server.port), "--lines", "1000")  # 27 bytes a line
    assert client.returncode == 0, client.stderr
    assert "27,000 bytes, 1,000 lines" in client.stdout
    status, _, err = server.stop()
    assert status == 0, err


def test_half_close_server_and_client_apart(servers: list[RunningServer]) -> None:
    server = start(servers, "04-tcp-udp/half_close.py", "--serve")
    client = run_example("04-tcp-udp/half_close.py", "--connect", "--port", str(server.port), "--lines", "1000")
    assert client.returncode == 0, client.stderr
    assert "1,000 lines" in client.stdout
    status, out, err = server.stop()
    assert status == 0, err
    assert "server stopped" in out


DOCS = os.path.join(os.path.dirname(EXAMPLES), "docs", "tcp-udp.md")
SNIPPET = re.compile(r"<!-- from (examples/[\w./-]+) -->\n```python\n(.*?)```", re.S)


def test_the_code_in_the_tcp_udp_guide_is_the_examples_code() -> None:
    with open(DOCS) as file:
        guide = file.read()
    snippets = SNIPPET.findall(guide)
    assert len(snippets) >= 6
    for path, code in snippets:
        with open(os.path.join(os.path.dirname(EXAMPLES), path)) as file:
            source = file.read()
        assert code in source, f"the excerpt of {path} in docs/tcp-udp.md no longer matches the example"
