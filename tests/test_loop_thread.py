"""LoopThread: a loop on a background thread, driven from plain threads.

Waits on ``concurrent.futures`` results are bounded (``WAIT`` seconds) so a
bug fails the test instead of hanging it; nothing asserts how long anything took.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

import pytest

import netkit
from netkit import LoopThread, sleep

WAIT = 10  # seconds: an upper bound for a hang, never reached when things work


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def add(a, b):
    await sleep(0)
    return a + b


def test_submit_returns_a_concurrent_future():
    with LoopThread() as lt:
        future = lt.submit(add(2, 3))
        assert isinstance(future, concurrent.futures.Future)
        assert future.result(WAIT) == 5
        assert lt.run(add(1, 1), timeout=WAIT) == 2


def test_exceptions_come_back_through_the_future():
    async def fail():
        raise KeyError("missing")

    with LoopThread() as lt:
        with pytest.raises(KeyError):
            lt.submit(fail()).result(WAIT)


def test_coroutines_run_on_the_loop_thread_with_a_running_loop():
    async def where():
        return threading.current_thread().name, netkit.get_running_loop()

    with LoopThread(name="netkit-test-where") as lt:
        name, running = lt.submit(where()).result(WAIT)
    assert name == "netkit-test-where" and running is lt.loop


def test_submit_from_many_plain_threads():
    with LoopThread() as lt:
        results: dict[int, list[int]] = {}

        def client(n):
            results[n] = [lt.submit(add(n, i)).result(WAIT) for i in range(50)]

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {n: [n + i for i in range(50)] for n in range(8)}


def test_call_soon_runs_a_function_on_the_loop_thread():
    with LoopThread(name="netkit-test-call-soon") as lt:
        seen = concurrent.futures.Future()
        lt.call_soon(lambda tag: seen.set_result((tag, threading.current_thread().name)), "hi")
        assert seen.result(WAIT) == ("hi", "netkit-test-call-soon")


def test_leaving_the_block_joins_the_thread_closes_the_loop_and_releases_fds():
    before = open_fds()
    with LoopThread(name="netkit-test-exit") as lt:
        lt.run(add(1, 2), timeout=WAIT)
        lt.run(netkit.to_thread(sum, [1]), timeout=WAIT)
    assert lt.loop.is_closed()
    assert not any(t.name == "netkit-test-exit" for t in threading.enumerate())
    assert open_fds() == before


def test_stop_cancels_what_is_still_running():
    cleanup = threading.Event()
    started = threading.Event()

    async def forever():
        started.set()
        try:
            await sleep(3600)
        finally:
            cleanup.set()

    lt = LoopThread().start()
    future = lt.submit(forever())
    assert started.wait(WAIT)
    lt.stop()
    assert cleanup.is_set()
    assert future.cancelled()
    lt.stop()  # idempotent


def test_cancelling_the_future_cancels_the_task():
    cleanup = threading.Event()
    started = threading.Event()

    async def forever():
        started.set()
        try:
            await sleep(3600)
        finally:
            cleanup.set()

    with LoopThread() as lt:
        future = lt.submit(forever())
        assert started.wait(WAIT)
        assert future.cancel()
        assert cleanup.wait(WAIT)


def test_submit_after_stop_is_refused_and_closes_the_coroutine():
    lt = LoopThread().start()
    lt.stop()
    coro = add(1, 2)
    with pytest.raises(RuntimeError):
        lt.submit(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning
    with pytest.raises(RuntimeError):
        lt.call_soon(print)


def test_submit_before_start_is_refused_and_closes_the_coroutine():
    lt = LoopThread()
    coro = add(1, 2)
    with pytest.raises(RuntimeError):
        lt.submit(coro)
    assert coro.cr_frame is None
    with pytest.raises(RuntimeError):
        lt.loop


def test_stop_from_the_loop_thread_is_refused_and_a_later_stop_still_works():
    async def stop_from_inside(lt):
        try:
            lt.stop()
        except RuntimeError as exc:
            return str(exc)

    lt = LoopThread(name="netkit-test-inner-stop").start()
    assert "loop thread" in lt.submit(stop_from_inside(lt)).result(WAIT)
    lt.stop(timeout=WAIT)
    assert not any(t.name == "netkit-test-inner-stop" for t in threading.enumerate())
    assert lt.loop.is_closed()


def test_no_future_is_left_pending_when_submit_races_with_stop():
    lt = LoopThread().start()
    futures: list[concurrent.futures.Future] = []
    go = threading.Barrier(5)

    async def slow():
        await sleep(3600)

    def client():
        go.wait()
        for _ in range(200):
            try:
                futures.append(lt.submit(slow()))
            except RuntimeError:
                return  # stopped: refused cleanly

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    go.wait()
    lt.stop()
    for thread in threads:
        thread.join()
    done, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not_done == set()
    assert all(future.cancelled() for future in done)


def test_start_twice_is_an_error():
    with LoopThread() as lt:
        with pytest.raises(RuntimeError):
            lt.start()


def test_start_reports_a_loop_that_could_not_be_created(monkeypatch):
    def broken_loop(*args, **kwargs):
        raise OSError("no more file descriptors")

    monkeypatch.setattr(netkit.loop_thread, "EventLoop", broken_loop)
    lt = LoopThread()
    outcome = concurrent.futures.Future()
    starter = threading.Thread(target=lambda: _capture(outcome, lt.start))
    starter.start()
    starter.join(WAIT)
    assert not starter.is_alive()  # start() returned instead of waiting forever
    assert isinstance(outcome.exception(0), RuntimeError)


def _capture(outcome, fn):
    try:
        outcome.set_result(fn())
    except BaseException as exc:
        outcome.set_exception(exc)


def test_debug_flag_reaches_the_loop():
    with LoopThread(debug=True) as lt:
        assert lt.loop.get_debug()
