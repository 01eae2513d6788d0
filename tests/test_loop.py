"""The reactor: ordering of callbacks and timers, timer cancellation and heap
compaction, file events, thread-safe wake-ups, signals, the exception handler,
run/stop/close, executors, debug mode and the blocked-loop watchdog.

Timer tests run on ``TestLoop`` (virtual time).  Tests that need the real
thing — threads, signals, file descriptors — use a plain ``EventLoop`` and
never assert on how long something took.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import os
import random
import selectors
import signal
import socket
import sys
import threading
import warnings
import weakref

import pytest

import netkit
from netkit import EventLoop
from netkit.testing import TestLoop

on_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)


class SpySelector(selectors.BaseSelector):
    """A selector that counts registrations and notes when the loop goes to
    sleep for long, so tests can act *while* the loop sleeps."""

    def __init__(self, long_sleep: float = 5.0) -> None:
        self._inner = selectors.DefaultSelector()
        self._long_sleep = long_sleep
        self.sleeping = threading.Event()
        self.calls: list[str] = []

    def register(self, fileobj, events, data=None):
        self.calls.append("register")
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj):
        self.calls.append("unregister")
        return self._inner.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        self.calls.append("modify")
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout=None):
        if timeout is None or timeout >= self._long_sleep:
            self.sleeping.set()
        return self._inner.select(timeout)

    def get_key(self, fileobj):
        return self._inner.get_key(fileobj)

    def get_map(self):
        return self._inner.get_map()

    def close(self):
        self._inner.close()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------- ordering


def test_call_soon_runs_in_fifo_order_with_arguments(manual_loop):
    calls = []
    for n in range(5):
        manual_loop.call_soon(calls.append, n)
    manual_loop.run_once()
    assert calls == [0, 1, 2, 3, 4]


def test_callbacks_scheduled_by_callbacks_wait_for_the_next_iteration(manual_loop):
    calls = []

    def first():
        calls.append("first")
        manual_loop.call_soon(calls.append, "scheduled by first")

    manual_loop.call_soon(first)
    manual_loop.call_soon(calls.append, "second")
    manual_loop.run_once()
    assert calls == ["first", "second"]
    manual_loop.run_once()
    assert calls == ["first", "second", "scheduled by first"]


def test_timers_run_in_deadline_order_and_ties_in_insertion_order(manual_loop):
    calls = []
    manual_loop.call_later(3, calls.append, "3")
    manual_loop.call_later(1, calls.append, "1a")
    manual_loop.call_at(2, calls.append, "2")
    manual_loop.call_later(1, calls.append, "1b")
    manual_loop.call_at(1, calls.append, "1c")
    manual_loop.run_once()
    assert calls == []
    manual_loop.advance(1)
    manual_loop.run_once()
    assert calls == ["1a", "1b", "1c"]
    manual_loop.advance(5)
    manual_loop.run_once()
    assert calls == ["1a", "1b", "1c", "2", "3"]


def test_many_timers_with_equal_deadlines_keep_insertion_order(manual_loop):
    calls = []
    for n in range(500):
        manual_loop.call_at(7, calls.append, n)
    manual_loop.advance(7)
    manual_loop.run_once()
    assert calls == list(range(500))


def test_a_due_timer_runs_after_callbacks_already_ready(manual_loop):
    calls = []
    manual_loop.call_later(1, calls.append, "timer")
    manual_loop.advance(1)
    manual_loop.call_soon(calls.append, "ready")
    manual_loop.run_once()
    assert calls == ["ready", "timer"]


def test_timer_scheduled_for_now_runs_on_a_later_iteration(manual_loop):
    calls = []
    manual_loop.call_soon(lambda: manual_loop.call_later(0, calls.append, "timer"))
    manual_loop.run_once()
    assert calls == []
    manual_loop.run_once()
    assert calls == ["timer"]


def test_timer_handle_reports_its_deadline(manual_loop):
    manual_loop.advance(100)
    handle = manual_loop.call_later(5, print)
    assert handle.when() == 105
    handle.cancel()


def test_time_is_monotonic():
    loop = EventLoop()
    try:
        readings = [loop.time() for _ in range(1000)]
        assert readings == sorted(readings)
    finally:
        loop.close()


# -------------------------------------------------------------- cancellation


def test_cancelled_callbacks_and_timers_do_not_run(manual_loop):
    calls = []
    soon = manual_loop.call_soon(calls.append, "soon")
    later = manual_loop.call_later(1, calls.append, "later")
    kept = manual_loop.call_later(1, calls.append, "kept")
    soon.cancel()
    later.cancel()
    assert soon.cancelled() and later.cancelled() and not kept.cancelled()
    manual_loop.advance(1)
    manual_loop.run_once()
    assert calls == ["kept"]


def test_cancel_releases_the_callback_arguments_at_once(manual_loop):
    class Big:
        pass

    big = Big()
    ref = weakref.ref(big)
    handle = manual_loop.call_later(3600, print, big)
    del big
    handle.cancel()
    gc.collect()
    assert ref() is None


def test_scheduling_and_cancelling_a_million_timeouts_keeps_the_heap_small(manual_loop):
    largest = 0
    for n in range(1_000_000):
        manual_loop.call_later(30, print).cancel()
        if n % 997 == 0:
            largest = max(largest, len(manual_loop._timers))
    assert largest <= 200
    assert len(manual_loop._timers) <= 200


def test_compaction_keeps_live_timers_in_order(manual_loop):
    rng = random.Random(7)
    fired = []
    expected = []
    handles = []
    for n in range(5000):
        when = rng.randrange(1, 100)
        handles.append((when, n, manual_loop.call_at(when, fired.append, (when, n))))
    for when, n, handle in handles:
        if rng.random() < 0.9:
            handle.cancel()
        else:
            expected.append((when, n))
    # Compaction ran: the heap is not still holding the 4500 cancelled entries.
    assert len(manual_loop._timers) < 2 * len(expected)
    manual_loop.advance(100)
    manual_loop.run_once()
    assert fired == sorted(expected)


def test_cancelling_after_a_timer_fired_is_harmless(manual_loop):
    calls = []
    handle = manual_loop.call_later(1, calls.append, 1)
    manual_loop.advance(1)
    manual_loop.run_once()
    handle.cancel()
    for _ in range(300):  # many more cancels: the bookkeeping must stay right
        manual_loop.call_later(5, calls.append, "never").cancel()
    manual_loop.call_later(2, calls.append, 2)
    manual_loop.advance(5)
    manual_loop.run_once()
    assert calls == [1, 2]


# --------------------------------------------------------------- file events


def test_reader_and_writer_share_one_registration_per_fd():
    spy = SpySelector()
    loop = EventLoop(selector=spy)
    a, b = socket.socketpair()
    try:
        spy.calls.clear()
        loop.add_reader(a, print)
        loop.add_writer(a.fileno(), print)  # an int fd is the same fd
        assert spy.calls == ["register", "modify"]
        assert spy.get_key(a).events == selectors.EVENT_READ | selectors.EVENT_WRITE
        assert loop.remove_writer(a)
        assert spy.get_key(a).events == selectors.EVENT_READ
        assert loop.remove_reader(a)
        assert not loop.remove_reader(a)
        assert spy.calls == ["register", "modify", "modify", "unregister"]
        with pytest.raises(KeyError):
            spy.get_key(a)
    finally:
        loop.close()
        a.close()
        b.close()


def test_reader_and_writer_callbacks_fire(real_loop):
    a, b = socket.socketpair()
    r, w = os.pipe()
    try:
        events = []
        real_loop.add_reader(a, lambda tag: events.append((tag, a.recv(100))), "socket")
        real_loop.add_reader(r, lambda: events.append(("pipe", os.read(r, 100))))
        real_loop.add_writer(b, lambda: (events.append(("writable", None)), real_loop.remove_writer(b)))
        b.send(b"hello")
        os.write(w, b"data")
        while len(events) < 3:
            real_loop.run_once(timeout=None)
        assert sorted(events, key=str) == sorted(
            [("socket", b"hello"), ("pipe", b"data"), ("writable", None)], key=str
        )
        real_loop.remove_reader(a)
        real_loop.remove_reader(r)
    finally:
        for s in (a, b):
            s.close()
        os.close(r)
        os.close(w)


def test_add_reader_replaces_the_previous_reader(real_loop):
    a, b = socket.socketpair()
    try:
        calls = []
        real_loop.add_reader(a, calls.append, "old")
        real_loop.add_reader(a, lambda: (calls.append("new"), a.recv(10)))
        b.send(b"x")
        real_loop.run_once(timeout=None)
        assert calls == ["new"]
        real_loop.remove_reader(a)
    finally:
        a.close()
        b.close()


def test_a_reader_removed_by_an_earlier_callback_of_the_same_pass_does_not_run(real_loop):
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        ran = []

        def make_reader(mine, other):
            def on_readable():
                ran.append(mine)
                pairs[mine][0].recv(10)
                real_loop.remove_reader(pairs[other][0])

            return on_readable

        real_loop.add_reader(pairs[0][0], make_reader(0, 1))
        real_loop.add_reader(pairs[1][0], make_reader(1, 0))
        for _, writer in pairs:
            writer.send(b"x")  # a Unix socketpair is readable as soon as send() returns
        real_loop.run_once()
        assert len(ran) == 1
    finally:
        for pair in pairs:
            real_loop.remove_reader(pair[0])
            for s in pair:
                s.close()


def test_invalid_file_objects_are_rejected(real_loop):
    with pytest.raises(ValueError):
        real_loop.add_reader(object(), print)


@pytest.mark.skipif(not isinstance(selectors.DefaultSelector(), selectors.EpollSelector), reason="epoll only")
def test_a_file_that_cannot_be_polled_is_refused_and_leaves_no_registration(real_loop, tmp_path):
    # epoll refuses regular files (they are always ready); kqueue and poll take them.
    with open(tmp_path / "plain", "wb") as plain:
        with pytest.raises(OSError):
            real_loop.add_reader(plain, print)
        assert not real_loop.remove_reader(plain)


def test_a_new_socket_given_a_closed_ones_number_in_the_same_pass_is_not_woken(real_loop):
    """Both sockets are readable in one poll.  The first callback to run
    closes the other socket and opens a new one, which the kernel numbers
    like the closed one (the lowest free number): the poll result was about
    the old socket, so the new one's reader must not run."""
    pairs = {"a": socket.socketpair(), "b": socket.socketpair()}
    for _, peer in pairs.values():
        peer.send(b"x")
    calls = []
    numbers = []  # (closed socket's number, new socket's number)
    opened = []

    def on_ready(name, other):
        def callback():
            calls.append(name)
            mine, theirs = pairs[name][0], pairs[other][0]
            mine.recv(1)
            real_loop.remove_reader(mine)
            real_loop.remove_reader(theirs)
            number = theirs.fileno()
            theirs.close()
            new, new_peer = socket.socketpair()
            opened.extend((new, new_peer))
            numbers.append((number, new.fileno()))
            real_loop.add_reader(new, calls.append, "new socket")
            real_loop.call_soon(real_loop.stop)

        return callback

    real_loop.add_reader(pairs["a"][0], on_ready("a", "b"))
    real_loop.add_reader(pairs["b"][0], on_ready("b", "a"))
    real_loop.call_later(10, real_loop.stop)  # a bound, should the loop never stop
    try:
        real_loop.run_forever()
        assert len(numbers) == 1 and numbers[0][0] == numbers[0][1], numbers  # the number was reused
        assert calls in (["a"], ["b"])
    finally:
        for sock in [*pairs["a"], *pairs["b"], *opened]:
            sock.close()


