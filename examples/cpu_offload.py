"""Blocking and CPU-heavy work off the loop, with results coming back to it.

    python examples/cpu_offload.py

The loop runs everything on one thread, so a function that computes for a
second freezes every connection and timer for that second.  Offload it:

1. a thread pool (run_in_executor(None, ...) / to_thread) for blocking calls
   and for C code that releases the GIL, such as hashlib on large data;
2. a process pool for pure-Python number crunching, which the GIL keeps to
   one core at a time in threads;
3. multiprocessing.Pool.apply_async(callback=...): its callback runs on the
   pool's result-handler thread, not the loop's, so it must not touch loop
   state; done right, it hands the result over with call_soon_threadsafe.

Meanwhile a ticker task shows the loop stays free to run other work.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import sys
import threading
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's netkit
import netkit  # noqa: E402

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


def sha256_hex(data: bytes) -> str:
    """hashlib releases the GIL on large inputs, so a thread really runs in parallel."""
    return hashlib.sha256(data).hexdigest()


def loop_thread_name() -> str:
    return threading.current_thread().name


async def ticker(ticks: list[int]) -> None:
    """Counts how often the loop got to run it: proof the loop is not blocked."""
    while True:
        await netkit.sleep(0.02)
        ticks[0] += 1


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


async def main() -> None:
    loop = netkit.get_running_loop()
    print(f"the loop runs on thread {loop_thread_name()!r}")
    ticks = [0]
    ticking = netkit.create_task(ticker(ticks))

    print("1. a thread pool hashes 32 MiB:")
    digest = await netkit.to_thread(sha256_hex, b"x" * (32 * 1024 * 1024))
    print(f"   sha256 = {digest[:16]}..., delivered to the loop thread {loop_thread_name()!r}")

    print("2. a process pool counts primes below 200,000 in four chunks:")
    chunks = [(n, n + 50_000) for n in range(0, 200_000, 50_000)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=PROCESSES) as pool:
        counts = await netkit.gather(*(loop.run_in_executor(pool, count_primes, lo, hi) for lo, hi in chunks))
    print(f"   per chunk {counts}, total {sum(counts)} primes")

    print("3. multiprocessing.Pool.apply_async with a callback:")
    with PROCESSES.Pool(2) as pool:
        callback_threads: list[str] = []
        plain = pool.apply_async(count_primes, (0, 1000), callback=lambda _: callback_threads.append(loop_thread_name()))
        await netkit.to_thread(plain.wait)  # wait on a pool thread: the loop stays free
        print(f"   a plain callback runs on {callback_threads[0]!r}: not the loop's thread, it must not touch loop state")

        result = apply_on_loop(pool, count_primes, 0, 1000)
        result.add_done_callback(lambda f: print(f"   done right: the done callback runs on {loop_thread_name()!r} with {f.result()} primes"))
        await result
        await netkit.sleep(0)  # let the done callback print

        try:
            await apply_on_loop(pool, count_primes, 0, "oops")
        except TypeError as error:
            print(f"   and an error in the worker arrives as an exception: {error!r}")

    ticking.cancel()
    print(f"meanwhile the ticker ran {ticks[0]} times: the loop was never blocked")


if __name__ == "__main__":
    netkit.run(main())
