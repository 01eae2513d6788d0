"""The terminal client of netkit's chat server, over its framed TCP door.

    python -m netkit chat-client --nick ann
    printf 'hello\\n/who\\n' | python -m netkit chat-client --nick bob --port 8766

Each line typed (or piped in) is sent as ``{"type": "say", "text": LINE}`` in
one length-prefixed frame (4-byte big-endian length, then UTF-8 JSON); the
server reads ``/who``, ``/join ROOM`` and ``/help`` in it as commands.  What
the server sends is printed as it arrives.  ``/quit`` or the end of input
(Ctrl-D) says goodbye: the client sends what is still waiting, shuts down
its sending side, prints what the server still had to say, and exits when
the server closes.

The server allows a few messages a second, in bursts (its rate limit), and
disconnects a client that keeps going over it.  The client spaces out what
it sends to stay under that limit, so pasted text goes out a little at a
time instead of getting the user disconnected.

Exit status: 0 when the user quits, 1 with one line on stderr saying why when
the server refuses the join, disconnects the client or goes away, 130 after
Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import re
import sys
import time
from typing import Any

from .. import framing
from .._argtypes import connect_port, os_error_reason
from .._stdin import StdinLines
from ..errors import IncompleteReadError, LimitOverrunError, NetkitError, ProtocolError
from ..streams import StreamReader, StreamWriter, open_connection
from ..sync import Event, Semaphore
from ..tasks import Task, create_task, get_running_loop, sleep
from . import protocol
from .ratelimit import TokenBucket
from .room import ChatLimits
from .server import DEFAULT_HOST, DEFAULT_TCP_PORT

__all__ = ["ChatClientError", "ChatClient", "add_arguments", "run_from_arguments", "format_message", "printable"]

EXIT_OK = 0

# The largest frame accepted from the server: a welcome replays up to 50
# messages of at most ~8 KiB of JSON each (~410 KB), so 1 MiB leaves room.
MAX_FRAME_SIZE = 1024 * 1024

# Typed lines waiting for their turn to be sent: a few screenfuls of pasted
# text.  Past it, stdin is not read further until some have gone out.
LINES_AHEAD = 64

# The longest line read from stdin.  A chat message is at most the server's
# max_text_bytes (4 KiB by default), and longer lines are refused one by
# one; 64 KiB only bounds what is buffered while looking for a newline.
MAX_STDIN_LINE = 64 * 1024

_SERVER_DEFAULTS = ChatLimits()
# Pacing: the server's default rate limit (ChatLimits.rate messages a second,
# bursts of ChatLimits.burst), less two messages of burst.  The server counts
# messages as they arrive, and one held up on the way can arrive right
# behind the next; two in hand absorb a second of such bunching at the
# default rate.  Everything the client sends counts, the join and the
# answers to the server's pings included.
PACE_RATE = _SERVER_DEFAULTS.rate
PACE_BURST = _SERVER_DEFAULTS.burst - 2
# Each "rate_limited" error halves the pace (a server stricter than the
# default), down to one message every ten seconds.
MIN_PACE_RATE = 0.1

# Seconds to wait for the server to close after the client's goodbye (its
# end of input); the server closes at once, so this only bounds a server
# that does not.  The same as the chat's join timeout.
QUIT_TIMEOUT = _SERVER_DEFAULTS.join_timeout

# Control characters (but newline) shown escaped: a message must not be able
# to move the cursor, clear the screen or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


class ChatClientError(NetkitError):
    """The session ended for another reason than the user quitting; the
    message says why, in one line."""


# ------------------------------------------------------------------ display


def printable(text: object) -> str:
    """``text`` with control characters escaped and continuation lines indented."""
    safe = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))
    return safe.replace("\n", "\n    ")


def _names(members: list[Any]) -> str:
    """A member list, shown; ``TypeError`` if it is not a list."""
    if not isinstance(members, list):
        raise TypeError("members is not a list")
    return ", ".join(printable(nick) for nick in members)


def _format(message: dict[str, Any]) -> str | None:
    """``format_message`` without the safety net: a malformed message raises."""
    kind = message["type"]
    if kind == "message":
        clock = time.strftime("%H:%M:%S", time.localtime(message["ts"]))
        return f"[{clock}] <{printable(message['nick'])}> {printable(message['text'])}"
    if kind == "welcome":
        return f"* you are {printable(message['nick'])} in #{printable(message['room'])}; here: {_names(message['members'])}"
    if kind == "joined":
        return f"* {printable(message['nick'])} joined #{printable(message['room'])}"
    if kind == "left":
        reason = "" if message.get("reason") == "quit" else f" ({printable(message.get('reason', ''))})"
        return f"* {printable(message['nick'])} left #{printable(message['room'])}{reason}"
    if kind == "who":
        return f"* in #{printable(message['room'])}: {_names(message['members'])}"
    if kind == "info":
        return f"* {printable(message['text'])}"
    if kind == "error":
        return f"! {printable(message['message'])} ({printable(message['code'])})"
    return None  # ping/pong, and types newer than this client


# What formatting a message the server should not have sent can raise: a
# missing field, a field of the wrong type, a timestamp no clock can show.
_MALFORMED = (KeyError, TypeError, ValueError, OverflowError, OSError)


def format_message(message: dict[str, Any]) -> str | None:
    """One server message as a line of text (``None`` for those not shown).

    A message without the fields its type needs becomes a notice that it
    was ignored: what a server sends cannot end the client.
    """
    try:
        return _format(message)
    except _MALFORMED:
        return _ignored(message)


def _ignored(message: dict[str, Any]) -> str:
    """The notice shown instead of a message this client cannot read."""
    return f"! the server sent a {printable(message.get('type'))} message this client cannot read; ignored"


def _error_text(message: dict[str, Any]) -> str:
    """An ``error`` message as "what (code)", for a one-line exit reason."""
    return f"{printable(message.get('message'))} ({printable(message.get('code'))})"


# ------------------------------------------------------------------ sending


class _Pacer:
    """Spaces out what the client sends, to stay under the server's rate limit."""

    def __init__(self, rate: float = PACE_RATE, burst: int = PACE_BURST) -> None:
        self._bucket = TokenBucket(rate, burst, get_running_loop().time)

    async def turn(self) -> None:
        """Wait until one more message may go."""
        bucket = self._bucket
        while not bucket.take():
            await sleep((1.0 - bucket.tokens) / bucket.rate)

    def slow_down(self) -> None:
        """The server said "rate_limited": it is stricter than the default.
        Start from an empty bucket, at half the pace."""
        bucket = self._bucket
        while bucket.take():
            pass
        bucket.rate = max(MIN_PACE_RATE, bucket.rate / 2)