# ------------------------------------------------------- thread-safe wake-up


def test_call_soon_threadsafe_wakes_a_loop_sleeping_on_a_ten_second_timer():
    spy = SpySelector(long_sleep=5.0)
    loop = EventLoop(selector=spy)
    fired = []
    posted = []

    def on_timer():
        fired.append("timer")
        loop.stop()

    def from_the_thread():
        posted.append(threading.get_ident())
        loop.stop()

    def poster():
        spy.sleeping.wait()  # the loop is in select(), asleep on the 10 s timer
        loop.call_soon_threadsafe(from_the_thread)

    timer = loop.call_later(10, on_timer)
    thread = threading.Thread(target=poster)
    thread.start()
    try:
        loop.run_forever()
    finally:
        thread.join()
        timer.cancel()
        loop.close()
    assert posted == [threading.get_ident()]  # it ran, on the loop's thread
    assert fired == []  # and the loop returned long before the 10 s timer


def test_call_soon_threadsafe_from_many_threads_at_once(real_loop):
    threads_count, per_thread = 8, 500
    received: dict[int, list[int]] = {n: [] for n in range(threads_count)}
    total = 0
    start = threading.Barrier(threads_count)

    def record(thread_no, seq):
        nonlocal total
        received[thread_no].append(seq)
        total += 1
        if total == threads_count * per_thread:
            real_loop.stop()

    def post(thread_no):
        start.wait()
        for seq in range(per_thread):
            real_loop.call_soon_threadsafe(record, thread_no, seq)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    real_loop.run_forever()
    for thread in threads:
        thread.join()
    # Every callback ran once, and each thread's callbacks ran in the order posted.
    assert all(seqs == list(range(per_thread)) for seqs in received.values())


