"""Every exception netkit raises, in one hierarchy rooted at :class:`NetkitError`.

An error about bad input carries the remedy: the WebSocket close code
(``close_code``) or HTTP status (``status``) to answer the peer with.  A limit
error names the limit, the side that enforced it and the values involved.
"""

from __future__ import annotations

__all__ = [
    "NetkitError",
    "CancelledError",
    "InvalidStateError",
    "ProtocolError",
    "LimitExceeded",
    "FrameTooLarge",
    "MessageTooBig",
    "HTTPError",
    "HandshakeError",
    "InvalidURI",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "IncompleteReadError",
    "LimitOverrunError",
    "QueueEmpty",
    "QueueFull",
]


class NetkitError(Exception):
    """Base class of every error netkit raises on purpose."""


class CancelledError(BaseException):
    """The task or future was cancelled.

    A ``BaseException`` (as in asyncio) so that ``except Exception`` in user
    code does not swallow a cancellation by accident.
    """


class InvalidStateError(NetkitError):
    """An operation is not allowed in the object's current state
    (a result set twice, a result read before it exists, a send after close)."""


class ProtocolError(NetkitError):
    """The peer broke the protocol.

    ``close_code`` is the WebSocket close code to answer with (RFC 6455 §7.4.1:
    1002, protocol error) and ``status`` the HTTP status (400, bad request).
    """

    close_code: int = 1002
    status: int = 400

    def __init__(self, message: str, *, close_code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code
        if status is not None:
            self.status = status


class LimitExceeded(ProtocolError):
    """Input went over a configured limit.

    Carries which ``limit`` (the option's name), its ``maximum``, the offending
    ``value`` and the ``side`` that enforced it (``"local"`` or ``"remote"``).
    """

    close_code = 1009  # RFC 6455 §7.4.1: message too big to process
    status = 413

    def __init__(
        self,
        limit: str,
        value: int,
        maximum: int,
        *,
        side: str = "local",
        what: str = "input",
        close_code: int | None = None,
        status: int | None = None,
    ) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.side = side
        super().__init__(
            f"{what} of {value} bytes exceeds {limit}={maximum} ({side})",
            close_code=close_code,
            status=status,
        )


class FrameTooLarge(LimitExceeded):
    """A frame declared (or grew to) a size above the framer's ``max_frame_size``."""

    def __init__(self, value: int, maximum: int, *, limit: str = "max_frame_size", side: str = "local") -> None:
        super().__init__(limit, value, maximum, side=side, what="frame")


class MessageTooBig(LimitExceeded):
    """A message (all its fragments together) exceeds ``max_message_size``."""

    def __init__(self, value: int, maximum: int, *, limit: str = "max_message_size", side: str = "local") -> None:
        super().__init__(limit, value, maximum, side=side, what="message")


class HTTPError(ProtocolError):
    """A malformed or oversized HTTP head; ``status`` is the answer to send
    (400 bad request, 414 URI too long, 431 header fields too large)."""


class HandshakeError(NetkitError):
    """A WebSocket opening handshake failed.

    On the server, ``status``/``headers``/``body`` describe the HTTP response
    that rejects the request.  On the client, they are what the server
    answered (for a redirect, ``headers`` holds its ``Location``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers or [])
        self.body = body


class InvalidURI(NetkitError, ValueError):
    """A URI netkit cannot connect to (wrong scheme, user info, bad port)."""


class ConnectionClosed(NetkitError):
    """The connection is closed; ``code`` and ``reason`` say how.

    ``code`` is the close code received from the peer (1006 when the TCP
    connection dropped without a close frame), ``reason`` its text.
    """

    def __init__(self, code: int = 1006, reason: str = "", *, message: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(message or f"connection closed: code={code} reason={reason!r}")


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed cleanly (close code 1000 or 1001)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error or without a closing handshake."""


class IncompleteReadError(NetkitError, EOFError):
    """EOF arrived before ``expected`` bytes; ``partial`` holds what came."""

    def __init__(self, partial: bytes, expected: int | None) -> None:
        self.partial = partial
        self.expected = expected
        want = "undefined" if expected is None else str(expected)
        super().__init__(f"{len(partial)} bytes read on a total of {want} expected bytes")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return type(self), (self.partial, self.expected)


class LimitOverrunError(NetkitError):
    """A separator was not found within the reader's limit;
    ``consumed`` bytes may be discarded to recover."""

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message)
        self.consumed = consumed

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return type(self), (self.args[0], self.consumed)


class QueueEmpty(NetkitError):
    """``Queue.get_nowait()`` found the queue empty."""


class QueueFull(NetkitError):
    """``Queue.put_nowait()`` found the queue full."""
