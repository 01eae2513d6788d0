"""Which loop runs in this thread: the one piece of per-thread state netkit keeps."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loop import EventLoop


class _RunningLoop(threading.local):
    loop: Any = None
    task: Any = None  # the task whose step is executing, for current_task()


_state = _RunningLoop()


def get_running_loop_or_none() -> EventLoop | None:
    return _state.loop  # type: ignore[no-any-return]


def set_running_loop(loop: EventLoop | None) -> None:
    _state.loop = loop
    _state.task = None


def get_running_loop() -> EventLoop:
    """The loop running in this thread; ``RuntimeError`` when none is."""
    loop = _state.loop
    if loop is None:
        raise RuntimeError("no running event loop")
    return loop  # type: ignore[no-any-return]
