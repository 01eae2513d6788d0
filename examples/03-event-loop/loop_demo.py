"""A two-second tour of netkit's event loop.

    python examples/03-event-loop/loop_demo.py

One loop on one thread, and everything takes turns on it: callbacks, timers,
a socket becoming readable, a message from another thread, coroutines that
sleep, and blocking work sent to a thread pool.  Each line says when it
happened, in seconds since the loop started.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402


def main() -> None:
    loop = netkit.EventLoop()
    start = loop.time()

    def say(what: str) -> None:
        print(f"[{loop.time() - start:4.2f}s] {what}", flush=True)

    # 1. Callbacks: call_soon queues them; they run in order, one at a time.
    loop.call_soon(say, "call_soon: the first callback runs")
    loop.call_soon(say, "call_soon: the second one runs after it, in the order scheduled")

    # 2. Timers: call_later puts a callback in the timer heap; cancel() takes it out.
    loop.call_later(0.5, say, "call_later(0.5): a timer fired")
    forgotten = loop.call_later(0.3, say, "this timer was cancelled, so this line never prints")
    forgotten.cancel()

    # 3. I/O: the loop asks select/epoll which sockets are ready and calls their readers.
    here, there = socket.socketpair()

    def on_readable() -> None:
        say(f"add_reader: the socket became readable, it holds {here.recv(100)!r}")
        loop.remove_reader(here)

    loop.add_reader(here, on_readable)
    loop.call_later(0.2, there.send, b"ping")

    # 4. Threads: only call_soon_threadsafe may be called from another thread;
    #    it wakes the loop even while it sleeps in select().
    def other_thread() -> None:
        time.sleep(0.7)  # a blocking wait, fine here: this is not the loop's thread
        loop.call_soon_threadsafe(say, f"call_soon_threadsafe: a message from thread {threading.current_thread().name!r}")

    threading.Thread(target=other_thread, name="helper").start()

    # 5. Coroutines: tasks run until they await, then let others run.
    async def countdown(name: str, count: int, pause: float) -> str:
        for n in range(count, 0, -1):
            say(f"{name}: {n}")
            await netkit.sleep(pause)
        return f"{name} done"

    def blocking_work(n: int) -> int:
        return sum(i * i for i in range(n))  # would freeze the loop if run on it

    async def tour() -> None:
        results = await netkit.gather(countdown("task A", 3, 0.4), countdown("task B", 2, 0.6))
        say(f"gather: both tasks are done, results in order: {results}")
        total = await loop.run_in_executor(None, blocking_work, 200_000)
        say(f"run_in_executor: blocking work ran on a pool thread, result {total}")

    loop.run_until_complete(tour())
    here.close()
    there.close()
    loop.close()
    print("loop closed: selector, wake-up sockets and thread pool released. Bye!")


if __name__ == "__main__":
    main()
