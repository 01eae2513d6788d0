"""netkit: a networking toolkit on the Python standard library alone."""

from __future__ import annotations

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .protocols import BaseProtocol, DatagramProtocol, Protocol

__version__ = "0.1.0"

__all__ = [*_errors_all, "BaseProtocol", "Protocol", "DatagramProtocol"]
