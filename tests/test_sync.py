"""Event, Lock, Semaphore and Queue: FIFO fairness and cancellation safety.

Every wait that could hang on a bug is bounded with ``wait_for`` on the
virtual clock, so a lost wake-up fails the test (``TimeoutError`` at t=60)
instead of hanging it.
"""

from __future__ import annotations

import pytest

import netkit
from netkit import (
    BoundedSemaphore,
    CancelledError,
    Event,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    Semaphore,
    create_task,
    sleep,
    wait_for,
)

BOUND = 60  # virtual seconds: far longer than any test needs


def run(loop, coro):
    return loop.run_until_complete(coro)


async def settle(turns=5):
    """Let every runnable task take a few steps (no virtual time passes)."""
    for _ in range(turns):
        await sleep(0)


# -------------------------------------------------------------------- Event


def test_event_wakes_every_waiter_in_order(loop):
    async def main():
        event = Event()
        woken = []

        async def waiter(n):
            assert await event.wait() is True
            woken.append(n)

        tasks = [create_task(waiter(n)) for n in range(4)]
        await settle()
        assert woken == [] and not event.is_set()
        event.set()
        await wait_for(netkit.gather(*tasks), BOUND)
        return woken

    assert run(loop, main()) == [0, 1, 2, 3]


def test_event_wait_returns_at_once_when_set_and_blocks_after_clear(loop):
    async def main():
        event = Event()
        event.set()
        await event.wait()
        event.clear()
        with pytest.raises(TimeoutError):
            await wait_for(event.wait(), 5)
        return loop.time()

    assert run(loop, main()) == 5


def test_cancelled_event_waiter_leaves_no_trace(loop):
    async def main():
        event = Event()
        task = create_task(event.wait())
        await settle()
        task.cancel()
        await settle()
        assert task.cancelled()
        return len(event._waiters)

    assert run(loop, main()) == 0


# --------------------------------------------------------------------- Lock


def test_lock_excludes_and_hands_over_in_fifo_order(loop):
    async def main():
        lock = Lock()
        order = []
        inside = 0

        async def user(n):
            nonlocal inside
            async with lock:
                inside += 1
                assert inside == 1
                order.append(n)
                await sleep(1)
                inside -= 1

        await wait_for(netkit.gather(*(user(n) for n in range(5))), BOUND)
        return order, lock.locked(), loop.time()

    assert run(loop, main()) == ([0, 1, 2, 3, 4], False, 5)


def test_release_of_an_unlocked_lock_is_an_error(loop):
    with pytest.raises(RuntimeError):
        Lock().release()


def test_newcomer_cannot_overtake_the_woken_waiter(loop):
    async def main():
        lock = Lock()
        order = []
        await lock.acquire()

        async def waiter():
            async with lock:
                order.append("waiter")

        task = create_task(waiter())
        await settle()
        lock.release()  # the lock is promised to the waiter...
        async with lock:  # ...so this acquire queues behind it
            order.append("newcomer")
        await task
        return order

    assert run(loop, main()) == ["waiter", "newcomer"]


def test_cancel_at_lock_acquire_while_waiting(loop):
    async def main():
        lock = Lock()
        await lock.acquire()
        task = create_task(lock.acquire())
        await settle()
        task.cancel()
        await settle()
        assert task.cancelled()
        lock.release()
        return lock.locked(), len(lock._waiters)

    assert run(loop, main()) == (False, 0)


def test_lock_is_handed_on_when_the_woken_waiter_is_cancelled(loop):
    async def main():
        lock = Lock()
        got = []
        await lock.acquire()

        async def user(name):
            async with lock:
                got.append(name)

        first = create_task(user("first"))
        second = create_task(user("second"))
        await settle()
        lock.release()  # chooses first...
        first.cancel()  # ...which is cancelled before it could run
        await wait_for(second, BOUND)
        await settle()
        return first.cancelled(), got, lock.locked()

    assert run(loop, main()) == (True, ["second"], False)