def test_run_once_with_no_timeout_waits_for_a_thread(real_loop):
    calls = []
    thread = threading.Thread(target=real_loop.call_soon_threadsafe, args=(calls.append, "posted"))
    thread.start()
    while not calls:
        real_loop.run_once(timeout=None)
    thread.join()
    assert calls == ["posted"]


# ------------------------------------------------------------------- signals


@on_main_thread
def test_signal_handler_runs_on_the_loop(real_loop):
    received = []

    def on_signal(tag):
        received.append((tag, threading.get_ident()))
        real_loop.stop()

    real_loop.add_signal_handler(signal.SIGUSR1, on_signal, "usr1")
    real_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    failsafe = real_loop.call_later(10, real_loop.stop)
    real_loop.run_forever()
    failsafe.cancel()
    assert received == [("usr1", threading.get_ident())]
    assert real_loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert not real_loop.remove_signal_handler(signal.SIGUSR1)


@on_main_thread
def test_sigint_stops_run_forever_cleanly_when_a_handler_is_installed(real_loop):
    failsafe_fired = []
    real_loop.add_signal_handler(signal.SIGINT, real_loop.stop)
    real_loop.call_soon(os.kill, os.getpid(), signal.SIGINT)
    failsafe = real_loop.call_later(10, lambda: (failsafe_fired.append(True), real_loop.stop()))
    real_loop.run_forever()  # no KeyboardInterrupt
    failsafe.cancel()
    assert failsafe_fired == []
    real_loop.remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@on_main_thread
def test_close_removes_signal_handlers_and_the_wakeup_fd():
    loop = EventLoop()
    loop.add_signal_handler(signal.SIGUSR2, print)
    loop.close()
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1  # nobody left it pointing at a closed socket


