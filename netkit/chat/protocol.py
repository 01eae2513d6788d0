"""The chat's wire protocol: one JSON object per message, the same on every door.

The WebSocket door carries one object per *text* message; the framed TCP door
carries one UTF-8 encoded object per length-prefixed frame (4-byte big-endian
length).  Every object has a ``"type"``; the other fields depend on it.

Client to server::

    {"type": "join", "nick": "ann", "room": "lobby"}   first message; "room" optional
    {"type": "say", "text": "hi"}                       a message to the current room
    {"type": "who"}                                     who is in my room?
    {"type": "room", "room": "python"}                  move to another room
    {"type": "ping"}                                    the server answers "pong"
    {"type": "pong"}                                    the answer to a server "ping"

Inside ``say``, a text that starts with ``/`` is a command, so a plain text box
is enough for a client: ``/who``, ``/join NAME`` (same as ``room``) and
``/help``.  ``//text`` sends the literal message ``/text``.

Server to client::

    {"type": "welcome", "nick": "ann", "room": "lobby", "members": ["ann", "bob"],
     "history": [<message>, ...], "max_text_bytes": 4096}
    {"type": "message", "id": 7, "room": "lobby", "nick": "ann", "text": "hi", "ts": 1700000000.25}
    {"type": "joined", "room": "lobby", "nick": "bob", "ts": ...}
    {"type": "left", "room": "lobby", "nick": "bob", "reason": "quit", "ts": ...}
    {"type": "who", "room": "lobby", "members": ["ann", "bob"]}
    {"type": "info", "text": "..."}                     an answer meant for a human (/help)
    {"type": "error", "code": "nick_taken", "message": "..."}
    {"type": "ping"} / {"type": "pong"}

``welcome`` answers a ``join`` and every room change; its ``history`` holds the
room's last messages (``message`` objects, oldest first).  ``ts`` is Unix time
in seconds; ``id`` grows by one for each message the server accepts, across
all rooms.  An ``error`` never closes the connection by itself (but
``server_full`` and ``too_many_connections`` come just before a close);
``code`` is one of :class:`ErrorCode`, ``message`` a sentence for a human.

This module is sans-I/O: it turns received text into :class:`ClientMessage`
values (or a :class:`ChatError`) and builds the server's objects; it knows
nothing of sockets, rooms or time.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import NetkitError

__all__ = [
    "DEFAULT_ROOM",
    "MAX_NICK_LENGTH",
    "MAX_ROOM_LENGTH",
    "ErrorCode",
    "ChatError",
    "Join",
    "Say",
    "Who",
    "SwitchRoom",
    "Help",
    "Ping",
    "Pong",
    "ClientMessage",
    "parse_client_message",
    "binary_message_error",
    "too_long_error",
    "utf8_size",
    "max_chat_message_bytes",
    "max_welcome_bytes",
    "max_who_bytes",
    "parse_command",
    "check_nick",
    "normalize_room",
    "encode",
    "decode_server_message",
    "welcome",
    "chat_message",
    "joined",
    "left",
    "who",
    "info",
    "error",
    "ping",
    "pong",
    "HELP_TEXT",
]

DEFAULT_ROOM = "lobby"

# 24 characters: long enough for real names and handles, short enough that a
# line of chat still shows the text (IRC networks allow 9 to 30).
MAX_NICK_LENGTH = 24
# 32 characters: room names are typed in /join, so they stay short; the
# same order as IRC channel names on most networks.
MAX_ROOM_LENGTH = 32

# Nicknames and room names are ASCII letters, digits and ``_ - .``, starting
# with a letter or a digit.  ASCII only, so two nicknames that look alike are
# alike: no homoglyphs, no invisible or right-to-left characters.
_NICK_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_ROOM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.\-]*")

# C0 controls (but tab and newline), DEL and C1 controls: they would let a
# message rewrite a terminal (escape sequences) or hide text; everything
# else in Unicode is allowed in a message.
_FORBIDDEN_TEXT_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HELP_TEXT = "commands: /who (who is here), /join ROOM (change room), /help; //text sends a line starting with /"


class ErrorCode(enum.StrEnum):
    """Why the server refused a client message; the ``code`` field of ``error``."""

    INVALID_JSON = "invalid_json"  # not UTF-8, not JSON, or not a JSON object
    INVALID_MESSAGE = "invalid_message"  # a binary WebSocket message, or a field missing or of the wrong type
    UNKNOWN_TYPE = "unknown_type"  # "type" names no client message
    UNKNOWN_COMMAND = "unknown_command"  # "/something" that is not a command
    TOO_LONG = "too_long"  # over the message or text size limit
    INVALID_TEXT = "invalid_text"  # empty, or with control characters
    INVALID_NICK = "invalid_nick"
    NICK_TAKEN = "nick_taken"
    INVALID_ROOM = "invalid_room"
    TOO_MANY_ROOMS = "too_many_rooms"
    NOT_JOINED = "not_joined"  # anything but join/ping/pong before a join
    ALREADY_JOINED = "already_joined"
    RATE_LIMITED = "rate_limited"  # over the connection's limit (told once; the next one disconnects) or the address's
    ROOM_BUSY = "room_busy"  # the room's byte budget is spent for now; the message was not sent
    SERVER_FULL = "server_full"
    TOO_MANY_CONNECTIONS = "too_many_connections"  # from this address; the connection is closed
    JOIN_TIMEOUT = "join_timeout"


class ChatError(NetkitError):
    """A client message the server refuses; ``code`` goes back in an ``error`` object."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- client messages


