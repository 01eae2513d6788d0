"""A synchronous program using netkit through a LoopThread.

    python examples/07-embedding/loop_thread_app.py

A CLI, a GUI or a Flask view is ordinary blocking code with no event loop of
its own.  LoopThread runs a netkit loop on a background thread; the program
hands it coroutines with submit() and gets concurrent.futures.Future objects
back: wait on them, poll them, cancel them, or collect them as they finish.

1. run one coroutine and wait for its result;
2. submit several at once and take them as they complete;
3. a timeout on the waiting side, and cancelling work already running;
4. a long-lived service on the loop that plain code feeds with call_soon;
5. leaving the with-block cancels what is left, joins the thread, closes the loop.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's root: its netkit, and examples/_common.py
import netkit  # noqa: E402

SERVICES = {"auth": 0.3, "billing": 0.1, "search": 0.2}


async def check(service: str, seconds: float) -> str:
    """Pretend to health-check ``service`` over the network (runs on the loop thread)."""
    await netkit.sleep(seconds)
    return f"{service} OK after {seconds} s (checked on thread {threading.current_thread().name!r})"


class AuditLog:
    """A service that lives on the loop.  Its Queue belongs to the loop thread, so
    other threads hand it lines through ``LoopThread.call_soon``, never directly."""

    def __init__(self) -> None:
        self.lines: netkit.Queue[str] = netkit.Queue()

    async def run(self) -> None:
        while True:
            line = await self.lines.get()
            await netkit.sleep(0.01)  # pretend to write it somewhere
            print(f"   [audit] {line}")
            self.lines.task_done()


def main() -> None:
    print(f"main() runs on thread {threading.current_thread().name!r}, as ordinary blocking code")
    with netkit.LoopThread(name="netkit-loop") as lt:
        print("1. run one coroutine and wait for its result:")
        print(f"   {lt.run(check('auth', 0.1))}")

        print("2. submit all checks at once, take results as they complete:")
        futures = {lt.submit(check(name, seconds)): name for name, seconds in SERVICES.items()}
        for future in concurrent.futures.as_completed(futures):
            print(f"   {future.result()}")

        print("3. a timeout while waiting, then cancel the work itself:")
        slow = lt.submit(check("archive", 30))
        try:
            slow.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            print("   archive: no answer within 0.2 s; the task is still running on the loop")
        slow.cancel()  # cancels the task on the loop thread too
        print(f"   cancelled: {slow.cancelled()}")

        print("4. a long-lived service on the loop, fed from this thread:")
        audit = AuditLog()
        lt.submit(audit.run())
        for event in ("user alice logged in", "report exported", "user alice logged out"):
            lt.call_soon(audit.lines.put_nowait, event)
        lt.run(audit.lines.join())  # wait until every line is written
        print("   all audit lines written; the service keeps running until the end")

    print("5. left the with-block: the service was cancelled, the thread joined, the loop closed")
    print(f"   loop closed: {lt.loop.is_closed()}")


if __name__ == "__main__":
    main()
