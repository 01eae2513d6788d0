"""netkit: a networking toolkit on the Python standard library alone.

An event loop over ``selectors``, coroutines and tasks on it, TCP/UDP/Unix
transports, message framing and RFC 6455 WebSockets.
"""

from __future__ import annotations

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .futures import Future
from .loop import EventLoop, Handle, TimerHandle
from .loop_thread import LoopThread
from .protocols import BaseProtocol, DatagramProtocol, Protocol
from .transports import DatagramTransport, Server, StreamTransport
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

__version__ = "0.1.0"

__all__ = [
    *_errors_all,
    "EventLoop",
    "Handle",
    "TimerHandle",
    "Future",
    "Task",
    "TaskGroup",
    "Timeout",
    "LoopThread",
    "BaseProtocol",
    "Protocol",
    "DatagramProtocol",
    "Server",
    "StreamTransport",
    "DatagramTransport",
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
    "open_unix_connection",
    "start_unix_server",
    "Event",
    "Lock",
    "Semaphore",
    "BoundedSemaphore",
    "Queue",
    "LifoQueue",
    "PriorityQueue",
    "all_tasks",
    "create_task",
    "current_task",
    "ensure_future",
    "gather",
    "get_running_loop",
    "run",
    "shield",
    "sleep",
    "timeout",
    "timeout_at",
    "to_thread",
    "wait_for",
]
