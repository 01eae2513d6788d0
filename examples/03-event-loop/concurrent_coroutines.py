"""Coroutines running concurrently on one thread.

    python examples/03-event-loop/concurrent_coroutines.py

Three "downloads" that each wait a while (simulated with netkit.sleep):

1. one after the other, the waits add up;
2. with gather(), they wait at the same time: the total is the longest one;
3. wait_for() gives up on one that takes too long;
4. a TaskGroup: when one child fails, its siblings are cancelled;
5. a Queue between a producer and two consumers.

No threads are involved: while one coroutine waits, the loop runs the others.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402

DOWNLOADS = {"large.iso": 0.6, "small.txt": 0.2, "medium.bin": 0.4}


async def download(name: str, seconds: float) -> str:
    """Pretend to download ``name``: waiting for the network is just awaiting."""
    await netkit.sleep(seconds)
    print(f"    finished {name} ({seconds} s)")
    return name


async def one_after_the_other() -> float:
    started = time.perf_counter()
    for name, seconds in DOWNLOADS.items():
        await download(name, seconds)
    return time.perf_counter() - started


async def all_at_once() -> tuple[list[str], float]:
    started = time.perf_counter()
    names = await netkit.gather(*(download(name, seconds) for name, seconds in DOWNLOADS.items()))
    return names, time.perf_counter() - started


async def with_a_deadline() -> None:
    try:
        await netkit.wait_for(download("huge.tar", 5.0), timeout=0.3)
    except TimeoutError:
        print("    huge.tar took longer than 0.3 s: wait_for cancelled it and raised TimeoutError")


async def flaky(name: str) -> None:
    await netkit.sleep(0.1)
    raise ConnectionError(f"{name}: connection reset")


async def guarded(name: str) -> None:
    try:
        await netkit.sleep(10)
    except netkit.CancelledError:
        print(f"    {name} was cancelled because a sibling failed")
        raise


async def in_a_task_group() -> None:
    try:
        async with netkit.TaskGroup() as group:
            group.create_task(guarded("mirror-1"))
            group.create_task(guarded("mirror-2"))
            group.create_task(flaky("mirror-3"))
    except* ConnectionError as failures:
        for error in failures.exceptions:
            print(f"    the group raised ExceptionGroup with: {error!r}")


async def through_a_queue() -> None:
    queue: netkit.Queue[str | None] = netkit.Queue(maxsize=2)  # a full queue makes the producer wait

    async def producer() -> None:
        for n in range(1, 5):
            await queue.put(f"job {n}")
        for _ in range(2):
            await queue.put(None)  # one "no more work" marker per consumer

    async def consumer(name: str) -> None:
        while (job := await queue.get()) is not None:
            await netkit.sleep(0.05)
            print(f"    {name} did {job}")

    await netkit.gather(producer(), consumer("consumer A"), consumer("consumer B"))


async def main() -> None:
    total = sum(DOWNLOADS.values())
    print(f"1. one after the other (the waits add up to {total:.1f} s):")
    took = await one_after_the_other()
    print(f"   took {took:.2f} s")

    print(f"2. all at once with gather (the longest is {max(DOWNLOADS.values()):.1f} s):")
    names, took = await all_at_once()
    print(f"   took {took:.2f} s; results in the order asked for: {names}")

    print("3. wait_for with a timeout:")
    await with_a_deadline()

    print("4. a TaskGroup with a failing child:")
    await in_a_task_group()

    print("5. a bounded Queue, one producer, two consumers:")
    await through_a_queue()


if __name__ == "__main__":
    netkit.run(main())