@on_main_thread
def test_a_loop_with_signal_handlers_refuses_to_close_from_another_thread():
    # Only the main thread can undo set_wakeup_fd: closing elsewhere would leave
    # signals writing into a closed (soon reused) file descriptor.
    loop = EventLoop()
    loop.add_signal_handler(signal.SIGUSR1, print)
    errors = []

    def close_elsewhere():
        try:
            loop.close()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=close_elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1 and not loop.is_closed()
    loop.close()
    assert signal.set_wakeup_fd(-1) == -1
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@on_main_thread
def test_signals_that_cannot_be_handled(real_loop):
    with pytest.raises(RuntimeError):
        real_loop.add_signal_handler(signal.SIGKILL, print)


def test_signal_handlers_need_the_main_thread(real_loop):
    errors = []

    def try_it():
        try:
            real_loop.add_signal_handler(signal.SIGUSR1, print)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=try_it)
    thread.start()
    thread.join()
    assert len(errors) == 1


# ---------------------------------------------------------- exception handler


def test_failing_callback_goes_to_the_handler_and_the_loop_goes_on(loop, errors):
    def broken():
        raise ValueError("callback bug")

    calls = []
    loop.call_soon(broken)
    loop.call_soon(calls.append, "after")
    loop.call_later(1, broken)
    loop.call_later(1, calls.append, "timer after")
    loop.advance(1)
    loop.run_once()
    assert calls == ["after", "timer after"]
    assert [type(e) for e in errors.exceptions] == [ValueError, ValueError]
    assert "broken" in errors.messages[0]
    assert isinstance(errors.contexts[0]["handle"], netkit.Handle)


def test_failing_io_callback_goes_to_the_handler(real_loop):
    contexts = []
    real_loop.set_exception_handler(lambda loop, context: contexts.append(context))
    a, b = socket.socketpair()
    try:

        def bad_reader():
            a.recv(10)
            raise OSError("reader bug")

        real_loop.add_reader(a, bad_reader)
        b.send(b"x")
        while not contexts:
            real_loop.run_once(timeout=None)
        assert isinstance(contexts[0]["exception"], OSError)
        real_loop.remove_reader(a)
    finally:
        a.close()
        b.close()


def test_a_reader_that_removes_itself_and_raises_is_named_in_the_report(real_loop):
    # Removing the reader cancels its handle, which drops the callback; the
    # report must still say which function failed.
    messages = []
    real_loop.set_exception_handler(lambda loop, context: messages.append(context["message"]))
    a, b = socket.socketpair()
    try:

        def self_removing_reader():
            real_loop.remove_reader(a)
            raise OSError("reader bug")

        real_loop.add_reader(a, self_removing_reader)
        b.send(b"x")
        while not messages:
            real_loop.run_once(timeout=None)
        assert messages == [
            "exception in callback test_a_reader_that_removes_itself_and_raises_is_named_in_the_report.<locals>.self_removing_reader"
        ]
    finally:
        a.close()
        b.close()


def test_default_handler_logs_with_traceback_on_the_netkit_logger(manual_loop, caplog):
    def broken():
        raise ZeroDivisionError("logged")

    manual_loop.call_soon(broken)
    with caplog.at_level(logging.ERROR, logger="netkit"):
        manual_loop.run_once()
    (record,) = [r for r in caplog.records if r.name == "netkit"]
    assert record.getMessage().startswith("exception in callback ")
    assert "broken" in record.getMessage().splitlines()[0]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_a_failing_custom_handler_falls_back_to_the_log(manual_loop, caplog):
    def bad_handler(loop, context):
        raise RuntimeError("handler bug")

    manual_loop.set_exception_handler(bad_handler)
    manual_loop.call_soon(lambda: 1 / 0)
    calls = []
    manual_loop.call_soon(calls.append, "still running")
    with caplog.at_level(logging.ERROR, logger="netkit"):
        manual_loop.run_once()
    assert calls == ["still running"]
    assert any("exception in the custom exception handler" in r.getMessage() for r in caplog.records)


def test_exception_handler_setting(loop, errors):
    assert loop.get_exception_handler() is errors
    with pytest.raises(TypeError):
        loop.set_exception_handler("not callable")
    loop.call_exception_handler({"message": "direct"})
    assert errors.messages == ["direct"]
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_keyboard_interrupt_in_a_callback_escapes_and_the_loop_can_run_again(manual_loop):
    def interrupt():
        raise KeyboardInterrupt

    calls = []
    manual_loop.call_soon(interrupt)
    manual_loop.call_soon(calls.append, "later")
    with pytest.raises(KeyboardInterrupt):
        manual_loop.run_forever()
    assert not manual_loop.is_running()
    manual_loop.run_once()
    assert calls == ["later"]


# ----------------------------------------------------------- run, stop, close


def test_run_until_complete_accepts_coroutines_futures_and_awaitables(loop):
    async def coro():
        await netkit.sleep(1)
        return "coroutine"

    future = loop.create_future()
    loop.call_later(1, future.set_result, "future")

    class Awaitable:
        def __await__(self):
            return coro().__await__()

    assert loop.run_until_complete(coro()) == "coroutine"
    assert loop.run_until_complete(future) == "future"
    assert loop.run_until_complete(Awaitable()) == "coroutine"


def test_run_until_complete_when_the_loop_is_stopped_early(loop):
    future = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="stopped before"):
        loop.run_until_complete(future)


