"""``LoopThread``: a netkit loop on a background thread, for synchronous programs.

A CLI, a GUI or a Flask app keeps its own main thread; it hands coroutines to
the loop thread with ``submit()`` and gets ``concurrent.futures.Future``
results it can wait on, poll, or attach callbacks to.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Coroutine, TypeVar

from .futures import Future
from .loop import EventLoop

__all__ = ["LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """Run an ``EventLoop`` on its own thread.

    ``with LoopThread() as lt: lt.submit(coro).result()`` — entering starts the
    thread, leaving cancels what is still running, joins the thread and
    closes the loop.
    """

    def __init__(self, *, name: str = "netkit-loop", debug: bool | None = None) -> None:
        self._name = name
        self._debug = debug
        self._loop: EventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def loop(self) -> EventLoop:
        """The loop (only ``call_soon_threadsafe`` may be used on it from other threads)."""
        if self._loop is None:
            raise RuntimeError("the LoopThread is not started")
        return self._loop

    def start(self) -> LoopThread:
        """Start the thread and return once its loop is running."""
        if self._thread is not None:
            raise RuntimeError("the LoopThread is already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        loop = EventLoop()
        if self._debug is not None:
            loop.set_debug(self._debug)
        self._loop = loop
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            self._started.set()  # never leave start() waiting
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Run ``coro`` as a task on the loop thread; safe to call from any thread.

        Cancelling the returned future cancels the task.
        """
        loop = self.loop
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def start_task() -> None:
            if result.cancelled():
                coro.close()
                return
            task = loop.create_task(coro)
            task.add_done_callback(lambda done: _copy_to_concurrent(done, result))
            result.add_done_callback(lambda cf: cf.cancelled() and loop.call_soon_threadsafe(task.cancel))

        try:
            loop.call_soon_threadsafe(start_task)
        except RuntimeError:
            coro.close()
            raise
        return result

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Submit ``coro`` and wait for its result (blocking the calling thread)."""
        return self.submit(coro).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop thread, from any thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float | None = None) -> None:
        """Cancel every task still running, stop the loop, join the thread and close
        the loop.  Idempotent."""
        with self._stop_lock:
            if self._stopped or self._thread is None:
                self._stopped = True
                return
            self._stopped = True
        loop = self.loop
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.stop() cannot be called from the loop thread")
        try:
            loop.call_soon_threadsafe(self._begin_shutdown)
        except RuntimeError:
            pass  # already closed
        self._thread.join(timeout)

    def _begin_shutdown(self) -> None:
        loop = self.loop
        pending = [task for task in loop._tasks if not task.done()]
        for task in pending:
            task.cancel()
        if not pending:
            loop.stop()
            return
        from .tasks import gather

        gathered = gather(*pending, return_exceptions=True)
        gathered.add_done_callback(lambda _: loop.stop())

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _copy_to_concurrent(done: Future[Any], target: concurrent.futures.Future[Any]) -> None:
    if target.done():
        return
    if done.cancelled():
        target.cancel()
        return
    exc = done.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(done.result())