class _Outbox:
    """What waits to be sent, in the pacer's rhythm.

    Answers to the server's pings go first (its keepalive waits for them),
    then typed lines in order, then the goodbye: the end of the sending
    side, once every line before it is out.
    """

    def __init__(self, writer: StreamWriter, pacer: _Pacer) -> None:
        self._writer = writer
        self._pacer = pacer
        self._framer = framing.LengthPrefixFramer("!I", max_frame_size=MAX_FRAME_SIZE)
        self._urgent: collections.deque[dict[str, Any]] = collections.deque()
        self._lines: collections.deque[dict[str, Any] | None] = collections.deque()  # None: goodbye
        self._room = Semaphore(LINES_AHEAD)
        self._wake = Event()
        self.said_goodbye = Event()

    def put_urgent(self, message: dict[str, Any]) -> None:
        """Queue ``message`` ahead of the typed lines (a pong, the join)."""
        self._urgent.append(message)
        self._wake.set()

    async def put_line(self, text: str) -> None:
        """Queue a ``say``; waits while ``LINES_AHEAD`` lines are queued."""
        await self._room.acquire()
        self._lines.append({"type": "say", "text": text})
        self._wake.set()

    def put_goodbye(self) -> None:
        """End the sending side once the lines queued so far are out."""
        self._lines.append(None)
        self._wake.set()

    async def run(self) -> None:
        """Send until the goodbye is out or the connection fails (the
        receiving side reports that)."""
        try:
            while True:
                while not self._urgent and not self._lines:
                    self._wake.clear()
                    await self._wake.wait()
                if not self._urgent and self._lines[0] is None:
                    self._say_goodbye()
                    return
                await self._pacer.turn()
                if self._urgent:
                    message = self._urgent.popleft()
                else:
                    message = self._lines.popleft()
                    self._room.release()
                framing.write_frame(self._writer, self._framer, json.dumps(message).encode("utf-8"))
                await self._writer.drain()
        except OSError:
            pass

    def _say_goodbye(self) -> None:
        # Done talking, still listening: the server answers what it got, then closes.
        if self._writer.can_write_eof():
            self._writer.write_eof()
        self.said_goodbye.set()


