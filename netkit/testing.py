"""Deterministic tools for testing code written with netkit.

``TestLoop`` is an event loop whose clock moves only when told to (or, with
``autojump``, jumps straight to the next timer whenever every task is
waiting), so code with 30-second timeouts tests in milliseconds and never
depends on how fast the machine is.
"""

from __future__ import annotations

import heapq
import selectors

from .loop import EventLoop

__all__ = ["TestLoop"]


class TestLoop(EventLoop):
    """An ``EventLoop`` on a virtual clock.

    ``advance(seconds)`` moves the clock; timers that come due run on the next
    iteration.  With ``autojump=True``, whenever nothing is ready to run and no
    I/O arrives within ``autojump_threshold`` real seconds, the clock jumps to
    the next timer — as if the loop had slept, without the wait.  Real I/O
    (sockets, threads posting with ``call_soon_threadsafe``) still works.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, start: float = 0.0, autojump: bool = False, autojump_threshold: float = 0.0) -> None:
        self._virtual_now = float(start)
        self.autojump = autojump
        self.autojump_threshold = autojump_threshold
        super().__init__()

    def time(self) -> float:
        """The virtual clock: ``start`` plus every ``advance()`` and autojump so far."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError("time cannot go backward")
        self._virtual_now += seconds

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # No timer is pending: only real I/O can make progress, so wait for it.
            return self._selector.select(None)
        if timeout <= 0:
            return self._selector.select(0)
        # A timer bounds the wait, but sleeping would not move a virtual clock.
        if not self.autojump:
            return self._selector.select(0)
        events = self._selector.select(self.autojump_threshold)
        if not events:
            # Jump to the next timer that will run, never to a cancelled one
            # (a finished timeout block's deadline is nobody's business).
            self._drop_cancelled_head()
            if self._timers and self._timers[0][0] > self._virtual_now:
                self._virtual_now = self._timers[0][0]
        return events

    def _drop_cancelled_head(self) -> None:
        timers = self._timers
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1
