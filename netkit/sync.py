"""Coordination between tasks: ``Event``, ``Lock``, ``Semaphore``, ``Queue``.

All of them are fair — waiters are woken in the order they started waiting —
and cancellation-safe: a task cancelled while waiting leaves the primitive
exactly as if it had never waited (a lock it was about to get passes to the
next waiter; an item it was about to receive stays in the queue).

Like the loop, they are not thread-safe: another thread hands work over with
``loop.call_soon_threadsafe(queue.put_nowait, item)``.  In debug mode a call
from another thread that would wake a waiter raises ``RuntimeError`` before
it changes anything.
"""

from __future__ import annotations

import collections
import heapq
from typing import Any, Callable, Generic, TypeVar

from . import _runtime
from .errors import QueueEmpty, QueueFull
from .futures import Future

__all__ = ["Event", "Lock", "Semaphore", "BoundedSemaphore", "Queue", "LifoQueue", "PriorityQueue"]

_T = TypeVar("_T")


def _new_waiter() -> Future[Any]:
    return _runtime.get_running_loop().create_future()


def _check_thread(waiters: collections.deque[Future[Any]], operation: str, alternative: str) -> None:
    """Debug mode: refuse a call that would wake ``waiters`` from a thread other
    than their loop's, before it changes anything (the waiters' futures would
    refuse it too, but only halfway through)."""
    if waiters:
        loop = waiters[0]._loop
        if loop._debug:
            loop._check_thread(operation, alternative)


class Event:
    """A flag tasks can wait for: ``set()`` wakes every waiter, ``clear()`` resets it."""

    def __init__(self) -> None:
        self._waiters: collections.deque[Future[Any]] = collections.deque()
        self._value = False

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiting task."""
        if self._value:
            return
        _check_thread(self._waiters, "Event.set()", "loop.call_soon_threadsafe(event.set)")
        self._value = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        """Reset the flag; later ``wait()`` calls block again."""
        self._value = False

    async def wait(self) -> bool:
        """Wait until the flag is set (returns at once if it is)."""
        if self._value:
            return True
        waiter = _new_waiter()
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)

    def __repr__(self) -> str:
        return f"<Event {'set' if self._value else 'unset'} waiters={len(self._waiters)}>"


class Semaphore:
    """A counter of available slots: ``acquire()`` takes one (waiting when none is
    left), ``release()`` gives one back.  Waiters are served in FIFO order."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("Semaphore initial value must be >= 0")
        self._value = value
        self._waiters: collections.deque[Future[Any]] = collections.deque()

    def locked(self) -> bool:
        """Whether ``acquire()`` would wait."""
        # Only waiters not yet woken count: a woken one already holds its slot
        # (_wake_next took it off _value), so a slot freed meanwhile is free.
        return self._value == 0 or any(not w.done() for w in self._waiters)

    async def acquire(self) -> bool:
        """Take a slot, waiting for one if needed."""
        if not self.locked():
            self._value -= 1
            return True
        waiter = _new_waiter()
        self._waiters.append(waiter)
        try:
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # We were handed a slot but are leaving: hand it on.
                self._value += 1
                self._wake_next()
            raise
        return True

    def release(self) -> None:
        """Give a slot back and wake the next waiter."""
        _check_thread(self._waiters, f"{type(self).__name__}.release()", "loop.call_soon_threadsafe(semaphore.release)")
        self._value += 1
        self._wake_next()

    def _wake_next(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                # The slot goes straight to the waiter: nobody can overtake it.
                self._value -= 1
                waiter.set_result(True)
                return

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value} waiters={len(self._waiters)}>"


class Lock(Semaphore):
    """A mutual-exclusion lock for tasks, handed over in FIFO order: a
    semaphore with one slot that refuses to be released when not held."""

    def __init__(self) -> None:
        super().__init__(1)

    def release(self) -> None:
        """Release the lock and wake the next waiter; ``RuntimeError`` if not locked."""
        if self._value:
            raise RuntimeError("Lock is not acquired")
        super().release()

    def __repr__(self) -> str:
        return f"<Lock {'locked' if self.locked() else 'unlocked'} waiters={len(self._waiters)}>"


