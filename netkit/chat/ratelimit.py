"""A token bucket: how the chat tells a burst of typing from a flood.

Each message costs one token; tokens come back at ``rate`` per second up to
``burst``.  A person pasting a few lines spends a few tokens and gets them
back within seconds; a script sending in a loop runs out and stays out.
The clock is a parameter, so tests move time by hand.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows ``burst`` events at once and ``rate`` events per second on average."""

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
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
        """Tokens available now."""
        self._refill()
        return self._tokens

    def take(self) -> bool:
        """Spend one token if there is one; ``False`` means "over the limit"."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