@dataclass(frozen=True, slots=True)
class Join:
    """Enter the chat as ``nick``, in ``room``."""

    nick: str
    room: str = DEFAULT_ROOM


@dataclass(frozen=True, slots=True)
class Say:
    """Send ``text`` to everyone in the current room."""

    text: str


@dataclass(frozen=True, slots=True)
class Who:
    """Ask who is in the current room."""


@dataclass(frozen=True, slots=True)
class SwitchRoom:
    """Leave the current room for ``room`` (created if it does not exist)."""

    room: str


@dataclass(frozen=True, slots=True)
class Help:
    """Ask for the list of commands."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Ask the server for a ``pong`` (a client-side liveness check)."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer a server ``ping``."""


ClientMessage = Join | Say | Who | SwitchRoom | Help | Ping | Pong


def check_nick(nick: object) -> str:
    """``nick`` if it is a valid nickname, else :class:`ChatError` saying why."""
    if not isinstance(nick, str):
        raise ChatError(ErrorCode.INVALID_NICK, "the nickname must be a string")
    if not 1 <= len(nick) <= MAX_NICK_LENGTH or not _NICK_PATTERN.fullmatch(nick):
        raise ChatError(
            ErrorCode.INVALID_NICK,
            f"a nickname is 1 to {MAX_NICK_LENGTH} ASCII letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
        )
    return nick


def normalize_room(room: object) -> str:
    """The canonical (lower-case, no leading ``#``) form of a room name, or
    :class:`ChatError`.  ``#Python`` and ``python`` are the same room."""
    if not isinstance(room, str):
        raise ChatError(ErrorCode.INVALID_ROOM, "the room name must be a string")
    name = room.strip().removeprefix("#").lower()
    if not 1 <= len(name) <= MAX_ROOM_LENGTH or not _ROOM_PATTERN.fullmatch(name):
        raise ChatError(
            ErrorCode.INVALID_ROOM,
            f"a room name is 1 to {MAX_ROOM_LENGTH} ASCII letters, digits, '_', '-' or '.', "
            "starting with a letter or digit",
        )
    return name