def test_stop_before_run_forever_runs_one_iteration(manual_loop):
    calls = []
    manual_loop.call_soon(calls.append, 1)
    manual_loop.stop()
    manual_loop.run_forever()
    assert calls == [1]


def test_run_once_does_one_iteration_and_does_not_block(real_loop):
    calls = []
    timer = real_loop.call_later(3600, calls.append, "timer")
    real_loop.call_soon(lambda: real_loop.call_soon(calls.append, "second"))
    real_loop.call_soon(calls.append, "first")
    real_loop.run_once()
    assert calls == ["first"] and not real_loop.is_running()
    real_loop.run_once(timeout=0)
    assert calls == ["first", "second"]
    real_loop.run_once()  # nothing ready, a one-hour timer pending: returns at once
    timer.cancel()


def test_run_once_runs_due_timers(manual_loop):
    calls = []
    manual_loop.call_later(2, calls.append, "due")
    manual_loop.advance(2)
    manual_loop.run_once()
    assert calls == ["due"]


def test_is_running_and_running_twice_at_once(manual_loop):
    seen = []

    def nested():
        seen.append(manual_loop.is_running())
        for run in (manual_loop.run_forever, manual_loop.run_once):
            with pytest.raises(RuntimeError):
                run()
        seen.append(manual_loop.is_running())

    manual_loop.call_soon(nested)
    manual_loop.run_once()
    assert seen == [True, True]
    assert not manual_loop.is_running()


def test_run_until_complete_on_a_running_loop_does_not_start_the_coroutine(loop):
    started = []

    async def inner():
        started.append(True)

    async def outer():
        tasks_before = netkit.all_tasks()
        coro = inner()
        with pytest.raises(RuntimeError):
            loop.run_until_complete(coro)
        scheduled = netkit.all_tasks() - tasks_before
        coro.close()
        await netkit.sleep(1)
        return scheduled

    assert loop.run_until_complete(outer()) == set()
    assert started == []


def test_a_second_loop_cannot_run_inside_the_first(manual_loop):
    other = TestLoop()
    errors = []

    def nested():
        try:
            other.run_once()
        except RuntimeError as exc:
            errors.append(exc)

    manual_loop.call_soon(nested)
    manual_loop.run_once()
    other.close()
    assert len(errors) == 1


def test_running_from_another_thread_while_running_is_refused(real_loop):
    errors = []

    def from_thread():
        try:
            real_loop.run_once()
        except RuntimeError as exc:
            errors.append(exc)
        real_loop.call_soon_threadsafe(real_loop.stop)

    real_loop.call_soon(lambda: threading.Thread(target=from_thread).start())
    real_loop.run_forever()
    assert len(errors) == 1


def test_close_is_idempotent_and_a_closed_loop_refuses_to_run():
    loop = EventLoop()
    loop.close()
    loop.close()
    assert loop.is_closed()
    for call in (loop.run_forever, loop.run_once, lambda: loop.run_until_complete(loop.create_future())):
        with pytest.raises(RuntimeError):
            call()
    with pytest.raises(RuntimeError):
        loop.call_soon(print)
    with pytest.raises(RuntimeError):
        loop.call_later(1, print)


def test_a_running_loop_cannot_be_closed(manual_loop):
    errors = []

    def try_close():
        try:
            manual_loop.close()
        except RuntimeError as exc:
            errors.append(exc)

    manual_loop.call_soon(try_close)
    manual_loop.run_once()
    assert len(errors) == 1 and not manual_loop.is_closed()


def test_close_leaves_no_open_fds_and_releases_the_executor():
    before = open_fds()
    threads_before = {t.ident for t in threading.enumerate()}
    loop = EventLoop()
    a, b = socket.socketpair()
    loop.add_reader(a, print)
    loop.set_blocking_watchdog(10)
    assert loop.run_until_complete(loop.run_in_executor(None, sum, [1, 2, 3])) == 6
    executor = loop._default_executor
    loop.remove_reader(a)
    a.close()
    b.close()
    loop.close()
    assert open_fds() == before
    with pytest.raises(RuntimeError):
        executor.submit(print)  # shut down
    executor.shutdown(wait=True)
    assert {t.ident for t in threading.enumerate()} - threads_before == set()  # no thread left behind


def test_repr(manual_loop):
    manual_loop.call_soon(print)
    assert "ready=1" in repr(manual_loop)
    handle = manual_loop.call_later(1, test_repr)
    assert "test_repr" in repr(handle)
    handle.cancel()
    assert "cancelled" in repr(handle)


# ------------------------------------------------------------------ executors


def test_run_in_executor_default_pool_is_lazy_and_results_arrive_on_the_loop(real_loop):
    assert real_loop._default_executor is None
    future = real_loop.run_in_executor(None, threading.get_ident)
    assert isinstance(future, netkit.Future)
    callback_threads = []
    future.add_done_callback(lambda f: callback_threads.append(threading.get_ident()))
    worker = real_loop.run_until_complete(future)
    real_loop.run_once()
    assert worker != threading.get_ident()
    assert callback_threads == [threading.get_ident()]


def test_run_in_executor_propagates_exceptions(real_loop):
    with pytest.raises(ValueError):
        real_loop.run_until_complete(real_loop.run_in_executor(None, int, "x"))