def test_lock_is_free_after_its_only_woken_waiter_is_cancelled(loop):
    async def main():
        lock = Lock()
        await lock.acquire()
        task = create_task(lock.acquire())
        await settle()
        lock.release()
        task.cancel()
        await settle()
        assert task.cancelled()
        await wait_for(lock.acquire(), BOUND)  # not lost
        return True

    assert run(loop, main())


# ---------------------------------------------------------------- Semaphore


def test_semaphore_limits_concurrency_and_serves_in_order(loop):
    async def main():
        semaphore = Semaphore(2)
        active = 0
        peak = 0
        order = []

        async def worker(n):
            nonlocal active, peak
            async with semaphore:
                order.append(n)
                active += 1
                peak = max(peak, active)
                await sleep(1)
                active -= 1

        await wait_for(netkit.gather(*(worker(n) for n in range(6))), BOUND)
        return peak, order, loop.time()

    assert run(loop, main()) == (2, [0, 1, 2, 3, 4, 5], 3)


def test_semaphore_freed_slot_is_not_lost_while_a_woken_waiter_is_pending(loop):
    # Two releases in a row, the first waking a waiter: the second frees a slot
    # that a new acquirer must be able to take.
    async def main():
        semaphore = Semaphore(2)
        await semaphore.acquire()
        await semaphore.acquire()
        waiter = create_task(semaphore.acquire())
        await settle()
        semaphore.release()  # hands a slot to the waiter
        semaphore.release()  # a free slot
        await wait_for(semaphore.acquire(), BOUND)
        await waiter
        return semaphore.locked()

    assert run(loop, main()) is True


def test_semaphore_slot_is_handed_on_when_the_woken_waiter_is_cancelled(loop):
    async def main():
        semaphore = Semaphore(1)
        await semaphore.acquire()
        first = create_task(semaphore.acquire())
        second = create_task(semaphore.acquire())
        await settle()
        semaphore.release()
        first.cancel()
        await wait_for(second, BOUND)
        return first.cancelled(), semaphore.locked()

    assert run(loop, main()) == (True, True)


def test_semaphore_cancelled_waiter_does_not_consume_a_slot(loop):
    async def main():
        semaphore = Semaphore(1)
        await semaphore.acquire()
        task = create_task(semaphore.acquire())
        await settle()
        task.cancel()
        await settle()
        semaphore.release()
        return semaphore.locked(), semaphore._value

    assert run(loop, main()) == (False, 1)


def test_semaphore_arguments(loop):
    with pytest.raises(ValueError):
        Semaphore(-1)
    bounded = BoundedSemaphore(1)

    async def main():
        await bounded.acquire()
        bounded.release()
        with pytest.raises(ValueError):
            bounded.release()

    run(loop, main())


# -------------------------------------------------------------------- Queue


def test_queue_is_fifo(loop):
    async def main():
        queue = Queue()
        for item in "abc":
            await queue.put(item)
        assert queue.qsize() == 3 and not queue.empty() and not queue.full()
        return [await queue.get() for _ in range(3)]

    assert run(loop, main()) == ["a", "b", "c"]


def test_nowait_errors(loop):
    async def main():
        queue = Queue(maxsize=1)
        with pytest.raises(QueueEmpty):
            queue.get_nowait()
        queue.put_nowait(1)
        assert queue.full() and queue.maxsize == 1
        with pytest.raises(QueueFull):
            queue.put_nowait(2)
        assert issubclass(QueueFull, netkit.NetkitError) and issubclass(QueueEmpty, netkit.NetkitError)

    run(loop, main())


def test_bounded_put_waits_for_room(loop):
    async def main():
        queue = Queue(maxsize=2)
        await queue.put(1)
        await queue.put(2)
        putter = create_task(queue.put(3))
        loop.call_later(5, queue.get_nowait)
        await wait_for(putter, BOUND)
        return loop.time(), list(queue._items)

    assert run(loop, main()) == (5, [2, 3])


