"""netkit: a networking toolkit on the Python standard library alone.

An event loop over ``selectors``, coroutines and tasks on it, TCP/UDP/Unix
transports, message framing and RFC 6455 WebSockets.

The public names are loaded when first used (PEP 562's module
``__getattr__``), so that ``import netkit.framing``, ``netkit.http`` or the
WebSocket codec loads none of the loop, the transports or ``socket``: the
sans-I/O modules stay usable with any I/O at their own cost.  The error
types are loaded at once: every layer raises them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

# Each public name and the module that defines it, in the layers' order.
_LAZY_NAMES: dict[str, str] = {
    "EventLoop": "loop",
    "Handle": "loop",
    "TimerHandle": "loop",
    "Future": "futures",
    "Task": "tasks",
    "TaskGroup": "tasks",
    "Timeout": "tasks",
    "LoopThread": "loop_thread",
    "BaseProtocol": "protocols",
    "Protocol": "protocols",
    "DatagramProtocol": "protocols",
    "Server": "transports",
    "StreamTransport": "transports",
    "DatagramTransport": "transports",
    "StreamReader": "streams",
    "StreamWriter": "streams",
    "StreamReaderProtocol": "streams",
    "open_connection": "streams",
    "start_server": "streams",
    "open_unix_connection": "streams",
    "start_unix_server": "streams",
    "Event": "sync",
    "Lock": "sync",
    "Semaphore": "sync",
    "BoundedSemaphore": "sync",
    "Queue": "sync",
    "LifoQueue": "sync",
    "PriorityQueue": "sync",
    "all_tasks": "tasks",
    "create_task": "tasks",
    "current_task": "tasks",
    "ensure_future": "tasks",
    "gather": "tasks",
    "get_running_loop": "tasks",
    "run": "tasks",
    "shield": "tasks",
    "sleep": "tasks",
    "timeout": "tasks",
    "timeout_at": "tasks",
    "to_thread": "tasks",
    "wait_for": "tasks",
}

__all__ = [*_errors_all, *_LAZY_NAMES]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use, then keep it here."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'netkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})


if TYPE_CHECKING:  # what type checkers and editors see: the same names, eagerly
    from .futures import Future
    from .loop import EventLoop, Handle, TimerHandle
    from .loop_thread import LoopThread
    from .protocols import BaseProtocol, DatagramProtocol, Protocol
    from .streams import (
        StreamReader,
        StreamReaderProtocol,
        StreamWriter,
        open_connection,
        open_unix_connection,
        start_server,
        start_unix_server,
    )
    from .sync import BoundedSemaphore, Event, LifoQueue, Lock, PriorityQueue, Queue, Semaphore
    from .tasks import (
        Task,
        TaskGroup,
        Timeout,
        all_tasks,
        create_task,
        current_task,
        ensure_future,
        gather,
        get_running_loop,
        run,
        shield,
        sleep,
        timeout,
        timeout_at,
        to_thread,
        wait_for,
    )
    from .transports import DatagramTransport, Server, StreamTransport