def test_run_in_a_custom_thread_pool(real_loop):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="custom") as pool:

        def name():
            return threading.current_thread().name

        assert real_loop.run_until_complete(real_loop.run_in_executor(pool, name)).startswith("custom")


def test_run_in_a_process_pool(real_loop):
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:

        async def main():
            return await netkit.gather(
                real_loop.run_in_executor(pool, pow, 3, 4),
                real_loop.run_in_executor(pool, os.getpid),
            )

        power, worker_pid = real_loop.run_until_complete(main())
    assert power == 81 and worker_pid != os.getpid()


def test_cancelling_the_result_cancels_a_job_not_yet_started(real_loop):
    release = threading.Event()
    ran = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        blocker = real_loop.run_in_executor(pool, release.wait, 10)
        queued = real_loop.run_in_executor(pool, ran.append, "queued job")
        queued.cancel()
        real_loop.run_once()  # done callbacks run on the loop: this one cancels the job
        release.set()
        real_loop.run_until_complete(blocker)
    assert ran == []


def test_run_in_executor_after_close_is_refused():
    loop = EventLoop()
    loop.close()
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, print)


# ----------------------------------------------------------------- debug mode


def test_debug_mode_from_the_environment(monkeypatch):
    for value, expected in (("1", True), ("0", False), ("", False)):
        monkeypatch.setenv("NETKIT_DEBUG", value)
        loop = EventLoop()
        assert loop.get_debug() is expected
        loop.close()
    monkeypatch.delenv("NETKIT_DEBUG")
    loop = EventLoop()
    assert not loop.get_debug()
    loop.set_debug(True)
    assert loop.get_debug()
    loop.close()


def test_debug_mode_names_a_slow_callback(manual_loop, caplog):
    def a_slow_callback():
        pass

    manual_loop.set_debug(True)
    manual_loop.slow_callback_duration = 0  # every callback counts as slow
    manual_loop.call_soon(a_slow_callback)
    with caplog.at_level(logging.WARNING, logger="netkit"):
        manual_loop.run_once()
    assert any("a_slow_callback" in r.getMessage() and "took" in r.getMessage() for r in caplog.records)


def test_no_slow_callback_warning_below_the_threshold_or_without_debug(manual_loop, caplog):
    def quick():
        pass

    manual_loop.slow_callback_duration = 0
    manual_loop.call_soon(quick)  # debug off: never warned
    manual_loop.set_debug(True)
    manual_loop.slow_callback_duration = 3600
    manual_loop.call_soon(quick)
    with caplog.at_level(logging.WARNING, logger="netkit"):
        manual_loop.run_once()
    assert [r for r in caplog.records if r.name == "netkit"] == []


def test_slow_callback_is_measured_in_real_time_not_virtual_time(manual_loop, caplog):
    # Moving a virtual clock by an hour takes no time: it is not a slow callback.
    manual_loop.set_debug(True)
    manual_loop.slow_callback_duration = 60
    manual_loop.call_soon(manual_loop.advance, 3600)
    with caplog.at_level(logging.WARNING, logger="netkit"):
        manual_loop.run_once()
    assert [r for r in caplog.records if r.name == "netkit"] == []


def test_debug_mode_reports_where_an_unawaited_coroutine_was_created(manual_loop):
    async def forgotten():
        pass

    def creates_and_drops():
        forgotten()

    manual_loop.set_debug(True)
    manual_loop.call_soon(creates_and_drops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manual_loop.run_once()
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("was never awaited" in m and "creates_and_drops" in m for m in messages)


def test_debug_mode_reports_where_a_failed_task_was_created(loop, errors, collect_garbage):
    async def fail():
        raise ValueError("unseen")

    async def main():
        netkit.create_task(fail())
        await netkit.sleep(1)

    loop.set_debug(True)
    loop.run_until_complete(main())
    collect_garbage()
    (context,) = errors.contexts
    assert context["message"] == "Task exception was never retrieved"
    assert any(frame.name == "main" for frame in context["source_traceback"])


# ------------------------------------------------ debug mode: other threads


class CrossThreadScene:
    """What a call from another thread acts on: a loop that runs (and sleeps in
    ``select()``) on this thread, a pending future, a pending task, a socket."""

    def __init__(self, debug: bool) -> None:
        self.spy = SpySelector(long_sleep=5.0)
        self.loop = EventLoop(selector=self.spy)
        self.loop.set_debug(debug)
        self.future = self.loop.create_future()
        self.task = self.loop.create_task(self._wait_forever())
        self.here, self.there = socket.socketpair()
        self.ran: list[str] = []
        self.created = None

    async def _wait_forever(self):
        await self.loop.create_future()

    async def a_coroutine(self):
        self.ran.append("coroutine")

    def call_from_another_thread(self, call) -> BaseException | None:
        """Run the loop; once it sleeps in ``select()``, make ``call()`` from a helper
        thread, then wake the loop the thread-safe way.  Returns what ``call()`` raised."""
        outcome: list[BaseException | None] = []

        def helper():
            self.spy.sleeping.wait()  # the loop is asleep in select(), on its own thread
            try:
                call(self)
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)
            self.loop.call_soon_threadsafe(self.loop.stop)

        thread = threading.Thread(target=helper, name="helper")
        thread.start()
        try:
            self.loop.run_forever()
        finally:
            thread.join()
        self.loop.run_once()  # what the call scheduled runs now, on the loop's thread
        return outcome[0]

    def close(self) -> None:
        self.task.cancel()
        for task in (self.task, self.created):
            if task is not None:
                while not task.done():
                    self.loop.run_once()
        self.loop.close()
        self.here.close()
        self.there.close()


