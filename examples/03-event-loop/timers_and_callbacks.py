"""Timers and callbacks: the event loop without coroutines.

    python examples/03-event-loop/timers_and_callbacks.py

The callback API is the reactor itself: you hand the loop a function and say
when to call it (soon, after a delay, at a time), and the loop calls it from
its one thread.  This shows:

1. call_soon: callbacks run in the order they were scheduled;
2. call_later / call_at: timers, with ties kept in the order scheduled;
3. cancel(): a timer that will not fire;
4. an exception in a callback: reported, and the loop keeps going;
5. a repeating timer (a heartbeat that reschedules itself);
6. stop(): run_forever() returns.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds, ``count`` times, by rescheduling itself."""

    def __init__(self, loop: netkit.EventLoop, interval: float, count: int, on_done: Any) -> None:
        self.loop = loop
        self.interval = interval
        self.remaining = count
        self.on_done = on_done
        # call_at with a running deadline, not call_later from "now": the beats
        # do not drift even when a callback runs late.
        self.next_beat = loop.time() + interval
        self.handle = loop.call_at(self.next_beat, self.beat)

    def beat(self) -> None:
        self.remaining -= 1
        print(f"   heartbeat ({self.remaining} to go)")
        if self.remaining == 0:
            self.on_done()
            return
        self.next_beat += self.interval
        self.handle = self.loop.call_at(self.next_beat, self.beat)


def main() -> None:
    loop = netkit.EventLoop()
    start = loop.time()

    def log(message: str) -> None:
        print(f"[{loop.time() - start:4.2f}s] {message}")

    # 1. call_soon: FIFO, on the loop's next iteration.
    loop.call_soon(log, "1. call_soon runs callbacks in the order they were scheduled:")
    for n in range(1, 4):
        loop.call_soon(log, f"   callback {n}")

    # 2. Timers: deadline order, equal deadlines in the order scheduled.
    loop.call_later(0.30, log, "   timer C (0.30 s)")
    loop.call_later(0.10, log, "2. timers run in deadline order: timer A (0.10 s)")
    same_time = loop.time() + 0.20
    loop.call_at(same_time, log, "   timer B1 (0.20 s, scheduled first)")
    loop.call_at(same_time, log, "   timer B2 (0.20 s, the same deadline, scheduled second)")

    # 3. cancel(): the timer is dropped and never fires.
    doomed = loop.call_later(0.15, log, "THIS SHOULD NOT PRINT")
    doomed.cancel()
    loop.call_later(0.32, log, f"3. the timer due at 0.15 s was cancelled (cancelled() is {doomed.cancelled()}), so it never fired")

    # 4. A failing callback: its exception goes to the exception handler.
    def broken() -> None:
        raise ValueError("a bug in a callback")

    def report(loop: netkit.EventLoop, context: dict[str, Any]) -> None:
        # The default handler logs with a traceback on the "netkit" logger;
        # this one prints a single line to keep the output short.
        print(f"   exception handler: {context['message']}: {context['exception']!r}")

    loop.set_exception_handler(report)
    loop.call_later(0.35, log, "4. a callback raises; the handler gets the error and the loop goes on:")
    loop.call_later(0.35, broken)
    loop.call_later(0.40, log, "   the next timer still runs")

    # 5. A repeating timer; 6. stop() when it is done.
    def finish() -> None:
        log("6. stop(): run_forever() returns after this iteration")
        loop.stop()

    def start_heartbeat() -> None:
        log("5. a repeating timer, every 0.1 s:")
        Heartbeat(loop, 0.1, 3, on_done=finish)

    loop.call_later(0.45, start_heartbeat)
    loop.run_forever()
    loop.close()
    print("done")


if __name__ == "__main__":
    main()
