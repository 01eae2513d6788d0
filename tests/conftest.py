"""Fixtures shared by the runtime tests.

Anything that involves timers runs on ``TestLoop`` (virtual time), so no test
depends on how fast the machine is.  ``real_loop`` is for what needs real
I/O: threads waking the loop, signals, file descriptors.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Iterator

import pytest

from netkit import EventLoop
from netkit.testing import TestLoop


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


@pytest.fixture
def loop() -> Iterator[TestLoop]:
    """A virtual-time loop with autojump: sleeps and timeouts finish at once."""
    test_loop = TestLoop(autojump=True)
    yield test_loop
    test_loop.close()


@pytest.fixture
def manual_loop() -> Iterator[TestLoop]:
    """A virtual-time loop whose clock moves only through ``advance()``."""
    test_loop = TestLoop()
    yield test_loop
    test_loop.close()


@pytest.fixture
def real_loop() -> Iterator[EventLoop]:
    """A plain ``EventLoop`` on the real clock, for threads, signals and I/O."""
    event_loop = EventLoop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def errors(loop: TestLoop) -> ErrorLog:
    """Records what reaches ``loop``'s exception handler."""
    log = ErrorLog()
    loop.set_exception_handler(log)
    return log


def _collect_garbage() -> None:
    while gc.collect():
        pass


@pytest.fixture
def collect_garbage() -> Callable[[], None]:
    """Runs the cycle collector until nothing more is freed (tracebacks make cycles)."""
    return _collect_garbage


@pytest.fixture
def error_log() -> type[ErrorLog]:
    """The ``ErrorLog`` class, for tests that install it on a loop of their own."""
    return ErrorLog