def _expect_ran(name):
    return lambda scene: name in scene.ran


# name: (the call made from the other thread, what the RuntimeError must name,
#        what shows the call took effect when it is allowed)
CROSS_THREAD_CALLS = {
    "call_soon": (
        lambda scene: scene.loop.call_soon(scene.ran.append, "call_soon"),
        "call_soon_threadsafe",
        _expect_ran("call_soon"),
    ),
    "call_later": (
        lambda scene: scene.loop.call_later(0, scene.ran.append, "call_later"),
        "call_soon_threadsafe",
        _expect_ran("call_later"),
    ),
    "call_at": (
        lambda scene: scene.loop.call_at(scene.loop.time(), scene.ran.append, "call_at"),
        "call_soon_threadsafe",
        _expect_ran("call_at"),
    ),
    "create_task": (
        lambda scene: setattr(scene, "created", scene.loop.create_task(scene.a_coroutine())),
        "LoopThread.submit",
        _expect_ran("coroutine"),
    ),
    "Future.set_result": (
        lambda scene: scene.future.set_result(42),
        "call_soon_threadsafe",
        lambda scene: scene.future.result() == 42,
    ),
    "Future.set_exception": (
        lambda scene: scene.future.set_exception(ValueError("from a thread")),
        "call_soon_threadsafe",
        lambda scene: isinstance(scene.future.exception(), ValueError),
    ),
    "Future.cancel": (
        lambda scene: scene.future.cancel(),
        "call_soon_threadsafe",
        lambda scene: scene.future.cancelled(),
    ),
    "Future.add_done_callback": (
        lambda scene: scene.future.add_done_callback(lambda f: scene.ran.append("done")),
        "call_soon_threadsafe",
        lambda scene: scene.future._callbacks != [],
    ),
    "Task.cancel": (
        lambda scene: scene.task.cancel(),
        "call_soon_threadsafe",
        lambda scene: scene.task.cancelled(),
    ),
    "add_reader": (
        lambda scene: scene.loop.add_reader(scene.here, scene.ran.append, "readable"),
        "call_soon_threadsafe",
        lambda scene: scene.loop.remove_reader(scene.here),
    ),
    "add_writer": (
        lambda scene: scene.loop.add_writer(scene.here, scene.ran.append, "writable"),
        "call_soon_threadsafe",
        lambda scene: _expect_ran("writable")(scene) and scene.loop.remove_writer(scene.here),
    ),
    "remove_reader": (
        lambda scene: scene.loop.remove_reader(scene.there),
        "call_soon_threadsafe",
        lambda scene: not scene.loop.remove_reader(scene.there),
    ),
    "remove_writer": (
        lambda scene: scene.loop.remove_writer(scene.there),
        "call_soon_threadsafe",
        lambda scene: not scene.loop.remove_writer(scene.there),
    ),
}


@pytest.fixture
def scene_factory():
    scenes: list[CrossThreadScene] = []

    def make(debug: bool) -> CrossThreadScene:
        scene = CrossThreadScene(debug)
        # Registered before the loop runs, for the remove_* calls to remove.
        scene.loop.add_reader(scene.there, scene.ran.append, "never")
        scene.loop.add_writer(scene.there, lambda: None)
        scene.loop.remove_writer(scene.there)
        scene.loop.add_writer(scene.there, lambda: None)
        scenes.append(scene)
        return scene

    yield make
    for scene in scenes:
        scene.close()


@pytest.mark.parametrize("operation", list(CROSS_THREAD_CALLS))
def test_debug_mode_refuses_a_call_from_another_thread_and_names_the_thread_safe_way(scene_factory, operation):
    call, alternative, _ = CROSS_THREAD_CALLS[operation]
    scene = scene_factory(debug=True)
    scene.there.send(b"x")  # "there" is readable: its reader would run if registered
    exc = scene.call_from_another_thread(call)
    assert isinstance(exc, RuntimeError), f"{operation} from another thread raised {exc!r}"
    message = str(exc)
    assert operation.split(".")[-1] in message and alternative in message
    assert "helper" in message  # the thread that made the call
    # Refused, not half done: nothing was scheduled or completed.
    assert scene.ran == [] and not scene.future.done() and not scene.task.done()


@pytest.mark.parametrize("operation", list(CROSS_THREAD_CALLS))
def test_without_debug_mode_a_call_from_another_thread_is_not_checked(scene_factory, operation):
    call, _, took_effect = CROSS_THREAD_CALLS[operation]
    scene = scene_factory(debug=False)
    assert scene.call_from_another_thread(call) is None
    # The loop did not wake for it (call_soon_threadsafe woke it), but it happened.
    scene.loop.run_once()
    assert took_effect(scene)


