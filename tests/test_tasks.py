"""Tasks and the coroutine toolbox: cancellation at every await point, gather,
wait_for, timeout (including the deadline-versus-outer-cancel race), TaskGroup,
to_thread, shield and netkit.run().

Everything that involves time runs on the ``loop`` fixture, a ``TestLoop`` with
autojump: a 30 s timeout takes no real time and the clock reads exact values.
"""

from __future__ import annotations

import contextvars
import gc
import os
import signal
import sys
import threading
import types
import weakref

import pytest

import netkit
from netkit import CancelledError, Event, TaskGroup, sleep, timeout, wait_for


def run(loop, coro):
    return loop.run_until_complete(coro)


def run_until(loop, condition, max_iterations=1000):
    """Pump ``loop`` one iteration at a time (no time passes) until ``condition()``."""
    for _ in range(max_iterations):
        if condition():
            return
        loop.run_once()
    raise AssertionError("condition never became true")


# ------------------------------------------------------------------- basics


def test_task_returns_its_coroutines_value(loop):
    async def answer():
        return 42

    task = loop.create_task(answer())
    assert isinstance(task, netkit.Future)
    assert run(loop, task) == 42
    assert task.done() and task.result() == 42


def test_task_exception_is_its_exception(loop):
    async def fail():
        raise KeyError("k")

    task = loop.create_task(fail())
    with pytest.raises(KeyError):
        run(loop, task)
    assert isinstance(task.exception(), KeyError)


def test_task_names(loop):
    async def nothing():
        return None

    first = loop.create_task(nothing())
    second = loop.create_task(nothing(), name="fetcher")
    assert first.get_name().startswith("Task-")
    assert second.get_name() == "fetcher"
    second.set_name(7)
    assert second.get_name() == "7"
    assert "name='7'" in repr(second)
    run(loop, first)
    run(loop, second)


def test_task_result_cannot_be_set_from_outside(loop):
    async def nothing():
        return None

    task = loop.create_task(nothing())
    with pytest.raises(RuntimeError):
        task.set_result(1)
    with pytest.raises(RuntimeError):
        task.set_exception(ValueError())
    run(loop, task)


def test_create_task_rejects_a_non_coroutine_without_side_reports(loop, errors, collect_garbage):
    unraisable = []

    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with pytest.raises(TypeError):
            loop.create_task(42)
        collect_garbage()
    finally:
        sys.unraisablehook = previous
    assert unraisable == []
    assert errors.contexts == []  # no "Task was destroyed but it is pending!"


def test_create_task_without_a_running_loop_raises_cleanly(collect_garbage):
    unraisable = []

    async def nothing():
        return None

    previous = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        coro = nothing()
        with pytest.raises(RuntimeError):
            netkit.Task(coro)
        coro.close()
        collect_garbage()
    finally:
        sys.unraisablehook = previous
    assert unraisable == []


def test_current_task(loop):
    seen = []

    async def who_am_i():
        seen.append(netkit.current_task())

    task = loop.create_task(who_am_i())
    loop.call_soon(lambda: seen.append(netkit.current_task()))
    run(loop, task)
    assert seen == [task, None]


def test_all_tasks_lists_pending_tasks(loop):
    async def main():
        blocker = Event()
        children = [netkit.create_task(blocker.wait()) for _ in range(3)]
        pending = netkit.all_tasks()
        assert set(children) <= pending and netkit.current_task() in pending
        blocker.set()
        await netkit.gather(*children)
        assert netkit.all_tasks() == {netkit.current_task()}

    run(loop, main())


def test_a_task_cannot_await_itself(loop):
    async def selfish():
        await netkit.current_task()

    with pytest.raises(RuntimeError, match="cannot await itself"):
        run(loop, selfish())


def test_awaiting_a_foreign_object_is_an_error(loop):
    @types.coroutine
    def bad_yield():
        yield "not a future"

    async def main():
        await bad_yield()

    with pytest.raises(RuntimeError, match="bad yield"):
        run(loop, main())


