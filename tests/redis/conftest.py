"""Fixtures for the Redis tests: a real ``redis-server``, and a real loop per test.

``redis_server`` is one server for the whole session, on a free loopback
port, with no persistence, in a temporary directory; ``redis_url`` empties
it before each test.  ``own_redis_server`` starts one for a single test, to
kill and restart, or to configure (a password) without touching the others.
Servers are stopped by their pid.  Without ``/usr/bin/redis-server`` the
tests that need one skip, and fail in CI (``tests/services.py``).

Every ``async def`` test runs on a fresh ``EventLoop`` under a deadline;
whatever reaches the loop's exception handler fails the test unless it asks
for ``errors``; and the test must leave no file descriptor open.
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services import service_missing

import netkit
from netkit import EventLoop

# A generous bound for one test: they take milliseconds to a second when nothing is wrong.
TEST_DEADLINE = 30.0

# How long a starting redis-server may take to answer PING: it is ready in
# tens of milliseconds; a slow shared machine gets ample room.
STARTUP_TIMEOUT = 20.0


def redis_server_path() -> str | None:
    return shutil.which("redis-server") or (os.path.exists("/usr/bin/redis-server") and "/usr/bin/redis-server") or None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command(port: int, *args: str | bytes, timeout: float = 10.0) -> bytes:
    """Send one command with a plain blocking socket; return the raw reply line(s).

    For setting the server up from synchronous code; the tests' own traffic
    goes through netkit.redis.
    """
    from netkit.redis.resp import encode_command

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(encode_command(*args))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


class RedisServer:
    """A redis-server child process on 127.0.0.1:``port``, started and stopped by pid."""

    def __init__(self, executable: str, directory: Path, port: int, *extra: str) -> None:
        self.executable = executable
        self.directory = directory
        self.port = port
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
            "--enable-debug-command", "yes",  # DEBUG PROTOCOL sends every RESP3 type
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        """Poll with PING until the server answers: a child process has no
        readiness event to await, so this is the one bounded poll."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                if command(self.port, "PING", timeout=1.0).startswith((b"+PONG", b"-NOAUTH")):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {STARTUP_TIMEOUT} s")
            time.sleep(0.01)

    def kill(self) -> None:
        """``kill -9`` the server and reap it: its sockets close at once."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """Kill the server and start a new one on the same port (no data survives)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def command(self, *args: str | bytes) -> bytes:
        return command(self.port, *args)


def _start_server(*extra: str) -> Iterator[RedisServer]:
    executable = redis_server_path()
    if executable is None:
        service_missing("redis-server is not installed (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="netkit-redis-") as directory:
        server = RedisServer(executable, Path(directory), free_port(), *extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session."""
    yield from _start_server()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied and with its default limits restored."""
    redis_server.command("FLUSHALL")
    redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60")
    return redis_server.url


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server for this test alone: to kill, restart or reconfigure."""
    yield from _start_server()


# -- the loop -------------------------------------------------------------------


class ErrorLog:
    """An exception handler that records every context it receives."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: EventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)


def open_fds() -> set[int]:
    """The process's open file descriptors (Linux: /proc/self/fd), still valid."""
    result = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue  # the directory listdir itself opened
        result.add(int(name))
    return result


@pytest.fixture(autouse=True)
def loop() -> Iterator[EventLoop]:
    """A real ``EventLoop``; the test must leave no file descriptor behind."""
    gc.collect()
    before = open_fds()
    event_loop = EventLoop()
    event_loop.set_exception_handler(ErrorLog())
    yield event_loop
    if not event_loop.is_closed():
        _shut_down(event_loop)
    gc.collect()
    leaked = open_fds() - before
    assert not leaked, f"file descriptors left open: {sorted(leaked)}"


@pytest.fixture
def errors(loop: EventLoop) -> ErrorLog:
    """What reached the loop's exception handler; asking for it allows reports."""
    handler = loop.get_exception_handler()
    assert isinstance(handler, ErrorLog)
    return handler


def _shut_down(event_loop: EventLoop) -> None:
    pending = [task for task in netkit.all_tasks(event_loop)]
    for task in pending:
        task.cancel()
    if pending:
        event_loop.run_until_complete(netkit.gather(*pending, return_exceptions=True))
    event_loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on the ``loop`` fixture, under ``TEST_DEADLINE``."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    event_loop: EventLoop = pyfuncitem.funcargs["loop"]
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    try:
        event_loop.run_until_complete(netkit.wait_for(function(**kwargs), TEST_DEADLINE))
    finally:
        _shut_down(event_loop)
    handler = event_loop.get_exception_handler()
    if "errors" not in pyfuncitem.fixturenames and isinstance(handler, ErrorLog) and handler.contexts:
        details = "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in handler.contexts)
        pytest.fail(f"unexpected reports to the loop's exception handler: {details}")
    return True
