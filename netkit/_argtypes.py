"""``argparse`` types for netkit's command lines (``python -m netkit``, the
chat server's and the chat client's options), and the wording of their errors.

A value out of range is a usage error, reported by argparse as one line
with exit status 2, instead of a traceback from deep inside ``bind()``.
"""

from __future__ import annotations

import argparse
import os
import socket

__all__ = ["listen_port", "connect_port", "positive_int", "non_negative_float", "timeout_seconds", "http_header", "os_error_reason"]

# RFC 9110 §5.6.2: a field name is a token, one or more of these characters.
_TOKEN_CHARACTERS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# RFC 9110 §5.5: a field value may not contain CR, LF or NUL (a CR or LF
# would end the header line and start another: header injection).
_FORBIDDEN_IN_VALUE = ("\r", "\n", "\0")

_MAX_PORT = 65535


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def listen_port(text: str) -> int:
    """A port to listen on: 0 (any free port) to 65535."""
    port = _integer(text)
    if not 0 <= port <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0 (any free port) to {_MAX_PORT}")
    return port


def connect_port(text: str) -> int:
    """A port to connect to: 1 to 65535."""
    port = _integer(text)
    if not 1 <= port <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port to connect to: use 1 to {_MAX_PORT}")
    return port


def positive_int(text: str) -> int:
    """A count or a size: 1 or more."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: it must be at least 1")
    return value


def non_negative_float(text: str) -> float:
    """A duration in seconds: 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a duration: use 0 or more seconds")
    return value


def timeout_seconds(text: str) -> float | None:
    """A timeout in seconds; 0 turns it off (``None``, as netkit's options take it)."""
    value = non_negative_float(text)
    return value or None


def http_header(text: str) -> tuple[str, str]:
    """An extra request header, ``Name: value``, as ``(name, value)``."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not a header: expected 'Name: value'")
    if not _TOKEN_CHARACTERS.issuperset(name):
        raise argparse.ArgumentTypeError(f"{name!r} is not a header name: letters, digits and !#$%&'*+-.^_`|~ only")
    if any(character in value for character in _FORBIDDEN_IN_VALUE):
        raise argparse.ArgumentTypeError(f"the value of header {name!r} contains a line break or NUL")
    return name, value


def os_error_reason(exc: OSError) -> str:
    """Why a network call failed, in the system's words ("Connection refused").

    A command's own message names the address, so the address that
    netkit's connect and bind errors repeat is left out.
    """
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)  # "Name or service not known"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)