def test_awaiting_a_future_of_another_loop_is_an_error(loop):
    other = netkit.testing.TestLoop()
    try:
        foreign = other.create_future()

        async def main():
            await foreign

        with pytest.raises(RuntimeError, match="different loop"):
            run(loop, main())
    finally:
        other.close()


def test_ensure_future_wraps_any_awaitable(loop):
    class Awaitable:
        def __await__(self):
            yield from sleep(1).__await__()
            return "awaited"

    async def main():
        future = netkit.ensure_future(Awaitable())
        assert isinstance(future, netkit.Task)
        existing = loop.create_future()
        assert netkit.ensure_future(existing) is existing
        return await future

    assert run(loop, main()) == "awaited"
    with pytest.raises(TypeError):
        netkit.ensure_future(42, loop=loop)


# ------------------------------------------------------------- cancellation


class Trace:
    """A coroutine that suspends at four kinds of await point, in order, and
    notes where it is, so a test can cancel it at exactly one of them."""

    POINTS = ["at sleep(0)", "at future", "at sleep(5)", "at event"]

    def __init__(self, loop):
        self.loop = loop
        self.steps: list[str] = []
        self.future = loop.create_future()
        self.event = Event()
        self._unblocked: set[str] = set()

    async def inner(self):
        self.steps.append("at event")
        await self.event.wait()

    async def run(self):
        try:
            self.steps.append("at sleep(0)")
            await sleep(0)
            self.steps.append("at future")
            await self.future
            self.steps.append("at sleep(5)")
            await sleep(5)
            await self.inner()
            self.steps.append("finished")
        except CancelledError:
            self.steps.append("cancelled")
            raise

    def unblock(self):
        """Let the coroutine past the point where it waits now (once per point)."""
        point = self.steps[-1] if self.steps else None
        if point in self._unblocked:
            return
        self._unblocked.add(point)
        if point == "at future":
            self.future.set_result(None)
        elif point == "at sleep(5)":
            self.loop.advance(5)
        elif point == "at event":
            self.event.set()


@pytest.mark.parametrize("point", Trace.POINTS)
def test_cancel_raises_cancelled_error_at_every_await_point(manual_loop, point):
    trace = Trace(manual_loop)
    task = manual_loop.create_task(trace.run())
    for _ in range(100):
        manual_loop.run_once()
        if trace.steps[-1:] == [point]:
            break
        trace.unblock()
    assert trace.steps[-1] == point
    assert task.cancel()
    with pytest.raises(CancelledError):
        run(manual_loop, task)
    assert task.cancelled()
    assert trace.steps[-2:] == [point, "cancelled"]
    assert "finished" not in trace.steps


def test_trace_finishes_when_nobody_cancels(manual_loop):
    trace = Trace(manual_loop)
    task = manual_loop.create_task(trace.run())
    for _ in range(100):
        if task.done():
            break
        manual_loop.run_once()
        trace.unblock()
    assert task.result() is None
    assert trace.steps == [*Trace.POINTS, "finished"]


def test_cancel_before_the_first_step_never_runs_the_body(loop):
    ran = []

    async def body():
        ran.append(True)

    task = loop.create_task(body())
    task.cancel()
    with pytest.raises(CancelledError):
        run(loop, task)
    assert ran == [] and task.cancelled()


def test_cancel_message_reaches_the_coroutine(loop):
    async def sleeper():
        try:
            await sleep(10)
        except CancelledError as exc:
            return exc.args

    task = loop.create_task(sleeper())
    loop.call_later(1, task.cancel, "shutting down")
    assert run(loop, task) == ("shutting down",)


def test_a_coroutine_may_absorb_a_cancel(loop):
    async def stubborn():
        try:
            await sleep(10)
        except CancelledError:
            pass
        await sleep(1)
        return "kept going"

    task = loop.create_task(stubborn())
    loop.call_later(1, task.cancel)
    assert run(loop, task) == "kept going"
    assert loop.time() == 2