def test_debug_mode_lets_the_thread_safe_ways_through(real_loop):
    real_loop.set_debug(True)
    results = []

    async def main():
        # run_in_executor and to_thread deliver their results through call_soon_threadsafe.
        results.append(await real_loop.run_in_executor(None, sum, [1, 2, 3]))
        results.append(await netkit.to_thread(max, 4, 5))
        done = real_loop.create_future()
        threading.Thread(target=real_loop.call_soon_threadsafe, args=(done.set_result, "posted")).start()
        results.append(await done)

    real_loop.run_until_complete(main())
    real_loop.run_until_complete(real_loop.shutdown_default_executor())
    assert results == [6, 5, "posted"]


def test_debug_mode_allows_any_thread_while_the_loop_is_not_running(real_loop):
    # As asyncio: the check is about racing a running loop.  Setting a loop up
    # on one thread and running it on another is fine.
    real_loop.set_debug(True)
    ran = []
    future = real_loop.create_future()

    def set_up():
        real_loop.call_soon(ran.append, "scheduled")
        future.set_result("set")

    thread = threading.Thread(target=set_up)
    thread.start()
    thread.join()
    real_loop.run_until_complete(future)
    assert ran == ["scheduled"] and future.result() == "set"


SYNC_WAKE_UPS = {
    # name: (the primitive, a coroutine that waits on it, the wake-up a thread attempts)
    "Event.set": (netkit.Event, lambda event: event.wait(), lambda event: event.set()),
    "Semaphore.release": (lambda: netkit.Semaphore(0), lambda sem: sem.acquire(), lambda sem: sem.release()),
    "Queue.put_nowait": (netkit.Queue, lambda queue: queue.get(), lambda queue: queue.put_nowait("item")),
}


@pytest.mark.parametrize("operation", list(SYNC_WAKE_UPS))
def test_debug_mode_refuses_a_wake_up_from_another_thread_before_it_changes_anything(real_loop, operation):
    make, wait, wake = SYNC_WAKE_UPS[operation]
    real_loop.set_debug(True)
    primitive = make()
    outcome = []

    def from_a_thread():
        try:
            wake(primitive)
        except RuntimeError as exc:
            outcome.append(exc)
        real_loop.call_soon_threadsafe(wake, primitive)  # the right way

    async def main():
        waiting = real_loop.create_task(wait(primitive))
        await netkit.sleep(0)  # the waiter is registered
        thread = threading.Thread(target=from_a_thread)
        thread.start()
        # Woken by the thread-safe call: the refused one left nothing half done.
        # (A bound, not a timing assertion: a half-done wake-up would hang here.)
        await netkit.wait_for(waiting, 10)
        await netkit.to_thread(thread.join)

    real_loop.run_until_complete(main())
    real_loop.run_until_complete(real_loop.shutdown_default_executor())
    assert len(outcome) == 1 and "call_soon_threadsafe" in str(outcome[0])


# ------------------------------------------------------------------ watchdog


class _WatchdogCatcher(logging.Handler):
    def __init__(self):
        super().__init__()
        self.reported = threading.Event()
        self.messages: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if "event loop blocked" in message:
            self.messages.append(message)
            self.reported.set()


@pytest.mark.parametrize("make_loop", [EventLoop, TestLoop], ids=["EventLoop", "TestLoop"])
def test_watchdog_logs_the_stack_while_the_loop_is_blocked(make_loop):
    catcher = _WatchdogCatcher()
    logger = logging.getLogger("netkit")
    logger.addHandler(catcher)
    loop = make_loop()
    reported_while_blocked = []

    def stuck_in_a_blocking_call():
        # Blocks the loop until the watchdog speaks (bounded, in case it never does).
        reported_while_blocked.append(catcher.reported.wait(5))

    try:
        loop.set_blocking_watchdog(0.05)
        loop.call_soon(stuck_in_a_blocking_call)
        loop.run_once()
    finally:
        loop.set_blocking_watchdog(None)
        loop.close()
        logger.removeHandler(catcher)
    assert reported_while_blocked == [True]
    assert "stuck_in_a_blocking_call" in catcher.messages[0]


def test_watchdog_thread_stops_when_turned_off(real_loop):
    real_loop.set_blocking_watchdog(1)
    assert any(t.name == "netkit-watchdog" for t in threading.enumerate())
    real_loop.set_blocking_watchdog(None)
    assert not any(t.name == "netkit-watchdog" for t in threading.enumerate())
    with pytest.raises(ValueError):
        real_loop.set_blocking_watchdog(0)


# ---------------------------------------------------------- strong references


def test_the_loop_keeps_running_tasks_alive(loop, collect_garbage):
    async def background():
        future = loop.create_future()  # held by this coroutine alone
        weak_future = weakref.ref(future)
        loop.call_later(1, lambda: weak_future() is not None and weak_future().set_result("done"))
        return await future

    ref = weakref.ref(loop.create_task(background()))
    loop.run_once()  # the task waits on its future now
    collect_garbage()
    assert ref() is not None
    loop.run_until_complete(netkit.sleep(2))
    collect_garbage()
    assert ref() is None  # released once done
