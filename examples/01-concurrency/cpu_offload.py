"""CPU-heavy work and the event loop: on the loop, on threads, on processes.

    python examples/01-concurrency/cpu_offload.py

The loop runs everything on one thread, so a function that computes for a
second freezes every connection and timer for that second.  A ticker task
stands in for the clients: it wants to run every 10 ms and records the
longest it had to wait.  The same job (counting primes, pure Python) runs:

1. on the loop itself: correct result, but the ticker stalls for the whole job;
2. on a thread pool: the ticker keeps running, but the GIL lets only one
   thread run Python at a time, so the job is no faster and the loop's thread
   competes with every busy worker for its turn (threads shine for blocking
   calls and for C code that releases the GIL, such as hashlib);
3. on a process pool: the ticker keeps running and the chunks really run in
   parallel, one per core;
4. with multiprocessing.Pool.apply_async(callback=...): that callback runs on
   the pool's result-handler thread, not the loop's, so it must not touch
   loop state; done right, it hands the result over with call_soon_threadsafe.

In every case the results come back to the loop's thread.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402

LIMIT = 200_000  # count the primes below this
CHUNKS = [(start, start + LIMIT // 4) for start in range(0, LIMIT, LIMIT // 4)]
TICK = 0.01  # the ticker's period, seconds

# "spawn" starts each worker as a fresh interpreter: safe in a program that
# already runs threads (fork can copy a lock held by another thread and
# deadlock), and the default on macOS and Windows anyway.
PROCESSES = multiprocessing.get_context("spawn")


def count_primes(start: int, stop: int) -> int:
    """Pure-Python CPU work: how many primes lie in [start, stop)."""
    count = 0
    for n in range(max(start, 2), stop):
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            count += 1
    return count


class Ticker:
    """A task that wants to run every ``TICK`` seconds, like a loop serving
    clients; it records the longest gap between two of its runs."""

    def __init__(self) -> None:
        self.worst_gap = 0.0
        self._task = netkit.create_task(self._run())

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await netkit.sleep(TICK)
            now = time.perf_counter()
            self.worst_gap = max(self.worst_gap, now - last)
            last = now

    def stop(self) -> float:
        self._task.cancel()
        return self.worst_gap


async def measure(label: str, job: Callable[[], Awaitable[list[int]]]) -> None:
    ticker = Ticker()
    await netkit.sleep(TICK * 2)  # the ticker is running
    started = time.perf_counter()
    counts = await job()
    took = time.perf_counter() - started
    await netkit.sleep(TICK * 2)  # one more tick, so a stall that just ended is counted
    worst = ticker.stop()
    print(f"{label}: {sum(counts)} primes in {took:.2f} s; the loop's worst stall: {worst * 1000:.0f} ms")


async def on_the_loop() -> list[int]:
    return [count_primes(start, stop) for start, stop in CHUNKS]  # blocks the loop


async def on_threads() -> list[int]:
    loop = netkit.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(CHUNKS)) as pool:
        return await netkit.gather(*(loop.run_in_executor(pool, count_primes, start, stop) for start, stop in CHUNKS))


async def on_processes(pool: concurrent.futures.ProcessPoolExecutor) -> list[int]:
    loop = netkit.get_running_loop()
    return await netkit.gather(*(loop.run_in_executor(pool, count_primes, start, stop) for start, stop in CHUNKS))


def apply_on_loop(pool: Any, fn: Callable[..., Any], *args: Any) -> netkit.Future[Any]:
    """``pool.apply_async`` done right: the outcome arrives on the loop's thread,
    as a netkit Future that can be awaited or given done callbacks."""
    loop = netkit.get_running_loop()
    future: netkit.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:  # runs on the loop thread
        if future.done():
            return  # cancelled meanwhile: drop the late result
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    # These two run on the pool's result thread: they only hand over.
    def on_result(value: Any) -> None:
        loop.call_soon_threadsafe(settle, value, None)

    def on_error(error: BaseException) -> None:
        loop.call_soon_threadsafe(settle, None, error)

    pool.apply_async(fn, args, callback=on_result, error_callback=on_error)
    return future


async def with_apply_async() -> None:
    def thread_name() -> str:
        return threading.current_thread().name

    with PROCESSES.Pool(2) as pool:
        callback_threads: list[str] = []
        plain = pool.apply_async(count_primes, (0, 1000), callback=lambda _: callback_threads.append(thread_name()))
        await netkit.to_thread(plain.wait)  # wait on a pool thread: the loop stays free
        print(f"   a plain callback runs on {callback_threads[0]!r}: not the loop's thread, it must not touch loop state")

        result = apply_on_loop(pool, count_primes, 0, 1000)
        result.add_done_callback(lambda f: print(f"   done right: the done callback runs on {thread_name()!r} with {f.result()} primes"))
        await result
        await netkit.sleep(0)  # let the done callback print

        try:
            await apply_on_loop(pool, count_primes, 0, "oops")
        except TypeError as error:
            print(f"   and an error in the worker arrives as an exception: {error!r}")


async def main() -> None:
    print(f"counting the primes below {LIMIT:,} in {len(CHUNKS)} chunks, on {os.cpu_count()} CPUs")
    await measure("1. on the loop       ", on_the_loop)
    await measure("2. on a thread pool  ", on_threads)
    with concurrent.futures.ProcessPoolExecutor(max_workers=len(CHUNKS), mp_context=PROCESSES) as pool:
        await on_processes(pool)  # start the workers before timing: spawning takes a moment
        await measure("3. on a process pool ", lambda: on_processes(pool))
    print("4. multiprocessing.Pool.apply_async with a callback:")
    await with_apply_async()
    print(f"the loop ran on thread {threading.current_thread().name!r} throughout")


if __name__ == "__main__":
    netkit.run(main())
