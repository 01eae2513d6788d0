"""Future: states, callbacks, awaiting, and reports of exceptions nobody retrieved."""

from __future__ import annotations

import concurrent.futures
import gc
import sys

import pytest

import netkit
from netkit import CancelledError, Future, InvalidStateError
from netkit.futures import wrap_concurrent_future


def test_new_future_is_pending(loop):
    future = loop.create_future()
    assert not future.done() and not future.cancelled()
    assert future.get_loop() is loop
    with pytest.raises(InvalidStateError):
        future.result()
    with pytest.raises(InvalidStateError):
        future.exception()


def test_set_result(loop):
    future = loop.create_future()
    future.set_result(42)
    assert future.done() and not future.cancelled()
    assert future.result() == 42
    assert future.exception() is None


def test_set_exception_is_raised_by_result(loop):
    future = loop.create_future()
    error = ValueError("boom")
    future.set_exception(error)
    assert future.done()
    assert future.exception() is error
    with pytest.raises(ValueError, match="boom"):
        future.result()


def test_set_exception_accepts_a_class(loop):
    future = loop.create_future()
    future.set_exception(KeyError)
    assert isinstance(future.exception(), KeyError)


def test_stop_iteration_becomes_runtime_error(loop):
    # A StopIteration raised through a coroutine's send() would look like a return.
    future = loop.create_future()
    future.set_exception(StopIteration(5))
    assert isinstance(future.exception(), RuntimeError)
    assert isinstance(future.exception().__cause__, StopIteration)


def test_a_future_settles_only_once(loop):
    future = loop.create_future()
    future.set_result(1)
    with pytest.raises(InvalidStateError):
        future.set_result(2)
    with pytest.raises(InvalidStateError):
        future.set_exception(ValueError())
    assert not future.cancel()
    assert future.result() == 1


def test_cancel(loop):
    future = loop.create_future()
    assert future.cancel("stop it")
    assert future.cancelled() and future.done()
    assert not future.cancel()
    with pytest.raises(CancelledError, match="stop it"):
        future.result()
    with pytest.raises(CancelledError):
        future.exception()
    with pytest.raises(InvalidStateError):
        future.set_result(1)


def test_done_callbacks_run_on_the_loop_in_order_not_synchronously(loop):
    future = loop.create_future()
    calls = []
    future.add_done_callback(lambda f: calls.append(("first", f.result())))
    future.add_done_callback(lambda f: calls.append(("second", f.result())))
    future.set_result("x")
    assert calls == []  # never re-enters the code that completed the future
    loop.run_once()
    assert calls == [("first", "x"), ("second", "x")]


def test_callback_added_after_done_runs_soon(loop):
    future = loop.create_future()
    future.set_result(3)
    calls = []
    future.add_done_callback(calls.append)
    assert calls == []
    loop.run_once()
    assert calls == [future]


def test_cancel_runs_done_callbacks(loop):
    future = loop.create_future()
    seen = []
    future.add_done_callback(lambda f: seen.append(f.cancelled()))
    future.cancel()
    loop.run_once()
    assert seen == [True]


def test_remove_done_callback(loop):
    future = loop.create_future()
    calls = []

    def record(f):
        calls.append("removed")

    future.add_done_callback(record)
    future.add_done_callback(lambda f: calls.append("kept"))
    future.add_done_callback(record)
    assert future.remove_done_callback(record) == 2
    assert future.remove_done_callback(record) == 0
    future.set_result(None)
    loop.run_once()
    assert calls == ["kept"]


def test_awaiting_a_future_returns_its_result(loop):
    future = loop.create_future()

    async def waiter():
        return await future

    task = loop.create_task(waiter())
    loop.run_once()
    assert not task.done()
    future.set_result("value")
    assert loop.run_until_complete(task) == "value"


def test_awaiting_a_failed_future_raises(loop):
    future = loop.create_future()
    future.set_exception(OSError("gone"))

    async def waiter():
        with pytest.raises(OSError, match="gone"):
            await future
        return "caught"

    assert loop.run_until_complete(waiter()) == "caught"


def test_awaiting_a_cancelled_future_raises_cancelled_error(loop):
    future = loop.create_future()

    async def waiter():
        try:
            await future
        except CancelledError as exc:
            return exc.args

    task = loop.create_task(waiter())
    loop.run_once()
    future.cancel("why")
    assert loop.run_until_complete(task) == ("why",)


def test_exception_never_retrieved_is_reported_on_garbage_collection(loop, errors, collect_garbage):
    log = errors
    future = loop.create_future()
    future.set_exception(ValueError("lost"))
    del future
    collect_garbage()
    assert log.messages == ["Future exception was never retrieved"]
    assert isinstance(log.exceptions[0], ValueError)


def test_retrieved_exception_is_not_reported(loop, errors, collect_garbage):
    log = errors
    future = loop.create_future()
    future.set_exception(ValueError("seen"))
    future.exception()
    del future
    collect_garbage()
    assert log.contexts == []


def test_future_without_a_running_loop_raises_cleanly():
    # The half-built future must not complain again when it is collected.
    unraisable = []
    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with pytest.raises(RuntimeError, match="no running event loop"):
            Future()
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert unraisable == []


def test_repr_shows_state(loop):
    future = loop.create_future()
    assert "pending" in repr(future)
    future.set_result(7)
    assert "result=7" in repr(future)


def test_wrapped_concurrent_future_completes_on_the_loop(real_loop):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = wrap_concurrent_future(pool.submit(pow, 2, 10), loop=real_loop)
        assert real_loop.run_until_complete(future) == 1024

        failing = wrap_concurrent_future(pool.submit(int, "not a number"), loop=real_loop)
        with pytest.raises(ValueError):
            real_loop.run_until_complete(failing)


def test_cancelling_the_wrapper_cancels_a_concurrent_future_not_yet_started(real_loop):
    concurrent_future: concurrent.futures.Future[int] = concurrent.futures.Future()
    future = wrap_concurrent_future(concurrent_future, loop=real_loop)
    future.cancel()
    real_loop.run_once()
    assert concurrent_future.cancelled()


def test_future_is_exported_at_top_level():
    assert netkit.Future is Future
