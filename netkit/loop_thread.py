"""``LoopThread``: a netkit loop on a background thread, for synchronous programs.

A CLI, a GUI or a Flask app keeps its own main thread; it hands coroutines to
the loop thread with ``submit()`` and gets ``concurrent.futures.Future``
results it can wait on, poll, or attach callbacks to.
"""

from __future__ import annotations

import concurrent.futures
import functools
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
    closes the loop.  Every future ``submit()`` returns is settled in the end:
    with the coroutine's outcome, or cancelled when the loop stops first.
    """

    def __init__(self, *, name: str = "netkit-loop", debug: bool | None = None) -> None:
        self._name = name
        self._debug = debug
        self._loop: EventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        # Orders submit()/call_soon() against stop(): whatever was accepted is
        # queued on the loop before the shutdown callback, so it gets cancelled.
        self._lock = threading.Lock()
        self._stopped = False
        self._submitted: set[concurrent.futures.Future[Any]] = set()

    @property
    def loop(self) -> EventLoop:
        """The loop (only ``call_soon_threadsafe`` may be used on it from other threads)."""
        if self._loop is None:
            raise RuntimeError("the LoopThread is not started")
        return self._loop

    def start(self) -> LoopThread:
        """Start the thread and return once its loop is running."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("a LoopThread can be started only once")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise RuntimeError("the LoopThread could not create its event loop") from self._startup_error
        return self

    def _run(self) -> None:
        try:
            loop = EventLoop()
            if self._debug is not None:
                loop.set_debug(self._debug)
        except BaseException as exc:
            self._startup_error = exc
            self._started.set()  # never leave start() waiting
            return
        self._loop = loop
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._stopped = True  # refuse new work before the loop goes away
                leftovers = list(self._submitted)
            self._started.set()  # never leave start() waiting
            loop.close()
            for future in leftovers:
                # Only reached when the loop ended abnormally (an escaped
                # KeyboardInterrupt): nobody may wait forever on it.
                future.cancel()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Run ``coro`` as a task on the loop thread; safe to call from any thread.

        Cancelling the returned future cancels the task.  ``RuntimeError`` when
        the thread is not running (the coroutine is closed, never left dangling).
        """
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()
        with self._lock:
            if self._loop is None or self._stopped:
                coro.close()
                raise RuntimeError("the LoopThread is not running")
            self._submitted.add(result)
            self._loop.call_soon_threadsafe(self._start_task, coro, result)
        result.add_done_callback(self._forget)
        return result

    def _start_task(self, coro: Coroutine[Any, Any, Any], result: concurrent.futures.Future[Any]) -> None:
        if result.cancelled():
            coro.close()
            return
        loop = self.loop
        task = loop.create_task(coro)
        task.add_done_callback(functools.partial(_copy_to_concurrent, target=result))
        result.add_done_callback(functools.partial(_cancel_task_if_cancelled, loop, task))

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._submitted.discard(future)

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Submit ``coro`` and wait for its result (blocking the calling thread)."""
        return self.submit(coro).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop thread, from any thread."""
        with self._lock:
            if self._loop is None or self._stopped:
                raise RuntimeError("the LoopThread is not running")
            self._loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float | None = None) -> None:
        """Cancel every task still running, stop the loop, join the thread and close
        the loop.  Idempotent; waits at most ``timeout`` seconds for the thread."""
        if self._thread is not None and threading.current_thread() is self._thread:
            # Checked before anything changes, so a later stop() from another thread still works.
            raise RuntimeError("LoopThread.stop() cannot be called from the loop thread")
        with self._lock:
            first_call = not self._stopped
            self._stopped = True
            if first_call and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._begin_shutdown)
                except RuntimeError:
                    pass  # the loop already ended on its own
        if self._thread is not None:
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


def _cancel_task_if_cancelled(loop: EventLoop, task: Future[Any], result: concurrent.futures.Future[Any]) -> None:
    """Runs in whichever thread settled ``result``: pass a cancel on to the task."""
    if result.cancelled():
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # the loop is closed: the task is gone already


def _copy_to_concurrent(done: Future[Any], target: concurrent.futures.Future[Any]) -> None:
    if done.cancelled():
        target.cancel()
        return
    exc = done.exception()
    try:
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(done.result())
    except concurrent.futures.InvalidStateError:
        pass  # the caller cancelled it from its own thread meanwhile
