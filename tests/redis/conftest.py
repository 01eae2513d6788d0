"""Fixtures for the Redis tests: a real ``redis-server``, and a real loop per test.

``redis_server`` is one server for the whole session, on a free loopback
port, with no persistence, in a temporary directory; ``redis_url`` empties
it before each test.  ``own_redis_server`` starts one for a single test, to
kill and restart, or to configure (a password) without touching the others.
Servers are stopped by their pid.  Without ``/usr/bin/redis-server`` the
tests that need one skip, and fail in CI (``tests/services.py``).

Every ``async def`` test runs on a fresh ``EventLoop`` under a deadline
(its module asks for the ``loop`` fixture with ``pytestmark``);
whatever reaches the loop's exception handler fails the test unless it asks
for ``errors``; and the test must leave no file descriptor open.
"""

from __future__ import annotations

import gc
import inspect
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_helpers import RedisServer, free_port, open_fds, redis_server_path
from services import service_missing

import netkit
from netkit import EventLoop

# A generous bound for one test: they take milliseconds to a second when nothing is wrong.
TEST_DEADLINE = 30.0


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


@pytest.fixture
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
