"""netkit's event loop and tasks against asyncio's, in one run, on this machine.

    python benchmarks/bench_loop.py                 # 5 rounds of 100,000 operations
    python benchmarks/bench_loop.py --rounds 9 --ops 200000

Three implementations run the same benchmark code (the APIs share names):

- netkit:      netkit.EventLoop with netkit's Task and Future (pure Python);
- asyncio:     asyncio's default event loop, whose Task and Future are written
               in C (the _asyncio module) while the loop itself is Python;
- asyncio-py:  the same loop with asyncio's pure-Python Task and Future
               (asyncio.tasks._PyTask, asyncio.futures._PyFuture): the
               like-for-like comparison for netkit's pure-Python runtime.

Rounds are interleaved (every implementation runs every benchmark once per
round, so machine noise hits all alike); the table shows the median rate of
each and netkit's ratio to each reference (above 1.00: netkit is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from types import ModuleType
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's netkit
import netkit  # noqa: E402


class Implementation:
    """A loop factory and the module whose sleep/gather go with it."""

    def __init__(self, name: str, new_loop: Callable[[], Any], module: ModuleType) -> None:
        self.name = name
        self.new_loop = new_loop
        self.module = module


def _asyncio_pure_python_loop() -> asyncio.AbstractEventLoop:
    """asyncio's default loop, creating pure-Python Tasks and Futures."""

    class PyFutureLoop(type(asyncio.new_event_loop())):  # type: ignore[misc]
        def create_future(self) -> asyncio.Future[Any]:
            return asyncio.futures._PyFuture(loop=self)  # type: ignore[attr-defined]

    loop = PyFutureLoop()
    loop.set_task_factory(lambda loop, coro, **kwargs: asyncio.tasks._PyTask(coro, loop=loop, **kwargs))  # type: ignore[attr-defined]
    return loop


IMPLEMENTATIONS = [
    Implementation("netkit", netkit.EventLoop, netkit),
    Implementation("asyncio", asyncio.new_event_loop, asyncio),
    Implementation("asyncio-py", _asyncio_pure_python_loop, asyncio),
]


# ------------------------------------------------------------- benchmarks
# Each returns the seconds its timed part took for ``ops`` operations.


def bench_call_soon(impl: Implementation, loop: Any, ops: int) -> float:
    """Schedule ``ops`` callbacks with call_soon, then run them all."""
    calls = [0]

    def callback() -> None:
        calls[0] += 1

    started = time.perf_counter()
    call_soon = loop.call_soon
    for _ in range(ops):
        call_soon(callback)
    call_soon(loop.stop)
    loop.run_forever()
    took = time.perf_counter() - started
    assert calls[0] == ops
    return took


def bench_call_later_cancel(impl: Implementation, loop: Any, ops: int) -> float:
    """Schedule a timeout and cancel it, ``ops`` times (the life of most timeouts),
    then let the loop run once to clean up."""

    def never() -> None:
        raise AssertionError("a cancelled timer ran")

    started = time.perf_counter()
    call_later = loop.call_later
    for _ in range(ops):
        call_later(30.0, never).cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    return time.perf_counter() - started


def bench_task_create_gather(impl: Implementation, loop: Any, ops: int) -> float:
    """Create ``ops`` tasks of a coroutine that returns at once, and gather them."""

    async def nothing() -> None:
        return None

    async def main() -> float:
        create_task = loop.create_task
        started = time.perf_counter()
        await impl.module.gather(*[create_task(nothing()) for _ in range(ops)])
        return time.perf_counter() - started

    return loop.run_until_complete(main())  # type: ignore[no-any-return]


def bench_sleep0_switches(impl: Implementation, loop: Any, ops: int) -> float:
    """100 tasks each awaiting sleep(0) in turn: ``ops`` task switches in all."""
    tasks_count = 100
    rounds = ops // tasks_count
    sleep = impl.module.sleep

    async def worker() -> None:
        for _ in range(rounds):
            await sleep(0)

    async def main() -> float:
        started = time.perf_counter()
        await impl.module.gather(*[loop.create_task(worker()) for _ in range(tasks_count)])
        return time.perf_counter() - started

    return loop.run_until_complete(main())  # type: ignore[no-any-return]


def bench_future_wakeup(impl: Implementation, loop: Any, ops: int) -> float:
    """A task awaits a future; a callback sets its result; the task wakes. ``ops`` times."""

    async def main() -> float:
        create_future = loop.create_future
        call_soon = loop.call_soon
        started = time.perf_counter()
        for _ in range(ops):
            future = create_future()
            call_soon(future.set_result, None)
            await future
        return time.perf_counter() - started

    return loop.run_until_complete(main())  # type: ignore[no-any-return]


BENCHMARKS: list[tuple[str, Callable[[Implementation, Any, int], float]]] = [
    ("call_soon", bench_call_soon),
    ("call_later + cancel", bench_call_later_cancel),
    ("task create + gather", bench_task_create_gather),
    ("sleep(0) switches", bench_sleep0_switches),
    ("future set_result -> wake", bench_future_wakeup),
]


def measure(impl: Implementation, bench: Callable[[Implementation, Any, int], float], ops: int) -> float:
    """Operations per second for one run of ``bench`` on a fresh loop."""
    loop = impl.new_loop()
    gc.collect()
    gc.disable()  # collections land at random points: keep them out of the timing, for everyone
    try:
        took = bench(impl, loop, ops)
    finally:
        gc.enable()
        loop.close()
    return ops / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    args = parser.parse_args()

    rates: dict[tuple[str, str], list[float]] = {}
    for round_no in range(args.rounds):
        for bench_name, bench in BENCHMARKS:
            for impl in IMPLEMENTATIONS:
                rates.setdefault((bench_name, impl.name), []).append(measure(impl, bench, args.ops))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print(f"Python {sys.version.split()[0]}, {args.ops:,} operations per measurement, median of {args.rounds} rounds")
    names = [impl.name for impl in IMPLEMENTATIONS]
    header = f"{'benchmark':<27}" + "".join(f"{name + ' ops/s':>17}" for name in names)
    header += "".join(f"{'netkit/' + name:>19}" for name in names[1:])
    print(header)
    print("-" * len(header))
    for bench_name, _ in BENCHMARKS:
        medians = {name: statistics.median(rates[(bench_name, name)]) for name in names}
        row = f"{bench_name:<27}" + "".join(f"{medians[name]:>17,.0f}" for name in names)
        row += "".join(f"{medians['netkit'] / medians[name]:>19.2f}" for name in names[1:])
        print(row)


if __name__ == "__main__":
    main()