def test_cancel_of_a_done_task_returns_false(loop):
    async def quick():
        return 1

    task = loop.create_task(quick())
    run(loop, task)
    assert not task.cancel()
    assert task.result() == 1


def test_cancel_requested_during_the_last_step_is_honoured(loop):
    async def cancels_itself():
        netkit.current_task().cancel()
        return "ignored"

    task = loop.create_task(cancels_itself())
    with pytest.raises(CancelledError):
        run(loop, task)
    assert task.cancelled()


def test_cancel_while_the_awaited_future_is_already_resolved(loop):
    # The future resolved, but the task had not resumed yet: the cancel wins.
    async def main():
        future = loop.create_future()

        async def waiter():
            return await future

        task = netkit.create_task(waiter())
        await sleep(0)
        future.set_result("value")
        task.cancel()
        with pytest.raises(CancelledError):
            await task
        return task.cancelled()

    assert run(loop, main())


def test_cancelling_and_uncancel_count_requests(loop):
    async def main():
        task = netkit.current_task()
        assert task.cancelling() == 0
        task.cancel()
        task.cancel()
        assert task.cancelling() == 2
        assert task.uncancel() == 1
        assert task.uncancel() == 0
        await sleep(1)  # no cancel left pending: the sleep completes
        return "survived"

    assert run(loop, main()) == "survived"


def test_a_cancelled_awaited_task_cancels_the_awaiter(loop):
    async def main():
        child = netkit.create_task(sleep(10))
        loop.call_later(1, child.cancel)
        await child

    task = loop.create_task(main())
    with pytest.raises(CancelledError):
        run(loop, task)


# ------------------------------------------------- references and reporting


def test_fire_and_forget_tasks_survive_garbage_collection(loop, collect_garbage):
    finished = []

    async def background(n):
        # Wait on a future that only this coroutine holds strongly (the timer
        # holds a weak reference): nothing but the loop keeps the task alive.
        future = loop.create_future()
        weak_future = weakref.ref(future)
        loop.call_later(n, lambda: weak_future() is not None and weak_future().set_result(None))
        await future
        finished.append(n)

    async def main():
        refs = [weakref.ref(netkit.create_task(background(n))) for n in (1, 2, 3)]
        await sleep(0)  # every task now waits on its future
        collect_garbage()
        assert all(ref() is not None for ref in refs)  # the loop holds them
        await sleep(5)

    run(loop, main())
    assert finished == [1, 2, 3]


def test_finished_tasks_are_released_without_the_cycle_collector(loop):
    # A finished task must not sit in a reference cycle (its step handle refers
    # back to it): it is freed the moment the last reference goes.
    async def quick():
        await sleep(0)
        return 1

    async def main():
        task = netkit.create_task(quick())
        ref = weakref.ref(task)
        await task
        del task
        await sleep(0)  # the loop drops the handle that woke us, and its reference
        return ref() is None

    gc.disable()
    try:
        assert run(loop, main())
    finally:
        gc.enable()


def test_exception_never_retrieved_is_reported_when_the_task_is_collected(loop, errors, collect_garbage):
    async def fail():
        raise ValueError("nobody looked")

    async def main():
        netkit.create_task(fail(), name="forgotten")
        await sleep(1)

    run(loop, main())
    collect_garbage()
    assert errors.messages == ["Task exception was never retrieved"]
    assert isinstance(errors.exceptions[0], ValueError)
    assert errors.contexts[0]["future"].get_name() == "forgotten"


def test_retrieved_task_exception_is_not_reported(loop, errors, collect_garbage):
    async def fail():
        raise ValueError("seen")

    async def main():
        task = netkit.create_task(fail())
        await sleep(1)
        assert isinstance(task.exception(), ValueError)

    run(loop, main())
    collect_garbage()
    assert errors.contexts == []


# -------------------------------------------------------------------- sleep


