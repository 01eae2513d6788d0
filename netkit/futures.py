"""``Future``: a result that will exist later, awaited by tasks and observed by callbacks."""

from __future__ import annotations

import concurrent.futures
import sys
import traceback
from typing import TYPE_CHECKING, Any, Callable, Generator, Generic, TypeVar

from . import _runtime
from .errors import CancelledError, InvalidStateError

if TYPE_CHECKING:
    from .loop import EventLoop

__all__ = ["Future", "wait_until_woken", "wake_waiters", "wrap_concurrent_future"]

_T = TypeVar("_T")

_PENDING = "PENDING"
_CANCELLED = "CANCELLED"
_FINISHED = "FINISHED"


class Future(Generic[_T]):
    """The outcome of an operation that has not finished yet.

    Done callbacks never run synchronously: ``set_result`` schedules them on
    the loop, so a callback cannot re-enter the code that completed the future.
    Like the loop, a future is not thread-safe: complete it from another thread
    with ``loop.call_soon_threadsafe(future.set_result, value)`` (debug mode
    raises ``RuntimeError`` for a direct call while the loop runs).
    An exception nobody retrieves is reported (through the loop's exception
    handler) when the future is garbage collected.
    """

    __slots__ = (
        "_loop",
        "_state",
        "_result",
        "_exception",
        "_callbacks",
        "_log_traceback",
        "_cancel_message",
        "_source_traceback",
        "__weakref__",
    )

    def __init__(self, *, loop: EventLoop | None = None) -> None:
        # State first: __del__ reads it even when the loop lookup below fails.
        self._state = _PENDING
        self._log_traceback = False
        self._loop: EventLoop = loop if loop is not None else _runtime.get_running_loop()
        self._result: Any = None
        self._exception: BaseException | None = None
        # Done callbacks, and the step handles of tasks awaiting this future
        # (a task's wake-up is its own reusable handle, queued as it is).
        self._callbacks: list[Any] = []
        self._cancel_message: Any = None
        self._source_traceback = traceback.extract_stack(sys._getframe(1)) if self._loop._debug else None

    def get_loop(self) -> EventLoop:
        """The loop this future belongs to."""
        return self._loop

    # ---------------------------------------------------------------- state

    def done(self) -> bool:
        """Whether a result, an exception or a cancellation was set."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """Whether the future was cancelled."""
        return self._state == _CANCELLED

    def result(self) -> _T:
        """The result; raises the future's exception, ``CancelledError``, or
        ``InvalidStateError`` when not done yet."""
        if self._state == _FINISHED:
            self._log_traceback = False
            if self._exception is not None:
                raise self._exception.with_traceback(self._exception.__traceback__)
            return self._result  # type: ignore[no-any-return]
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("result is not set yet")

    def exception(self) -> BaseException | None:
        """The exception (``None`` on success); raises ``CancelledError`` or ``InvalidStateError``."""
        if self._state == _FINISHED:
            self._log_traceback = False
            return self._exception
        if self._state == _CANCELLED:
            raise self._make_cancelled_error()
        raise InvalidStateError("exception is not set yet")

    def _make_cancelled_error(self) -> CancelledError:
        if self._cancel_message is None:
            return CancelledError()
        return CancelledError(self._cancel_message)

    # ------------------------------------------------------------- settling

    def set_result(self, result: _T) -> None:
        """Complete the future with ``result`` and schedule its callbacks."""
        if self._loop._debug:
            self._loop._check_thread("Future.set_result()", "loop.call_soon_threadsafe(future.set_result, result)")
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        self._result = result
        self._state = _FINISHED
        self._schedule_callbacks()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """Complete the future with ``exception`` and schedule its callbacks."""
        if self._loop._debug:
            self._loop._check_thread("Future.set_exception()", "loop.call_soon_threadsafe(future.set_exception, exc)")
        if self._state != _PENDING:
            raise InvalidStateError(f"{self._state}: {self!r}")
        if isinstance(exception, type):
            exception = exception()
        if isinstance(exception, StopIteration):
            # A StopIteration would end the awaiting coroutine's send() and
            # look like a return: turn it into an honest error.
            new = RuntimeError("StopIteration interacts badly with generators and cannot be raised into a Future")
            new.__cause__ = exception
            exception = new
        self._exception = exception
        self._state = _FINISHED
        self._log_traceback = True
        self._schedule_callbacks()

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the future; returns ``False`` when it was already done."""
        if self._loop._debug:
            self._loop._check_thread("Future.cancel()", "loop.call_soon_threadsafe(future.cancel)")
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        self._schedule_callbacks()
        return True

    # ------------------------------------------------------------ callbacks

    def add_done_callback(self, fn: Callable[[Future[_T]], object], *, context: Any = None) -> None:
        """Call ``fn(future)`` on the loop once the future is done (soon, if it already is)."""
        if self._loop._debug:
            self._loop._check_thread("Future.add_done_callback()", "loop.call_soon_threadsafe(future.add_done_callback, fn)")
        if not callable(fn):
            # Checked here, not when the future completes: by then the loop
            # could only report it, far from the mistake.
            raise TypeError(f"a done callback must be callable, not {type(fn).__name__}")
        if context is not None:
            fn = _bind_context(context, fn)
        if self._state != _PENDING:
            self._loop.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def remove_done_callback(self, fn: Callable[[Future[_T]], object]) -> int:
        """Remove every registration of ``fn``; returns how many were removed."""
        kept = [cb for cb in self._callbacks if cb != fn]
        removed = len(self._callbacks) - len(kept)
        if removed:
            self._callbacks[:] = kept
        return removed

    def _schedule_callbacks(self) -> None:
        callbacks = self._callbacks
        if not callbacks:
            return
        self._callbacks = []
        loop = self._loop
        if loop._closed:
            raise RuntimeError("the event loop is closed")
        for callback in callbacks:
            if callable(callback):
                # Not call_soon: the thread was checked on the way in (debug mode).
                loop._schedule_soon(callback, (self,), None)
            else:
                # A task's step handle (a Handle is not callable): queued as it
                # is, so a wake-up allocates nothing.
                loop._ready.append(callback)

    # ------------------------------------------------------------- awaiting

    def __await__(self) -> Generator[Any, None, _T]:
        if self._state == _PENDING:
            yield self  # the task driving this coroutine waits for us
        if self._state == _PENDING:
            raise RuntimeError("await was not used with this future")
        return self.result()

    __iter__ = __await__

    def __del__(self) -> None:
        if not self._log_traceback:
            return
        exc = self._exception
        context: dict[str, Any] = {
            "message": f"{type(self).__name__} exception was never retrieved",
            "exception": exc,
            "future": self,
        }
        if self._source_traceback:
            context["source_traceback"] = self._source_traceback
        loop = self._loop
        if not loop.is_closed() or loop.get_exception_handler() is None:
            loop.call_exception_handler(context)

    def __repr__(self) -> str:
        if self._state == _FINISHED:
            info = f"exception={self._exception!r}" if self._exception is not None else f"result={_short(self._result)}"
            return f"<{type(self).__name__} finished {info}>"
        return f"<{type(self).__name__} {self._state.lower()}>"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bind_context(context: Any, fn: Callable[..., object]) -> Callable[..., object]:
    def run_in_context(future: Any) -> object:
        return context.run(fn, future)

    return run_in_context


