"""What :meth:`Connection.receive_data <netkit.websocket.connection.Connection.receive_data>` returns.

Each event is a small object with ``__slots__``, built once per message or
control frame; compare them with ``==`` and dispatch on ``type(event)``:

=====================  ==========================================================
``TextMessage``        a whole text message (``data: str``)
``BinaryMessage``      a whole binary message (``data: bytes``)
``TextChunk``          with ``stream_messages=True``: the next part of a text
                       message as it arrived (``data: str``, ``last: bool``)
``BinaryChunk``        the same for binary messages (``data: bytes``, ``last``)
``Ping``               a ping (``data``); already answered unless ``auto_pong``
                       is off
``Pong``               a pong (``data``) and the payloads of the pings it
                       ``answered``, oldest first (empty if unsolicited)
``CloseReceived``      the peer's close frame (``code``, ``reason``); 1005 when
                       it had no code.  The reply is already queued.
``ConnectionFailed``   the peer broke the protocol (``error``, with its
                       ``close_code``); the close frame saying so is queued and
                       the transport should be closed.  Always the last event.
=====================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from ..errors import ProtocolError

__all__ = [
    "Event",
    "TextMessage",
    "BinaryMessage",
    "TextChunk",
    "BinaryChunk",
    "Ping",
    "Pong",
    "CloseReceived",
    "ConnectionFailed",
]


class Event:
    """Base class of connection events: equality and repr from the slots."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Event)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={_short_repr(getattr(self, name))}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


# Messages can be megabytes: a repr (for logs and test failures) shows the
# start and the size of anything longer than this.
_REPR_LIMIT = 64


def _short_repr(value: Any) -> str:
    if isinstance(value, (str, bytes)) and len(value) > _REPR_LIMIT:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:_REPR_LIMIT]!r}...({len(value)} {unit})"
    return repr(value)


class TextMessage(Event):
    """A complete text message."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data


class BinaryMessage(Event):
    """A complete binary message."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class TextChunk(Event):
    """Part of a text message, as it arrived; ``last`` marks the end of the message.

    Chunks hold whole characters: a character split between frames comes
    with the chunk that completes it.
    """

    __slots__ = ("data", "last")

    def __init__(self, data: str, last: bool) -> None:
        self.data = data
        self.last = last


class BinaryChunk(Event):
    """Part of a binary message, as it arrived; ``last`` marks the end of the message."""

    __slots__ = ("data", "last")

    def __init__(self, data: bytes, last: bool) -> None:
        self.data = data
        self.last = last


class Ping(Event):
    """A ping from the peer, with its application data."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Pong(Event):
    """A pong from the peer; ``answered`` lists the payloads of the pings sent
    with ``send_ping`` that it acknowledges (that ping and any earlier one)."""

    __slots__ = ("data", "answered")

    def __init__(self, data: bytes, answered: tuple[bytes, ...] = ()) -> None:
        self.data = data
        self.answered = answered


class CloseReceived(Event):
    """The peer's close frame: its ``code`` (1005 if it carried none) and ``reason``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class ConnectionFailed(Event):
    """The peer broke the protocol and the connection was failed (RFC 6455 §7.1.7).

    ``error`` says what happened; ``code`` is the close code sent for it
    (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
    """

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error

    @property
    def code(self) -> int:
        """The close code the error calls for."""
        return self.error.close_code
