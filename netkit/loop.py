"""netkit's event loop: a reactor over ``selectors.DefaultSelector``.

The loop keeps five promises, and every line below serves one of them:

1. **One thread.**  Callbacks, I/O handlers and task steps all run on the
   thread that runs the loop, one at a time.  Only ``call_soon_threadsafe``
   (and what is built on it) may be called from another thread; debug mode
   raises ``RuntimeError`` for the other entry points (``_check_thread``).
2. **Nothing blocks.**  The loop sleeps only inside ``select()``, and only
   until the next timer is due.  Blocking work goes to an executor; the
   opt-in watchdog names the line that blocks anyway.
3. **One place runs callbacks, one place receives their errors.**
   ``_run_once`` calls every callback; any exception a callback raises goes to
   ``call_exception_handler`` and the loop carries on serving everyone else.
4. **Bounded state.**  Cancelled timers are dropped from the heap once they
   are the majority, so scheduling and cancelling a million timeouts keeps
   the heap small.
5. **Strong references.**  The loop holds every task it runs until the task
   is done, so a fire-and-forget ``create_task`` is never garbage collected
   mid-flight.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import heapq
import itertools
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, TypeVar

from . import _runtime
from .futures import Future, wrap_concurrent_future
from .transports import create as _create

if TYPE_CHECKING:
    from .protocols import DatagramProtocol, Protocol
    from .tasks import Task
    from .transports import DatagramTransport, Server, StreamTransport

__all__ = ["EventLoop", "Handle", "TimerHandle"]

logger = logging.getLogger("netkit")

_T = TypeVar("_T")

_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE

# Compact the timer heap once at least this many entries are cancelled and they
# are more than half of it (the same thresholds as asyncio): compaction is
# O(n), so doing it only when half the heap is garbage keeps it amortised O(1).
_MIN_TIMERS_FOR_COMPACTION = 100
_CANCELLED_FRACTION_FOR_COMPACTION = 0.5

# Bytes asked of one stream read, as asyncio: a large read amortises the
# per-event cost on bulk transfers; the kernel returns what it has.
RECV_BUFFER_SIZE = 256 * 1024

# select() sleeps at most this long, so the loop notices time jumps and a
# stop() made through a lost wake-up byte (a full socket buffer) in bounded time.
_MAX_SELECT_TIMEOUT = 24 * 3600.0


class Handle:
    """A scheduled callback; ``cancel()`` stops it from running."""

    __slots__ = ("_callback", "_args", "_cancelled", "_loop", "__weakref__")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...], loop: EventLoop) -> None:
        self._callback: Callable[..., Any] | None = callback
        self._args: tuple[Any, ...] | None = args
        self._cancelled = False
        self._loop = loop

    def cancel(self) -> None:
        """Stop the callback from running (a no-op if it already ran)."""
        if not self._cancelled:
            self._cancelled = True
            # Drop the references at once: a cancelled handle must not keep
            # big arguments alive until its turn comes.
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._cancelled

    def __repr__(self) -> str:
        state = " cancelled" if self._cancelled else ""
        return f"<{type(self).__name__} {_callback_name(self._callback, self._args)}{state}>"


class TimerHandle(Handle):
    """A callback scheduled for a point in time (``when``, on the loop's clock)."""

    __slots__ = ("_when", "_scheduled")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...], loop: EventLoop) -> None:
        super().__init__(callback, args, loop)
        self._when = when
        self._scheduled = True

    def when(self) -> float:
        """The loop time at which the callback is due."""
        return self._when

    def cancel(self) -> None:
        if not self._cancelled:
            super().cancel()
            if self._scheduled:
                self._loop._timer_cancelled()


def _callback_name(callback: Any, args: tuple[Any, ...] | None = ()) -> str:
    if callback is None:
        return "None"
    if args and isinstance(getattr(callback, "__self__", None), contextvars.Context):
        # A callback run in a context (a task's step): name what it runs.
        return _callback_name(args[0])
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    if name is None:
        return repr(callback)
    owner = getattr(callback, "__self__", None)
    if owner is not None and not isinstance(owner, type(sys)):
        return f"{name} of {type(owner).__name__}"
    return name


