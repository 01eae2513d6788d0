"""Fixtures for the transport tests: real sockets on a real loop, bounded in time.

Every ``async def`` test here runs on a fresh ``EventLoop`` under a deadline,
so a bug fails the test instead of hanging the run.  Whatever reaches the
loop's exception handler fails the test too, unless the test asked for the
``errors`` fixture to inspect those reports itself.  After the test, every
file descriptor the test opened must be closed again.
"""

from __future__ import annotations

import gc
import inspect
import os
from typing import Any, Iterator

import pytest

import netkit
from netkit import EventLoop

# A generous bound for one test: they take milliseconds when nothing is wrong.
TEST_DEADLINE = 20.0


class ErrorLog:
    """An exception handler that records every context it receives."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: EventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    @property
    def messages(self) -> list[str]:
        return [context.get("message", "") for context in self.contexts]

    @property
    def exceptions(self) -> list[BaseException | None]:
        return [context.get("exception") for context in self.contexts]


def open_fds() -> set[int]:
    """The process's open file descriptors (Linux: /proc/self/fd)."""
    fds = set(os.listdir("/proc/self/fd"))
    return {int(fd) for fd in fds}


def _open_fds_still_valid() -> set[int]:
    # listdir itself opens a directory fd that is closed by the time we look:
    # keep only descriptors that are still open.
    result = set()
    for fd in open_fds():
        try:
            os.fstat(fd)
        except OSError:
            continue
        result.add(fd)
    return result


@pytest.fixture(autouse=True)
def loop() -> Iterator[EventLoop]:
    """A real ``EventLoop`` for every test; the test must leave no file descriptor behind."""
    gc.collect()
    before = _open_fds_still_valid()
    event_loop = EventLoop()
    event_loop.set_exception_handler(ErrorLog())
    yield event_loop
    if not event_loop.is_closed():
        _shut_down(event_loop)
    gc.collect()
    leaked = _open_fds_still_valid() - before
    assert not leaked, f"file descriptors left open: {sorted(leaked)} -> {[_describe(fd) for fd in sorted(leaked)]}"


@pytest.fixture
def errors(loop: EventLoop) -> ErrorLog:
    """What reached the loop's exception handler; asking for it allows reports."""
    handler = loop.get_exception_handler()
    assert isinstance(handler, ErrorLog)
    return handler


def _describe(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def _shut_down(event_loop: EventLoop) -> None:
    pending = [task for task in event_loop._tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        event_loop.run_until_complete(netkit.gather(*pending, return_exceptions=True))
    event_loop.run_until_complete(event_loop.shutdown_default_executor())
    event_loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on the ``loop`` fixture, under ``TEST_DEADLINE``."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function):
        return None
    event_loop: EventLoop = pyfuncitem.funcargs["loop"]
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    deadline = getattr(function, "deadline", TEST_DEADLINE)
    try:
        event_loop.run_until_complete(netkit.wait_for(function(**kwargs), deadline))
    finally:
        _shut_down(event_loop)
    handler = event_loop.get_exception_handler()
    if "errors" not in pyfuncitem.fixturenames and isinstance(handler, ErrorLog) and handler.contexts:
        details = "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in handler.contexts)
        pytest.fail(f"unexpected reports to the loop's exception handler: {details}")
    return True
