"""``redis://[[user]:password@]host[:port][/db]``, read into the settings a connection needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import InvalidURI

__all__ = ["RedisURL", "parse_url", "DEFAULT_PORT"]

# The port Redis listens on unless told otherwise (redis.conf: port 6379).
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class RedisURL:
    """Where a Redis server is and how to log in; the password stays out of ``repr``."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port``, with an IPv6 host in brackets: how errors name the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_url(url: str) -> RedisURL:
    """Read a ``redis://`` URL; raise :class:`~netkit.InvalidURI` for anything else.

    ``rediss://`` (Redis over TLS) is refused with a clear error for now: the
    client does not speak TLS yet.  A user name needs a password (Redis'
    ``AUTH`` takes both or the password alone); ``/db`` is a decimal number.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"not a valid Redis URL: {_without_password(url)!r} ({exc})") from None
    if parts.scheme == "rediss":
        raise InvalidURI("rediss:// needs TLS, which netkit.redis does not provide yet; use redis:// on a trusted network")
    if parts.scheme != "redis":
        raise InvalidURI(f"a Redis URL starts with redis://, not {parts.scheme + '://' if parts.scheme else _without_password(url)!r}")
    if parts.query or parts.fragment:
        raise InvalidURI("a Redis URL has no query or fragment: pass options to connect() instead")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise InvalidURI("a Redis URL with a user name needs its password too: redis://user:password@host")
    db_text = parts.path[1:] if parts.path.startswith("/") else parts.path
    if db_text and not (db_text.isdigit() and db_text.isascii()):
        raise InvalidURI(f"the database in a Redis URL is a number (/0, /1 ...), not {parts.path!r}")
    return RedisURL(
        host=parts.hostname or "localhost",
        port=port if port is not None else DEFAULT_PORT,
        db=int(db_text) if db_text else 0,
        username=username,
        password=password or None,
    )


def _without_password(url: str) -> str:
    """``url`` with whatever precedes an ``@`` hidden, to quote it in an error safely."""
    scheme, separator, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + separator + rest
