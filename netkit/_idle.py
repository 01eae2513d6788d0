"""An idle timeout for the echo servers of the command line and the examples.

A TCP connection whose peer vanished without closing it (a suspended laptop,
a network that went away: no FIN or RST ever arrives) looks exactly like a
quiet one, and holds a file descriptor and its buffers until the server
closes it.  ``IdleTimeout`` closes a connection that has received nothing
for a given time.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from . import _runtime

__all__ = ["IdleTimeout", "DEFAULT_IDLE_TIMEOUT"]

# Five minutes, as vsftpd's idle_session_timeout: a person typing into nc or
# telnet can stop to think for minutes without losing the connection, and a
# peer that vanished without closing stops holding a descriptor soon after.
DEFAULT_IDLE_TIMEOUT = 300.0


def _never() -> float:
    return 0.0


def _running_loop() -> Any:
    """netkit's loop, or asyncio's: a protocol with asyncio's shape runs on
    either, and so does its idle timeout (both loops have ``time`` and
    ``call_at``)."""
    loop = _runtime.get_running_loop_or_none()
    return loop if loop is not None else asyncio.get_running_loop()


class IdleTimeout:
    """Closes ``transport`` once ``seconds`` pass without a call to :meth:`heard`.

    Call :meth:`start` from ``connection_made``, :meth:`heard` whenever data
    arrives, :meth:`stop` from ``connection_lost``.  ``seconds=None`` turns it
    off.  :meth:`heard` only notes the time (one clock read, no timer
    rescheduled per read); the one timer, when due, sets itself again for
    what is left if data came meanwhile.

    A connection closed for idling has nothing of its own left to send, so it
    is closed gracefully; unless its peer stopped reading and writes are
    still waiting, which a graceful close would wait on forever: then it is
    aborted.
    """

    __slots__ = ("seconds", "_transport", "_loop", "_clock", "_last_heard", "_handle", "_on_idle")

    def __init__(self, seconds: float | None, on_idle: Callable[[Any], None] | None = None) -> None:
        self.seconds = seconds
        self._transport: Any = None
        self._loop: Any = None
        self._clock: Callable[[], float] = _never
        self._last_heard = 0.0
        self._handle: Any = None
        self._on_idle = on_idle  # told (with the transport) before an idle connection is closed

    def start(self, transport: Any) -> None:
        if self.seconds is None:
            return
        self._loop = loop = _running_loop()
        self._transport = transport
        self._clock = loop.time
        self._last_heard = loop.time()
        self._handle = loop.call_at(self._last_heard + self.seconds, self._expire)

    def heard(self) -> None:
        """Data arrived: the connection is not idle."""
        self._last_heard = self._clock()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._transport = None

    def _expire(self) -> None:
        assert self.seconds is not None
        deadline = self._last_heard + self.seconds
        if self._clock() < deadline:
            self._handle = self._loop.call_at(deadline, self._expire)
            return
        self._handle = None
        transport, self._transport = self._transport, None
        if transport is None or transport.is_closing():
            return
        if self._on_idle is not None:
            self._on_idle(transport)
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
