"""What the Redis tests share: a redis-server child process to start, kill and
restart by pid, a blocking one-command client to set it up, and the
process's open file descriptors.

A module of its own (not conftest.py) so that test modules can import it by
a name no other test directory uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

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
