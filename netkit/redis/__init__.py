"""netkit.redis: RESP, the protocol Redis speaks, and a Redis client on netkit's loop.

* :mod:`netkit.redis.resp`: the sans-I/O codec (``RespParser``,
  ``encode_command``), usable with any I/O;
* :func:`connect` and :class:`Redis`: commands, pipelines and ``publish``;
  :class:`PubSub`: subscriptions that survive a server restart.

The client's names load on first use (as ``netkit``'s do), so that
``import netkit.redis.resp`` loads neither the loop nor ``socket``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import RedisConnectionError, RedisError, RespLimitExceeded, RespProtocolError
from .resp import NEED_DATA, Limits, Push, RespParser, VerbatimString, encode_command, encode_commands

_LAZY_NAMES: dict[str, str] = {
    "connect": "client",
    "Redis": "client",
    "Pipeline": "client",
    "PubSub": "pubsub",
    "Message": "pubsub",
}

__all__ = [
    "connect",
    "Redis",
    "Pipeline",
    "PubSub",
    "Message",
    "Limits",
    "RespParser",
    "Push",
    "VerbatimString",
    "NEED_DATA",
    "encode_command",
    "encode_commands",
    "RedisError",
    "RespProtocolError",
    "RespLimitExceeded",
    "RedisConnectionError",
]


def __getattr__(name: str) -> Any:
    """Load a client name from its module on first use, then keep it here."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'netkit.redis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})


if TYPE_CHECKING:
    from .client import Pipeline, Redis, connect
    from .pubsub import Message, PubSub
