"""Tasks and the coroutine toolbox around them: ``Task``, ``run``, ``sleep``,
``gather``, ``wait_for``, ``timeout``, ``TaskGroup``, ``to_thread``.

A ``Task`` drives a coroutine one step at a time: each ``send()`` runs the
coroutine up to its next ``await`` of a ``Future``; the task then waits for
that future and resumes the coroutine when it is done.  Cancelling a task
throws ``CancelledError`` in at the ``await`` where it is suspended.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import signal
import sys
import threading
import traceback
import types
from typing import Any, Awaitable, Callable, Coroutine, Generator, TypeVar

from . import _runtime
from .errors import CancelledError, InvalidStateError
from .futures import Future
from .loop import EventLoop, Handle

__all__ = [
    "Task",
    "TaskGroup",
    "Timeout",
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

_T = TypeVar("_T")

get_running_loop = _runtime.get_running_loop

_task_ids = itertools.count(1)


class Task(Future[_T]):
    """A coroutine scheduled on the loop, itself a ``Future`` of the coroutine's result."""

    __slots__ = ("_coro", "_name", "_fut_waiter", "_must_cancel", "_num_cancels_requested", "_context", "_step_handle")

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T],
        *,
        loop: EventLoop | None = None,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        super().__init__(loop=loop)
        if not isinstance(coro, types.CoroutineType) and not _is_coroutine_like(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        if self._loop._debug:
            try:
                self._loop._check_thread(
                    "create_task()", "LoopThread.submit(coro), or loop.call_soon_threadsafe(loop.create_task, coro)"
                )
            except RuntimeError:
                coro.close()  # refused: it will never run, and must not warn that it was never awaited
                raise
        self._coro = coro
        # An unnamed task keeps just its number; "Task-N" is formatted on first use,
        # since most tasks are never asked their name.
        self._name: str | int = str(name) if name is not None else next(_task_ids)
        self._fut_waiter: Future[Any] | None = None
        self._must_cancel = False
        self._num_cancels_requested = 0
        # Each task runs in its own copy of the context, so context variables
        # set inside one task do not leak into another.
        self._context = contextvars.copy_context() if context is None else context
        self._loop._tasks.add(self)
        # One handle serves every step scheduled without an argument (the first
        # step, each sleep(0)): nothing ever cancels it, so it is built once.
        # (Not call_soon: the thread was checked above, in debug mode.)
        self._step_handle = self._loop._schedule_soon(self._step, (), self._context)

    # ---------------------------------------------------------------- public

    def get_name(self) -> str:
        """The task's name (``Task-N`` unless one was given)."""
        if isinstance(self._name, int):
            self._name = f"Task-{self._name}"
        return self._name

    def set_name(self, name: object) -> None:
        """Rename the task (shown in reprs and error reports)."""
        self._name = str(name)

    def get_coro(self) -> Coroutine[Any, Any, _T]:
        """The coroutine this task drives."""
        return self._coro

    def get_context(self) -> contextvars.Context:
        """The ``contextvars.Context`` the task's steps run in."""
        return self._context

    def cancel(self, msg: Any = None) -> bool:
        """Ask the task to stop: ``CancelledError`` is thrown into the coroutine at its
        current ``await``.  Returns ``False`` when the task is already done."""
        if self._loop._debug:
            self._loop._check_thread("Task.cancel()", "loop.call_soon_threadsafe(task.cancel)")
        if self.done():
            return False
        self._num_cancels_requested += 1
        self._cancel_message = msg
        waiter = self._fut_waiter
        if waiter is not None and waiter.cancel(msg):
            # The waiter's callback wakes us, and the await raises CancelledError.
            return True
        self._must_cancel = True
        return True

    def cancelling(self) -> int:
        """How many cancellation requests are pending (``cancel()`` calls not yet ``uncancel()``-ed)."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Withdraw one cancellation request; returns how many remain.  Used by
        ``timeout`` and ``TaskGroup`` to tell their own cancellations from others'."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if self._num_cancels_requested == 0:
                self._must_cancel = False
        return self._num_cancels_requested

    def set_result(self, result: Any) -> None:
        """Not allowed: a task's result is what its coroutine returns (raises ``RuntimeError``)."""
        raise RuntimeError("a Task's result is its coroutine's return value; it cannot be set")

    def set_exception(self, exception: Any) -> None:
        """Not allowed: a task's exception is what its coroutine raises (raises ``RuntimeError``)."""
        raise RuntimeError("a Task's exception is what its coroutine raises; it cannot be set")

    def print_stack(self, *, limit: int | None = None, file: Any = None) -> None:
        """Print where the task's coroutine is suspended (or where it raised)."""
        frame = getattr(self._coro, "cr_frame", None)
        out = file if file is not None else sys.stderr
        if frame is not None:
            traceback.print_stack(frame, limit=limit, file=out)
        elif self.done() and not self.cancelled() and self._exception is not None:
            traceback.print_exception(self._exception, limit=limit, file=out)
        else:
            print(f"No stack for {self!r}", file=out)

    # --------------------------------------------------------------- driving

    def _step(self, exc: BaseException | None = None) -> None:
        if self._state != "PENDING":
            raise InvalidStateError(f"_step(): already done: {self!r}")
        if self._must_cancel:
            if not isinstance(exc, CancelledError):
                exc = self._make_cancelled_error()
            self._must_cancel = False
        self._fut_waiter = None
        state = _runtime._state
        previous, state.task = state.task, self
        try:
            if exc is None:
                result = self._coro.send(None)
            else:
                result = self._coro.throw(exc)
        except StopIteration as stop:
            if self._must_cancel:
                # Cancelled after its last await: honour the cancel.
                self._must_cancel = False
                self._finish_cancelled()
            else:
                Future.set_result(self, stop.value)
                self._release()
        except CancelledError as cancelled:
            self._cancel_message = cancelled.args[0] if cancelled.args else self._cancel_message
            self._finish_cancelled()
        except (KeyboardInterrupt, SystemExit) as error:
            Future.set_exception(self, error)
            self._release()
            raise
        except BaseException as error:
            Future.set_exception(self, error)
            self._release()
        else:
            if isinstance(result, Future):
                if result is self:
                    self._loop.call_soon(self._step, RuntimeError(f"task cannot await itself: {self!r}"), context=self._context)
                elif result._loop is not self._loop:
                    self._loop.call_soon(
                        self._step,
                        RuntimeError(f"task {self!r} got a future attached to a different loop"),
                        context=self._context,
                    )
                else:
                    # Wake up through the task's own step handle, as for a
                    # bare yield: no bound method and no new handle per await
                    # (the future queues it when done; see _schedule_callbacks).
                    if result._state == "PENDING":
                        result._callbacks.append(self._step_handle)
                    else:
                        self._loop._ready.append(self._step_handle)
                    self._fut_waiter = result
                    if self._must_cancel and result.cancel(self._cancel_message):
                        self._must_cancel = False
            elif result is None:
                # A bare yield (sleep(0)): give everyone else a turn, then go on.
                self._loop._ready.append(self._step_handle)  # the task's own handle, reused: no call_soon
            else:
                self._loop.call_soon(
                    self._step,
                    RuntimeError(f"task got a bad yield (only netkit futures can be awaited): {result!r}"),
                    context=self._context,
                )
        finally:
            state.task = previous

    def _finish_cancelled(self) -> None:
        Future.cancel(self, self._cancel_message)
        self._release()

    def _release(self) -> None:
        """A finished task lets go of what kept it alive: the loop's reference, and
        its step handle (which refers back to it, a cycle only the GC would break)."""
        self._loop._tasks.discard(self)
        self._step_handle = None

    def __repr__(self) -> str:
        base = super().__repr__()[1:-1]
        return f"<{base} name={self.get_name()!r} coro={getattr(self._coro, '__qualname__', self._coro)!s}>"

    def __del__(self) -> None:
        # No _coro means __init__ failed (not a coroutine, no running loop):
        # such a task was never scheduled and has nothing to report.
        if getattr(self, "_coro", None) is not None and self._state == "PENDING" and not self._loop.is_closed():
            context: dict[str, Any] = {"message": "Task was destroyed but it is pending!", "task": self}
            self._loop.call_exception_handler(context)
        Future.__del__(self)


def _is_coroutine_like(obj: Any) -> bool:
    return hasattr(obj, "send") and hasattr(obj, "throw") and hasattr(obj, "close")


# ------------------------------------------------------------------ helpers


def current_task(loop: EventLoop | None = None) -> Task[Any] | None:
    """The task whose coroutine is running now, or ``None`` in a plain callback."""
    return _runtime._state.task  # type: ignore[no-any-return]


def all_tasks(loop: EventLoop | None = None) -> set[Task[Any]]:
    """Every task on ``loop`` (default: the running one) that is not done yet."""
    loop = loop if loop is not None else get_running_loop()
    return {task for task in loop._tasks if not task.done()}


def create_task(coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> Task[_T]:
    """Schedule ``coro`` on the running loop as a ``Task``."""
    return get_running_loop().create_task(coro, name=name)


def ensure_future(aw: Awaitable[_T], *, loop: EventLoop | None = None) -> Future[_T]:
    """``aw`` itself when it is a future, otherwise a task that awaits it."""
    if isinstance(aw, Future):
        if loop is not None and aw._loop is not loop:
            raise ValueError("the future belongs to a different loop")
        return aw
    loop = loop if loop is not None else get_running_loop()
    if isinstance(aw, types.CoroutineType) or _is_coroutine_like(aw):
        return loop.create_task(aw)  # type: ignore[arg-type]
    if hasattr(aw, "__await__"):

        async def await_it() -> _T:
            return await aw

        return loop.create_task(await_it())
    raise TypeError(f"a coroutine, a Future or an awaitable is required, not {aw!r}")


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    yield


async def sleep(delay: float, result: _T = None) -> _T:  # type: ignore[assignment]
    """Suspend the current task for ``delay`` seconds; ``sleep(0)`` just lets others run."""
    if delay <= 0:
        await _yield_once()
        return result
    loop = get_running_loop()
    future: Future[_T] = loop.create_future()
    handle = loop.call_later(delay, _resolve, future, result)
    try:
        return await future
    finally:
        handle.cancel()


def _resolve(future: Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


# ------------------------------------------------------------------ timeout


class Timeout:
    """An async context manager that cancels the enclosed block at a deadline and
    raises ``TimeoutError`` in its place.

    Only the cancellation it caused becomes ``TimeoutError``: a cancellation
    that comes from outside in the meantime still propagates as
    ``CancelledError``, so a timeout never swallows a real cancel.
    """

    def __init__(self, when: float | None) -> None:
        self._when = when
        self._task: Task[Any] | None = None
        self._handle: Handle | None = None
        self._state = "created"  # created -> entered -> (expiring -> expired) | exited
        self._cancelling = 0

    def when(self) -> float | None:
        """The deadline on the loop's clock, or ``None`` for none."""
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Move the deadline (``None`` removes it)."""
        if self._state not in ("created", "entered"):
            raise RuntimeError(f"cannot reschedule a timeout that is {self._state}")
        self._when = when
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._state == "entered" and when is not None:
            loop = get_running_loop()
            if when <= loop.time():
                self._handle = loop.call_soon(self._on_deadline)
            else:
                self._handle = loop.call_at(when, self._on_deadline)

    def expired(self) -> bool:
        """Whether the deadline passed and cancelled the block."""
        return self._state in ("expiring", "expired")

    async def __aenter__(self) -> Timeout:
        if self._state != "created":
            raise RuntimeError("a timeout can be entered only once")
        task = current_task()
        if task is None:
            raise RuntimeError("timeout() must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._state = "entered"
        self.reschedule(self._when)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        assert self._task is not None
        if self._state == "expiring":
            self._state = "expired"
            if self._task.uncancel() <= self._cancelling and exc_type is CancelledError:
                raise TimeoutError(f"timed out (deadline {self._when})") from exc
        else:
            self._state = "exited"
        return None

    def _on_deadline(self) -> None:
        assert self._task is not None
        self._task.cancel()
        self._state = "expiring"
        self._handle = None


def timeout(delay: float | None) -> Timeout:
    """``async with timeout(5): ...`` — raise ``TimeoutError`` if the block takes longer
    than ``delay`` seconds (``None``: no limit)."""
    loop = get_running_loop()
    return Timeout(loop.time() + delay if delay is not None else None)


def timeout_at(when: float | None) -> Timeout:
    """Like ``timeout`` with an absolute deadline on the loop's clock."""
    return Timeout(when)


async def wait_for(aw: Awaitable[_T], timeout: float | None) -> _T:
    """Await ``aw`` for at most ``timeout`` seconds, cancelling it and raising
    ``TimeoutError`` when the time runs out."""
    if timeout is None:
        return await aw
    if isinstance(aw, Future) or not hasattr(aw, "send"):
        aw = ensure_future(aw)
    async with timeout_at(get_running_loop().time() + timeout):
        return await aw
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------- gather


class _GatheringFuture(Future[list[Any]]):
    """The future ``gather`` returns: cancelling it cancels every child."""

    __slots__ = ("_children", "_cancel_requested")

    def __init__(self, children: list[Future[Any]], loop: EventLoop) -> None:
        super().__init__(loop=loop)
        self._children = children
        self._cancel_requested = False

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        cancelled_any = False
        for child in self._children:
            if child.cancel(msg):
                cancelled_any = True
        if cancelled_any:
            # The children's completion will settle this future as cancelled.
            self._cancel_requested = True
        return cancelled_any


def gather(*aws: Awaitable[Any], return_exceptions: bool = False) -> Future[list[Any]]:
    """Run the awaitables concurrently and return their results in order.

    The first exception propagates at once (the other children keep running)
    unless ``return_exceptions`` is true, in which case exceptions take their
    place among the results.  Cancelling the gather cancels every child.
    """
    loop = get_running_loop()
    children: list[Future[Any]] = []
    seen: dict[int, Future[Any]] = {}
    for aw in aws:
        future = seen.get(id(aw))
        if future is None:
            future = ensure_future(aw, loop=loop)
            seen[id(aw)] = future
        children.append(future)
    outer = _GatheringFuture(children, loop)
    if not children:
        outer.set_result([])
        return outer
    remaining = len(seen)  # each distinct child reports once

    def on_child_done(child: Future[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        if outer.done():
            if not child.cancelled():
                child.exception()  # retrieved: the outer future already reported
            return
        if not return_exceptions:
            if child.cancelled():
                outer.set_exception(child._make_cancelled_error())
                return
            exc = child.exception()
            if exc is not None:
                outer.set_exception(exc)
                return
        if remaining == 0:
            if return_exceptions:
                results = [_outcome(fut) for fut in children]
            else:
                # Every child succeeded: the first failure would have settled outer above.
                results = [fut.result() for fut in children]
            if outer._cancel_requested:
                Future.cancel(outer)
            else:
                outer.set_result(results)

    for child in seen.values():
        child.add_done_callback(on_child_done)
    return outer


def _outcome(future: Future[Any]) -> Any:
    """A done future's result, or the exception it holds (cancelled: a ``CancelledError``)."""
    if future.cancelled():
        return future._make_cancelled_error()
    exc = future.exception()
    return exc if exc is not None else future.result()


def shield(aw: Awaitable[_T]) -> Future[_T]:
    """Protect ``aw`` from cancellation: cancelling the awaiting task does not cancel it."""
    inner = ensure_future(aw)
    if inner.done():
        return inner
    outer: Future[_T] = inner._loop.create_future()

    def copy(done: Future[Any]) -> None:
        if outer.done():
            if not done.cancelled():
                done.exception()
            return
        if done.cancelled():
            outer.cancel()
        elif done.exception() is not None:
            outer.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            outer.set_result(done.result())

    def forget(done: Future[Any]) -> None:
        if not inner.done():
            inner.remove_done_callback(copy)

    inner.add_done_callback(copy)
    outer.add_done_callback(forget)
    return outer


# ---------------------------------------------------------------- TaskGroup


class TaskGroup:
    """Structured concurrency: ``async with TaskGroup() as tg: tg.create_task(...)``.

    The block waits for every child.  When a child fails, its siblings and the
    block's body are cancelled, and the group raises an ``ExceptionGroup`` of
    every failure.  A cancellation from outside cancels all children and
    propagates once they are done.
    """

    def __init__(self) -> None:
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop: EventLoop | None = None
        self._parent_task: Task[Any] | None = None
        self._parent_cancel_requested = False
        self._tasks: set[Task[Any]] = set()
        self._errors: list[BaseException] = []
        self._base_error: BaseException | None = None
        self._all_done: Future[None] | None = None

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError("a TaskGroup can be entered only once")
        self._loop = get_running_loop()
        self._parent_task = current_task()
        if self._parent_task is None:
            raise RuntimeError("TaskGroup must be used inside a task")
        self._entered = True
        return self

    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> Task[_T]:
        """Start ``coro`` as a child of the group."""
        if not self._entered:
            coro.close()
            raise RuntimeError("the TaskGroup has not been entered")
        if self._exiting and not self._tasks:
            coro.close()
            raise RuntimeError("the TaskGroup is finished")
        if self._aborting:
            coro.close()
            raise RuntimeError("the TaskGroup is shutting down")
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._on_child_done)
        return task

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        self._exiting = True
        assert self._parent_task is not None and self._loop is not None
        if exc is not None and _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        propagate: BaseException | None = exc if exc_type is CancelledError else None
        if self._parent_cancel_requested:
            # We cancelled the parent to interrupt its body; that cancel is ours.
            if self._parent_task.uncancel() == 0:
                propagate = None
        if exc_type is not None and not self._aborting:
            self._abort()
        while self._tasks:
            self._all_done = self._loop.create_future()
            try:
                await self._all_done
            except CancelledError as cancelled:
                # Cancelled from outside while waiting for the children: cancel
                # them too, keep waiting, and propagate the cancel afterwards.
                if not self._aborting:
                    propagate = cancelled
                    self._abort()
            self._all_done = None
        if self._base_error is not None:
            raise self._base_error
        if propagate is not None and not self._errors:
            raise propagate
        if exc_type is not None and exc_type is not CancelledError:
            self._errors.append(exc)
        if self._errors:
            errors = self._errors
            self._errors = []
            try:
                raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
            finally:
                del errors
        return None

    def _abort(self) -> None:
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                task.cancel()

    def _on_child_done(self, task: Task[Any]) -> None:
        self._tasks.discard(task)
        if self._all_done is not None and not self._tasks and not self._all_done.done():
            self._all_done.set_result(None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        self._errors.append(exc)
        if _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        if not self._aborting:
            self._abort()
        parent = self._parent_task
        assert parent is not None
        if not self._exiting and not self._parent_cancel_requested and not parent.done():
            # The body is still running: interrupt it so the group can fail fast.
            self._parent_cancel_requested = True
            parent.cancel()


def _is_base_error(exc: BaseException) -> bool:
    return isinstance(exc, (SystemExit, KeyboardInterrupt))


# ------------------------------------------------------------------ threads


async def to_thread(func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Run a blocking ``func(*args, **kwargs)`` on the default thread pool and await
    its result, with the caller's context variables visible in the thread."""
    loop = get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


# ---------------------------------------------------------------------- run


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run ``main`` on a new loop and return its result.

    Afterwards every task still pending is cancelled and awaited, the default
    executor is shut down and the loop closed.  Ctrl-C cancels ``main`` (so its
    ``finally`` blocks run) and then raises ``KeyboardInterrupt``; a second
    Ctrl-C interrupts at once.
    """
    if _runtime.get_running_loop_or_none() is not None:
        raise RuntimeError("netkit.run() cannot be called while a loop is running in this thread")
    loop = EventLoop()
    if debug is not None:
        loop.set_debug(debug)
    try:
        task = loop.create_task(main)
    except BaseException:
        loop.close()  # not a coroutine: release the loop's fds before reporting it
        raise
    interrupted = False
    previous_sigint: Any = None

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted or task.done():
            raise KeyboardInterrupt()
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous_sigint = signal.signal(signal.SIGINT, on_sigint)
    try:
        try:
            return loop.run_until_complete(task)
        except CancelledError:
            if interrupted:
                raise KeyboardInterrupt() from None
            raise
    finally:
        try:
            _cancel_pending(loop)
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            if previous_sigint is not None and signal.getsignal(signal.SIGINT) is on_sigint:
                signal.signal(signal.SIGINT, previous_sigint)
            loop.close()


def _cancel_pending(loop: EventLoop) -> None:
    pending = [task for task in loop._tasks if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()

    async def wait_all() -> list[Any]:
        return await gather(*pending, return_exceptions=True)

    loop.run_until_complete(wait_all())
    for task in pending:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during netkit.run() shutdown", "exception": task.exception(), "task": task}
            )
