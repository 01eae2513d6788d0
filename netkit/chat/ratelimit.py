"""A token bucket: how the chat tells a burst from a flood.

Tokens come back at ``rate`` per second up to ``burst``; each event spends
some.  Counting messages, a message costs one token: a person pasting a few
lines spends a few and gets them back within seconds, a script sending in a
loop runs out and stays out.  Counting bytes (a room's budget), a message
costs its size.  The clock is a parameter, so tests move time by hand.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows ``burst`` tokens' worth at once and ``rate`` tokens per second on average."""

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)  # a newcomer may start with a burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while a debt is being paid back)."""
        self._refill()
        return self._tokens

    @property
    def full(self) -> bool:
        """Whether the bucket holds a whole burst: nothing spent lately."""
        return self.tokens >= self.burst

    def take(self, amount: float = 1.0) -> bool:
        """Spend ``amount`` if it is there; ``False`` means "over the limit".

        An amount larger than the whole burst could never be taken, so it is
        allowed once from a full bucket and paid back as a debt.
        """
        self._refill()
        if self._tokens >= min(amount, self.burst):
            self._tokens -= amount
            return True
        return False

    def spend(self, amount: float) -> None:
        """Spend ``amount`` whether it is there or not: for what cannot be
        refused, but must still count.  The debt delays the next ``take``."""
        self._refill()
        self._tokens -= amount

    def wait_time(self, amount: float = 1.0) -> float:
        """Seconds until ``take(amount)`` would succeed (0 if it would now)."""
        missing = min(amount, self.burst) - self.tokens
        return max(0.0, missing / self.rate)
