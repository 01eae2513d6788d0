"""``ws://`` and ``wss://`` URIs (RFC 6455 §3): what a client connects to and asks for."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from ..errors import InvalidURI
from ..http import parse_decimal

__all__ = ["WebSocketURI", "parse_uri"]

# RFC 6455 §3: "The port component is OPTIONAL; the default for "ws" is port
# 80, while the default for "wss" is port 443."
_DEFAULT_PORTS = {"ws": 80, "wss": 443}
# RFC 9293 §3.1: a port is a 16-bit number, so five digits at most.
_MAX_PORT = 65535
_MAX_PORT_DIGITS = 5

# RFC 3986 §3.3 and §3.4: characters a path or query may hold as they are;
# anything else (non-ASCII text, spaces, quotes) is percent-encoded, and
# existing escapes ("%") are kept.
_PATH_SAFE = "/%!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed WebSocket URI.

    ``host`` is what to connect to: ASCII (internationalized names
    IDNA-encoded), an IPv6 literal without its brackets; ``resource_name`` is the request target:
    path and query, percent-encoded, never empty (RFC 6455 §3: "/" at least).
    """

    secure: bool
    host: str
    port: int
    resource_name: str

    @property
    def scheme(self) -> str:
        """``"wss"`` over TLS, otherwise ``"ws"``."""
        return "wss" if self.secure else "ws"

    @property
    def host_header(self) -> str:
        """The ``Host`` field value: RFC 6455 §4.1 item 4 (and RFC 9110 §7.2)
        writes the port only when it is not the scheme's default, and an IPv6
        literal in brackets."""
        host = self.host
        if ":" in host:
            # RFC 6874 §4: a zone identifier ("%eth0") is local to this host
            # and is not sent to the server.
            host = f"[{host.partition('%')[0]}]"
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.resource_name}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse a ``ws://`` or ``wss://`` URI; raise :class:`~netkit.errors.InvalidURI`.

    Default ports are filled in, IPv6 literals (``ws://[::1]:8080/``) are
    unbracketed, and the path plus query become the resource name.  Refused:
    other schemes, a missing host, a bad port, user info (credentials do not
    belong in a WebSocket URI, and ``Authorization`` is the way to send them)
    and fragments (RFC 6455 §3: "Fragment identifiers ... MUST NOT be used on
    these URIs").
    """
    if re.search(r"[\x00-\x20\x7f]", uri):
        # urllib silently drops some of these (tabs, newlines); a URI never
        # contains them, so say so rather than connect somewhere unexpected.
        raise InvalidURI(f"{uri!r} contains whitespace or a control character")
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI(f"{uri!r} is not a valid URI: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURI(f"{uri!r} is not a WebSocket URI: the scheme must be ws or wss")
    if "#" in uri:
        raise InvalidURI(f"{uri!r} has a fragment; a WebSocket URI cannot (escape '#' as %23)")
    if "@" in parts.netloc:
        raise InvalidURI(f"{uri!r} has user info; send credentials in a header instead")
    host = parts.hostname
    if not host:
        raise InvalidURI(f"{uri!r} has no host")
    if parts.netloc.startswith("["):
        # RFC 6874: a zone identifier is written "%25" in a URI; the host
        # kept is the one to connect to, with a plain "%".
        host = urllib.parse.unquote(host)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidURI(f"{uri!r} has an invalid IPv6 address") from None
    elif not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(f"{uri!r} has a host name that cannot be IDNA-encoded") from None
    port = _parse_port(uri, parts.netloc, _DEFAULT_PORTS[scheme])
    resource_name = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query or uri.endswith("?"):
        resource_name += "?" + urllib.parse.quote(parts.query, safe=_QUERY_SAFE)
    return WebSocketURI(scheme == "wss", host, port, resource_name)


def _parse_port(uri: str, netloc: str, default: int) -> int:
    """The port of ``netloc`` (``host:port`` or ``[v6]:port``), ``default`` if none.

    RFC 3986 §3.2.3: port = *DIGIT, and an empty one means the default.
    Read here rather than by urllib, so that only ASCII digits count, on
    every Python version, and a number too long for a port is refused
    before ``int()`` runs.
    """
    if netloc.startswith("["):
        after_host = netloc.partition("]")[2]
        if after_host and not after_host.startswith(":"):
            raise InvalidURI(f"{uri!r} is not a valid URI: {after_host!r} follows the IPv6 address, not a port")
        text = after_host[1:]
    else:
        text = netloc.partition(":")[2]
    if not text:
        return default
    port = parse_decimal(text, _MAX_PORT_DIGITS)
    if port is None or port > _MAX_PORT:
        raise InvalidURI(f"{uri!r} is not a valid URI: its port {text[:20]!r} is not a number from 1 to {_MAX_PORT}")
    if port == 0:
        raise InvalidURI(f"{uri!r} has port 0")
    return port