def _copy_outcome(source: concurrent.futures.Future[Any], target: Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
        return
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


async def wait_until_woken(waiters: list[Future[None]], loop: EventLoop) -> None:
    """Wait until :func:`wake_waiters` is called on ``waiters``.

    Any number of coroutines may wait on one list at once (the waiters of
    ``drain()`` or ``wait_closed()``); each leaves the list when it is woken
    or cancelled, so cancelled waiters never pile up.
    """
    waiter: Future[None] = loop.create_future()
    waiters.append(waiter)
    try:
        await waiter
    finally:
        if waiter in waiters:
            waiters.remove(waiter)


def wake_waiters(waiters: list[Future[None]], error: BaseException | None = None) -> None:
    """Empty ``waiters`` and complete each one not done yet: with ``None``, or
    with ``error`` (when writing resumes, say, or the connection ends)."""
    woken = waiters[:]
    waiters.clear()
    for waiter in woken:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def wrap_concurrent_future(cf: concurrent.futures.Future[_T], *, loop: EventLoop) -> Future[_T]:
    """A netkit ``Future`` that completes, on ``loop``'s thread, when ``cf`` does;
    cancelling it cancels ``cf`` (if it has not started yet)."""
    future: Future[_T] = Future(loop=loop)

    def on_concurrent_done(done: concurrent.futures.Future[Any]) -> None:
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(_copy_outcome, done, future)
        except RuntimeError:
            pass  # the loop closed between the check and the call

    def on_future_done(done: Future[Any]) -> None:
        if done.cancelled():
            cf.cancel()

    future.add_done_callback(on_future_done)
    cf.add_done_callback(on_concurrent_done)
    return future