def test_sleep_returns_its_result_at_the_right_virtual_time(loop):
    async def main():
        value = await sleep(30, result="woke")
        return value, loop.time()

    assert run(loop, main()) == ("woke", 30)


def test_sleep_zero_lets_other_tasks_run(loop):
    order = []

    async def worker(name):
        for i in range(3):
            order.append(f"{name}{i}")
            await sleep(0)

    async def main():
        await netkit.gather(worker("a"), worker("b"))

    run(loop, main())
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert loop.time() == 0


def test_cancelled_sleep_removes_its_timer(loop):
    async def main():
        task = netkit.create_task(sleep(100))
        await sleep(0)
        task.cancel()
        await sleep(0)
        assert all(entry[2].cancelled() for entry in loop._timers)

    run(loop, main())


# ------------------------------------------------------------------- gather


def test_gather_of_sleeps_finishes_in_the_time_of_the_longest(loop):
    async def nap(seconds):
        await sleep(seconds)
        return seconds

    async def main():
        return await netkit.gather(nap(3), nap(1), nap(2))

    assert run(loop, main()) == [3, 1, 2]
    assert loop.time() == 3


def test_gather_raises_the_first_exception(loop):
    async def fail_after(seconds, exc):
        await sleep(seconds)
        raise exc

    async def main():
        with pytest.raises(KeyError):
            await netkit.gather(fail_after(2, ValueError()), fail_after(1, KeyError()))
        return loop.time()

    assert run(loop, main()) == 1


def test_gather_with_return_exceptions(loop):
    async def fail():
        raise ValueError("v")

    async def ok():
        return "ok"

    async def main():
        return await netkit.gather(ok(), fail(), return_exceptions=True)

    results = run(loop, main())
    assert results[0] == "ok" and isinstance(results[1], ValueError)


def test_gather_of_nothing(loop):
    async def main():
        return await netkit.gather()

    assert run(loop, main()) == []


def test_gather_accepts_the_same_future_twice(loop):
    async def main():
        future = loop.create_future()
        loop.call_later(1, future.set_result, "x")
        return await netkit.gather(future, future)

    assert run(loop, main()) == ["x", "x"]


def test_cancelling_the_gathering_task_cancels_every_child(loop):
    cancelled = []

    async def child(n):
        try:
            await sleep(100)
        except CancelledError:
            cancelled.append(n)
            raise

    async def parent():
        await netkit.gather(child(1), child(2), child(3))

    task = loop.create_task(parent())
    loop.call_later(1, task.cancel)
    with pytest.raises(CancelledError):
        run(loop, task)
    assert sorted(cancelled) == [1, 2, 3]
    assert task.cancelled()


def test_cancelling_the_gather_future_itself(loop):
    async def main():
        gathered = netkit.gather(sleep(10), sleep(20))
        await sleep(1)
        assert gathered.cancel()
        with pytest.raises(CancelledError):
            await gathered
        return loop.time()

    assert run(loop, main()) == 1


def test_a_cancelled_child_fails_the_gather(loop):
    async def main():
        child = netkit.create_task(sleep(10))
        loop.call_later(1, child.cancel)
        with pytest.raises(CancelledError):
            await netkit.gather(child, sleep(5))
        # The gathering task itself was not cancelled.
        return netkit.current_task().cancelling()

    assert run(loop, main()) == 0


# ----------------------------------------------------------------- wait_for


def test_wait_for_returns_in_time(loop):
    async def main():
        return await wait_for(sleep(1, result="fast"), 5)

    assert run(loop, main()) == "fast"


def test_wait_for_times_out_and_cancels_the_awaitable(loop):
    cleanup = []

    async def slow():
        try:
            await sleep(60)
        finally:
            cleanup.append(loop.time())

    async def main():
        with pytest.raises(TimeoutError):
            await wait_for(slow(), 30)
        return loop.time()

    assert run(loop, main()) == 30
    assert cleanup == [30]