def utf8_size(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes (a lone surrogate counts as 3)."""
    # Counting UTF-8 bytes only when there is something but ASCII keeps the
    # common case a single C-level scan.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def too_long_error(size: int, limit: int) -> ChatError:
    """The ``too_long`` refusal of a message of ``size`` bytes, worded for the
    client that sent it, whichever door it came by."""
    return ChatError(ErrorCode.TOO_LONG, f"your message is {size} bytes; the limit is {limit}")


def binary_message_error() -> ChatError:
    """The refusal of a binary WebSocket message: the chat speaks JSON text."""
    return ChatError(
        ErrorCode.INVALID_MESSAGE,
        "the chat speaks JSON in text messages; this was a binary message (send the JSON as text)",
    )


def _check_text(text: object, max_text_bytes: int) -> str:
    if not isinstance(text, str):
        raise ChatError(ErrorCode.INVALID_MESSAGE, "'text' must be a string")
    if not text.strip():
        raise ChatError(ErrorCode.INVALID_TEXT, "the message is empty")
    size = utf8_size(text)
    if size > max_text_bytes:
        raise too_long_error(size, max_text_bytes)
    if _FORBIDDEN_TEXT_CHARS.search(text):
        raise ChatError(ErrorCode.INVALID_TEXT, "the message contains control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        raise ChatError(ErrorCode.INVALID_TEXT, "the message is not valid Unicode") from None
    return text


def parse_command(text: str) -> ClientMessage | None:
    """The command that ``text`` (from a ``say``) spells, or ``None`` if it is a
    plain message.  ``//x`` is the plain message ``/x``; an unknown ``/x`` raises."""
    if not text.startswith("/"):
        return None
    if text.startswith("//"):
        return Say(text[1:])
    name, _, argument = text[1:].strip().partition(" ")
    argument = argument.strip()
    name = name.lower()
    if name in ("who", "help"):
        if argument:
            raise ChatError(ErrorCode.UNKNOWN_COMMAND, f"/{name} takes no argument")
        return Who() if name == "who" else Help()
    if name == "join":
        if not argument:
            raise ChatError(ErrorCode.INVALID_ROOM, "usage: /join ROOM")
        return SwitchRoom(normalize_room(argument))
    raise ChatError(ErrorCode.UNKNOWN_COMMAND, f"unknown command /{name}; {HELP_TEXT}")


def _message_size(raw: str | bytes) -> int:
    return utf8_size(raw) if isinstance(raw, str) else len(raw)


def parse_client_message(raw: str | bytes, *, max_message_bytes: int, max_text_bytes: int) -> ClientMessage:
    """Decode and validate one client message (a WebSocket text message, or a
    frame's bytes as UTF-8).  Raises :class:`ChatError` with the code to answer."""
    size = _message_size(raw)
    if size > max_message_bytes:
        raise too_long_error(size, max_message_bytes)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ChatError(ErrorCode.INVALID_JSON, "the message is not UTF-8") from None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise ChatError(ErrorCode.INVALID_JSON, "the message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ChatError(ErrorCode.INVALID_JSON, "the message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ChatError(ErrorCode.INVALID_MESSAGE, "the message needs a string 'type'")
    if kind == "say":
        text = _check_text(obj.get("text"), max_text_bytes)
        return parse_command(text) or Say(text)
    if kind == "join":
        nick = check_nick(obj.get("nick"))
        room = obj.get("room")
        return Join(nick, DEFAULT_ROOM if room is None else normalize_room(room))
    if kind == "room":
        return SwitchRoom(normalize_room(obj.get("room")))
    if kind == "who":
        return Who()
    if kind == "help":
        return Help()
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    shown = kind if len(kind) <= 32 else kind[:32] + "..."
    raise ChatError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {shown!r}")


# ---------------------------------------------------------------- server messages

ServerMessage = dict[str, Any]

# Upper bounds on the size of what the server sends, for sizing buffers.
# The fields of a ``message`` other than its text take at most 160 bytes of
# JSON (a 24-character nick, a 32-character room, a 20-digit id, a float's
# longest repr); 256 leaves room to spare.  The same for a ``welcome`` or a
# ``who`` without their lists.
_FIELDS_BYTES = 256
# A nickname in a list: at most MAX_NICK_LENGTH ASCII characters, its two
# quotes and a comma (nicknames need no escaping).
_LISTED_NICK_BYTES = MAX_NICK_LENGTH + 3


def max_chat_message_bytes(max_text_bytes: int) -> int:
    """The largest ``message`` object, encoded, for a text of at most
    ``max_text_bytes``: JSON escapes a quote, a backslash, a tab or a newline
    as two bytes (every other character allowed in a text goes as it is)."""
    return 2 * max_text_bytes + _FIELDS_BYTES


def max_welcome_bytes(history_size: int, max_text_bytes: int, max_members: int) -> int:
    """The largest ``welcome``: a full history of the largest messages and a
    room holding ``max_members`` of the longest nicknames."""
    history = history_size * (max_chat_message_bytes(max_text_bytes) + 1)  # +1: the comma
    return history + max_members * _LISTED_NICK_BYTES + _FIELDS_BYTES


def max_who_bytes(max_members: int) -> int:
    """The largest ``who`` answer: ``max_members`` of the longest nicknames."""
    return max_members * _LISTED_NICK_BYTES + _FIELDS_BYTES


def encode(message: ServerMessage) -> str:
    """``message`` as compact JSON text (non-ASCII kept as is: the doors send UTF-8)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def decode_server_message(raw: str | bytes) -> ServerMessage:
    """Decode a server message on the client side; ``ValueError`` if it is not a
    JSON object with a string ``type``."""
    obj = json.loads(raw)
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ValueError("a server message is a JSON object with a string 'type'")
    return obj


def chat_message(message_id: int, room: str, nick: str, text: str, ts: float) -> ServerMessage:
    """One accepted chat message, as broadcast and as kept in the history."""
    return {"type": "message", "id": message_id, "room": room, "nick": nick, "text": text, "ts": ts}


def welcome(nick: str, room: str, members: list[str], history: list[ServerMessage], max_text_bytes: int) -> ServerMessage:
    """The answer to a join or a room change."""
    return {
        "type": "welcome",
        "nick": nick,
        "room": room,
        "members": members,
        "history": history,
        "max_text_bytes": max_text_bytes,
    }


def joined(room: str, nick: str, ts: float) -> ServerMessage:
    """``nick`` entered ``room``."""
    return {"type": "joined", "room": room, "nick": nick, "ts": ts}


def left(room: str, nick: str, reason: str, ts: float) -> ServerMessage:
    """``nick`` left ``room``; ``reason`` says how (``quit``, ``moved``, ...)."""
    return {"type": "left", "room": room, "nick": nick, "reason": reason, "ts": ts}


def who(room: str, members: list[str]) -> ServerMessage:
    """The members of ``room``."""
    return {"type": "who", "room": room, "members": members}


def info(text: str) -> ServerMessage:
    """A line for the human at the other end."""
    return {"type": "info", "text": text}


def error(code: ErrorCode, message: str) -> ServerMessage:
    """A refused client message."""
    return {"type": "error", "code": str(code), "message": message}


def ping() -> ServerMessage:
    """Are you still there?  (Answer with ``pong``.)"""
    return {"type": "ping"}


def pong() -> ServerMessage:
    """The answer to a client's ``ping``."""
    return {"type": "pong"}
