"""netkit.testing.TestLoop: a virtual clock that moves only when told to, or
with autojump skips straight to the next timer when everything is waiting."""

from __future__ import annotations

import threading

import pytest

import netkit
from netkit import Event, sleep, timeout, wait_for
from netkit.testing import TestLoop


class SelectRecorder:
    """Wraps a loop's selector.select to record the timeouts it was asked for."""

    def __init__(self, loop: TestLoop) -> None:
        self.timeouts: list[float | None] = []
        self._select = loop._selector.select
        loop._selector.select = self.select  # type: ignore[method-assign]

    def select(self, timeout=None):
        self.timeouts.append(timeout)
        return self._select(timeout)


def test_autojump_makes_a_thirty_second_sleep_instant(loop):
    recorder = SelectRecorder(loop)

    async def main():
        await sleep(30)
        return loop.time()

    assert loop.run_until_complete(main()) == 30
    # The loop never asked the operating system to wait: the clock jumped.
    assert all(t == 0 for t in recorder.timeouts)


def test_autojump_times_out_a_thirty_second_wait_for(loop):
    async def main():
        with pytest.raises(TimeoutError):
            await wait_for(Event().wait(), 30)
        return loop.time()

    assert loop.run_until_complete(main()) == 30


def test_autojump_runs_timers_in_virtual_order(loop):
    log = []

    async def ticker(name, period, count):
        for _ in range(count):
            await sleep(period)
            log.append((loop.time(), name))

    async def main():
        await netkit.gather(ticker("fast", 2, 3), ticker("slow", 5, 2))

    loop.run_until_complete(main())
    assert log == [(2, "fast"), (4, "fast"), (5, "slow"), (6, "fast"), (10, "slow")]


def test_autojump_skips_cancelled_timers(loop):
    fired = []
    loop.call_later(30, fired.append, "cancelled").cancel()
    loop.call_later(40, fired.append, "live")
    loop.run_once(timeout=None)  # nothing ready: jump to the next live timer
    assert fired == ["live"]
    assert loop.time() == 40


def test_autojump_does_not_move_the_clock_to_a_finished_timeout(loop):
    # After the timeout block only a thread can resume main: the clock must
    # not jump to the deadline of a timeout that no longer exists.
    job_started = threading.Event()
    loop_polled = threading.Event()
    recorder = SelectRecorder(loop)
    original_select = recorder.select

    def select(timeout=None):
        if job_started.is_set():
            loop_polled.set()  # the loop polls while the job is still running
        return original_select(timeout)

    loop._selector.select = select

    def job():
        job_started.set()
        loop_polled.wait(10)
        return 3

    async def main():
        async with timeout(30):
            await sleep(1)
        assert await loop.run_in_executor(None, job) == 3
        return loop.time()

    assert loop.run_until_complete(main()) == 1


def test_manual_clock_moves_only_with_advance(manual_loop):
    fired = []
    manual_loop.call_later(10, fired.append, "ten")
    for _ in range(5):
        manual_loop.run_once()
    assert fired == [] and manual_loop.time() == 0
    manual_loop.advance(9.5)
    manual_loop.run_once()
    assert fired == []
    manual_loop.advance(0.5)
    manual_loop.run_once()
    assert fired == ["ten"] and manual_loop.time() == 10


def test_manual_clock_drives_coroutines(manual_loop):
    progress = []

    async def worker():
        for n in range(3):
            await sleep(10)
            progress.append(n)

    task = manual_loop.create_task(worker())
    for _ in range(3):
        for _ in range(3):
            manual_loop.run_once()
        manual_loop.advance(10)
    for _ in range(3):
        manual_loop.run_once()
    assert progress == [0, 1, 2] and task.done()


def test_advance_never_goes_backward(manual_loop):
    with pytest.raises(ValueError):
        manual_loop.advance(-1)
    assert manual_loop.time() == 0


def test_start_time():
    loop = TestLoop(start=1000.0)
    try:
        assert loop.time() == 1000.0
        handle = loop.call_later(5, print)
        assert handle.when() == 1005.0
        handle.cancel()
    finally:
        loop.close()


def test_real_threads_still_wake_a_test_loop():
    loop = TestLoop(autojump=True)
    try:
        result = loop.create_future()
        thread = threading.Thread(target=loop.call_soon_threadsafe, args=(result.set_result, "from thread"))
        thread.start()
        assert loop.run_until_complete(result) == "from thread"
        thread.join()
        assert loop.time() == 0
    finally:
        loop.close()


def test_test_loop_is_not_collected_as_a_test_class():
    assert TestLoop.__test__ is False