def test_wait_for_a_task_waits_for_its_cancellation_to_finish(loop):
    async def slow_to_stop():
        try:
            await sleep(60)
        except CancelledError:
            await sleep(2)  # cleanup that takes time
            raise

    async def main():
        task = netkit.create_task(slow_to_stop())
        with pytest.raises(TimeoutError):
            await wait_for(task, 10)
        return task.cancelled(), loop.time()

    assert run(loop, main()) == (True, 12)


def test_wait_for_a_future_cancels_it_on_timeout(loop):
    async def main():
        future = loop.create_future()
        with pytest.raises(TimeoutError):
            await wait_for(future, 1)
        return future.cancelled()

    assert run(loop, main())


def test_wait_for_without_timeout(loop):
    async def main():
        return await wait_for(sleep(1000, result="eventually"), None)

    assert run(loop, main()) == "eventually"


def test_outer_cancel_inside_wait_for_propagates(loop):
    async def main():
        await wait_for(sleep(100), 50)

    task = loop.create_task(main())
    loop.call_later(10, task.cancel)
    with pytest.raises(CancelledError):
        run(loop, task)
    assert task.cancelled() and loop.time() == 10


@pytest.mark.parametrize("outer_cancel_first", [True, False])
def test_wait_for_outer_cancel_at_the_deadline_is_a_cancel_not_a_timeout(manual_loop, outer_cancel_first):
    outcome = []

    async def main():
        try:
            await wait_for(Event().wait(), 10)
        except TimeoutError:
            outcome.append("timeout")
            raise
        except CancelledError:
            outcome.append("cancelled")
            raise

    task = manual_loop.create_task(main())
    if outer_cancel_first:
        manual_loop.call_at(10, task.cancel)  # due with the deadline, scheduled before it
    manual_loop.run_once()  # main enters wait_for: the deadline timer exists now
    if not outer_cancel_first:
        manual_loop.call_at(10, task.cancel)  # due with the deadline, scheduled after it
    manual_loop.advance(10)
    with pytest.raises(CancelledError):
        run(manual_loop, task)
    assert outcome == ["cancelled"]
    assert task.cancelled()


# ------------------------------------------------------------------ timeout