# ---------------------------------------------------------------- the client


class ChatClient:
    """One session: join as ``nick``, then send stdin's lines and print what
    arrives until the user quits or the server ends it."""

    def __init__(self, host: str, port: int, nick: str, room: str = protocol.DEFAULT_ROOM) -> None:
        self.host = host
        self.port = port
        self.nick = nick
        self.room = room
        self.max_text_bytes = _SERVER_DEFAULTS.max_text_bytes  # until the welcome says
        self.stdin_failure: LimitOverrunError | None = None  # a line too long, which ended the input

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def run(self) -> int:
        """Returns 0 once the user has quit; raises :class:`ChatClientError`
        when the session ends otherwise."""
        try:
            reader, writer = await open_connection(self.host, self.port)
        except OSError as exc:
            raise ChatClientError(f"cannot connect to {self.address}: {os_error_reason(exc)}") from None
        pacer = _Pacer()
        outbox = _Outbox(writer, pacer)
        session = _Session(self, reader, writer, pacer, outbox)
        try:
            ending = await session.converse()
        finally:
            session.stop()
        if session.joined:
            _show("* disconnected")
        if self.stdin_failure is not None:
            raise ChatClientError(str(self.stdin_failure))
        if ending is not None:
            raise ChatClientError(ending)
        return EXIT_OK


