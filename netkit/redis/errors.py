"""The errors of ``netkit.redis``, each a subclass of netkit's own hierarchy.

* :class:`RedisError`: the server answered a command with an error reply
  (``-ERR ...``).  The server is fine and so is the connection: only that
  command failed.
* :class:`RespProtocolError`: the server's bytes are not RESP.  The
  connection cannot be trusted any more and is closed.
* :class:`RespLimitExceeded`: a reply went over one of the parser's limits
  (:class:`netkit.redis.resp.Limits`).  Also closes the connection: the rest
  of the stream cannot be parsed without reading the oversized reply.
* :class:`RedisConnectionError`: the connection could not be opened, was
  lost, or the client was closed.  It names the server's address.

This module imports nothing but :mod:`netkit.errors`, so the sans-I/O codec
that raises these stays free of the loop and of ``socket``.
"""

from __future__ import annotations

from ..errors import ConnectionClosedError, LimitExceeded, NetkitError, ProtocolError

__all__ = ["RedisError", "RespProtocolError", "RespLimitExceeded", "RedisConnectionError"]


class RedisError(NetkitError):
    """An error reply from the server: ``-ERR unknown command``, ``-WRONGTYPE ...``.

    ``message`` is the server's text as sent; ``code`` its first word when
    that word is in capitals, as Redis writes its error codes (``"ERR"``,
    ``"WRONGTYPE"``, ``"NOAUTH"``), else ``""``.  Inside an aggregate reply
    (the results of ``EXEC``) an error is a value of this type, not raised.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        first_word = message.split(" ", 1)[0]
        self.code = first_word if first_word.isupper() else ""


class RespProtocolError(ProtocolError):
    """The bytes from the server break RESP (an unknown type byte, a length that
    is not a decimal number, a line without its CRLF ...)."""


class RespLimitExceeded(LimitExceeded):
    """A reply went over a limit of the parser.

    ``limit`` names the :class:`~netkit.redis.resp.Limits` field, ``value``
    what the reply declared or reached, ``maximum`` the limit; the message
    says which unit they count (bytes, elements or levels).
    """

    def __init__(self, limit: str, value: int, maximum: int, *, what: str, unit: str) -> None:
        super().__init__(limit, value, maximum, side="local", what=what)
        # LimitExceeded counts bytes; a RESP limit may count elements or levels.
        self.args = (f"{what} of {value} {unit} exceeds {limit}={maximum} (local)",)


class RedisConnectionError(ConnectionClosedError):
    """No connection to the server: it could not be opened, it was lost, or
    the client was closed.  ``address`` is the server's ``host:port``.

    Every command still waiting for its reply when the connection ends fails
    with this error; whether the server ran it is unknown.
    """

    def __init__(self, address: str, message: str) -> None:
        # 1006 is what netkit's ConnectionClosed reports for a connection
        # that ended without a closing handshake: RESP has none.
        super().__init__(1006, message, message=message)
        self.address = address