class BoundedSemaphore(Semaphore):
    """A ``Semaphore`` that raises ``ValueError`` when released more than acquired."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._bound = value

    def release(self) -> None:
        """Give a slot back; ``ValueError`` if every slot is already free,
        which means a ``release()`` without its ``acquire()``."""
        if self._value >= self._bound:
            raise ValueError("BoundedSemaphore released too many times")
        super().release()


class Queue(Generic[_T]):
    """A FIFO queue between tasks, bounded by ``maxsize`` (0: unbounded).

    ``put`` waits while the queue is full, ``get`` while it is empty;
    ``task_done``/``join`` let a producer wait until every item is processed.
    """

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        self._init()
        self._getters: collections.deque[Future[Any]] = collections.deque()
        self._putters: collections.deque[Future[Any]] = collections.deque()
        self._unfinished = 0
        self._finished = Event()
        self._finished.set()

    # Storage hooks, overridden by LifoQueue and PriorityQueue.
    def _init(self) -> None:
        self._items: Any = collections.deque()

    def _put(self, item: _T) -> None:
        self._items.append(item)

    def _get(self) -> _T:
        return self._items.popleft()  # type: ignore[no-any-return]

    @property
    def maxsize(self) -> int:
        """The bound given at creation (0 for none)."""
        return self._maxsize

    def qsize(self) -> int:
        """How many items are queued."""
        return len(self._items)

    def empty(self) -> bool:
        """Whether no item is queued."""
        return not self._items

    def full(self) -> bool:
        """Whether ``put`` would wait."""
        return 0 < self._maxsize <= len(self._items)

    @staticmethod
    def _wake_first(waiters: collections.deque[Future[Any]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait_in_line(self, waiters: collections.deque[Future[Any]], blocked: Callable[[], bool]) -> None:
        """Wait in ``waiters`` until woken.  A waiter cancelled after it was woken
        passes its turn on (the free slot or the queued item is not lost)."""
        waiter = _new_waiter()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            woken = waiter.done() and not waiter.cancelled()
            waiter.cancel()
            try:
                waiters.remove(waiter)
            except ValueError:
                pass
            if woken and not blocked():
                self._wake_first(waiters)
            raise

    async def put(self, item: _T) -> None:
        """Queue ``item``, waiting for room when the queue is full."""
        while self.full():
            await self._wait_in_line(self._putters, self.full)
        self.put_nowait(item)

    def put_nowait(self, item: _T) -> None:
        """Queue ``item`` at once; ``QueueFull`` when there is no room."""
        if self.full():
            raise QueueFull()
        _check_thread(self._getters, "Queue.put_nowait()", "loop.call_soon_threadsafe(queue.put_nowait, item)")
        self._put(item)
        self._unfinished += 1
        self._finished.clear()
        self._wake_first(self._getters)

    async def get(self) -> _T:
        """Remove and return the next item, waiting for one when the queue is empty."""
        while self.empty():
            await self._wait_in_line(self._getters, self.empty)
        return self.get_nowait()

    def get_nowait(self) -> _T:
        """Remove and return the next item; ``QueueEmpty`` when there is none."""
        if self.empty():
            raise QueueEmpty()
        _check_thread(self._putters, "Queue.get_nowait()", "LoopThread.submit(queue.get())")
        item = self._get()
        self._wake_first(self._putters)
        return item

    def task_done(self) -> None:
        """Mark one item taken with ``get`` as processed (for ``join``)."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        _check_thread(self._finished._waiters, "Queue.task_done()", "loop.call_soon_threadsafe(queue.task_done)")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        if self._unfinished > 0:
            await self._finished.wait()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} maxsize={self._maxsize} qsize={self.qsize()}>"


class LifoQueue(Queue[_T]):
    """A ``Queue`` that returns the most recently added item first."""

    def _init(self) -> None:
        self._items = []

    def _get(self) -> _T:
        return self._items.pop()  # type: ignore[no-any-return]


class PriorityQueue(Queue[_T]):
    """A ``Queue`` that returns the smallest item first (``(priority, data)`` tuples work)."""

    def _init(self) -> None:
        self._items = []

    def _put(self, item: _T) -> None:
        heapq.heappush(self._items, item)

    def _get(self) -> _T:
        return heapq.heappop(self._items)  # type: ignore[no-any-return]