def _raising_function(exc: BaseException) -> str:
    """The name of the function the loop called that raised ``exc``."""
    tb = exc.__traceback__
    frame_tb = tb.tb_next if tb is not None else None
    if frame_tb is None:
        return "a cancelled callback"
    return frame_tb.tb_frame.f_code.co_qualname


def _current_thread_is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


class EventLoop:
    """A selectors-based event loop with asyncio's method names.

    Create one, schedule work on it, then drive it with ``run_forever()``,
    ``run_until_complete()`` or, from a host program's own main loop, with
    ``run_once()``.  ``close()`` releases every resource it owns.
    """

    slow_callback_duration = 0.1  # seconds; the same threshold asyncio's debug mode uses

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._ready: collections.deque[Handle] = collections.deque()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._timer_seq = itertools.count()
        self._cancelled_timers = 0
        self._closed = False
        self._stopping = False
        self._thread_id: int | None = None
        self._exception_handler: Callable[[EventLoop, dict[str, Any]], object] | None = None
        self._debug = _env_debug()
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown = False
        self._tasks: set[Task[Any]] = set()  # strong references to every live task
        self._signal_handlers: dict[int, Handle] = {}
        self._busy_since: float | None = None  # set while callbacks run; read by the watchdog
        self._watchdog: _Watchdog | None = None
        self._old_coro_tracking: int | None = None
        # One receive buffer shared by every stream transport on this loop:
        # recv_into() it and copy out what arrived.  A fresh recv(256 KiB) per
        # read costs a large allocation (and page faults) each time; one
        # buffer per connection would cost 256 KiB of memory each.
        self._recv_buffer = bytearray(RECV_BUFFER_SIZE)
        self._recv_view = memoryview(self._recv_buffer)
        # The wake-up channel: a byte written to _wake_w makes select() return.
        # A socketpair rather than a pipe, so it also works where pipes cannot be selected.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.add_reader(self._wake_r.fileno(), self._read_wakeup)

    # ------------------------------------------------------------------ clock

    def time(self) -> float:
        """The loop's clock: ``time.monotonic()``, immune to wall-clock changes."""
        return time.monotonic()

    # ------------------------------------------------------------- scheduling

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Handle:
        """Run ``callback(*args)`` on the next iteration, after those scheduled before it."""
        if self._debug:
            self._check_thread("call_soon()", "loop.call_soon_threadsafe(callback, *args)")
        # The body of _schedule_soon, inlined: call_soon is the hottest entry
        # point, and a second Python call would add some 15% to its cost.
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if context is not None:
            args = (callback, *args)
            callback = context.run
        handle = Handle(callback, args, self)
        self._ready.append(handle)
        return handle

    def _schedule_soon(self, callback: Callable[..., Any], args: tuple[Any, ...], context: Any) -> Handle:
        """``call_soon`` without the debug-mode thread check: for ``call_soon_threadsafe``,
        and for futures and tasks, which checked the thread on their way in."""
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if context is not None:
            args = (callback, *args)
            callback = context.run
        handle = Handle(callback, args, self)
        self._ready.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> TimerHandle:
        """Run ``callback(*args)`` when ``time()`` reaches ``when``.

        Timers due at the same moment run in the order they were scheduled.
        """
        if self._debug:
            self._check_thread("call_at()/call_later()", "loop.call_soon_threadsafe(loop.call_later, delay, callback)")
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if context is not None:
            args = (callback, *args)
            callback = context.run
        handle = TimerHandle(when, callback, args, self)
        # (when, sequence, handle): tuples compare in C, and the sequence number
        # both breaks ties in insertion order and keeps handles from being compared.
        heapq.heappush(self._timers, (when, next(self._timer_seq), handle))
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Handle:
        """Like ``call_soon``, from any thread: wakes the loop if it sleeps in ``select()``."""
        handle = self._schedule_soon(callback, args, context)
        self._write_wakeup()
        return handle

    def _check_thread(self, operation: str, alternative: str) -> None:
        """Raise ``RuntimeError`` when called, while the loop runs, from a thread
        other than the loop's.  Debug mode calls it at the entry of every method
        that only the loop's thread may call: such a call from elsewhere races
        with the loop, and the loop, asleep in ``select()``, does not even wake
        up for it.  The message names ``operation`` and the thread-safe
        ``alternative``."""
        owner = self._thread_id
        if owner is None or owner == threading.get_ident():
            return
        raise RuntimeError(
            f"{operation} was called from thread {threading.current_thread().name!r} while the loop runs in "
            f"another thread, and it is not thread-safe; from another thread, use {alternative}"
        )

    def _timer_cancelled(self) -> None:
        self._cancelled_timers += 1
        timers = self._timers
        if (
            len(timers) >= _MIN_TIMERS_FOR_COMPACTION
            and self._cancelled_timers > len(timers) * _CANCELLED_FRACTION_FOR_COMPACTION
        ):
            # Rebuild the heap from the live timers only, in place: _run_once
            # may hold a reference to this very list.
            live = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    live.append(entry)
            timers[:] = live
            heapq.heapify(timers)
            self._cancelled_timers = 0

    # ------------------------------------------------------------ file events

    def add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> Handle:
        """Call ``callback(*args)`` whenever ``fd`` (an int or an object with ``fileno()``) is readable."""
        if self._debug:
            self._check_thread("add_reader()", "loop.call_soon_threadsafe(loop.add_reader, fd, callback)")
        return self._add_interest(fd, _EVENT_READ, Handle(callback, args, self))

    def add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> Handle:
        """Call ``callback(*args)`` whenever ``fd`` is writable."""
        if self._debug:
            self._check_thread("add_writer()", "loop.call_soon_threadsafe(loop.add_writer, fd, callback)")
        return self._add_interest(fd, _EVENT_WRITE, Handle(callback, args, self))

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching ``fd`` for reading; returns whether it was watched."""
        if self._debug:
            self._check_thread("remove_reader()", "loop.call_soon_threadsafe(loop.remove_reader, fd)")
        return self._remove_interest(fd, _EVENT_READ)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching ``fd`` for writing; returns whether it was watched."""
        if self._debug:
            self._check_thread("remove_writer()", "loop.call_soon_threadsafe(loop.remove_writer, fd)")
        return self._remove_interest(fd, _EVENT_WRITE)

    def _add_interest(self, fd: Any, event: int, handle: Handle) -> Handle:
        # One registration per fd: its data is a [reader, writer] pair and its
        # mask the union of both interests.
        if self._closed:
            raise RuntimeError("the event loop is closed")
        fileno = _fileno(fd)
        try:
            key = self._selector.get_key(fileno)
        except KeyError:
            pair: list[Handle | None] = [None, None]
            pair[event - 1] = handle
            self._selector.register(fileno, event, pair)
            return handle
        pair = key.data
        old = pair[event - 1]
        if old is not None:
            old.cancel()
        pair[event - 1] = handle
        if not key.events & event:
            self._selector.modify(fileno, key.events | event, pair)
        return handle

    def _remove_interest(self, fd: Any, event: int) -> bool:
        if self._closed:
            return False
        fileno = _fileno(fd)
        try:
            key = self._selector.get_key(fileno)
        except KeyError:
            return False
        pair = key.data
        old = pair[event - 1]
        pair[event - 1] = None
        remaining = key.events & ~event
        if remaining:
            self._selector.modify(fileno, remaining, pair)
        else:
            self._selector.unregister(fileno)
        if old is None:
            return False
        old.cancel()
        return True

    # ----------------------------------------------------------------- running

    def is_running(self) -> bool:
        """Whether the loop is running (``run_forever``, ``run_until_complete`` or ``run_once``)."""
        return self._thread_id is not None

    def is_closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def run_forever(self) -> None:
        """Run until ``stop()`` is called."""
        self._enter_run()
        try:
            while True:
                self._run_once(None)
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._leave_run()

    def run_until_complete(self, aw: Awaitable[_T]) -> _T:
        """Run until ``aw`` (a coroutine, task or future) is done; return its result."""
        # Check before ensure_future: it would schedule a coroutine on a loop
        # that then refuses to run it here (and may run it later, elsewhere).
        self._check_can_run()
        from .tasks import ensure_future

        future = ensure_future(aw, loop=self)
        future.add_done_callback(self._stop_on_done)
        try:
            self.run_forever()
        except BaseException:
            if future.done() and not future.cancelled():
                # The exception escaped the loop (KeyboardInterrupt, SystemExit)
                # and the future also failed: mark it retrieved, the caller sees
                # the one that escaped.
                future.exception()
            raise
        finally:
            future.remove_done_callback(self._stop_on_done)
        if not future.done():
            raise RuntimeError("the event loop stopped before the awaitable completed")
        return future.result()

    def _stop_on_done(self, future: Future[Any]) -> None:
        self.stop()

    def run_once(self, timeout: float | None = 0) -> None:
        """Run one iteration: poll for I/O for at most ``timeout`` seconds (``None``:
        until something happens), then run what is due.

        For programs that drive the loop from their own main loop, one tick at a
        time (a GUI's idle callback, a game's frame).
        """
        self._enter_run()
        try:
            self._run_once(timeout)
        finally:
            self._stopping = False
            self._leave_run()

    def stop(self) -> None:
        """Make ``run_forever`` return after the current iteration."""
        self._stopping = True

    def _check_can_run(self) -> None:
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if self._thread_id is not None:
            raise RuntimeError("the event loop is already running")
        if _runtime.get_running_loop_or_none() is not None:
            raise RuntimeError("cannot run an event loop while another loop is running in this thread")

    def _enter_run(self) -> None:
        self._check_can_run()
        self._thread_id = threading.get_ident()
        _runtime.set_running_loop(self)
        if self._debug:
            self._old_coro_tracking = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(10)

    def _leave_run(self) -> None:
        self._thread_id = None
        self._busy_since = None
        _runtime.set_running_loop(None)
        if self._old_coro_tracking is not None:
            sys.set_coroutine_origin_tracking_depth(self._old_coro_tracking)
            self._old_coro_tracking = None

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for I/O; the one place the loop sleeps.  ``netkit.testing`` overrides it."""
        return self._selector.select(timeout)

    def _run_once(self, timeout: float | None) -> None:
        # This is the only place where callbacks run.
        ready = self._ready
        timers = self._timers
        if ready or self._stopping:
            timeout = 0
        elif timers:
            wait = timers[0][0] - self.time()
            wait = wait if wait > 0 else 0
            timeout = wait if timeout is None or wait < timeout else timeout
        if timeout is not None and timeout > _MAX_SELECT_TIMEOUT:
            timeout = _MAX_SELECT_TIMEOUT

        events = self._poll(timeout)
        if self._watchdog is not None:
            self._busy_since = time.monotonic()  # real time: a virtual clock (TestLoop) never shows blocking

        # I/O callbacks run straight from the poll results: wrapping each in a
        # handle and queueing it would only cost time.  remove_reader/writer
        # cancel the handle, so an fd closed by an earlier callback is skipped.
        if self._debug:
            run = self._run_handle_timed
            for key, mask in events:
                reader, writer = key.data
                if mask & _EVENT_READ and reader is not None and not reader._cancelled:
                    run(reader)
                if mask & _EVENT_WRITE and writer is not None and not writer._cancelled:
                    run(writer)
        else:
            # The same as above with the call inlined: this is the hot path.
            for key, mask in events:
                reader, writer = key.data
                if mask & _EVENT_READ and reader is not None and not reader._cancelled:
                    try:
                        reader._callback(*reader._args)  # type: ignore[misc]
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._callback_failed(reader, exc)
                if mask & _EVENT_WRITE and writer is not None and not writer._cancelled:
                    try:
                        writer._callback(*writer._args)  # type: ignore[misc]
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._callback_failed(writer, exc)

        if timers:
            now = self.time()
            while timers and timers[0][0] <= now:
                handle = heapq.heappop(timers)[2]
                handle._scheduled = False
                if handle._cancelled:
                    self._cancelled_timers -= 1
                else:
                    ready.append(handle)

        # Run only what was ready when this pass began: callbacks scheduled by
        # these callbacks wait for the next iteration, so I/O is polled in between.
        popleft = ready.popleft
        if self._debug:
            for _ in range(len(ready)):
                handle = popleft()
                if not handle._cancelled:
                    self._run_handle_timed(handle)
        else:
            for _ in range(len(ready)):
                handle = popleft()
                if not handle._cancelled:
                    try:
                        handle._callback(*handle._args)  # type: ignore[misc]
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self._callback_failed(handle, exc)
        self._busy_since = None

    def _run_handle_timed(self, handle: Handle) -> None:
        """Run a callback in debug mode, warning when it blocks the loop too long."""
        callback = handle._callback
        started = time.monotonic()  # real time, even on a virtual clock: blocking is real
        try:
            callback(*handle._args)  # type: ignore[misc]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._callback_failed(handle, exc)
        took = time.monotonic() - started
        if took >= self.slow_callback_duration:
            logger.warning("executing %s took %.3f seconds", _callback_name(callback, handle._args), took)

    def _callback_failed(self, handle: Handle, exc: BaseException) -> None:
        callback = handle._callback
        if callback is not None:
            name = _callback_name(callback, handle._args)
        else:
            # The callback cancelled its own handle (removed its own reader, say),
            # which dropped the reference: name it from the traceback instead.
            name = _raising_function(exc)
        self.call_exception_handler({"message": f"exception in callback {name}", "exception": exc, "handle": handle})

    # ------------------------------------------------------------- wake-ups

    def _write_wakeup(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            # Full (the loop is already due to wake) or closed (the loop is closing).
            pass

    def _read_wakeup(self) -> None:
        try:
            data = self._wake_r.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        # signal.set_wakeup_fd writes each caught signal's number here; a plain
        # wake-up writes 0, which is no signal.
        for signum in data:
            handle = self._signal_handlers.get(signum)
            if handle is not None and not handle._cancelled:
                self._ready.append(handle)

    # --------------------------------------------------------------- signals

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop when signal ``sig`` arrives.  Main thread only."""
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if not _current_thread_is_main():
            raise RuntimeError("signal handlers can only be added from the main thread")
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise RuntimeError(f"signal {sig} cannot be caught")
        if not self._signal_handlers:
            # The C-level handler writes the signal number to the wake-up
            # socket, which both wakes select() and tells us which signal came.
            try:
                signal.set_wakeup_fd(self._wake_w.fileno())
            except ValueError as exc:
                raise RuntimeError(str(exc)) from exc
        self._signal_handlers[sig] = Handle(callback, args, self)
        try:
            # A Python-level handler must exist for the wake-up byte to be
            # written; the real work happens when the loop reads the byte.
            signal.signal(sig, _signal_noop)
            # Let system calls restart rather than fail with EINTR.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                signal.set_wakeup_fd(-1)
            raise RuntimeError(f"cannot handle signal {sig}: {exc}") from exc

    def remove_signal_handler(self, sig: int) -> bool:
        """Restore the default action of ``sig``; returns whether a handler was installed."""
        if not _current_thread_is_main():
            raise RuntimeError("signal handlers can only be removed from the main thread")
        handle = self._signal_handlers.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, default)
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError):
                pass
        return True

    # ------------------------------------------------------ futures and tasks

    def create_future(self) -> Future[Any]:
        """A new ``Future`` bound to this loop."""
        return Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> Task[_T]:
        """Wrap ``coro`` in a ``Task`` and schedule its first step.  The loop
        keeps the task alive until it is done."""
        from .tasks import Task

        return Task(coro, loop=self, name=name)

    # -------------------------------------------------------------- executors

    def run_in_executor(self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run ``func(*args)`` in ``executor`` (default: a shared thread pool);
        the result arrives on the loop as a ``Future``."""
        if self._closed:
            raise RuntimeError("the event loop is closed")
        if executor is None:
            executor = self._get_default_executor()
        return wrap_concurrent_future(executor.submit(func, *args), loop=self)

    def _get_default_executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor_shutdown:
            raise RuntimeError("the default executor is shut down")
        if self._default_executor is None:
            self._default_executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="netkit")
        return self._default_executor

    def set_default_executor(self, executor: concurrent.futures.ThreadPoolExecutor) -> None:
        """Use ``executor`` for ``run_in_executor(None, ...)``."""
        self._default_executor = executor

    async def shutdown_default_executor(self) -> None:
        """Wait (off the loop) for the default executor's threads to finish."""
        self._executor_shutdown = True
        executor = self._default_executor
        if executor is None:
            return
        future = self.create_future()

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
            finally:
                self.call_soon_threadsafe(_set_result_unless_done, future, None)

        thread = threading.Thread(target=shut_down, name="netkit-executor-shutdown", daemon=True)
        thread.start()
        try:
            await future
        finally:
            thread.join()

    # ---------------------------------------------------------------- errors

    def set_exception_handler(self, handler: Callable[[EventLoop, dict[str, Any]], object] | None) -> None:
        """Send callback errors to ``handler(loop, context)`` instead of the log (``None`` restores the log)."""
        if handler is not None and not callable(handler):
            raise TypeError(f"an exception handler must be callable, not {handler!r}")
        self._exception_handler = handler

    def get_exception_handler(self) -> Callable[[EventLoop, dict[str, Any]], object] | None:
        """The handler set with ``set_exception_handler``, or ``None``."""
        return self._exception_handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log ``context`` (its ``message``, ``exception`` with traceback, and the rest)
        on the ``netkit`` logger."""
        message = context.get("message") or "unhandled exception in the event loop"
        exception = context.get("exception")
        exc_info: Any = (type(exception), exception, exception.__traceback__) if exception is not None else False
        details = []
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                value = "".join(traceback.format_list(value)).rstrip()
                details.append(f"{key}:\n{value}")
            else:
                details.append(f"{key}: {value!r}")
        logger.error("\n".join([message, *details]), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report an error that has nowhere else to go.  Never raises."""
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("exception in the default exception handler", exc_info=True)
            return
        try:
            handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {"message": "exception in the custom exception handler", "exception": exc, "context": context}
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("exception in the default exception handler", exc_info=True)

    # ----------------------------------------------------------------- debug

    def get_debug(self) -> bool:
        """Whether debug mode is on."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Debug mode: warn about callbacks slower than ``slow_callback_duration``,
        record where coroutines and tasks were created, for better reports, and
        raise ``RuntimeError`` when a method that is not thread-safe is called
        from another thread while the loop runs, naming the thread-safe way
        (``call_soon_threadsafe``, ``LoopThread.submit``)."""
        self._debug = bool(enabled)

    def set_blocking_watchdog(self, seconds: float | None) -> None:
        """Watch the loop from a helper thread: when one iteration's callbacks run
        longer than ``seconds``, log the loop thread's current stack *while it is
        blocked*.  ``None`` turns the watchdog off."""
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if seconds is not None:
            if seconds <= 0:
                raise ValueError("the watchdog threshold must be positive")
            self._watchdog = _Watchdog(self, seconds)

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Release the selector, the wake-up sockets, signal handlers and the default
        executor.  Idempotent; a running loop cannot be closed."""
        if self.is_running():
            raise RuntimeError("cannot close a running event loop")
        if self._closed:
            return
        if self._signal_handlers and not _current_thread_is_main():
            # Only the main thread can undo set_wakeup_fd: closing here would leave
            # signals writing into a closed (soon reused) file descriptor.
            raise RuntimeError("a loop with signal handlers must be closed from the main thread")
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        if _current_thread_is_main():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        executor = self._default_executor
        self._default_executor = None
        self._executor_shutdown = True
        if executor is not None:
            executor.shutdown(wait=False)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.is_running() else "idle"
        return f"<{type(self).__name__} {state} ready={len(self._ready)} timers={len(self._timers)}>"

    # ------------------------------------------------------------ networking
    # The transports live in netkit/transports; these methods only give them
    # asyncio's names and argument lists on the loop.

    async def create_server(
        self, protocol_factory: Callable[[], Protocol], host: Any = None, port: Any = None, **kwargs: Any
    ) -> Server:
        """Listen on ``host``:``port`` (``None``/``""``: every family; port 0: a free one)
        and return a ``Server``.  Options: ``family``, ``flags``, ``sock``, ``backlog``,
        ``reuse_address``, ``reuse_port``, ``start_serving``."""
        return await _create.create_server(self, protocol_factory, host, port, **kwargs)

    async def create_connection(
        self, protocol_factory: Callable[[], Protocol], host: Any = None, port: Any = None, **kwargs: Any
    ) -> tuple[StreamTransport, Protocol]:
        """Connect over TCP and return ``(transport, protocol)``.  Options: ``family``,
        ``proto``, ``flags``, ``sock``, ``local_addr``, ``happy_eyeballs_delay``."""
        return await _create.create_connection(self, protocol_factory, host, port, **kwargs)

    async def create_unix_server(self, protocol_factory: Callable[[], Protocol], path: Any = None, **kwargs: Any) -> Server:
        """Listen on a Unix socket and return a ``Server``.  Options: ``sock``,
        ``backlog``, ``start_serving``, ``cleanup_socket``."""
        return await _create.create_unix_server(self, protocol_factory, path, **kwargs)

    async def create_unix_connection(
        self, protocol_factory: Callable[[], Protocol], path: Any = None, **kwargs: Any
    ) -> tuple[StreamTransport, Protocol]:
        """Connect to a Unix socket and return ``(transport, protocol)``."""
        return await _create.create_unix_connection(self, protocol_factory, path, **kwargs)

    async def create_datagram_endpoint(
        self, protocol_factory: Callable[[], DatagramProtocol], local_addr: Any = None, remote_addr: Any = None, **kwargs: Any
    ) -> tuple[DatagramTransport, DatagramProtocol]:
        """Open a UDP endpoint and return ``(transport, protocol)``.  Options: ``family``,
        ``proto``, ``flags``, ``reuse_port``, ``allow_broadcast``, ``sock``."""
        return await _create.create_datagram_endpoint(self, protocol_factory, local_addr, remote_addr, **kwargs)


def _signal_noop(signum: int, frame: Any) -> None:
    """The Python-level signal handler: the loop does the work when it reads the wake-up byte."""


def _set_result_unless_done(future: Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fileno(fd: Any) -> int:
    if isinstance(fd, int):
        return fd
    try:
        return int(fd.fileno())
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"invalid file object: {fd!r}") from exc


def _env_debug() -> bool:
    return bool(os.environ.get("NETKIT_DEBUG")) and os.environ.get("NETKIT_DEBUG") != "0"


class _Watchdog:
    """A helper thread that samples the loop and logs the loop thread's stack
    when one iteration has been busy longer than the threshold."""

    def __init__(self, loop: EventLoop, threshold: float) -> None:
        self._loop = loop
        self._threshold = threshold
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="netkit-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        loop = self._loop
        reported: float | None = None
        interval = min(self._threshold / 4, 0.25)
        while not self._stopped.wait(interval):
            busy_since = loop._busy_since
            thread_id = loop._thread_id
            if busy_since is None or thread_id is None or busy_since == reported:
                continue
            blocked = time.monotonic() - busy_since
            if blocked < self._threshold:
                continue
            reported = busy_since
            frame = sys._current_frames().get(thread_id)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(stack unavailable)\n"
            logger.warning(
                "event loop blocked for %.3f seconds (watchdog threshold %.3f s); the loop thread is at:\n%s",
                blocked,
                self._threshold,
                stack.rstrip(),
            )


def _warn_unclosed(obj: object) -> None:
    warnings.warn(f"unclosed {obj!r}", ResourceWarning, source=obj)