class _Session:
    """The moving parts of one connection: the receiving loop (here), the
    outbox's sending task and, once joined, the stdin reader."""

    def __init__(self, client: ChatClient, reader: StreamReader, writer: StreamWriter, pacer: _Pacer, outbox: _Outbox) -> None:
        self.client = client
        self.reader = reader
        self.writer = writer
        self.pacer = pacer
        self.outbox = outbox
        self.tasks: list[Task[None]] = [create_task(outbox.run())]
        self.joined = False

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.writer.close()

    async def converse(self) -> str | None:
        """Join, then print what arrives until the server closes; returns why
        the session ended when it was not the user's doing, else ``None``."""
        client = self.client
        self.outbox.put_urgent({"type": "join", "nick": client.nick, "room": client.room})
        framer = framing.LengthPrefixFramer("!I", max_frame_size=MAX_FRAME_SIZE)
        last: dict[str, Any] | None = None
        while True:
            try:
                frame = await framing.read_frame(self.reader, framer)
            except (ProtocolError, IncompleteReadError) as exc:
                return None if self.outbox.said_goodbye.is_set() else f"bad frame from {client.address}: {exc}"
            except OSError as exc:
                return None if self.outbox.said_goodbye.is_set() else f"connection to {client.address} lost: {os_error_reason(exc)}"
            if frame is None:
                break
            message = _decode(frame)
            if message is None:
                continue
            last = message
            refusal = self._handle(message)
            if refusal is not None:
                return refusal
        if self.outbox.said_goodbye.is_set():
            return None
        if last is not None and last["type"] == "error":
            return f"disconnected by the server: {_error_text(last)}"
        return f"the server at {client.address} closed the connection"

    def _handle(self, message: dict[str, Any]) -> str | None:
        """Act on one server message; returns a reason to stop (a refused join)."""
        kind = message["type"]
        if kind == "ping":
            self.outbox.put_urgent({"type": "pong"})
            return None
        if kind == "error" and not self.joined:
            return f"could not join as {printable(self.client.nick)}: {_error_text(message)}"
        if kind == "error" and message.get("code") == protocol.ErrorCode.RATE_LIMITED:
            self.pacer.slow_down()
        try:
            shown = _format(message)
            if kind == "welcome":
                self._welcome(message)  # checks the history before the line is shown
        except _MALFORMED:
            _show(_ignored(message))
            return None
        if shown is not None:
            _show(shown)
        if kind == "welcome":
            for old in message["history"]:
                replayed = format_message(old) if isinstance(old, dict) else _ignored({})
                if replayed is not None:
                    _show(replayed)
        return None

    def _welcome(self, welcome: dict[str, Any]) -> None:
        """Note the server's message size limit; start reading stdin after the first welcome."""
        history, limit = welcome["history"], welcome.get("max_text_bytes")
        if not isinstance(history, list):
            raise TypeError("history is not a list")
        if isinstance(limit, int) and limit > 0:
            self.client.max_text_bytes = limit
        if not self.joined:
            self.joined = True
            self.tasks.append(create_task(self._pump_stdin()))
            self.tasks.append(create_task(self._leave_if_the_server_lingers()))

    async def _pump_stdin(self) -> None:
        """Queue each line typed; at ``/quit`` or the end of input, say goodbye."""
        lines = StdinLines(get_running_loop(), max_line=MAX_STDIN_LINE)
        encoding = getattr(sys.stdin, "encoding", None) or "utf-8"  # sys.stdin is None when fd 0 is closed
        client = self.client
        try:
            while (raw := await lines.readline()) is not None:
                text = _decode_line(raw, encoding).rstrip("\r\n")
                if text.strip() == "/quit":
                    break
                if not text.strip():
                    continue
                size = len(text.encode("utf-8", "surrogatepass"))
                if size > client.max_text_bytes:
                    _show(f"! that line is {size} bytes, over the server's limit of {client.max_text_bytes}; not sent")
                    continue
                await self.outbox.put_line(text)
        except LimitOverrunError as exc:
            # Stop there, as at the end of input, so that the lines before it
            # still go out; the exit status reports it.
            client.stdin_failure = exc
        finally:
            self.outbox.put_goodbye()  # whatever happened here, the session must end

    async def _leave_if_the_server_lingers(self) -> None:
        """After the goodbye, give the server ``QUIT_TIMEOUT`` seconds to close."""
        await self.outbox.said_goodbye.wait()
        await sleep(QUIT_TIMEOUT)
        self.writer.close()  # the receiving loop then sees the end


def _decode(frame: bytes) -> dict[str, Any] | None:
    """A frame as a server message, or ``None`` (and a notice) if it is not one."""
    try:
        return protocol.decode_server_message(frame)
    except (ValueError, RecursionError):  # not UTF-8, not JSON (or nested too deep), not an object with a type
        _show("! the server sent something that is not a chat message; ignored")
        return None


def _decode_line(raw: bytes, encoding: str) -> str:
    """A line of stdin as text.  Bytes the terminal's encoding cannot read
    become U+FFFD: the line still goes out, and the user is told."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        _show(f"! that line was not valid {name}; its invalid bytes were sent as \ufffd")
        return raw.decode(encoding, "replace")


def _show(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The chat client's options, on ``parser``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"the chat server's address (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=connect_port, default=DEFAULT_TCP_PORT, help=f"its port for terminal clients (default {DEFAULT_TCP_PORT})"
    )
    parser.add_argument("--nick", required=True, help="your nickname")
    parser.add_argument("--room", default=protocol.DEFAULT_ROOM, help=f"the room to join (default {protocol.DEFAULT_ROOM})")


async def run_from_arguments(args: argparse.Namespace) -> int:
    """Run one session with the parsed options.

    Ctrl-C cancels it (``netkit.run`` turns SIGINT into a cancellation of
    the main task), so the connection is closed on the way out; the
    command then exits with 130.
    """
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A message in characters the terminal's encoding lacks is shown
        # escaped rather than ending the program.
        sys.stdout.reconfigure(errors="backslashreplace")
    return await ChatClient(args.host, args.port, args.nick, args.room).run()