def test_timeout_expires(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with timeout(5) as deadline:
                await sleep(10)
        return deadline.expired(), deadline.when(), loop.time()

    assert run(loop, main()) == (True, 5, 5)


def test_timeout_not_reached(loop):
    async def main():
        async with timeout(5) as deadline:
            await sleep(1)
        await sleep(10)  # the cancelled deadline must not fire later
        return deadline.expired(), loop.time()

    assert run(loop, main()) == (False, 11)


def test_timeout_none_never_expires(loop):
    async def main():
        async with timeout(None) as deadline:
            await sleep(1000)
        return deadline.when(), deadline.expired()

    assert run(loop, main()) == (None, False)


def test_timeout_reschedule(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with timeout(5) as deadline:
                deadline.reschedule(loop.time() + 20)
                await sleep(100)
        return loop.time()

    assert run(loop, main()) == 20


def test_timeout_in_the_past_expires_at_the_next_await(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with netkit.timeout_at(loop.time() - 1):
                await sleep(0)
        return loop.time()

    assert run(loop, main()) == 0


def test_nested_timeouts_the_outer_one_expires(loop):
    inner_saw = []

    async def main():
        with pytest.raises(TimeoutError) as info:
            async with timeout(5) as outer:
                try:
                    async with timeout(10):
                        await sleep(100)
                except BaseException as exc:
                    inner_saw.append(type(exc))
                    raise
        return outer.expired(), info.value

    expired, _ = run(loop, main())
    assert expired
    assert inner_saw == [CancelledError]  # the inner timeout did not claim the outer's cancel


def test_nested_timeouts_the_inner_one_expires(loop):
    async def main():
        async with timeout(50) as outer:
            with pytest.raises(TimeoutError):
                async with timeout(5):
                    await sleep(100)
            await sleep(1)
        return outer.expired(), loop.time()

    assert run(loop, main()) == (False, 6)


def test_timeout_outside_a_task_is_an_error(loop):
    outcome = []

    def in_a_plain_callback():
        entering = timeout(1).__aenter__()
        try:
            entering.send(None)
        except RuntimeError as exc:
            outcome.append(str(exc))

    loop.call_soon(in_a_plain_callback)
    loop.run_once()
    assert outcome == ["timeout() must be used inside a task"]


@pytest.mark.parametrize("outer_cancel_first", [True, False])
def test_timeout_outer_cancel_at_the_deadline_is_a_cancel_not_a_timeout(manual_loop, outer_cancel_first):
    async def main():
        async with timeout(10):
            await Event().wait()

    task = manual_loop.create_task(main())
    if outer_cancel_first:
        manual_loop.call_at(10, task.cancel)
    manual_loop.run_once()
    if not outer_cancel_first:
        manual_loop.call_at(10, task.cancel)
    manual_loop.advance(10)
    with pytest.raises(CancelledError):
        run(manual_loop, task)
    assert task.cancelled()


def test_timeout_cannot_be_entered_twice(loop):
    async def main():
        deadline = timeout(5)
        async with deadline:
            pass
        with pytest.raises(RuntimeError):
            async with deadline:
                pass

    run(loop, main())


# ---------------------------------------------------------------- TaskGroup


def test_task_group_waits_for_every_child(loop):
    async def nap(seconds):
        await sleep(seconds)
        return seconds

    async def main():
        async with TaskGroup() as group:
            tasks = [group.create_task(nap(s)) for s in (3, 1, 2)]
        return [task.result() for task in tasks], loop.time()

    assert run(loop, main()) == ([3, 1, 2], 3)


def test_task_group_child_failing_while_the_body_runs(loop):
    events = []

    async def sibling():
        try:
            await sleep(100)
        except CancelledError:
            events.append("sibling cancelled")
            raise

    async def failing():
        await sleep(1)
        raise ValueError("child failed")

    async def main():
        try:
            async with TaskGroup() as group:
                group.create_task(sibling())
                group.create_task(failing())
                try:
                    await sleep(50)
                except CancelledError:
                    events.append("body cancelled")
                    raise
        except* ValueError as group_error:
            events.append(("group", [str(e) for e in group_error.exceptions]))
        # The group withdrew the cancel it used to interrupt the body.
        return netkit.current_task().cancelling(), loop.time()

    assert run(loop, main()) == (0, 1)
    # Body and sibling are cancelled in the same pass; the group reports last.
    assert sorted(events[:2]) == ["body cancelled", "sibling cancelled"]
    assert events[2:] == [("group", ["child failed"])]


def test_task_group_child_failing_while_exiting(loop):
    events = []

    async def sibling():
        try:
            await sleep(100)
        except CancelledError:
            events.append("sibling cancelled")
            raise

    async def failing():
        await sleep(5)
        raise ValueError("late failure")

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup() as group:
                group.create_task(sibling())
                group.create_task(failing())
                await sleep(1)
                events.append("body done")
        events.append([type(e) for e in info.value.exceptions])
        await sleep(1)  # not cancelled: the group's failure did not leak a cancel
        return loop.time()

    assert run(loop, main()) == 6
    assert events == ["body done", "sibling cancelled", [ValueError]]


def test_task_group_collects_every_failure(loop):
    async def fail_at(seconds, exc):
        await sleep(seconds)
        raise exc

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup() as group:
                group.create_task(fail_at(1, ValueError("a")))
                group.create_task(fail_at(1, KeyError("b")))
        return sorted(type(e).__name__ for e in info.value.exceptions)

    assert run(loop, main()) == ["KeyError", "ValueError"]


def test_task_group_body_error_cancels_children_and_joins_the_group(loop):
    cancelled = []

    async def child():
        try:
            await sleep(100)
        except CancelledError:
            cancelled.append(True)
            raise

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with TaskGroup() as group:
                group.create_task(child())
                await sleep(1)
                raise OSError("body failed")
        return [type(e) for e in info.value.exceptions], loop.time()

    assert run(loop, main()) == ([OSError], 1)
    assert cancelled == [True]


def test_task_group_outer_cancel_during_the_body(loop):
    cancelled = []

    async def child():
        try:
            await sleep(100)
        except CancelledError:
            cancelled.append(True)
            raise

    async def main():
        async with TaskGroup() as group:
            group.create_task(child())
            await sleep(50)

    task = loop.create_task(main())
    loop.call_later(2, task.cancel)
    with pytest.raises(CancelledError):
        run(loop, task)
    assert task.cancelled() and cancelled == [True] and loop.time() == 2


def test_task_group_outer_cancel_while_exiting(loop):
    cancelled = []

    async def child():
        try:
            await sleep(100)
        except CancelledError:
            cancelled.append(True)
            raise

    async def main():
        async with TaskGroup() as group:
            group.create_task(child())

    task = loop.create_task(main())
    loop.call_later(2, task.cancel)
    with pytest.raises(CancelledError):
        run(loop, task)
    assert task.cancelled() and cancelled == [True]


def test_task_group_refuses_new_tasks_once_finished(loop):
    async def main():
        async with TaskGroup() as group:
            pass
        coro = sleep(1)
        with pytest.raises(RuntimeError):
            group.create_task(coro)
        # The coroutine was closed, so no "never awaited" warning follows.
        return coro.cr_frame is None

    assert run(loop, main())


def test_task_group_child_errors_are_not_reported_as_never_retrieved(loop, errors, collect_garbage):
    async def fail():
        raise ValueError()

    async def main():
        with pytest.raises(ExceptionGroup):
            async with TaskGroup() as group:
                group.create_task(fail())

    run(loop, main())
    collect_garbage()
    assert errors.contexts == []


# ------------------------------------------------------------------- shield


def test_shield_protects_the_inner_task(loop):
    async def work():
        await sleep(10)
        return "done anyway"

    async def main():
        inner = netkit.create_task(work())
        waiter = netkit.create_task(_await(netkit.shield(inner)))
        await sleep(1)
        waiter.cancel()
        await sleep(0)
        assert waiter.cancelled()
        return await inner

    assert run(loop, main()) == "done anyway"


async def _await(aw):
    return await aw


# ---------------------------------------------------------------- to_thread


def test_to_thread_runs_elsewhere_and_sees_context_variables(real_loop):
    request_id = contextvars.ContextVar("request_id")

    def blocking(x):
        return x * 2, request_id.get(), threading.get_ident()

    async def main():
        request_id.set("r-17")
        return await netkit.to_thread(blocking, 21)

    value, seen_id, thread = run(real_loop, main())
    assert (value, seen_id) == (42, "r-17")
    assert thread != threading.get_ident()


def test_to_thread_propagates_exceptions(real_loop):
    async def main():
        await netkit.to_thread(int, "nope")

    with pytest.raises(ValueError):
        run(real_loop, main())


# -------------------------------------------------------------- netkit.run


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def test_run_returns_the_result_and_closes_everything():
    leftovers = []
    loops = []
    fds_before = _open_fds()

    async def background():
        try:
            await sleep(100)
        finally:
            leftovers.append("cleaned up")

    async def main():
        loops.append(netkit.get_running_loop())
        netkit.create_task(background())
        await netkit.to_thread(sum, [1, 2])  # starts the default executor
        await sleep(0)
        return "result"

    assert netkit.run(main()) == "result"
    assert leftovers == ["cleaned up"]  # left-over tasks were cancelled and finished
    assert loops[0].is_closed()
    assert loops[0]._default_executor is None
    assert _open_fds() == fds_before


def test_run_propagates_the_exception():
    async def main():
        raise LookupError("failed")

    with pytest.raises(LookupError):
        netkit.run(main())


def test_run_inside_a_running_loop_is_an_error(loop):
    async def main():
        coro = sleep(0)
        try:
            netkit.run(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError):
        run(loop, main())


def test_run_of_a_non_coroutine_leaves_no_open_loop():
    fds_before = _open_fds()
    with pytest.raises(TypeError):
        netkit.run(42)
    assert _open_fds() == fds_before


def test_get_running_loop_outside_a_loop():
    with pytest.raises(RuntimeError):
        netkit.get_running_loop()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_ctrl_c_in_run_cancels_main_then_raises_keyboard_interrupt():
    cleanup = []

    async def main():
        loop = netkit.get_running_loop()
        loop.call_soon(os.kill, os.getpid(), signal.SIGINT)
        try:
            await sleep(3600)
        finally:
            cleanup.append("finally ran")

    with pytest.raises(KeyboardInterrupt):
        netkit.run(main())
    assert cleanup == ["finally ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ----------------------------------------------- waking tasks from a future


def test_tasks_and_callbacks_waiting_on_one_future_all_run_in_registration_order(loop):
    """A waiting task queues its own step handle on the future rather than a
    callback: it must still wake, alongside plain callbacks, in order."""
    future = loop.create_future()
    order = []

    async def waiter(name):
        order.append((name, await future))

    first = loop.create_task(waiter("first"))
    loop.run_once()  # both tasks are now suspended on the future
    future.add_done_callback(lambda f: order.append(("callback", f.result())))
    second = loop.create_task(waiter("second"))
    loop.run_once()
    future.set_result(42)
    run(loop, first)
    run(loop, second)
    assert order == [("first", 42), ("callback", 42), ("second", 42)]


def test_a_task_cancelled_after_its_future_completed_is_woken_once_and_cancelled(loop, errors):
    """The future is done and the task's step is queued when cancel() comes:
    the step must run exactly once, and raise CancelledError inside.  (A
    second step would only be reported to the exception handler.)"""
    future = loop.create_future()
    steps = []

    async def waiter():
        try:
            await future
        except CancelledError:
            steps.append("cancelled")
            raise
        steps.append("resumed")

    task = loop.create_task(waiter())
    loop.run_once()
    future.set_result(None)
    task.cancel()
    with pytest.raises(CancelledError):
        run(loop, task)
    for _ in range(3):
        loop.run_once()
    assert steps == ["cancelled"]
    assert errors.contexts == []


def test_a_task_awaiting_a_future_that_is_cancelled_sees_cancelled_error(loop):
    future = loop.create_future()

    async def waiter():
        await future

    task = loop.create_task(waiter())
    loop.run_once()
    future.cancel()
    with pytest.raises(CancelledError):
        run(loop, task)
    assert task.cancelled()


def test_a_done_callback_must_be_callable(loop):
    future = loop.create_future()
    with pytest.raises(TypeError):
        future.add_done_callback(None)  # type: ignore[arg-type]


def test_completing_a_future_a_task_awaits_on_a_closed_loop_is_refused():
    side_loop = netkit.EventLoop()
    future = side_loop.create_future()

    async def waiter():
        await future

    task = side_loop.create_task(waiter())
    side_loop.run_once()  # the task now waits on the future
    side_loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        future.set_result(None)
    assert not task.done()


def test_debug_mode_names_the_task_step_a_slow_wake_up_ran(manual_loop, caplog):
    future = manual_loop.create_future()

    async def sleepy_task():
        await future

    manual_loop.set_debug(True)
    manual_loop.slow_callback_duration = 0  # every callback counts as slow
    task = manual_loop.create_task(sleepy_task())
    manual_loop.run_once()
    caplog.clear()
    future.set_result(None)
    with caplog.at_level("WARNING", logger="netkit"):
        manual_loop.run_once()
    assert task.done()
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith("executing Task._step of Task took") for message in messages), messages
