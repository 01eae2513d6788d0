"""Which web pages may open the chat's WebSocket: the ``Origin`` check.

A browser lets any page open a WebSocket to any server, so without a check
a page on another site could join the chat on its visitor's behalf, from
the visitor's machine and network (a chat on 127.0.0.1 or on an intranet is
then reachable by anyone who can get that visitor to load a page).  Browsers
always say which page is asking: RFC 6455 §4.1 makes the ``Origin`` header
mandatory for them, and §10.2 has servers check it.

The policy here: a page may open the WebSocket when it came from the chat
server itself (its origin's host and port are the request's ``Host``), or
from an origin on the allow-list.  A request without ``Origin`` comes from
something that is not a browser (the terminal client, a script), which
carries no visitor along: it is accepted.  ``*`` on the list accepts every
origin.  Sans-I/O: strings in, a yes or no out.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ANY_ORIGIN", "OriginPolicy", "parse_origin"]

ANY_ORIGIN = "*"

# RFC 6454 §4: an origin's port, when its serialization leaves it out, is
# the scheme's default port.
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_PORT = 65535

# (scheme, host, port), lower-case: the form in which origins are compared.
Origin = tuple[str, str, int]


def _split_authority(authority: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` (the host an IPv6 literal in brackets) as ``(host, port)``;
    ``None`` if it is anything else."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[: end + 1], authority[end + 1 :]
    else:
        host, colon, port_text = authority.partition(":")
        rest = colon + port_text
    if not host or any(c in host for c in "/?#@\\ \t"):
        return None
    if not rest:
        return host.lower(), default_port
    port_text = rest[1:]
    if rest[0] != ":" or not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 1 <= port <= _MAX_PORT:
        return None
    return host.lower(), port


def parse_origin(value: str) -> Origin | None:
    """An ``Origin`` value as ``(scheme, host, port)``, or ``None`` if it is
    not an http(s) origin (``null``, a path, another scheme).

    RFC 6454 §6.2: an origin is serialized as ``scheme "://" host [ ":"
    port ]``, nothing more.
    """
    scheme, separator, authority = value.strip().partition("://")
    scheme = scheme.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if not separator or default_port is None:
        return None
    split = _split_authority(authority, default_port)
    if split is None:
        return None
    host, port = split
    return scheme, host, port


class OriginPolicy:
    """Decides whether a WebSocket request's ``Origin`` may open the chat.

    ``allowed`` lists extra origins (``https://chat.example.com``) besides the
    page's own; ``"*"`` among them accepts any.  A value that is not an
    origin is a ``ValueError`` here, when the server is configured, rather
    than an origin that silently never matches.
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.any_origin = False
        self._allowed: set[Origin] = set()
        for value in allowed:
            if value == ANY_ORIGIN:
                self.any_origin = True
                continue
            parsed = parse_origin(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not an origin: write it as scheme://host[:port], e.g. https://chat.example.com")
            self._allowed.add(parsed)

    def allows(self, origins: list[str], host: str | None) -> bool:
        """Whether a request with these ``Origin`` values (normally none or
        one) and this ``Host`` may open the WebSocket."""
        if not origins:
            return True  # not a browser: nobody's page is acting for a visitor
        if len(origins) > 1:
            return False  # RFC 6454 §7.2: at most one; two cannot both be believed
        if self.any_origin:
            return True
        origin = parse_origin(origins[0])
        if origin is None:
            return False  # "null" (a sandboxed frame, a file://) or garbage
        if origin in self._allowed:
            return True
        return host is not None and self._same_host(origin, host)

    @staticmethod
    def _same_host(origin: Origin, host: str) -> bool:
        """Whether ``origin`` is the page the chat served: its host and port
        are the request's ``Host`` (the port defaulting to the origin
        scheme's, as a browser leaves it out)."""
        scheme, origin_host, origin_port = origin
        served = _split_authority(host.strip(), _DEFAULT_PORTS[scheme])
        return served == (origin_host, origin_port)