def test_getters_are_served_in_the_order_they_came(loop):
    async def main():
        queue = Queue()
        getters = [create_task(queue.get()) for _ in range(3)]
        await settle()
        for item in ("x", "y", "z"):
            queue.put_nowait(item)
        return await wait_for(netkit.gather(*getters), BOUND)

    assert run(loop, main()) == ["x", "y", "z"]


def test_cancel_at_queue_get_while_waiting(loop):
    async def main():
        queue = Queue()
        getter = create_task(queue.get())
        await settle()
        getter.cancel()
        await settle()
        queue.put_nowait("kept")
        return getter.cancelled(), queue.qsize(), len(queue._getters)

    assert run(loop, main()) == (True, 1, 0)


def test_get_cancelled_right_after_being_woken_leaves_the_item(loop):
    async def main():
        queue = Queue()
        getter = create_task(queue.get())
        await settle()
        queue.put_nowait("item")  # wakes the getter...
        getter.cancel()  # ...which is cancelled before it could take the item
        await settle()
        return getter.cancelled(), queue.qsize(), queue.get_nowait()

    assert run(loop, main()) == (True, 1, "item")


def test_woken_getter_cancelled_passes_the_item_to_the_next_getter(loop):
    async def main():
        queue = Queue()
        first = create_task(queue.get())
        second = create_task(queue.get())
        await settle()
        queue.put_nowait("item")
        first.cancel()
        item = await wait_for(second, BOUND)
        return first.cancelled(), item

    assert run(loop, main()) == (True, "item")


def test_woken_putter_cancelled_passes_the_slot_to_the_next_putter(loop):
    async def main():
        queue = Queue(maxsize=1)
        queue.put_nowait("old")
        first = create_task(queue.put("first"))
        second = create_task(queue.put("second"))
        await settle()
        assert queue.get_nowait() == "old"  # wakes the first putter...
        first.cancel()  # ...which is cancelled before it could put
        await wait_for(second, BOUND)
        return first.cancelled(), list(queue._items)

    assert run(loop, main()) == (True, ["second"])


def test_task_done_and_join(loop):
    async def main():
        queue = Queue()
        processed = []

        async def consumer():
            while True:
                item = await queue.get()
                await sleep(1)
                processed.append(item)
                queue.task_done()

        worker = create_task(consumer())
        for item in range(3):
            queue.put_nowait(item)
        await wait_for(queue.join(), BOUND)
        worker.cancel()
        return processed, loop.time()

    assert run(loop, main()) == ([0, 1, 2], 3)


def test_join_on_an_idle_queue_returns_at_once_and_task_done_checks(loop):
    async def main():
        queue = Queue()
        await queue.join()
        with pytest.raises(ValueError):
            queue.task_done()

    run(loop, main())


def test_lifo_and_priority_queues(loop):
    async def main():
        lifo = LifoQueue()
        priority = PriorityQueue()
        for item in (2, 3, 1):
            await lifo.put(item)
            await priority.put((item, f"job{item}"))
        return [await lifo.get() for _ in range(3)], [(await priority.get())[1] for _ in range(3)]

    assert run(loop, main()) == ([1, 3, 2], ["job1", "job2", "job3"])


def test_a_cancelled_consumer_loses_no_items(loop):
    # Producers and consumers churn while consumers are cancelled at random
    # points; every item put is still taken exactly once.
    import random

    rng = random.Random(1234)

    async def main():
        queue = Queue(maxsize=3)
        taken = []

        async def consumer():
            while True:
                taken.append(await queue.get())

        consumers = [create_task(consumer()) for _ in range(4)]
        for item in range(200):
            await queue.put(item)
            if rng.random() < 0.2:
                victim = rng.randrange(len(consumers))
                consumers[victim].cancel()
                consumers[victim] = create_task(consumer())
            if rng.random() < 0.5:
                await sleep(0)
        while not queue.empty():
            await sleep(0)
        await settle()
        for task in consumers:
            task.cancel()
        return sorted(taken)

    assert run(loop, main()) == list(range(200))
